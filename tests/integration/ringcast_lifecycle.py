"""Clients for the lifecycle tests: a subscriber that reconnects the way an
EventSource does (after the server's retry: delay, with Last-Event-ID) and
a publisher that keeps a steady rate and retries a publish until it gets a
201.  Both run in threads and record what they saw, so a test can prove that
no event was lost, duplicated or reordered across a reload or a restart."""

import http.client
import os
import pathlib
import selectors
import signal
import socket
import threading
import time

from ringcast_harness import SLOW, SSEClient, StreamEnded


def wait_until(pred, timeout, step=0.05):
    """Poll pred until it holds or timeout (scaled by SLOW) passes."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Streams:
    """n SSE streams on one topic, read by one selector loop: each keeps
    the ids it saw, when each arrived, and whether its connection ended
    (a reload or an upgrade must end none)."""

    def __init__(self, port, topic, n):
        self.clients = []
        for _ in range(n):
            c = SSEClient("127.0.0.1", port, f"/events/{topic}",
                          timeout=5 * SLOW)
            assert c.status == 200
            c.ids, c.at, c.ended = [], [], False
            c.local = c.sock.getsockname()
            self.clients.append(c)
        self.sel = selectors.DefaultSelector()
        for c in self.clients:
            c.sock.setblocking(False)
            self.sel.register(c.sock, selectors.EVENT_READ, c)

    def _read(self, c):
        try:
            while True:
                ev = c.next_event()
                if ev["event"] == "message":
                    c.ids.append(int(ev["id"]))
                    c.at.append(time.monotonic())
        except (BlockingIOError, InterruptedError):
            pass
        except (StreamEnded, OSError):
            c.ended = True
            self.sel.unregister(c.sock)

    def pump(self, seconds):
        """Read whatever arrives for this long (bounded)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for key, _ in self.sel.select(0.02):
                self._read(key.data)

    def caught_up(self, last):
        return all(c.ended or (c.ids and c.ids[-1] >= last)
                   for c in self.clients)

    def worst_late(self, published, start, end):
        """The longest time, over all streams, from a publish's answer to
        the event's arrival, for the events answered in [start, end]
        (published: id -> when its publish was answered)."""
        worst = 0.0
        for c in self.clients:
            for seq, t in zip(c.ids, c.at):
                if seq in published and start <= published[seq] <= end:
                    worst = max(worst, t - published[seq])
        return worst

    def check_delivery(self, pub, log, timeout=15):
        """Read until every stream has pub's last confirmed event (within
        timeout), then assert that none ended or changed its socket, and
        each got every confirmed event once, in order.  log: a function
        returning the server's log, for the message."""
        last = pub.confirmed[-1][0]
        deadline = time.monotonic() + timeout * SLOW
        while not self.caught_up(last) and time.monotonic() < deadline:
            self.pump(0.1)
        ended = [i for i, c in enumerate(self.clients) if c.ended]
        assert not ended, f"{len(ended)} streams ended (clean ends: " \
            f"{sum(c.clean_end for c in self.clients)})\n" + log()
        want = [seq for seq, _ in pub.confirmed]
        for i, c in enumerate(self.clients):
            assert c.sock.getsockname() == c.local
            assert len(c.ids) == len(set(c.ids)), f"stream {i}: duplicates"
            assert c.ids == sorted(c.ids), f"stream {i}: out of order"
            lost = sorted(set(want) - set(c.ids))
            assert not lost, f"stream {i}: lost {len(lost)}: {lost[:10]}"
            assert len(set(c.ids) - set(want)) <= pub.failures

    def close(self):
        for c in self.clients:
            c.close()
        self.sel.close()


class ReconnectingSubscriber(threading.Thread):
    """Follow one topic across stream ends and connection errors, like an
    EventSource: wait the last retry: hint (default 1 s), reconnect with
    Last-Event-ID, collect every id in order of arrival."""

    def __init__(self, port, topic, host="127.0.0.1"):
        super().__init__(daemon=True)
        self.host, self.port, self.topic = host, port, topic
        self.ids = []
        self.data = {}
        self.retry_ms = 1000
        self.connects = 0
        self.clean_ends = 0
        self.errors = []          # permanent failures (non-200)
        self.ready = threading.Event()
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()

    def last_id(self):
        return self.ids[-1] if self.ids else None

    def _stream_once(self):
        headers = {}
        if self.ids:
            headers["Last-Event-ID"] = str(self.ids[-1])
        client = SSEClient(self.host, self.port, f"/events/{self.topic}",
                           headers=headers, timeout=2 * SLOW)
        try:
            self.connects += 1
            if client.status != 200:
                self.errors.append(client.status)
                return
            client.sock.settimeout(0.5)
            self.ready.set()
            while not self._halt.is_set():
                try:
                    ev = client.next_event()
                except socket.timeout:
                    continue
                except StreamEnded:
                    if client.clean_end:
                        self.clean_ends += 1
                    break
                finally:
                    if client.retry:
                        self.retry_ms = client.retry[-1]
                if ev["event"] != "message":
                    continue
                self.ids.append(int(ev["id"]))
                self.data[int(ev["id"])] = ev["data"]
        finally:
            client.close()

    def run(self):
        while not self._halt.is_set():
            try:
                self._stream_once()
            except (OSError, ValueError, AssertionError):
                pass
            if self.errors:
                return
            self._halt.wait(self.retry_ms / 1000.0)

    def wait_for(self, last, timeout):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.ids and self.ids[-1] >= last:
                return True
            time.sleep(0.05)
        return False


