#!/bin/sh
# cluster-bench.sh: the cluster figures of issue #16 (not part of
# run-bench.sh's fixed suite).  A 3-node nats-server JetStream cluster on
# loopback, two ringcastd nodes (A, B) on it, and, for the comparison, one
# single ringcastd with no [cluster], all on this machine in the same run.
# Per setup: publish on A, 1,000 subscribers on B, paced at 200 and 1,000
# events/s, and 100 subscribers at 200 events/s (latency p50/p99/max,
# missing/dup/reorder); publishes/s on one connection, one request at a
# time and 16 pipelined; batch publish; then both relays must have reached
# the stream's end.  Then the publish rates again with the stream at 1
# replica instead of 3 (a fresh NATS cluster).  Before the ringcast nodes
# start on a NATS cluster, js-floor measures JetStream alone from nats.c,
# the yardstick.
# Every case is bounded in time (ringcast-bench -T, timeout(1)); only the
# processes this script started are stopped, by PID.  RESULT lines go to
# $RUN/results.txt, a markdown report to stdout and --out FILE.  Scratch
# files go to $builddir/cluster-bench-run.
#
# usage: cluster-bench.sh [--builddir DIR] [--srcdir DIR] [--quick]
#                         [--setups LIST] [--out FILE]
# --setups: a comma-separated subset of single,cluster-r3,cluster-r1.
set -eu

builddir=$(pwd)
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
quick=0
setups=single,cluster-r3,cluster-r1
out=
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) builddir=$2; shift 2 ;;
	--srcdir) srcdir=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	--setups) setups=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: $0 [--builddir DIR] [--srcdir DIR] [--quick] [--setups LIST] [--out FILE]" >&2; exit 2 ;;
	esac
done

RINGCASTD=$builddir/ringcastd
RINGCASTCTL=$builddir/ringcastctl
BENCH=$builddir/contrib/bench/ringcast-bench
JSFLOOR=$builddir/contrib/bench/js-floor
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
RUN=$builddir/cluster-bench-run
RESULTS=$RUN/results.txt
# Ports: NATS clients P..P+2, routes P+10.., monitoring P+20..; ringcast
# A, B and the single node at P+30.., admin one above each.
P=${CB_PORT:-19400}
NATS_URLS="nats://127.0.0.1:$P,nats://127.0.0.1:$((P + 1)),nats://127.0.0.1:$((P + 2))"
A_PORT=$((P + 30))
B_PORT=$((P + 32))
S_PORT=$((P + 34))

[ -x "$RINGCASTD" ] && [ -x "$BENCH" ] && [ -x "$RINGCASTCTL" ] &&
    [ -x "$JSFLOOR" ] ||
    { echo "build first: make" >&2; exit 1; }
[ -x "$NATS_SERVER" ] || { echo "no nats-server (apt-get install nats-server)" >&2; exit 1; }
rm -rf "$RUN"
mkdir -p "$RUN"
: > "$RESULTS"
NATS_PIDS=
RC_PIDS=

say() {
	echo "cluster-bench: $*" >&2
}

