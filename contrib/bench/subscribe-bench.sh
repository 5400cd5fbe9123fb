#!/bin/sh
# subscribe-bench: new streams per second on one ringcastd, without a token
# (a public topic), with an opaque ringcastctl token, and with JWTs (HS256,
# RS256, ES256) on a private topic: the cost of verification on the connect
# path (issue #15).  A measurement, not a test.  Needs python3-jwt and
# openssl; everything lives in a temporary directory, on loopback.
#   contrib/bench/subscribe-bench.sh BUILDDIR [SECONDS] [CLIENT_PROCS]
set -eu
build=$(cd "${1:?usage: subscribe-bench.sh BUILDDIR [SECONDS] [PROCS]}" && pwd)
secs=${2:-5}
procs=${3:-2}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringcast-subbench.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
head -c 48 /dev/urandom | base64 | tr -d '\n' > "$tmp/secret"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.key" 2>/dev/null
openssl pkey -in "$tmp/rsa.key" -pubout -out "$tmp/rsa.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ec.key" 2>/dev/null
openssl pkey -in "$tmp/ec.key" -pubout -out "$tmp/ec.pem"
python3 - "$tmp" <<'EOF'
import json, sys
d = sys.argv[1]
json.dump({"hs": {"secret": open(f"{d}/secret").read(), "alg": "HS256"},
           "rs": {"pem_file": "rsa.pem"}, "es": {"pem_file": "ec.pem"}},
          open(f"{d}/keys.json", "w"))
EOF
cat > "$tmp/ringcast.conf" <<EOF
[server]
listen = 127.0.0.1:$port
admin_listen = 127.0.0.1:$admin
workers = 2
pidfile = $tmp/ringcastd.pid
[ring]
path = $tmp/ring
size = 8M
slots = 16384
[catalog]
path = $tmp/catalog
[limits]
header_timeout = 5s
[auth]
jwt_key_file = $tmp/keys.json
jwt_algorithms = HS256, RS256, ES256
[log]
target = $tmp/ringcastd.log
level = warn
EOF
ctl() { "$build/ringcastctl" -f "$tmp/ringcast.conf" "$@"; }
ctl topic add pub >/dev/null
ctl topic add priv --private >/dev/null
opaque=$(ctl token add --subscribe --topic priv 2>/dev/null |
    sed -n 's/^secret: //p')
tok() {
	python3 -c 'import jwt, sys, time
d, alg, kid, file = sys.argv[1:5]
print(jwt.encode({"exp": int(time.time()) + 3600,
    "ringcast": {"subscribe": ["priv"]}}, open(d + "/" + file).read(),
    algorithm=alg, headers={"kid": kid}))' "$tmp" "$1" "$2" "$3"
}
hs=$(tok HS256 hs secret)
rs=$(tok RS256 rs rsa.key)
es=$(tok ES256 es ec.key)

"$build/ringcastd" -d -f "$tmp/ringcast.conf" 2>>"$tmp/ringcastd.log" &
pid=$!
i=0
until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "ringcastd did not start" >&2; exit 1; }
	sleep 0.1
done

run() {
	name=$1
	shift
	printf '%-28s ' "$name"
	"$build/contrib/bench/subscribe-rate" -p "$port" -P "$procs" \
	    -d "$secs" "$@"
}
echo "subscribe-rate: $procs client processes, ${secs}s each, 2 workers ($(nproc) CPUs)"
run "public, no token" -u /events/pub
run "private, opaque token" -u /events/priv -H "Authorization: Bearer $opaque"
run "private, JWT HS256" -u /events/priv -H "Authorization: Bearer $hs"
run "private, JWT HS256 cookie" -u /events/priv -H "Cookie: ringcast_token=$hs"
run "private, JWT RS256" -u /events/priv -H "Authorization: Bearer $rs"
run "private, JWT ES256" -u /events/priv -H "Authorization: Bearer $es"
