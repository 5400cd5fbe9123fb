"""DESIGN section 6 end to end: SIGTERM drains to frame boundaries within
drain_timeout, SIGHUP reloads (or refuses a broken config and keeps
serving), a killed worker is respawned, a killed master's workers drain
and a new master takes over, SIGUSR1 reopens the log, privileges drop, and
ringcastd daemonizes with a pidfile.  Across every restart, reconnecting
subscribers see each published event exactly once, in order."""

import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from ringcast_harness import RINGCASTD, SLOW, Server, SSEClient
from ringcast_lifecycle import (Publisher, ReconnectingSubscriber, alive,
                                check_delivery, wait_until)

TOPIC = "news"


def reap_strays(pids):
    """SIGKILL processes we started that outlived the test (by PID)."""
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def news_server(make_server):
    def make(**sections):
        srv = make_server(start=False, **sections)
        srv.ctl("topic", "add", TOPIC)
        return srv.start()
    return make


@pytest.fixture(params=["", "nobody"], ids=["no-user", "user-nobody"])
def run_as(request):
    """The user = setting of a fault test, and a directory its server can
    live in: the Debian package sets user =, so the fault tests run with
    workers as 'nobody' too (as root only; pytest's own tmp_path is not
    open to nobody).  Requested before make_server, so it is cleaned up
    after the servers are stopped."""
    user = request.param
    if not user:
        yield user, None
        return
    if os.geteuid() != 0:
        pytest.skip("not root: cannot run workers as 'nobody'")
    base = pathlib.Path(tempfile.mkdtemp(prefix="ringcast-user-"))
    os.chmod(base, 0o755)
    try:
        yield user, base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fault_server(run_as, make_server):
    """news_server, once without user = and once with user = nobody."""
    user, base = run_as

    def make(**sections):
        if user:
            sections["server"] = dict(sections.get("server", {}),
                                      user=user)
        srv = make_server(start=False, base=base, **sections)
        srv.ctl("topic", "add", TOPIC)
        srv.start()
        if user:
            uid = pwd.getpwnam(user).pw_uid
            assert wait_until(lambda: all(proc_uid(p) == uid for p in
                                          srv.worker_pids()), 5), \
                "workers did not drop privileges"
        return srv
    return make


