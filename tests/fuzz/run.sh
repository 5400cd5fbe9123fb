#!/bin/sh
# run.sh SEEDS WORK NAME...: run each libFuzzer harness WORK/../fuzz_NAME
# for $FUZZ_SECONDS (default 60), $FUZZ_JOBS (default 2) at a time, each on a
# scratch corpus WORK/work/NAME/corpus started from the seeds SEEDS/corpus/NAME
# (never written).  Ends with one summary line per harness; exits 1 if any
# harness crashed, leaving the reproducer beside its log.
set -eu
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}

if [ "${1:-}" = --one ]; then
	seeds=$2 dir=$3 name=$4
	work="$dir/work/$name"
	mkdir -p "$work/corpus"
	[ -d "$seeds/corpus/$name" ] && cp -R "$seeds/corpus/$name/." \
	    "$work/corpus/"
	[ -d "$seeds/regressions/$name" ] && cp -R \
	    "$seeds/regressions/$name/." "$work/corpus/"
	rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*
	# A broken invariant aborts; ASan and UBSan stop at the first error.
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	"$dir/fuzz_$name" -max_total_time="$seconds" -timeout=30 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$work/" "$work/corpus" >"$work.log" 2>&1 &&
	    rc=0 || rc=$?
	echo "$rc" >"$work.rc"
	exit 0
fi

seeds=$1 dir=$2
shift 2
echo "fuzz: $# harnesses, ${seconds}s each, $jobs at a time; logs in $dir/work"
printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh "$0" --one "$seeds" "$dir" {}

failed=0
for name in "$@"; do
	work="$dir/work/$name"
	rc=$(cat "$work.rc" 2>/dev/null || echo 99)
	stat() {
		sed -n "s/^stat::$1: *//p" "$work.log" | tail -n 1
	}
	execs=$(stat number_of_executed_units)
	rate=$(stat average_exec_per_sec)
	cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' "$work.log" | tail -n 1)
	units=$(ls "$work/corpus" | wc -l)
	artifact=$(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* \
	    "$work"/oom-* 2>/dev/null | head -n 1)
	if [ "$rc" = 0 ] && [ -z "$artifact" ]; then
		verdict="no crash"
	else
		verdict="CRASH (exit $rc): ${artifact:-see $work.log}"
		failed=1
	fi
	printf 'fuzz_%s: %s executions (%s/s) in %ss, coverage %s, corpus %s: %s\n' \
	    "$name" "${execs:-?}" "${rate:-?}" "$seconds" "${cov:-?}" \
	    "$units" "$verdict"
done
exit $failed
