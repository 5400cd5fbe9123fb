"""The init script rc.d/ringcastd against the daemon of this build:
configtest, start (daemonized, pidfile), status, reload (and a refused
reload of a broken config that leaves the service running), stop (waits
for the drain) and status once stopped; upgrade (a new master, the same
streams), and upgrade of a daemon that is not running (exit 7)."""

import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from ringcast_harness import RINGCASTD, SLOW, Server
from ringcast_lifecycle import alive

SCRIPT = pathlib.Path(__file__).resolve().parent.parent.parent / "rc.d" / \
    "ringcastd"

pytestmark = pytest.mark.skipif(
    shutil.which("start-stop-daemon") is None,
    reason="start-stop-daemon (dpkg) is not installed")


def rc(srv, action):
    env = dict(os.environ, RINGCASTD_DAEMON=str(pathlib.Path(
        RINGCASTD).resolve()), RINGCASTD_CONF=str(srv.conf))
    return subprocess.run(["/bin/sh", str(SCRIPT), action], env=env,
                          capture_output=True, text=True,
                          timeout=40 * SLOW)


def master_pid(srv):
    return int(pathlib.Path(srv.sections["server"]["pidfile"]).read_text())


def test_init_script_start_reload_stop(tmp_path):
    srv = Server(tmp_path, server={"drain_timeout": "2s"},
                 log={"target": str(tmp_path / "rc.log")})
    srv.ctl("topic", "add", "news")
    pidfile = pathlib.Path(srv.sections["server"]["pidfile"])
    pid = None
    try:
        res = rc(srv, "configtest")
        assert res.returncode == 0 and "configuration OK" in res.stdout
        assert rc(srv, "status").returncode == 3
        res = rc(srv, "start")
        assert res.returncode == 0, res.stdout + res.stderr
        pid = master_pid(srv)
        assert rc(srv, "status").returncode == 0
        assert srv.request("GET", "/healthz")[0] == 200
        # Starting twice is harmless.
        assert rc(srv, "start").returncode == 0
        assert master_pid(srv) == pid

        workers = set(srv.worker_pids(pid))
        res = rc(srv, "reload")
        assert res.returncode == 0, res.stderr
        deadline = time.monotonic() + 10 * SLOW
        while set(srv.worker_pids(pid)) & workers and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert not set(srv.worker_pids(pid)) & workers, "no new generation"

        good = srv.conf.read_text()
        srv.conf.write_text(good + "[stream]\nretry = soon\n")
        res = rc(srv, "reload")
        assert res.returncode != 0
        out = res.stdout + res.stderr
        assert "not reloading" in out and "retry" in out, out
        assert master_pid(srv) == pid
        assert srv.request("GET", "/healthz")[0] == 200
        assert rc(srv, "restart").returncode != 0, "restarted broken"
        assert master_pid(srv) == pid
        srv.conf.write_text(good)

        sub = srv.subscribe("/events/news")
        seq = srv.publish("news", "before stop")
        assert sub.events(1, timeout=5)[0]["id"] == str(seq)
        res = rc(srv, "stop")
        assert res.returncode == 0, res.stderr
        assert sub.read_until_end(timeout=5) == [] and sub.clean_end
        assert not pidfile.exists()
        assert not alive(pid)
        assert rc(srv, "status").returncode == 3
        assert rc(srv, "stop").returncode == 0
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_init_script_upgrade_keeps_the_stream(tmp_path):
    srv = Server(tmp_path, server={"drain_timeout": "2s"},
                 log={"target": str(tmp_path / "rc.log")})
    srv.ctl("topic", "add", "news")
    pids = []
    try:
        assert rc(srv, "upgrade").returncode == 7
        res = rc(srv, "start")
        assert res.returncode == 0, res.stdout + res.stderr
        old = master_pid(srv)
        pids.append(old)
        sub = srv.subscribe("/events/news")
        seq = srv.publish("news", "before")
        assert sub.events(1, timeout=5)[0]["id"] == str(seq)
        res = rc(srv, "upgrade")
        assert res.returncode == 0, res.stdout + res.stderr
        new = master_pid(srv)
        pids.append(new)
        assert new != old and alive(new) and not alive(old)
        assert rc(srv, "status").returncode == 0
        # The same connection goes on, served by the new master.
        seq = srv.publish("news", "after")
        assert sub.events(1, timeout=5)[0]["id"] == str(seq)
        res = rc(srv, "stop")
        assert res.returncode == 0, res.stderr
        assert not alive(new)
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