# Stop PIDS (ours), TERM then KILL after 10 s.
stop_pids() {	# pid...
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "$@"; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

stop_all() {
	# shellcheck disable=SC2086
	stop_pids $RC_PIDS
	RC_PIDS=
	# shellcheck disable=SC2086
	stop_pids $NATS_PIDS
	NATS_PIDS=
}
trap 'stop_all' EXIT
trap 'stop_all; exit 130' INT TERM

# The master and its children, comma-separated.
server_pids() {	# pid
	kids=$(cat /proc/$1/task/$1/children 2>/dev/null | tr ' ' '\n' |
	    grep . | paste -sd, -)
	echo "$1${kids:+,$kids}"
}

# Three nats-server processes, one JetStream cluster, fresh store dirs;
# returns once every node sees a meta leader (bounded: 30 s).
start_nats() {	# dir
	d=$1
	for n in 0 1 2; do
		mkdir -p "$d/n$n"
		routes=
		for m in 0 1 2; do
			[ $m -eq $n ] ||
			    routes="$routes nats-route://127.0.0.1:$((P + 10 + m))"
		done
		cat > "$d/n$n.conf" <<EOF
server_name: rcb$n
listen: 127.0.0.1:$((P + n))
http: 127.0.0.1:$((P + 20 + n))
jetstream {
	store_dir: "$d/n$n"
	max_memory_store: 64MB
	max_file_store: 2GB
}
cluster {
	name: rcbench
	listen: 127.0.0.1:$((P + 10 + n))
	routes: [$(echo $routes | sed 's/ /, /g')]
}
EOF
		"$NATS_SERVER" -c "$d/n$n.conf" -l "$d/n$n.log" &
		NATS_PIDS="$NATS_PIDS $!"
	done
	until=$(($(date +%s) + 30))
	while [ "$(date +%s)" -lt $until ]; do
		ok=0
		for n in 0 1 2; do
			curl -s --max-time 1 "http://127.0.0.1:$((P + 20 + n))/jsz" |
			    grep -q '"leader": *"rcb' && ok=$((ok + 1))
		done
		[ $ok -eq 3 ] && return 0
		for p in $NATS_PIDS; do
			kill -0 "$p" 2>/dev/null ||
			    { say "nats-server $p died"; cat "$d"/n*.log >&2; exit 1; }
		done
		sleep 0.1
	done
	say "no JetStream meta leader after 30 s"
	tail -20 "$d"/n*.log >&2
	exit 1
}

# A ringcastd with 2 workers; NATS "" is a single node.  Sets NODE_PID.
start_node() {	# name port nats replicas
	d=$RUN/$1
	rm -rf "$d"
	mkdir -p "$d"
	cat > "$d/ringcast.conf" <<EOF
[server]
listen = 127.0.0.1:$2
admin_listen = 127.0.0.1:$(($2 + 1))
workers = 2
pidfile = $d/ringcastd.pid
drain_timeout = 5s
[ring]
path = $d/ring
size = 256M
slots = 1048576
[catalog]
path = $d/catalog
map_size = 64M
auto_create_topics = yes
[publish]
require_token = no
[stream]
heartbeat = 60s
[limits]
max_connections = 0
header_timeout = 30s
[cluster]
nats = $3
replicas = $4
[log]
target = $d/ringcastd.log
level = info
EOF
	# In a cluster the first node's topic add reaches the catalog
	# bucket; the second node pulls them from there.
	for t in lat200 lat200s lat1000 pub batch; do
		"$RINGCASTCTL" -f "$d/ringcast.conf" topic add "$t" \
		    >/dev/null 2>&1 ||
		    "$RINGCASTCTL" -f "$d/ringcast.conf" topic show "$t" \
		    >/dev/null 2>&1 ||
		    "$RINGCASTCTL" -f "$d/ringcast.conf" cluster sync --once \
		    >/dev/null
	done
	"$RINGCASTD" -d -f "$d/ringcast.conf" >/dev/null 2>>"$d/stderr" &
	NODE_PID=$!
	RC_PIDS="$RC_PIDS $NODE_PID"
	# Up: 2 workers, /healthz 200 and, in a cluster, the relay consuming.
	until=$(($(date +%s) + 30))
	while :; do
		[ "$(date +%s)" -lt $until ] && kill -0 $NODE_PID 2>/dev/null ||
		    { say "ringcastd $1 did not start"; cat "$d/stderr" "$d/ringcastd.log" >&2; exit 1; }
		sleep 0.1
		[ "$(cat /proc/$NODE_PID/task/$NODE_PID/children 2>/dev/null | wc -w)" -ge 2 ] ||
		    continue
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
		    "http://127.0.0.1:$2/healthz") || continue
		[ "$code" = 200 ] || continue
		[ -z "$3" ] && break
		curl -s --max-time 1 "http://127.0.0.1:$(($2 + 1))/metrics" |
		    grep -q '^ringcast_cluster_consuming 1' && break
	done
}

