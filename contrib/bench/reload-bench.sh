#!/bin/sh
# reload-bench.sh: how long a reload takes to hand every stream over (issue
# #17): from SIGHUP to the master until the old generation is gone and the
# new workers hold every stream (each one adopted).  ringcast-bench -m idle
# holds the streams (from 127.0.0.2... so the ephemeral ports suffice); the
# /metrics of the admin listener is polled every 10 ms or so.  Each reload
# leaves one RESULT line, with the load average of the (shared) machine.
# The fd limit is 20,000 a process: give each worker fewer streams than
# that (--workers), twice over, as a new worker may take an old one's.
#
# With --upgrade, one binary upgrade (SIGUSR2) follows the reloads: from
# the signal until the old master is gone and the new master's workers
# hold every stream (the shared tables carry the counters across).
#
# usage: reload-bench.sh [--builddir DIR] [--workers N] [--procs N]
#                        [--reloads N] [--upgrade] STREAMS
set -eu

builddir=$(pwd)
workers=4
procs=
reloads=3
upgrade=0
while [ $# -gt 1 ]; do
	case $1 in
	--upgrade) upgrade=1; shift ;;
	--builddir) builddir=$2; shift 2 ;;
	--workers) workers=$2; shift 2 ;;
	--procs) procs=$2; shift 2 ;;
	--reloads) reloads=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--builddir DIR] [--workers N] [--procs N] [--reloads N] [--upgrade] STREAMS" >&2; exit 2; }
streams=$1
[ -n "$procs" ] || procs=$((streams / 10000 + 1))

RINGCASTD=$builddir/ringcastd
BENCH=$builddir/contrib/bench/ringcast-bench
RUN=$builddir/bench-run/reload
RC_PORT=${RC_PORT:-18280}
RC_ADMIN=${RC_ADMIN:-18281}
SERVER_PID=
BENCH_PID=

now_ms() {
	date +%s%3N
}

metric() {	# name: the sum over its series, from the last fetch
	awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 }
	    END { printf "%d\n", s }' "$RUN/metrics"
}

running() {	# pid: alive and not a zombie
	[ -r "/proc/$1/stat" ] && ! grep -q ') Z ' "/proc/$1/stat"
}

fetch() {
	curl -s -m 2 -o "$RUN/metrics" "http://127.0.0.1:$RC_ADMIN/metrics"
}

stop_all() {
	for p in $BENCH_PID $SERVER_PID; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $BENCH_PID $SERVER_PID; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	BENCH_PID=''
	SERVER_PID=''
}
trap 'stop_all' EXIT
trap 'stop_all; exit 130' INT TERM

rm -rf "$RUN"
mkdir -p "$RUN"
cat > "$RUN/ringcast.conf" <<EOF
[server]
listen = 127.0.0.1:$RC_PORT
admin_listen = 127.0.0.1:$RC_ADMIN
workers = $workers
pidfile = $RUN/ringcastd.pid
drain_timeout = 10s
reload_spread = 1s
[ring]
path = $RUN/ring
size = 64M
slots = 262144
[catalog]
path = $RUN/catalog
map_size = 64M
auto_create_topics = yes
[publish]
require_token = no
[stream]
heartbeat = 60s
[limits]
max_connections = 0
header_timeout = 30s
[log]
target = $RUN/ringcastd.log
level = info
EOF
"$RINGCASTD" -d -f "$RUN/ringcast.conf" >/dev/null 2>>"$RUN/stderr" &
SERVER_PID=$!
i=0
until fetch; do
	i=$((i + 1))
	[ $i -lt 100 ] && kill -0 $SERVER_PID 2>/dev/null ||
	    { echo "ringcastd did not start" >&2; cat "$RUN/stderr" >&2; exit 1; }
	sleep 0.1
done

"$BENCH" -m idle -p "$RC_PORT" -a "$RC_ADMIN" -n "$streams" -P "$procs" -e 1 \
    -H 600 -T 900 -R "$RUN/held" >"$RUN/bench.out" 2>"$RUN/bench.err" &
BENCH_PID=$!
i=0
until [ -e "$RUN/held" ]; do
	i=$((i + 1))
	[ $i -lt 3000 ] && kill -0 $BENCH_PID 2>/dev/null ||
	    { echo "the streams were not held" >&2; cat "$RUN/bench.err" >&2; exit 1; }
	sleep 0.1
done

for n in $(seq 1 "$reloads"); do
	fetch
	handed0=$(metric ringcast_streams_handed_total)
	fallback0=$(metric ringcast_handoff_fallbacks_total)
	t0=$(now_ms)
	kill -HUP $SERVER_PID
	until fetch && [ "$(metric ringcast_streams_handed_total)" -ge \
	    $((handed0 + streams)) ] &&
	    [ "$(grep -c '^ringcast_connections{.*kind="stream"' "$RUN/metrics")" \
	    -eq "$workers" ] &&
	    [ "$(metric ringcast_connections | tail -1)" -ge "$streams" ]; do
		[ $(($(now_ms) - t0)) -lt 30000 ] ||
		    { echo "reload $n: not done in 30 s" >&2; break; }
	done
	t1=$(now_ms)
	fetch
	echo "RESULT mode=reload streams=$streams workers=$workers" \
	    "reload_ms=$((t1 - t0))" \
	    "handed=$(($(metric ringcast_streams_handed_total) - handed0))" \
	    "fallbacks=$(($(metric ringcast_handoff_fallbacks_total) - fallback0))" \
	    "load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)"
	sleep 2
done

if [ "$upgrade" -eq 1 ]; then
	fetch
	handed0=$(metric ringcast_streams_handed_total)
	fallback0=$(metric ringcast_handoff_fallbacks_total)
	t0=$(now_ms)
	kill -USR2 $SERVER_PID
	until ! running $SERVER_PID && fetch &&
	    [ "$(metric ringcast_streams_handed_total)" -ge \
	    $((handed0 + streams)) ] &&
	    [ "$(metric ringcast_connections | tail -1)" -ge "$streams" ]; do
		[ $(($(now_ms) - t0)) -lt 60000 ] ||
		    { echo "upgrade: not done in 60 s" >&2; break; }
		sleep 0.01
	done
	t1=$(now_ms)
	fetch
	echo "RESULT mode=upgrade streams=$streams workers=$workers" \
	    "upgrade_ms=$((t1 - t0))" \
	    "handed=$(($(metric ringcast_streams_handed_total) - handed0))" \
	    "fallbacks=$(($(metric ringcast_handoff_fallbacks_total) - fallback0))" \
	    "load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)"
	# The new master is not our child: stop_all stops it by the pid it
	# wrote.
	wait "$SERVER_PID" 2>/dev/null || true
	NEW_PID=$(cat "$RUN/ringcastd.pid" 2>/dev/null || true)
	[ -n "$NEW_PID" ] && SERVER_PID=$NEW_PID
fi
