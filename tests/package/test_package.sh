#!/bin/sh
# The Debian package end to end, as an operator would use it: build the
# .deb from contrib/debian, dpkg -i, service ringcastd start, a topic from
# ringcastctl, publish and subscribe with curl, reload (and a refused
# reload of a broken config), binary upgrade (service ringcastd upgrade, and
# dpkg -i again, whose postinst upgrades), stop, dpkg --purge.  Every step
# is asserted.
# The installed config is patched to free loopback ports before the start,
# so a service already on 8080/8081 is not disturbed.  Needs root, dpkg,
# debhelper; otherwise it says SKIP and why, and exits 77.
#   tests/package/test_package.sh [BUILT.deb]
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
CONF=/etc/ringcast/ringcast.conf
PIDFILE=/run/ringcast/ringcastd.pid

skip() { echo "SKIP: package test: $*"; exit 77; }
step() { printf 'package: %s ... ' "$*"; }
ok() { echo ok; }
fail() {
	echo "FAILED"
	echo "package test FAILED: $*" >&2
	[ -f "$work/sub.out" ] && { echo "--- subscriber:" >&2; cat "$work/sub.out" >&2; }
	exit 1
}

[ "$(id -u)" -eq 0 ] || skip "not root (dpkg -i needs root)"
for tool in dpkg-buildpackage dh fakeroot start-stop-daemon service curl \
    python3; do
	command -v "$tool" >/dev/null 2>&1 ||
	    skip "$tool is not installed (CHECK_PACKAGES in bootstrap)"
done
if dpkg-query -W -f='${Status}' ringcastd 2>/dev/null | grep -q installed; then
	skip "a ringcastd package is already installed here; not touching it"
fi
[ -e "$CONF" ] && skip "$CONF exists (not from a package); not touching it"

work=$(mktemp -d /tmp/ringcast-pkgtest.XXXXXX)
installed=0
cleanup() {
	[ -n "${subpid:-}" ] && kill "$subpid" 2>/dev/null
	if [ $installed -eq 1 ]; then
		service ringcastd stop >/dev/null 2>&1
		dpkg --purge ringcastd >/dev/null 2>&1
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

T() { timeout "$@"; }

# alive PID: running (a zombie nobody reaped does not count).
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	[ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# -- build and install --------------------------------------------------------
deb=${1:-}
if [ -z "$deb" ]; then
	step "build the .deb (contrib/debian/build.sh)"
	T 600 "$top/contrib/debian/build.sh" "$work" >"$work/build.out" 2>&1 ||
	    { cat "$work/build.out" >&2; fail "dpkg-buildpackage"; }
	deb=$(grep 'ringcastd_.*\.deb$' "$work/build.out" | head -1)
	[ -f "$deb" ] || fail "no .deb built"
	ok
fi

step "dpkg -i $(basename "$deb")"
installed=1
T 120 dpkg -i "$deb" >"$work/dpkg.out" 2>&1 ||
    { cat "$work/dpkg.out" >&2; fail "dpkg -i"; }
[ -x /usr/sbin/ringcastd ] && [ -x /usr/sbin/ringcastctl ] &&
    [ -x /etc/init.d/ringcastd ] && [ -f "$CONF" ] ||
    fail "files missing after dpkg -i"
getent passwd ringcast >/dev/null || fail "no ringcast user"
[ "$(stat -c %U /var/lib/ringcast)" = ringcast ] ||
    fail "/var/lib/ringcast not owned by ringcast"
dpkg-query -W -f='${Conffiles}' ringcastd | grep -q "$CONF" ||
    fail "$CONF is not a conffile"
ok

# -- configure: free ports, a short drain -------------------------------------
port=$(free_port)
admin=$(free_port)
while [ "$admin" = "$port" ]; do admin=$(free_port); done
sed -i -e "s/^listen = .*/listen = 127.0.0.1:$port/" \
    -e "s/^admin_listen = .*/admin_listen = 127.0.0.1:$admin/" \
    -e "s/^workers = .*/workers = 2/" \
    -e "s/^drain_timeout = .*/drain_timeout = 3s/" \
    -e "s/^reload_spread = .*/reload_spread = 1s/" \
    -e "s/^require_token = .*/require_token = no/" \
    -e "s/^size = .*/size = 8M/" -e "s/^slots = .*/slots = 16384/" \
    -e "s/^retry = .*/retry = 1s/" "$CONF"
base=http://127.0.0.1:$port

step "ringcastd -n (service ringcastd configtest)"
T 10 service ringcastd configtest >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; fail "configtest"; }
ok

step "service ringcastd start"
T 30 service ringcastd start >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; fail "start"; }
[ -s "$PIDFILE" ] || fail "no pidfile $PIDFILE"
pid=$(cat "$PIDFILE")
alive "$pid" || fail "master $pid not running"
T 10 service ringcastd status >/dev/null 2>&1 || fail "status says not running"
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ]; do
	i=$((i + 1)); [ $i -lt 50 ] || fail "/healthz never 200"; sleep 0.1
