#!/bin/sh
# run-bench.sh: the fixed benchmark suite of doc/BENCHMARKS.md.  Each case
# gets a fresh server (ringcastd, and nginx + nchan with --nchan or when the
# module is installed) on loopback ports, is run by ringcast-bench under a
# hard time bound, and leaves one RESULT line; bench-report.py turns them
# into doc/BENCHMARKS.md.  The write floor (write-floor) is measured once,
# before the servers.  Scratch files go to $builddir/bench-run.
# --cases a,b runs only those cases (a smoke test with --quick).
#
# usage: run-bench.sh [--builddir DIR] [--srcdir DIR] [--nchan|--no-nchan]
#                     [--quick] [--cases LIST] [--out FILE]
set -eu

builddir=$(pwd)
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
nchan=auto
quick=0
cases=
out=
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) builddir=$2; shift 2 ;;
	--srcdir) srcdir=$2; shift 2 ;;
	--nchan) nchan=yes; shift ;;
	--no-nchan) nchan=no; shift ;;
	--quick) quick=1; shift ;;
	--cases) cases=,$2,; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: $0 [--builddir DIR] [--srcdir DIR] [--nchan|--no-nchan] [--quick] [--cases LIST] [--out FILE]" >&2; exit 2 ;;
	esac
done
[ -n "$out" ] || out=$srcdir/doc/BENCHMARKS.md

RINGCASTD=$builddir/ringcastd
BENCH=$builddir/contrib/bench/ringcast-bench
WRITE_FLOOR=$builddir/contrib/bench/write-floor
NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
RUN=$builddir/bench-run
RESULTS=$RUN/results.txt
RC_PORT=${RC_PORT:-18180}
RC_ADMIN=${RC_ADMIN:-18181}
NX_PORT=${NX_PORT:-18190}

if [ "$nchan" = auto ]; then
	if command -v nginx >/dev/null && [ -f $NCHAN_MODULE ]; then
		nchan=yes
	else
		nchan=no
	fi
fi
if [ "$nchan" = yes ] && ! [ -f $NCHAN_MODULE ] && [ "$(id -u)" -eq 0 ]; then
	echo "installing nginx and nchan (Debian packages) for the comparison" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light \
	    libnginx-mod-nchan >/dev/null 2>&1 || {
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		    nginx-light libnginx-mod-nchan >/dev/null
	}
fi
if [ "$nchan" = yes ] && ! [ -f $NCHAN_MODULE ]; then
	echo "nchan is not installed: apt-get install -y nginx-light libnginx-mod-nchan" >&2
	exit 1
fi
[ -x "$RINGCASTD" ] && [ -x "$BENCH" ] && [ -x "$WRITE_FLOOR" ] ||
    { echo "build first: make" >&2; exit 1; }

rm -rf "$RUN"
mkdir -p "$RUN"
: > "$RESULTS"
SERVER_PID=

# The master and its workers, comma-separated.
server_pids() {
	kids=$(cat /proc/$1/task/$1/children 2>/dev/null | tr ' ' '\n' |
	    grep . | paste -sd, -)
	echo "$1${kids:+,$kids}"
}

wait_port() {	# port pid [workers]
	i=0
	while [ $i -lt 100 ]; do
		kill -0 "$2" 2>/dev/null || return 1
		if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" &&
		    [ "$(cat /proc/$2/task/$2/children 2>/dev/null | wc -w)" -ge "$3" ]; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

start_ringcast() {	# workers
	d=$RUN/ringcast
	rm -rf "$d"
	mkdir -p "$d"
	cat > "$d/ringcast.conf" <<EOF
[server]
listen = 127.0.0.1:$RC_PORT
admin_listen = 127.0.0.1:$RC_ADMIN
workers = $1
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
[log]
target = $d/ringcastd.log
level = info
EOF
	"$RINGCASTD" -d -f "$d/ringcast.conf" >/dev/null 2>>"$d/stderr" &
	SERVER_PID=$!
	wait_port $RC_PORT $SERVER_PID "$1" ||
	    { echo "ringcastd did not start:" >&2; cat "$d/stderr" "$d/ringcastd.log" >&2; exit 1; }
	PORT=$RC_PORT
	FLAVOUR=ringcast
}

start_nchan() {	# workers
	d=$RUN/nchan
	rm -rf "$d"
	mkdir -p "$d/tmp"
	sed -e "s|@PREFIX@|$d|g; s|@PORT@|$NX_PORT|; s|@WORKERS@|$1|" \
	    "$srcdir/contrib/bench/nchan.conf.in" > "$d/nginx.conf"
	nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >/dev/null 2>&1 &
	SERVER_PID=$!
	wait_port $NX_PORT $SERVER_PID "$1" ||
	    { echo "nginx did not start:" >&2; cat "$d/error.log" >&2; exit 1; }
	PORT=$NX_PORT
	FLAVOUR=nchan
}

stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	i=0
	while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

wanted() {	# name
	[ -z "$cases" ] || case $cases in *,$1,*) ;; *) false ;; esac
}

