"""Fixtures shared by the integration tests: a real ringcastd on free
loopback ports in a temporary directory, ringcastctl against the same
config, and a strict SSE client that parses HTTP/1.1 chunked framing and
the event stream exactly as the SSE specification says."""

import http.client
import os
import pathlib
import signal
import socket
import subprocess
import time

HERE = pathlib.Path(__file__).resolve().parent
BUILDDIR = pathlib.Path(os.environ.get("RC_BUILDDIR", HERE.parent.parent))
RINGCASTD = os.environ.get("RINGCASTD", str(BUILDDIR / "ringcastd"))
RINGCASTCTL = os.environ.get("RINGCASTCTL", str(BUILDDIR / "ringcastctl"))
# Sanitizer builds run slower; every bound below scales with this.
SLOW = 3.0 if os.environ.get("RINGCAST_SANITIZED") else 1.0


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


DEFAULTS = {
    "server": {"workers": "2", "drain_timeout": "5s", "reload_spread": "1s"},
    "ring": {"size": "8M", "slots": "16384"},
    "catalog": {"map_size": "16M"},
    "publish": {"require_token": "no"},
    "stream": {"heartbeat": "15s", "retry": "1s"},
    "limits": {"header_timeout": "2s"},
    "log": {"target": "stderr", "level": "debug"},
}