# The CPU time (utime + stime, clock ticks) of PIDS, summed.
cpu_ticks() {	# pid...
	for p in "$@"; do
		sed 's/.*) //' /proc/$p/stat 2>/dev/null || true
	done | awk '{ t += $12 + $13 } END { printf "%d\n", t }'
}

# run_case SETUP NAME BOUND ringcast-bench-args... (with -p/-q, -k); the
# CPU of the ringcast processes and of the nats-servers is noted apart.
run_case() {
	setup=$1 name=$2 bound=$3
	shift 3
	say "== $setup $name: ringcast-bench $*"
	# shellcheck disable=SC2086
	rc0=$(cpu_ticks $RC_ALL) nats0=$(cpu_ticks $NATS_PIDS)
	# shellcheck disable=SC2086
	line=$(timeout $((bound + 60)) "$BENCH" -T "$bound" "$@" \
	    2>"$RUN/$setup-$name.err" | grep '^RESULT' || true)
	# shellcheck disable=SC2086
	rc1=$(cpu_ticks $RC_ALL) nats1=$(cpu_ticks $NATS_PIDS)
	[ -n "$line" ] || line="RESULT mode=none error=no-result"
	tck=$(getconf CLK_TCK)
	line="$line rc_cpu_ms=$(((rc1 - rc0) * 1000 / tck)) nats_cpu_ms=$(((nats1 - nats0) * 1000 / tck))"
	say "$line"
	echo "CASE setup=$setup name=$name $line" >> "$RESULTS"
}

if [ $quick = 1 ]; then
	LAT200="-n 100 -P 2 -r 200 -e 400"
	LAT200S="-n 10 -P 1 -r 200 -e 400"
	LAT1000="-n 100 -P 2 -r 1000 -e 2000"
	PUB="-e 2000"
	JSN=2000
	BATCH="-e 20000 -b 1000"
else
	LAT200="-n 1000 -P 2 -r 200 -e 2000"
	LAT200S="-n 100 -P 2 -r 200 -e 2000"
	LAT1000="-n 1000 -P 2 -r 1000 -e 10000"
	PUB="-e 20000"
	JSN=20000
	BATCH="-e 200000 -b 1000"
fi

# The measurements on one setup: publish on port $2, subscribe on $3.
suite() {	# setup pub_port sub_port ringcast-pids publish-only
	s=$1 q=$2 p=$3
	RC_ALL=$(echo "$4" | tr , ' ')
	# ringcast-bench's CPU figures count the nats-servers too.
	k=$4${NATS_PIDS:+,$(echo $NATS_PIDS | tr ' ' ,)}
	if [ "$5" = no ]; then
		# shellcheck disable=SC2086
		run_case "$s" latency-200 120 -m latency -p "$p" -q "$q" -k "$k" \
		    -t lat200 $LAT200
		# The hop alone: few subscribers, so fan-out does not dominate.
		# shellcheck disable=SC2086
		run_case "$s" latency-200-100 120 -m latency -p "$p" -q "$q" \
		    -k "$k" -t lat200s $LAT200S
		# shellcheck disable=SC2086
		run_case "$s" latency-1000 120 -m latency -p "$p" -q "$q" -k "$k" \
		    -t lat1000 $LAT1000
	fi
	# shellcheck disable=SC2086
	run_case "$s" publish 120 -m publish -p "$q" -k "$k" -t pub $PUB
	# shellcheck disable=SC2086
	run_case "$s" publish-d16 120 -m publish -d 16 -p "$q" -k "$k" -t pub $PUB
	# shellcheck disable=SC2086
	run_case "$s" batch 120 -m batch -p "$q" -k "$k" -t batch $BATCH
}

