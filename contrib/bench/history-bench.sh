#!/bin/sh
# history-bench.sh: the per-topic history figures of issue #14 (not part of
# run-bench.sh's fixed suite): publish rate with history off and on, replay
# from history in events/s (a small ring, so most replayed events come
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

# The PSS (KiB) of the master and its children, summed: "total anon ring
# history" (anon: the heaps; ring and history: the mapped files' pages,
# page cache the kernel may reclaim).
server_pss() {
	for p in $(server_pids "$1" | tr , ' '); do
		cat /proc/$p/smaps 2>/dev/null
	done | awk '
	/^[0-9a-f]+-[0-9a-f]+ / { path = $6 }
	/^Pss:/ {
		total += $2
		if (path ~ /history\/data\.mdb$/) hist += $2
		else if (path ~ /\/ring$/) ring += $2
	}
	END { printf "%d %d %d\n", total, ring, hist }' | {
		read total ring hist
		anon=0
		for p in $(server_pids "$1" | tr , ' '); do
			kb=$(awk '/^Pss_Anon:/ { print $2 }' /proc/$p/smaps_rollup 2>/dev/null)
			anon=$((anon + ${kb:-0}))
		done
		echo "$total $anon $ring $hist"
	}
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
[limits]
max_event_bytes = 64K
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

# Alternated, as the machine may be shared: rounds of off, on.
round=0
while [ $round -lt "${ROUNDS:-3}" ]; do
	publish_rate off 0
	publish_rate on 1000000
	round=$((round + 1))
done

# Replay: a 4 MiB ring holds some 20,000 events of the 50,000 (fewer with
# -e larger); the rest come from history.  The archiver must stay within the
# ring while they are published as fast as they can be, or it says a gap.
start replay 4M 1000000 1G
"$BENCH" -m replay -p $RC_PORT -e "$events" -d 64 -t replay -T 120 \
    -k "$(server_pids $SERVER_PID)" | sed -n 's/^RESULT /RESULT source=history /p'
stop

# PSS with a large history: 4000-byte events until history_mb were stored.
start pss 64M 100000000 $((history_mb * 2))M
set -- $(server_pss $SERVER_PID)
before="pss_kib=$1 anon_kib=$2 ring_kib=$3 history_map_kib=$4"
echo "RESULT mode=history-pss when=before $before"
# A quarter, then all of it: the heaps must not grow between the two.
n=$((history_mb * 1024 * 1024 / 4000))
for part in quarter all; do
	k=$((n / 4))
	[ $part = all ] && k=$((n - n / 4))
	"$BENCH" -m publish -p $RC_PORT -e $k -s 4000 -d 16 -t big -T 600 >/dev/null
	wait_archived
	du=$(du -sk "$RUN/pss/catalog/history" | cut -f1)
	set -- $(server_pss $SERVER_PID)
	echo "RESULT mode=history-pss when=$part history_kib=$du pss_kib=$1 anon_kib=$2 ring_kib=$3 history_map_kib=$4"
done
# A replay of a slice of it from history maps what it reads, no more.
"$BENCH" -m replay -p $RC_PORT -e 20000 -s 4000 -d 16 -t big2 -T 300 |
    sed -n 's/^RESULT /RESULT source=history-4k /p'
set -- $(server_pss $SERVER_PID)
echo "RESULT mode=history-pss when=after-replay pss_kib=$1 anon_kib=$2 ring_kib=$3 history_map_kib=$4"
stop