class Server:
    """One ringcastd, its config and its files under tmp."""

    def __init__(self, tmp, **sections):
        self.tmp = pathlib.Path(tmp)
        self.port = free_port()
        self.admin_port = free_port()
        self.sections = {k: dict(v) for k, v in DEFAULTS.items()}
        self.sections["server"].update({
            "listen": f"127.0.0.1:{self.port}",
            "admin_listen": f"127.0.0.1:{self.admin_port}",
            "pidfile": str(self.tmp / "ringcastd.pid"),
        })
        self.sections["ring"]["path"] = str(self.tmp / "ring")
        self.sections["catalog"]["path"] = str(self.tmp / "catalog")
        for name, keys in sections.items():
            self.sections.setdefault(name, {}).update(keys)
        self.conf = self.tmp / "ringcast.conf"
        self.log = self.tmp / "ringcastd.log"
        self.proc = None
        self.write_config()

    def write_config(self):
        lines = []
        for name, keys in self.sections.items():
            lines.append(f"[{name}]")
            lines += [f"{k} = {v}" for k, v in keys.items()]
        self.conf.write_text("\n".join(lines) + "\n")

    # -- process control -------------------------------------------------
    def start(self, wait=True):
        self.proc = subprocess.Popen(
            [RINGCASTD, "-d", "-f", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"ringcastd exited {self.proc.returncode}:\n"
                    + self.log_text())
            try:
                status, _, _ = self.request("GET", "/healthz", timeout=1)
                # The archiver, forked last, has named itself: until then
                # it would pass for a worker in worker_pids().
                if status == 200 and len(self.worker_pids()) >= int(
                        self.sections["server"].get("workers", "1")) and \
                        self.archiver_pid() is not None:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("ringcastd did not become ready:\n"
                             + self.log_text())

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise AssertionError("ringcastd did not stop in time:\n"
                                 + self.log_text())

    def kill_all(self):
        """SIGKILL the master and every process it started (by PID)."""
        pids = self.child_pids()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
                pathlib.Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.02)

    def child_pids(self, master=None):
        """Every child of the master: workers and the archiver."""
        master = master or (self.proc.pid if self.proc else None)
        if master is None:
            return []
        try:
            text = pathlib.Path(
                f"/proc/{master}/task/{master}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    @staticmethod
    def _title(pid):
        try:
            return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return b""

    def worker_pids(self, master=None):
        """Children that have named themselves workers: a child just
        forked still bears the master's title, and may become the
        archiver (respawned on every reload)."""
        return [p for p in self.child_pids(master)
                if b"worker" in self._title(p)]

    def archiver_pid(self):
        """The archiver's PID, or None."""
        for p in self.child_pids():
            if b"archiver" in self._title(p):
                return p
        return None

    def troubles(self):
        """Lines of the log that no test should ever cause: sanitizer
        reports (tests that kill workers on purpose still pass)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        marks = ("Sanitizer", "runtime error:")
        return [line for line in text.splitlines()
                if any(m in line for m in marks)]

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    # -- clients ------------------------------------------------------------
    def ctl(self, *args, input=None, check=True):
        res = subprocess.run([RINGCASTCTL, "-f", str(self.conf), *args],
                             input=input, capture_output=True, text=True,
                             timeout=30 * SLOW)
        if check and res.returncode != 0:
            raise AssertionError(f"ringcastctl {' '.join(args)}: exit "
                                 f"{res.returncode}: {res.stderr}")
        return res

    def request(self, method, path, body=None, headers=None, admin=False,
                timeout=10):
        port = self.admin_port if admin else self.port
        conn = http.client.HTTPConnection("127.0.0.1", port,
                                          timeout=timeout * SLOW)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in
                                 resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def publish(self, topic, data, event=None, token=None, expect=201):
        headers = {}
        if event is not None:
            headers["Ringcast-Event"] = event
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if isinstance(data, str):
            data = data.encode()
        status, hdrs, body = self.request("POST", f"/publish/{topic}",
                                          body=data, headers=headers)
        assert status == expect, (status, body)
        if status == 201:
            return int(hdrs["ringcast-event-id"])
        return None

    def raw(self, data, admin=False, timeout=5, shut=False):
        """Send raw request bytes; return (status, headers, body) of the
        answer, the body read by Content-Length or to EOF.  shut=True
        half-closes our side after sending."""
        port = self.admin_port if admin else self.port
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=timeout * SLOW) as s:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
            return read_response(s)

    def token(self, *args):
        """ringcastctl token add ARGS: the secret it prints once."""
        out = self.ctl("token", "add", *args).stdout
        for line in out.splitlines():
            if line.startswith("secret: "):
                return line[len("secret: "):]
        raise AssertionError(f"no secret in {out!r}")

    def metrics(self):
        """/metrics of the admin listener as {'name{labels}': value}."""
        status, _, body = self.request("GET", "/metrics", admin=True)
        assert status == 200, status
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def subscribe(self, path, headers=None, version="1.1", timeout=10,
                  rcvbuf=None, source=None, port=None, preamble=b""):
        """source: a 127.0.0.x address to connect from; preamble: bytes
        sent before the request (a PROXY header), to port if given."""
        return SSEClient("127.0.0.1", port or self.port, path, headers,
                         version, timeout * SLOW, rcvbuf, source, preamble)


def wait_for(pred, timeout=5):
    """Poll pred every 50 ms until it holds or timeout (scaled) passes."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def read_response(sock):
    """Read one HTTP answer from sock: (status, lower-case headers, body).
    The body is read by Content-Length, or to EOF without one."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed before an answer: "
                                 f"{raw!r}")
        raw += data
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        want = int(headers["content-length"])
        while len(body) < want:
            data = sock.recv(65536)
            if not data:
                break
            body += data
    else:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            body += data
    return status, headers, body


class StreamEnded(Exception):
    pass


class SSEClient:
    """A strict SSE client on a raw socket.  events() yields dicts with
    id, event, data (as an EventSource would dispatch them); it also keeps
    comments, retry values, and how the stream ended."""

    def __init__(self, host, port, path, headers=None, version="1.1",
                 timeout=10.0, rcvbuf=None, source=None, preamble=b""):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source is not None:
            self.sock.bind((source, 0))
        if rcvbuf is not None:
            # Before connect, so the window we offer stays small: a
            # subscriber that does not read then blocks the server soon.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                 rcvbuf)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        lines = [f"GET {path} HTTP/{version}", f"Host: {host}:{port}",
                 "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(preamble
                          + ("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        self.status, self.headers = self._read_head()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self.body = b""         # de-chunked stream bytes not yet parsed
        self.clean_end = False  # chunked terminator seen
        self.eof = False
        self.comments = []
        self.retry = []
        self.last_id = None
        self._event = {"data": [], "event": None}

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise StreamEnded()
        self.raw += data

    def _read_head(self):
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def _fill(self):
        """Move at least one byte of stream body into self.body."""
        if not self.chunked:
            if not self.raw:
                try:
                    self._recv()
                except StreamEnded:
                    self.eof = True
                    raise
            self.body += self.raw
            self.raw = b""
            return
        while True:
            if b"\r\n" in self.raw:
                size_line, rest = self.raw.split(b"\r\n", 1)
                size = int(size_line, 16)
                if size == 0:
                    if len(rest) >= 2:
                        assert rest[:2] == b"\r\n", rest[:10]
                        self.clean_end = True
                        self.eof = True
                        raise StreamEnded()
                elif len(rest) >= size + 2:
                    assert rest[size:size + 2] == b"\r\n", "bad chunk end"
                    self.body += rest[:size]
                    self.raw = rest[size + 2:]
                    return
            try:
                self._recv()
            except StreamEnded:
                self.eof = True
                raise

    def _next_line(self):
        while True:
            for i, ch in enumerate(self.body):
                if ch in (10, 13):
                    if ch == 13 and i + 1 == len(self.body):
                        break  # CR at the end: wait for a possible LF
                    line = self.body[:i]
                    skip = 2 if self.body[i:i + 2] == b"\r\n" else 1
                    self.body = self.body[i + skip:]
                    return line.decode("utf-8", "replace")
            self._fill()

    def next_event(self):
        """The next dispatched event, or raise StreamEnded."""
        while True:
            line = self._next_line()
            if line == "":
                ev = self._event
                self._event = {"data": [], "event": None}
                if not ev["data"] and ev["event"] is None:
                    continue
                if not ev["data"]:
                    continue
                return {"id": self.last_id, "event": ev["event"] or "message",
                        "data": "\n".join(ev["data"])}
            if line.startswith(":"):
                self.comments.append(line[1:])
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                self._event["data"].append(value)
            elif field == "event":
                self._event["event"] = value
            elif field == "id":
                if "\0" not in value:
                    self.last_id = value
            elif field == "retry" and value.isdigit():
                self.retry.append(int(value))

    def events(self, n, timeout=None):
        """Exactly n events, or raise (timeout or end)."""
        if timeout is not None:
            self.sock.settimeout(timeout * SLOW)
        return [self.next_event() for _ in range(n)]

    def next_comment(self, timeout=10):
        """The text of the next comment line (a heartbeat is ''), skipping
        anything else; raise on timeout or end."""
        self.sock.settimeout(timeout * SLOW)
        while True:
            line = self._next_line()
            if line.startswith(":"):
                self.comments.append(line[1:])
                return line[1:]

    def read_until_end(self, timeout=10):
        """Every event until the server ends the stream."""
        self.sock.settimeout(timeout * SLOW)
        out = []
        try:
            while True:
                out.append(self.next_event())
        except StreamEnded:
            return out

    def close(self):
        self.sock.close()