class Publisher(threading.Thread):
    """Publish p0, p1, ... to a topic every interval seconds; a publish that
    fails (refused, reset, 503) is retried until it gets a 201."""

    def __init__(self, port, topic, interval=0.02, host="127.0.0.1"):
        super().__init__(daemon=True)
        self.host, self.port, self.topic = host, port, topic
        self.interval = interval
        self.confirmed = []       # (id, data) in order of the 201s
        self.failures = 0
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()

    def _post(self, data):
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=3 * SLOW)
        try:
            conn.request("POST", f"/publish/{self.topic}", body=data)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 201:
                return None
            return int(resp.getheader("Ringcast-Event-ID"))
        finally:
            conn.close()

    def run(self):
        n = 0
        while not self._halt.is_set():
            data = f"p{n}"
            while True:
                try:
                    seq = self._post(data)
                except (OSError, http.client.HTTPException):
                    seq = None
                if seq is not None:
                    self.confirmed.append((seq, data))
                    break
                self.failures += 1
                if self._halt.wait(0.05):
                    return
            n += 1
            self._halt.wait(self.interval)


class TimedPublisher(Publisher):
    """A Publisher that keeps when each publish was answered."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.at = {}

    def _post(self, data):
        seq = super()._post(data)
        if seq is not None:
            self.at[seq] = time.monotonic()
        return seq


def check_delivery(publisher, subscribers):
    """Every confirmed id seen exactly once by every subscriber, in order.
    Ids that were not confirmed can only come from a publish whose answer
    was lost (the publisher then retried it): at most one per failure."""
    confirmed = [seq for seq, _ in publisher.confirmed]
    assert confirmed == sorted(confirmed), "publisher ids out of order"
    assert len(set(confirmed)) == len(confirmed), "an id confirmed twice"
    want = set(confirmed)
    for i, sub in enumerate(subscribers):
        assert not sub.errors, f"subscriber {i}: permanent {sub.errors}"
        ids = sub.ids
        dups = len(ids) - len(set(ids))
        assert dups == 0, f"subscriber {i}: {dups} duplicated ids"
        assert ids == sorted(ids), f"subscriber {i}: ids out of order"
        seen = set(ids)
        lost = sorted(want - seen)
        assert not lost, f"subscriber {i}: lost {len(lost)}: {lost[:10]}"
        extra = seen - want
        assert len(extra) <= publisher.failures, (
            f"subscriber {i}: {len(extra)} unconfirmed ids, only "
            f"{publisher.failures} failed publishes")
        for seq, data in publisher.confirmed:
            assert sub.data[seq] == data, f"subscriber {i}: id {seq} data"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        st = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return st.rsplit(")", 1)[1].split()[0] != "Z"


def read_pid(srv):
    """The pid in srv's pidfile, or None."""
    try:
        return int(pathlib.Path(srv.sections["server"]["pidfile"])
                   .read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_master(pid, timeout=15):
    """SIGTERM a master we did not start as a child (the new one of an
    upgrade, whose parent exited) and wait until it is gone."""
    if pid is None or not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not alive(pid), timeout):
        os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"master {pid} did not stop")


def new_masters(srv):
    """The children of srv's master that are masters: the new ones of an
    upgrade, which outlive it.  Call while it runs; stop_new_master stops
    every one seen, even if none took the pidfile over."""
    seen = srv.__dict__.setdefault("new_masters", set())
    seen.update(p for p in srv.child_pids()
                if b"master" in srv._title(p))
    return seen


def stop_new_master(srv, old_master, new_master):
    """At a test's end: stop the masters that took over, or tried to,
    from old_master (new_master, the pidfile's, those new_masters saw);
    SIGKILL them and their children, by PID, if they do not stop."""
    masters = set(srv.__dict__.get("new_masters", ())) | \
        {new_master, read_pid(srv)}
    masters -= {None, old_master}
    pids = [p for m in masters for p in srv.child_pids(m) + [m]]
    try:
        for m in masters:
            stop_master(m)
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