done
# The workers and the archiver; each drops to the service user early in
# its set-up, so give a just-forked one a moment.
workers=$(cat "/proc/$pid/task/$pid/children")
[ -n "$workers" ] || fail "no workers"
for w in $workers; do
	i=0
	until [ "$(stat -c %U "/proc/$w" 2>/dev/null)" = ringcast ] ||
	    ! [ -d "/proc/$w" ]; do
		i=$((i + 1)); [ $i -lt 50 ] || fail "child $w not ringcast"
		sleep 0.1
	done
done
[ "$(stat -c %U /var/lib/ringcast/ring)" = ringcast ] || fail "ring owner"
ok

# -- a topic, publish, subscribe ----------------------------------------------
step "ringcastctl topic add pkgtest"
T 10 ringcastctl topic add pkgtest >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; fail "topic add"; }
ok

step "curl: subscribe, publish, receive"
T 30 curl -sN "$base/events/pkgtest" >"$work/sub.out" 2>&1 &
subpid=$!
sleep 0.5
code=$(T 10 curl -s -o "$work/pub.out" -w '%{http_code}' -X POST \
    --data 'hello from the package' "$base/publish/pkgtest")
[ "$code" = 201 ] || fail "publish: HTTP $code: $(cat "$work/pub.out")"
id=$(sed -n 's/.*"id":"\([0-9]*\)".*/\1/p' "$work/pub.out")
[ -n "$id" ] || fail "publish: no id in $(cat "$work/pub.out")"
i=0
until grep -q 'data: hello from the package' "$work/sub.out"; do
	i=$((i + 1)); [ $i -lt 50 ] || fail "subscriber never got the event"
	sleep 0.1
done
grep -q "^id: $id\$" "$work/sub.out" || fail "subscriber: no id: $id"
ok

# -- reload ------------------------------------------------------------------
step "service ringcastd reload"
T 30 service ringcastd reload >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; fail "reload"; }
[ "$(cat "$PIDFILE")" = "$pid" ] || fail "reload replaced the master"
# The old generation retires (reload_spread 1s): the curl stream ends
# cleanly, and a client that resumes from $id misses nothing.
wait "$subpid" 2>/dev/null
subpid=
grep -q '^retry: ' "$work/sub.out" || fail "stream did not end with retry:"
code=$(T 10 curl -s -o /dev/null -w '%{http_code}' -X POST \
    --data 'after the reload' "$base/publish/pkgtest")
[ "$code" = 201 ] || fail "publish after reload: HTTP $code"
T 5 curl -sN --max-time 2 -H "Last-Event-ID: $id" "$base/events/pkgtest" \
    >"$work/resume.out" 2>&1
grep -q 'data: after the reload' "$work/resume.out" ||
    fail "resume after reload: $(cat "$work/resume.out")"
ok