# A ringcast metric on an admin port, summed over its labels.
metric() {	# admin_port name
	curl -s --max-time 2 "http://127.0.0.1:$1/metrics" |
	    awk -v n="$2" '$1 == n || index($1, n "{") == 1 { t += $2; f = 1 }
	    END { if (f) printf "%d\n", t; else print "none" }'
}

# After the cases: both relays must reach the stream's last sequence
# (bounded: 60 s); their counters of gaps, duplicates, disconnects and
# restarts, and A's refused publishes, go into one RELAY line.
relay_check() {	# setup
	t0=$(date +%s)
	until=$((t0 + 60))
	while :; do
		sa=$(metric $((A_PORT + 1)) ringcast_cluster_stream_last_id)
		la=$(metric $((A_PORT + 1)) ringcast_cluster_last_id)
		lb=$(metric $((B_PORT + 1)) ringcast_cluster_last_id)
		[ "$la" = "$sa" ] && [ "$lb" = "$sa" ] && break
		[ "$(date +%s)" -lt $until ] || break
		sleep 0.2
	done
	line="RELAY stream_last=$sa a_last=$la b_last=$lb wait_s=$(($(date +%s) - t0))"
	for m in gaps_total duplicates_total disconnects_total \
	    relay_restarts_total unknown_topics_total; do
		line="$line a_$m=$(metric $((A_PORT + 1)) ringcast_cluster_$m)"
		line="$line b_$m=$(metric $((B_PORT + 1)) ringcast_cluster_$m)"
	done
	line="$line a_refused=$(metric $((A_PORT + 1)) ringcast_cluster_publish_refused_total)"
	say "$line"
	echo "CASE setup=$1 name=relay $line" >> "$RESULTS"
}

wanted() {	# setup
	case ,$setups, in *,$1,*) ;; *) false ;; esac
}

# A cluster: NATS, then A and B on it; the benchmark; all stopped.
cluster_setup() {	# name replicas publish-only
	say "starting a 3-node JetStream cluster ($1)"
	start_nats "$RUN/nats-$1"
	# JetStream alone first, from nats.c, on the idle cluster.
	say "== $1 js-floor: js-floor -n $JSN -r $2 $NATS_URLS"
	timeout 180 "$JSFLOOR" -n "$JSN" -r "$2" -T 60 "$NATS_URLS" \
	    2>"$RUN/$1-js-floor.err" | grep '^RESULT' | while read -r line; do
		say "$line"
		m=$(echo "$line" | sed 's/.*mode=\([^ ]*\).*/\1/')
		echo "CASE setup=$1 name=$m $line" >> "$RESULTS"
	done
	start_node "$1-a" $A_PORT "$NATS_URLS" "$2"
	a=$NODE_PID
	start_node "$1-b" $B_PORT "$NATS_URLS" "$2"
	b=$NODE_PID
	suite "$1" $A_PORT $B_PORT "$(server_pids $a),$(server_pids $b)" "$3"
	relay_check "$1"
	stop_all
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

if wanted single; then
	say "single node, no [cluster]"
	start_node single $S_PORT "" 1
	suite single $S_PORT $S_PORT "$(server_pids $NODE_PID)" no
	stop_all
fi
wanted cluster-r3 && cluster_setup cluster-r3 3 no
wanted cluster-r1 && cluster_setup cluster-r1 1 yes

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
{
	echo "DATE $started"
	echo "LOAD before=$load_before after=$load_after"
	echo "HOST $(nproc) CPUs, $(uname -sr)"
	echo "NATS $("$NATS_SERVER" --version 2>&1 | head -1)"
	echo "COMMIT $(git -C "$srcdir" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "QUICK $quick"
} >> "$RESULTS"
report=$(/usr/bin/python3 "$srcdir/contrib/bench/cluster-report.py" "$RESULTS")
echo "$report"
[ -z "$out" ] || { echo "$report" > "$out"; say "wrote $out"; }
