#!/bin/sh
# history-bench.sh: the per-topic history figures of issue #14 (not part of
# run-bench.sh's fixed suite): publish rate with history off and on, replay
# from history in events/s (a 1 MiB ring, so every replayed event comes
# from history), and the PSS of the daemon's processes before and after
# HISTORY_MB of history was written (LMDB is mapped: it must not grow with
# history).  Each case gets a fresh ringcastd on loopback; RESULT lines go
# to stdout.  Scratch files go to $builddir/history-bench-run.
#
# usage: history-bench.sh [--builddir DIR] [--events N] [--history-mb MB]
set -eu

builddir=$(pwd)
events=50000
history_mb=256
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) builddir=$2; shift 2 ;;
	--events) events=$2; shift 2 ;;
	--history-mb) history_mb=$2; shift 2 ;;
	*) echo "usage: $0 [--builddir DIR] [--events N] [--history-mb MB]" >&2; exit 2 ;;
	esac
done

RINGCASTD=$builddir/ringcastd
BENCH=$builddir/contrib/bench/ringcast-bench
RUN=$builddir/history-bench-run
RC_PORT=${RC_PORT:-18280}
RC_ADMIN=${RC_ADMIN:-18281}
[ -x "$RINGCASTD" ] && [ -x "$BENCH" ] || { echo "build first: make" >&2; exit 1; }
rm -rf "$RUN"
mkdir -p "$RUN"
SERVER_PID=

server_pids() {
	kids=$(cat /proc/$1/task/$1/children 2>/dev/null | tr ' ' '\n' |
	    grep . | paste -sd, -)
	echo "$1${kids:+,$kids}"
}

# The summed PSS (KiB) of the master and its children.
server_pss() {
	total=0
	for p in $(server_pids "$1" | tr , ' '); do
		kb=$(awk '/^Pss:/ { print $2 }' /proc/$p/smaps_rollup 2>/dev/null || echo 0)
		total=$((total + ${kb:-0}))
	done
	echo $total
}

metric() {	# name
	curl -s "http://127.0.0.1:$RC_ADMIN/metrics" |
	    awk -v n="$1" '$1 == n { printf "%d\n", $2 }'
}

start() {	# name ring_size keep map_size
	d=$RUN/$1
	mkdir -p "$d"
	cat > "$d/ringcast.conf" <<EOF
[server]
listen = 127.0.0.1:$RC_PORT
admin_listen = 127.0.0.1:$RC_ADMIN
workers = 1
pidfile = $d/ringcastd.pid
drain_timeout = 5s
[ring]
path = $d/ring
size = $2
slots = 262144
[catalog]
path = $d/catalog
auto_create_topics = yes
[history]
keep = $3
map_size = $4
[publish]
require_token = no
[stream]
heartbeat = 60s
[log]
target = $d/ringcastd.log
level = info
EOF
	"$RINGCASTD" -d -f "$d/ringcast.conf" >/dev/null 2>>"$d/stderr" &
	SERVER_PID=$!
	i=0
	until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$RC_PORT/healthz"; do
		i=$((i + 1))
		[ $i -lt 100 ] && kill -0 $SERVER_PID 2>/dev/null ||
		    { echo "ringcastd did not start" >&2; cat "$d/stderr" >&2; exit 1; }
		sleep 0.1
	done
}

stop() {
	kill -TERM $SERVER_PID 2>/dev/null || true
	wait $SERVER_PID 2>/dev/null || true
}

# Until the archiver has looked at everything (bounded).
wait_archived() {
	i=0
	while [ $i -lt 600 ]; do
		lag=$(metric ringcast_history_lag_events)
		[ "${lag:-1}" -eq 0 ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "archiver lag still $lag" >&2
}

publish_rate() {	# label keep
	start "publish-$1" 64M "$2" 1G
	"$BENCH" -m publish -p $RC_PORT -e "$events" -t "pub$1" -T 120 \
	    -k "$(server_pids $SERVER_PID)" | sed -n "s/^RESULT /RESULT history=$1 /p"
	stop
}

publish_rate off 0
publish_rate on 1000000

# Replay: a 1 MiB ring holds a few thousand events; the rest are history.
start replay 1M 1000000 1G
"$BENCH" -m replay -p $RC_PORT -e "$events" -d 64 -t replay -T 120 \
    -k "$(server_pids $SERVER_PID)" | sed -n 's/^RESULT /RESULT source=history /p'
stop

# PSS with a large history: 4000-byte events until history_mb were stored.
start pss 64M 100000000 $((history_mb * 2))M
pss0=$(server_pss $SERVER_PID)
n=$((history_mb * 1024 * 1024 / 4000))
"$BENCH" -m publish -p $RC_PORT -e $n -s 4000 -d 16 -t big -T 600 >/dev/null
wait_archived
pss1=$(server_pss $SERVER_PID)
du=$(du -sk "$RUN/pss/catalog/history" | cut -f1)
echo "RESULT mode=history-pss events=$n history_kib=$du pss_before_kib=$pss0 pss_after_kib=$pss1"
stop
