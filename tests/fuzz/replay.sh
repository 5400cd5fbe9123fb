#!/bin/sh
# Replay each harness over its seed corpus and the reproducers of the crashes
# it found (tests/fuzz/corpus/NAME, tests/fuzz/regressions/NAME): a crash
# fixed once stays fixed, in every build.
set -eu
: "${top_srcdir:=$(dirname "$0")/../..}"
: "${top_builddir:=.}"
fuzz="$top_srcdir/tests/fuzz"
status=0
for name in http conn sse ring_open config parsers; do
	set --
	for d in "$fuzz/corpus/$name" "$fuzz/regressions/$name"; do
		[ -d "$d" ] && set -- "$@" "$d"
	done
	[ $# -gt 0 ] || continue
	"$top_builddir/tests/fuzz/replay_$name" "$@" || status=1
done
exit $status