def port_is_free(port):
    """Can a new master bind 127.0.0.1:port (as it does, SO_REUSEADDR)?"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


class Traffic:
    """Three reconnecting subscribers and a steady publisher on one port."""

    def __init__(self, srv, nsubs=3):
        self.srv = srv
        self.subs = [ReconnectingSubscriber(srv.port, TOPIC)
                     for _ in range(nsubs)]
        for s in self.subs:
            s.start()
        for s in self.subs:
            assert s.ready.wait(5 * SLOW), "subscriber did not connect"
        self.pub = Publisher(srv.port, TOPIC)
        self.pub.start()

    def run_for(self, seconds):
        time.sleep(seconds)

    def finish(self, catch_up=15):
        self.pub.stop()
        self.pub.join(10 * SLOW)
        assert self.pub.confirmed, "nothing was published"
        last = self.pub.confirmed[-1][0]
        for i, s in enumerate(self.subs):
            assert s.wait_for(last, catch_up), (
                f"subscriber {i} stuck at {s.last_id()} < {last}\n"
                + self.srv.log_text())
        for s in self.subs:
            s.stop()
        for s in self.subs:
            s.join(5 * SLOW)
        check_delivery(self.pub, self.subs)
        return self.pub, self.subs


# -- SIGHUP -------------------------------------------------------------------

def test_reload_loses_no_event(fault_server):
    srv = fault_server()
    old = set(srv.worker_pids())
    t = Traffic(srv)
    t.run_for(1)
    srv.send_signal(signal.SIGHUP)
    # The old generation hands its streams over and exits.
    assert wait_until(lambda: not (set(srv.worker_pids()) & old), 10), \
        srv.log_text()
    assert len(srv.worker_pids()) == 2
    t.run_for(1)
    pub, subs = t.finish()
    # Handed over, not reconnected: each stream kept its socket.
    assert all(s.connects == 1 for s in subs), "streams were reconnected"
    assert all(s.clean_ends == 0 for s in subs)
    assert "handed" in srv.log_text()
    assert srv.stop() == 0


def test_reload_with_broken_config_keeps_serving(news_server):
    srv = news_server()
    pids = set(srv.worker_pids())
    good = srv.conf.read_text()
    srv.conf.write_text(good + "[server]\nworkers = lots\n")
    srv.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "still serving the old configuration"
                      in srv.log_text(), 5), srv.log_text()
    text = srv.log_text()
    assert re.search(r"reload: .*ringcast\.conf:\d+", text), text
    time.sleep(0.3)
    assert set(srv.worker_pids()) == pids, "workers were replaced"
    assert srv.request("GET", "/healthz")[0] == 200
    sub = srv.subscribe(f"/events/{TOPIC}")
    seq = srv.publish(TOPIC, "still here")
    assert sub.events(1, timeout=5)[0]["id"] == str(seq)
    sub.close()
    assert srv.stop() == 0


def test_reload_adds_a_listen_address(news_server):
    srv = news_server()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 1), timeout=1).close()
    from ringcast_harness import free_port
    port2 = free_port()
    srv.sections["server"]["listen"] = \
        f"127.0.0.1:{srv.port},127.0.0.1:{port2}"
    srv.write_config()
    srv.send_signal(signal.SIGHUP)

    def serves_on_new_port():
        try:
            c = socket.create_connection(("127.0.0.1", port2), timeout=1)
        except OSError:
            return False
        c.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        ok = c.recv(100).startswith(b"HTTP/1.1 200")
        c.close()
        return ok

    assert wait_until(serves_on_new_port, 10), srv.log_text()
    assert srv.request("GET", "/healthz")[0] == 200
    # A stream on the new address sees events published on the old one.
    sub = SSEClient("127.0.0.1", port2, f"/events/{TOPIC}", timeout=5)
    seq = srv.publish(TOPIC, "two doors")
    assert sub.events(1, timeout=5)[0]["id"] == str(seq)
    sub.close()
    assert srv.stop() == 0


# -- a worker dies ------------------------------------------------------------

def test_killed_worker_is_respawned_and_loses_no_event(fault_server):
    srv = fault_server()
    t = Traffic(srv)
    t.run_for(1)
    victim = srv.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: victim not in srv.worker_pids() and
                      len(srv.worker_pids()) == 2, 10), srv.log_text()
    t.run_for(1.5)
    t.finish()
    assert re.search(rf"\(pid {victim}\) killed by signal 9",
                     srv.log_text()), srv.log_text()
    assert srv.request("GET", "/healthz")[0] == 200
    assert srv.stop() == 0


def test_crash_loop_backs_off(news_server):
    srv = news_server()
    killed = 0
    for _ in range(4):
        pids = srv.worker_pids()
        os.kill(pids[0], signal.SIGKILL)
        killed += 1
        assert wait_until(lambda: len(srv.worker_pids()) == 2 and
                          pids[0] not in srv.worker_pids(), 10)
    assert re.search(r"crashed \d+ ms after start; respawning in "
                     r"(200|400|800) ms", srv.log_text()), srv.log_text()
    assert srv.request("GET", "/healthz")[0] == 200
    assert srv.stop() == 0


# -- the master dies ----------------------------------------------------------

def test_killed_master_workers_drain_and_new_master_loses_no_event(
        fault_server):
    drain = 2
    srv = fault_server(server={"drain_timeout": f"{drain}s"})
    t = Traffic(srv)
    t.run_for(1)
    old_workers = srv.worker_pids()
    old_master = srv.proc.pid
    try:
        srv.proc.kill()
        srv.proc.wait()
        # PR_SET_PDEATHSIG (set after the privilege drop, which clears
        # it): the orphans drain and exit on their own, within the bound.
        assert wait_until(lambda: not any(alive(p) for p in old_workers),
                          drain + 1), "workers outlived their master"
        assert not alive(old_master)
        # Nothing holds the ports: a new master binds them at once.
        assert port_is_free(srv.port) and port_is_free(srv.admin_port), \
            "a killed master's ports are still held"
        srv.start()
        t.run_for(1.5)
        t.finish()
    finally:
        reap_strays(old_workers)
    assert srv.stop() == 0


def test_new_master_starts_while_a_killed_masters_workers_drain(
        fault_server):
    srv = fault_server(server={"drain_timeout": "2s"}, ring={"size": "64M"})
    stuck = stuck_stream(srv)
    old_workers = srv.worker_pids()
    try:
        srv.proc.kill()
        srv.proc.wait()
        time.sleep(0.2)
        assert any(alive(p) for p in old_workers), "nothing left to drain"
        # The orphans hold neither the pidfile nor the ports.
        srv.start()
        assert srv.request("GET", "/healthz")[0] == 200
        # Without a master they still keep to drain_timeout.
        assert wait_until(lambda: not any(alive(p) for p in old_workers),
                          4), "orphaned workers outlived drain_timeout"
    finally:
        stuck.close()
        reap_strays(old_workers)
    assert srv.stop() == 0


# -- SIGTERM ------------------------------------------------------------------

def test_sigterm_then_restart_loses_no_event(fault_server):
    srv = fault_server()
    pidfile = pathlib.Path(srv.sections["server"]["pidfile"])
    t = Traffic(srv)
    t.run_for(1)
    assert srv.stop() == 0
    assert not pidfile.exists(), "pidfile left behind"
    assert re.search(r"stopped: \d+ streams drained at a frame boundary, "
                     r"0 forced", srv.log_text()), srv.log_text()
    srv.start()
    t.run_for(1.5)
    t.finish()
    assert srv.stop() == 0


class RecordingSSEClient(SSEClient):
    """Keeps every de-chunked body byte, to look at how the stream ends."""

    def __init__(self, *a, **kw):
        self.all = b""
        super().__init__(*a, **kw)

    def _fill(self):
        before = len(self.body)
        try:
            super()._fill()
        finally:
            self.all += self.body[before:]


def test_sigterm_drains_many_streams_at_frame_boundaries(fault_server):
    drain = 5
    srv = fault_server(server={"drain_timeout": f"{drain}s"})
    clients = [RecordingSSEClient("127.0.0.1", srv.port, f"/events/{TOPIC}",
                                  timeout=10 * SLOW) for _ in range(200)]
    assert all(c.status == 200 for c in clients)
    # A publisher keeps going while the server drains.
    pub = Publisher(srv.port, TOPIC, interval=0.005)
    pub.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait((drain + 2) * SLOW)
    finally:
        pub.stop()
        pub.join(10)
    elapsed = time.monotonic() - t0
    assert rc == 0
    assert elapsed < drain + 2 * SLOW, elapsed
    confirmed = [s for s, _ in pub.confirmed]
    for i, c in enumerate(clients):
        events = c.read_until_end(timeout=5)
        assert c.clean_end, f"stream {i}: no chunked terminator"
        assert c.all.endswith(b"\n\n"), f"stream {i}: ends {c.all[-40:]!r}"
        assert c.body == b"", f"stream {i}: bytes after the last frame"
        assert c.retry and 1000 <= c.retry[-1] < 2000, c.retry
        ids = [int(e["id"]) for e in events]
        assert ids == sorted(set(ids))
        # FIN, not a reset, after the terminator.
        c.sock.settimeout(2)
        assert c.sock.recv(1) == b""
        c.close()
        # Every stream got the same run of events, with no hole in it.
        if ids:
            assert ids == [x for x in confirmed if ids[0] <= x <= ids[-1]]
    text = srv.log_text()
    m = re.search(r"stopped: (\d+) streams drained at a frame boundary, "
                  r"(\d+) forced", text)
    assert m, text
    assert int(m.group(1)) == 200 and int(m.group(2)) == 0, m.group(0)


def test_sigterm_answers_inflight_requests_and_healthz_says_503(news_server):
    srv = news_server()
    sub = srv.subscribe(f"/events/{TOPIC}")
    # A keep-alive connection halfway through /healthz, and a publish
    # halfway through its body, when SIGTERM arrives.
    health = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    health.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    post = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    post.sendall(f"POST /publish/{TOPIC} HTTP/1.1\r\nHost: x\r\n"
                 "Content-Length: 10\r\n\r\nhello".encode())
    time.sleep(0.2)
    srv.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # Listeners are closed first.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1)
    health.sendall(b"\r\n")
    answer = health.recv(4096)
    assert answer.startswith(b"HTTP/1.1 503"), answer
    assert b"Connection: close" in answer
    post.sendall(b"world")
    answer = post.recv(4096)
    assert answer.startswith(b"HTTP/1.1 201"), answer
    assert srv.proc.wait(10 * SLOW) == 0
    assert not pathlib.Path(srv.sections["server"]["pidfile"]).exists()
    events = sub.read_until_end(timeout=5)
    assert sub.clean_end
    health.close()
    post.close()
    del events


def stuck_stream(srv):
    """A stream that never reads, with more owed to it than the socket
    buffers hold, so it cannot finish."""
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.settimeout(5)
    stuck.connect(("127.0.0.1", srv.port))
    stuck.sendall(f"GET /events/{TOPIC} HTTP/1.1\r\nHost: x\r\n\r\n"
                  .encode())
    time.sleep(0.2)
    big = "x" * 1000000
    for _ in range(24):
        srv.publish(TOPIC, big)
    time.sleep(0.3)
    return stuck


def test_sigterm_kills_stragglers_at_drain_timeout(fault_server):
    srv = fault_server(server={"drain_timeout": "1s"},
                      ring={"size": "64M"})
    stuck = stuck_stream(srv)
    t0 = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10 * SLOW) == 0
    assert time.monotonic() - t0 < 3 * SLOW
    stuck.close()
    m = re.search(r"stopped: (\d+) streams drained at a frame boundary, "
                  r"(\d+) forced \((\d+) workers killed", srv.log_text())
    assert m and int(m.group(2)) >= 1 and int(m.group(3)) >= 1, \
        srv.log_text()


# -- sync = interval ----------------------------------------------------------

def strace_msync(pids, out):
    """strace -f -e trace=msync attached to pids, writing to out; None
    when strace is missing or may not attach (no ptrace here)."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    args = [strace, "-f", "-e", "trace=msync", "-o", str(out)]
    for pid in pids:
        args += ["-p", str(pid)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    # strace says "Process N attached" once per process when it is in.
    deadline = time.monotonic() + 5 * SLOW
    attached = b""
    while attached.count(b"attached") < len(pids):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_strace(proc)
            return None
        attached += proc.stderr.readline()
    return proc


def stop_strace(proc):
    """End an strace we started (by PID), bounded; it detaches on TERM."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stderr.close()


def msync_calls(path):
    return sum(1 for line in path.read_text().splitlines()
               if "msync(" in line)


def test_sync_interval_msyncs_in_the_master_not_in_workers(news_server,
                                                          tmp_path):
    srv = news_server(ring={"sync": "interval"})
    workers = srv.worker_pids()
    wtrace, mtrace = tmp_path / "workers.trace", tmp_path / "master.trace"
    wproc = strace_msync(workers, wtrace)
    if wproc is None:
        pytest.skip("strace is missing or cannot attach (ptrace)")
    mproc = strace_msync([srv.proc.pid], mtrace)
    try:
        assert mproc is not None, "strace attached to workers, not master"
        # Streams and publishes go on while the ring is synced.
        sub = srv.subscribe(f"/events/{TOPIC}")
        deadline = time.monotonic() + 2.5
        n = 0
        while time.monotonic() < deadline:
            seq = srv.publish(TOPIC, f"e{n}")
            assert sub.events(1, timeout=5)[0]["id"] == str(seq)
            n += 1
            time.sleep(0.1)
        sub.close()
    finally:
        stop_strace(wproc)
        if mproc is not None:
            stop_strace(mproc)
    # msync(MS_SYNC) of the whole ring blocks for the write-back: never on
    # a worker's event loop, once a second in the idle master.
    assert msync_calls(wtrace) == 0, wtrace.read_text()
    assert msync_calls(mtrace) >= 1, mtrace.read_text()
    assert srv.stop() == 0


# -- reloads are bounded by drain_timeout -------------------------------------

def full_log(srv):
    return srv.log.read_text(errors="replace")


def test_reloads_with_a_stream_that_never_reads_end_within_drain_timeout(
        fault_server):
    drain = 2
    srv = fault_server(server={"drain_timeout": f"{drain}s"},
                       ring={"size": "64M"})
    # Blocked on a full socket, on a topic that then goes quiet: the
    # retire tick alone never ends it.
    stuck = stuck_stream(srv)
    try:
        for n in range(1, 4):
            # A reload waits for free worker slots (refused, logged, until
            # the previous generations have exited): ask until it starts.
            for _ in range(40):
                srv.send_signal(signal.SIGHUP)
                if wait_until(lambda: full_log(srv).count(
                        "reloaded: generation") >= n, 0.5):
                    break
            time.sleep(0.3)
        # Each old generation is gone within drain_timeout, so the slots
        # (2 * workers + 2) cannot run out however often one reloads.
        assert wait_until(lambda: len(srv.worker_pids()) == 2, drain + 1), \
            f"{len(srv.worker_pids())} workers\n" + srv.log_text()
        text = full_log(srv)
        assert text.count("reloaded: generation") == 3, text
        # The worker ended the stream itself, before the master's bound.
        assert re.search(r"retiring: closed 1 stream", text), text
        assert "killed by signal 9" not in text, text
        assert srv.request("GET", "/healthz")[0] == 200
        sub = srv.subscribe(f"/events/{TOPIC}")
        seq = srv.publish(TOPIC, "after three reloads")
        assert sub.events(1, timeout=5)[0]["id"] == str(seq)
        sub.close()
    finally:
        stuck.close()
    assert srv.stop() == 0


def test_reload_without_free_slots_keeps_the_running_generation(
        fault_server):
    """Slots are 2 * workers + 2.  With one worker and three earlier
    generations unable to exit, a fourth reload cannot start a whole
    generation: it is refused, and the running generation keeps serving
    (it used to be retired with nothing started in its place)."""
    srv = fault_server(server={"workers": "1", "drain_timeout": "30s",
                               "reload_spread": "5s"})
    stopped, subs = [], []
    try:
        for n in range(1, 4):
            old = set(srv.worker_pids()) - set(stopped)
            # A stream would be handed over at once, so the old worker is
            # wedged before it is told to retire (in life: a process stuck
            # in the kernel).
            subs.append(srv.subscribe(f"/events/{TOPIC}"))
            for pid in old:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            srv.send_signal(signal.SIGHUP)
            assert wait_until(lambda: full_log(srv).count(
                "reloaded: generation") == n, 5), srv.log_text()
            assert wait_until(lambda: len(set(srv.worker_pids()) -
                                          set(stopped)) == 1, 5)
        serving = set(srv.worker_pids()) - set(stopped)
        srv.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "not reloading" in full_log(srv), 5), \
            srv.log_text()
        time.sleep(0.5)
        assert set(srv.worker_pids()) - set(stopped) == serving
        assert full_log(srv).count("reloaded: generation") == 3
        assert srv.request("GET", "/healthz")[0] == 200
        sub = srv.subscribe(f"/events/{TOPIC}")
        seq = srv.publish(TOPIC, "still served")
        assert sub.events(1, timeout=5)[0]["id"] == str(seq)
        sub.close()
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for sub in subs:
            sub.close()
    assert srv.stop() == 0


def test_reload_kills_an_old_worker_still_running_at_drain_timeout(
        fault_server):
    drain = 1
    srv = fault_server(server={"drain_timeout": f"{drain}s"})
    old = srv.worker_pids()
    wedged = old[0]
    # A worker that cannot retire on its own (stopped here; in life a
    # request that never ends, or a process stuck in the kernel).
    os.kill(wedged, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        srv.send_signal(signal.SIGHUP)
        assert wait_until(lambda: not alive(wedged), drain + 1), \
            "a retiring worker outlived drain_timeout\n" + srv.log_text()
        assert time.monotonic() - t0 >= drain * 0.9
        assert wait_until(lambda: len(srv.worker_pids()) == 2 and
                          not set(srv.worker_pids()) & set(old), 5), \
            srv.log_text()
        text = full_log(srv)
        assert re.search(rf"worker \d+ \(pid {wedged}\) of generation 1 "
                         r"still running at drain_timeout after a reload: "
                         r"killed", text), text
        assert srv.request("GET", "/healthz")[0] == 200
    finally:
        reap_strays([wedged])
    assert srv.stop() == 0


def test_reload_during_a_respawn_back_off_respawns_no_old_worker(
        news_server):
    srv = news_server()
    def worker0():
        pids = re.findall(r"worker 0 started: pid (\d+)", full_log(srv))
        return int(pids[-1]) if pids else None

    # Crash worker 0 in a loop until its respawn waits long enough.
    victim = None
    for _ in range(8):
        assert wait_until(lambda: worker0() not in (None, victim) and
                          worker0() in srv.worker_pids(), 10)
        victim = worker0()
        os.kill(victim, signal.SIGKILL)
        killed = rf"\(pid {victim}\) killed by signal 9\n"
        assert wait_until(lambda: re.search(killed, full_log(srv)), 5)
        m = re.search(killed + r".*respawning in (\d+) ms", full_log(srv))
        if m and int(m.group(1)) >= 400:
            break
    else:
        pytest.fail("no back-off of 400 ms or more\n" + srv.log_text())
    # Reload while that respawn is pending: it belongs to the retired
    # generation and must not happen, or that worker would never retire.
    srv.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "generation 1 retiring" in full_log(srv), 5)
    time.sleep(4 * SLOW)
    assert len(srv.worker_pids()) == 2, srv.log_text()
    assert "started (generation 1" not in full_log(srv).split(
        "generation 1 retiring")[1], srv.log_text()
    assert srv.stop() == 0


# -- SIGUSR1, daemon mode -----------------------------------------------------

def test_daemon_writes_pidfile_and_sigusr1_reopens_log(tmp_path):
    srv = Server(tmp_path, log={"target": str(tmp_path / "file.log"),
                                "level": "debug"})
    srv.ctl("topic", "add", TOPIC)
    pidfile = pathlib.Path(srv.sections["server"]["pidfile"])
    logfile = tmp_path / "file.log"
    res = subprocess.run([RINGCASTD, "-f", str(srv.conf)], timeout=10,
                         capture_output=True)
    assert res.returncode == 0, res.stderr
    assert wait_until(lambda: pidfile.exists() and
                      pidfile.read_text().strip(), 5)
    pid = int(pidfile.read_text())
    workers = []
    try:
        assert alive(pid)
        assert wait_until(lambda: srv.worker_pids(pid), 5)
        workers = srv.worker_pids(pid)
        assert srv.request("GET", "/healthz")[0] == 200
        assert "started" in logfile.read_text()
        rotated = tmp_path / "file.log.1"
        logfile.rename(rotated)
        os.kill(pid, signal.SIGUSR1)
        assert wait_until(logfile.exists, 5)
        os.kill(pid, signal.SIGHUP)     # the master logs "reloading"
        assert wait_until(lambda: "reloading" in logfile.read_text(), 5)
        srv.publish(TOPIC, "after the rotation")
        assert "reloading" not in rotated.read_text()
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not alive(pid), 10), "daemon did not stop"
        assert not pidfile.exists(), "pidfile left behind"
        assert "stopped:" in logfile.read_text()
    finally:
        reap_strays([pid] + workers)


# -- privileges ---------------------------------------------------------------

def proc_uid(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def test_workers_drop_privileges_and_files_belong_to_the_user():
    if os.geteuid() != 0:
        pytest.skip("not root: cannot test the privilege drop to 'nobody'")
    user = pwd.getpwnam("nobody")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ringcast-priv-"))
    srv = None
    try:
        os.chmod(tmp, 0o755)
        (tmp / "run").mkdir()
        srv = Server(tmp, server={"user": "nobody",
                                  "pidfile": str(tmp / "run" / "rc.pid")},
                     catalog={"auto_create_topics": "yes"})
        srv.start()
        workers = srv.worker_pids()
        assert proc_uid(srv.proc.pid) == 0
        # A worker drops privileges early in its set-up, not before fork.
        assert workers and wait_until(lambda: all(
            proc_uid(p) == user.pw_uid for p in workers), 5)
        ring = os.stat(tmp / "ring")
        assert ring.st_uid == user.pw_uid
        assert stat.S_IMODE(ring.st_mode) in (0o600, 0o640)
        for name in ("catalog", "catalog/data.mdb", "catalog/lock.mdb"):
            st = os.stat(tmp / name)
            assert st.st_uid == user.pw_uid, name
            assert stat.S_IMODE(st.st_mode) & 0o007 == 0, name
        # The workers, as nobody, create topics and serve events.
        srv.publish("news", "creates the topic")
        sub = srv.subscribe("/events/news")
        assert sub.status == 200
        seq = srv.publish("news", "as nobody")
        assert sub.events(1, timeout=5)[0]["id"] == str(seq)
        sub.close()
        assert srv.stop() == 0
    finally:
        if srv is not None and srv.proc and srv.proc.poll() is None:
            srv.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
