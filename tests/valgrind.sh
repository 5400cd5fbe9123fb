#!/bin/sh
# Run one integration scenario with ringcastd (master and its forked worker)
# and ringcastctl under valgrind memcheck: a topic made with ringcastctl, a
# publish, a stream with replay and a heartbeat, bad requests, and a SIGTERM
# drain with a stream open.  Fails on any memcheck error or definite leak in
# any process.  Usage: top_srcdir=.. top_builddir=. tests/valgrind.sh
set -eu
: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
builddir=$(cd "$top_builddir" && pwd)
ringcastd=$builddir/ringcastd
ringcastctl=$builddir/ringcastctl

say() { printf 'valgrind.sh: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }

command -v valgrind >/dev/null 2>&1 || { say "no valgrind: skipped"; exit 77; }
command -v curl >/dev/null 2>&1 || { say "no curl: skipped"; exit 77; }
[ -x "$ringcastd" ] && [ -x "$ringcastctl" ] || fail "build ringcastd first"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringcast-vg.XXXXXX")
master=""
streams=""
cleanup() {
	for pid in $streams $master; do
		kill -9 "$pid" 2>/dev/null || true
	done
	if [ "${keep:-0}" = 1 ]; then
		say "logs kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT INT TERM

# The allocator is jemalloc: have memcheck replace it as it would malloc.
# Workers are forked without exec: memcheck follows them by itself.
set -f
vg="valgrind --tool=memcheck --leak-check=full
    --errors-for-leak-kinds=definite --error-exitcode=99
    --trace-children=yes --child-silent-after-fork=no
    --soname-synonyms=somalloc=libjemalloc.so*
    --log-file=$tmp/vg.%p.log"

ports=$(python3 -c 'import socket
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1], end=" ")')
set -- $ports
port=$1
admin=$2
base=http://127.0.0.1:$port

cat >"$tmp/ringcast.conf" <<CONF
[server]
listen = 127.0.0.1:$port
admin_listen = 127.0.0.1:$admin
workers = 1
pidfile = $tmp/ringcastd.pid
drain_timeout = 20s
[ring]
path = $tmp/ring
size = 1M
slots = 1024
[catalog]
path = $tmp/catalog
map_size = 1M
[publish]
require_token = no
[stream]
heartbeat = 1s
retry = 1s
[limits]
max_event_bytes = 64K
header_timeout = 2s
[log]
target = stderr
level = debug
CONF

$vg "$ringcastctl" -f "$tmp/ringcast.conf" topic add news >/dev/null ||
    fail "ringcastctl topic add"

# A simple command, so that $! is valgrind's pid, the master's.
$vg "$ringcastd" -d -f "$tmp/ringcast.conf" 2>"$tmp/ringcastd.log" &
master=$!
i=0
until curl -fs "$base/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "ringcastd did not come up"
	kill -0 "$master" 2>/dev/null || fail "ringcastd exited at start"
	sleep 0.1
done
say "ringcastd up under memcheck (pid $master)"

# Publish, then a stream that replays it, gets a heartbeat, sees a live one.
curl -fs -X POST --data 'one' "$base/publish/news" >/dev/null ||
    fail "publish one"
curl -sN --max-time 4 -H 'Last-Event-ID: 0' "$base/events/news" \
    >"$tmp/replay.out" 2>/dev/null &
replay=$!
streams="$replay"
sleep 1
curl -fs -X POST -H 'Ringcast-Event: note' --data-binary 'two
lines' "$base/publish/news" >/dev/null || fail "publish two"
wait "$replay" || true
grep -q '^data: one' "$tmp/replay.out" || fail "no replay: $(cat "$tmp/replay.out")"
grep -q '^event: note' "$tmp/replay.out" || fail "no live event"
grep -q '^:' "$tmp/replay.out" || fail "no heartbeat"

# Bad requests: each answered, none fatal.
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$base/events/%2e%2e")" = 400 ] || fail "bad topic not 400"
[ "$(code -X FROB "$base/events/news")" = 405 ] || fail "FROB not 405"
[ "$(code -H 'Transfer-Encoding: chunked' -H 'Content-Length: 3' \
    --data-binary abc "$base/publish/news")" = 400 ] || fail "CL+TE not 400"
[ "$(code -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" \
    "$base/healthz")" = 431 ] || fail "big header not 431"
[ "$(code "$base/events/ghost")" = 404 ] || fail "unknown topic not 404"
[ "$(code "http://127.0.0.1:$admin/metrics")" = 200 ] || fail "metrics"

# SIGTERM with a stream open: it must end cleanly, the master exit 0.
curl -sN --max-time 20 "$base/events/news" >"$tmp/drain.out" 2>/dev/null &
drain=$!
streams="$drain"
sleep 1
kill -TERM "$master"
status=0
wait "$master" || status=$?
master=""
wait "$drain" || fail "the drained stream did not end cleanly"
grep -q '^retry:' "$tmp/drain.out" || fail "no retry hint at drain"
[ "$status" = 0 ] || fail "ringcastd exited $status (99: memcheck errors)"

# Every process: master, worker, ringcastctl.
set +f
bad=0
n=0
for log in "$tmp"/vg.*.log; do
	n=$((n + 1))
	summary=$(grep 'ERROR SUMMARY' "$log" | tail -1)
	definite=$(grep 'definitely lost:' "$log" | tail -1)
	say "$(basename "$log"): ${summary#*== }${definite:+; ${definite#*== }}"
	case $summary in
	*"ERROR SUMMARY: 0 errors"*) ;;
	*) bad=1 ;;
	esac
	case $definite in
	"" | *"definitely lost: 0 bytes"*) ;;
	*) bad=1 ;;
	esac
done
[ $n -ge 3 ] || fail "expected logs of ringcastctl, master and worker: $n"
if [ $bad = 1 ]; then
	keep=1
	for log in "$tmp"/vg.*.log; do
		cat "$log"
	done
	fail "memcheck found errors"
fi
say "no memcheck error, no definite leak in $n processes"