# run_case NAME FLAVOUR WORKERS BOUND ringcast-bench-args...
run_case() {
	name=$1 flavour=$2 workers=$3 bound=$4
	shift 4
	wanted "$name" || return 0
	case $flavour in
	ringcast) start_ringcast "$workers"; extra="-a $RC_ADMIN" ;;
	nchan) start_nchan "$workers"; extra= ;;
	esac
	pids=$(server_pids $SERVER_PID)
	echo "== $name ($flavour, $workers workers): ringcast-bench $*" >&2
	# shellcheck disable=SC2086
	line=$(timeout $((bound + 60)) "$BENCH" -S "$flavour" -p "$PORT" $extra \
	    -k "$pids" -T "$bound" "$@" 2>"$RUN/$name-$flavour.err" |
	    grep '^RESULT' || true)
	[ -n "$line" ] || line="RESULT mode=none error=no-result"
	echo "$line" >&2
	echo "CASE name=$name flavour=$flavour workers=$workers $line" >> "$RESULTS"
	stop_server
}

# The CPU time of one lone write(2) to a loopback TCP peer, the floor the
# servers' CPU per delivery is set against.
write_floor() {	# write-floor-args...
	wanted write-floor || return 0
	echo "== write-floor: write-floor $*" >&2
	line=$(timeout 120 "$WRITE_FLOOR" -T 60 "$@" 2>"$RUN/write-floor.err" |
	    grep '^RESULT' || true)
	[ -n "$line" ] || line="RESULT mode=none error=no-result"
	echo "$line" >&2
	echo "CASE name=write-floor flavour=host workers=0 $line" >> "$RESULTS"
}

# The long bounds (-T) are for nchan, which publishes ~2,400/s to many
# topics and takes minutes to refuse 150,000 subscribers.
suite() {	# flavour
	f=$1
	if [ $quick = 1 ]; then
		run_case idle $f 2 60 -m idle -n 1000 -P 2 -e 1
		run_case fanout-1k $f 2 60 -m fanout -n 200 -e 200 -P 4 -d 64
		run_case fanout-10k $f 2 60 -m fanout -n 1000 -e 20 -P 4 -d 64
		run_case latency $f 2 60 -m latency -n 100 -r 200 -e 400 -P 2
		run_case latency-50 $f 2 60 -m latency -n 100 -r 50 -e 100 -P 2
		run_case latency-20 $f 2 60 -m latency -n 100 -r 20 -e 40 -P 2
		run_case topics-paced $f 2 60 -m topics -n 200 -N 20 -e 2000 -r 1000 -P 2
		run_case topics-max $f 2 60 -m topics -n 200 -N 20 -e 2000 -P 2
		run_case replay $f 2 60 -m replay -e 5000 -d 64
		run_case publish $f 2 60 -m publish -e 5000
		run_case batch $f 2 60 -m batch -e 10000 -b 1000
		run_case maxsubs $f 8 120 -m idle -n 5000 -P 5 -e 1
		return
	fi
	run_case idle $f 2 180 -m idle -n 10000 -P 2 -e 1
	run_case fanout-1k $f 2 240 -m fanout -n 1000 -e 2000 -P 4 -d 64
	run_case fanout-10k $f 2 240 -m fanout -n 10000 -e 200 -P 4 -d 64
	run_case latency $f 2 120 -m latency -n 1000 -r 200 -e 2000 -P 2
	run_case latency-50 $f 2 120 -m latency -n 1000 -r 50 -e 1000 -P 2
	run_case latency-20 $f 2 120 -m latency -n 1000 -r 20 -e 300 -P 2
	run_case topics-paced $f 2 240 -m topics -n 30000 -N 3000 -e 48000 -r 8000 -P 4
	run_case topics-max $f 2 240 -m topics -n 30000 -N 3000 -e 48000 -P 4
	run_case replay $f 2 240 -m replay -e 100000 -d 64
	run_case publish $f 2 120 -m publish -e 50000
	run_case batch $f 2 120 -m batch -e 200000 -b 1000
	run_case maxsubs $f 8 400 -m idle -n 150000 -P 10 -e 1 -g 60
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
if [ $quick = 1 ]; then
	write_floor -n 5000
else
	write_floor -n 50000
fi
suite ringcast
[ "$nchan" = yes ] && suite nchan
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
{
	echo "DATE $started"
	echo "LOAD before=$load_before after=$load_after"
	echo "HOST $(nproc) CPUs, $(uname -sr), $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo)"
	echo "NCHAN $( [ "$nchan" = yes ] && dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null; echo)"
	echo "NGINX $( [ "$nchan" = yes ] && nginx -v 2>&1 | sed 's/.*\///'; echo)"
	echo "COMMIT $(git -C "$srcdir" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "QUICK $quick"
} >> "$RESULTS"
/usr/bin/python3 "$srcdir/contrib/bench/bench-report.py" "$RESULTS" > "$out"
echo "wrote $out" >&2