step "service ringcastd reload with a broken config is refused"
cp "$CONF" "$work/good.conf"
printf '[stream]\nretry = whenever\n' >>"$CONF"
if T 30 service ringcastd reload >"$work/out" 2>&1; then
	fail "reload of a broken config succeeded"
fi
grep -q 'retry' "$work/out" || fail "reload did not say why: $(cat "$work/out")"
cp "$work/good.conf" "$CONF"
[ "$(cat "$PIDFILE")" = "$pid" ] && alive "$pid" ||
    fail "the service did not keep running"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] ||
    fail "not serving after a refused reload"
ok

# -- binary upgrade ------------------------------------------------------------
# upgrade pid: the master changes, the old one is gone, and a stream opened
# before it is still served (no reconnect: the same curl gets the event).
upgrade_check() {
	new=$(cat "$PIDFILE" 2>/dev/null)
	[ -n "$new" ] && [ "$new" != "$1" ] || fail "the master did not change"
	alive "$new" || fail "new master $new not running"
	alive "$1" && fail "old master $1 still running"
	code=$(T 10 curl -s -o /dev/null -w '%{http_code}' -X POST \
	    --data "after $2" "$base/publish/pkgtest")
	[ "$code" = 201 ] || fail "publish after $2: HTTP $code"
	i=0
	while [ $i -lt 50 ] && ! grep -q "data: after $2" "$work/up.out"; do
		sleep 0.1; i=$((i + 1))
	done
	grep -q "data: after $2" "$work/up.out" ||
	    fail "stream lost across $2: $(cat "$work/up.out")"
	pid=$new
}

step "service ringcastd upgrade"
T 60 curl -sN "$base/events/pkgtest" >"$work/up.out" 2>&1 &
subpid=$!
sleep 0.5
T 60 service ringcastd upgrade >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; fail "upgrade"; }
upgrade_check "$pid" "the upgrade"
ok

step "dpkg -i again: the postinst upgrades the running daemon"
T 120 dpkg -i "$deb" >"$work/dpkg.out" 2>&1 ||
    { cat "$work/dpkg.out" >&2; fail "dpkg -i again"; }
# A policy-rc.d that forbids actions (as in containers) is obeyed: the
# postinst says so and leaves the daemon as it was.
if [ -x /usr/sbin/policy-rc.d ] &&
    ! /usr/sbin/policy-rc.d ringcastd upgrade >/dev/null 2>&1; then
	grep -q "policy-rc.d forbids the upgrade" "$work/dpkg.out" ||
	    fail "postinst did not say the upgrade was forbidden: $(cat "$work/dpkg.out")"
	[ "$(cat "$PIDFILE")" = "$pid" ] && alive "$pid" ||
	    fail "the daemon did not keep running"
	printf '(policy-rc.d forbids it: left alone) '
else
	upgrade_check "$pid" "the reinstall"
fi
kill "$subpid" 2>/dev/null
subpid=
ok

# -- stop, purge ---------------------------------------------------------------
step "service ringcastd stop"
T 60 service ringcastd stop >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; fail "stop"; }
[ -e "$PIDFILE" ] && fail "pidfile left behind"
alive "$pid" && fail "master $pid still running"
for w in $workers; do
	alive "$w" && fail "worker $w still running"
done
T 10 service ringcastd status >/dev/null 2>&1 && fail "status says running"
ok

step "dpkg --purge ringcastd"
T 120 dpkg --purge ringcastd >"$work/dpkg.out" 2>&1 ||
    { cat "$work/dpkg.out" >&2; fail "dpkg --purge"; }
installed=0
[ -e /usr/sbin/ringcastd ] && fail "binary left behind"
[ -e /var/lib/ringcast ] && fail "/var/lib/ringcast left behind"
[ -e "$CONF" ] && fail "$CONF left behind"
getent passwd ringcast >/dev/null && fail "user ringcast left behind"
ok
echo "package test passed"
