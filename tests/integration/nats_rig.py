"""A NATS JetStream rig for the cluster tests (issue #16): N nats-server
processes on loopback, one JetStream cluster (or one server alone when
N = 1), each with its own config file and store directory under a
temporary directory, watched through their HTTP monitoring endpoints.
Processes are stopped, killed, paused and restarted by PID, and only the
rig's own.  There is no NATS client for Python here, so a minimal one
(the text protocol: CONNECT, PUB, SUB, MSG) is included for requests to
the JetStream API ($JS.API.*), enough to create or delete a stream.

A missing nats-server is an error, never a skip: ./bootstrap check
installs it (CHECK_PACKAGES)."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from ringcast_harness import SLOW, free_port

NATS_SERVER = os.environ.get("NATS_SERVER", "/usr/sbin/nats-server")


def nats_server_path():
    """The nats-server binary; an AssertionError (a failure, not a skip)
    when it is missing."""
    path = NATS_SERVER if os.path.isabs(NATS_SERVER) else \
        shutil.which(NATS_SERVER)
    if not path or not os.access(path, os.X_OK):
        raise AssertionError(
            f"nats-server not found at {NATS_SERVER}: the cluster tests "
            "need it (apt-get install nats-server, or ./bootstrap check "
            "as root; NATS_SERVER= names another binary)")
    return path


def monitor(port, path, timeout=2):
    """GET http://127.0.0.1:<port>/path of a nats-server's monitoring
    listener as JSON; None when it does not answer 2xx (down, paused,
    starting, or /healthz unhealthy)."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


class Node:
    """One nats-server: its ports, config, store and process."""

    def __init__(self, tmp, name):
        self.name = name
        self.dir = pathlib.Path(tmp) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store = self.dir / "store"
        self.conf = self.dir / "nats.conf"
        self.log = self.dir / "nats.log"
        self.port = free_port()
        self.mon_port = free_port()
        self.route_port = free_port()
        self.proc = None

    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class NatsRig:
    """n nats-servers on loopback: n == 1 is one server with JetStream,
    n > 1 one JetStream cluster (server names n1..nN)."""

    def __init__(self, tmp, n=3, cluster="ringcast-test",
                 max_mem="64MB", max_file="256MB"):
        assert n >= 1
        self.binary = nats_server_path()
        self.tmp = pathlib.Path(tmp)
        self.cluster = cluster
        self.max_mem = max_mem
        self.max_file = max_file
        self.nodes = [Node(self.tmp, f"n{i + 1}") for i in range(n)]
        for node in self.nodes:
            self._write_config(node)

    def _write_config(self, node):
        lines = [
            f"server_name: {node.name}",
            f"listen: 127.0.0.1:{node.port}",
            f"http: 127.0.0.1:{node.mon_port}",
            "jetstream {",
            f'  store_dir: "{node.store}"',
            f"  max_mem: {self.max_mem}",
            f"  max_file: {self.max_file}",
            "}",
        ]
        if len(self.nodes) > 1:
            routes = ", ".join(f"nats-route://127.0.0.1:{o.route_port}"
                               for o in self.nodes if o is not node)
            lines += [
                "cluster {",
                f"  name: {self.cluster}",
                f"  listen: 127.0.0.1:{node.route_port}",
                f"  routes: [{routes}]",
                "}",
            ]
        node.conf.write_text("\n".join(lines) + "\n")

    # -- addresses ---------------------------------------------------------
    def urls(self, only_running=False):
        """The client URLs, comma-separated, as [cluster] nats wants."""
        return ",".join(n.url() for n in self.nodes
                        if not only_running or n.running())

    def url(self, i):
        return self.nodes[i].url()

    def pids(self):
        return [n.proc.pid for n in self.nodes if n.running()]

    # -- process control -----------------------------------------------
    def start(self, i=None, wait=True, timeout=45):
        """Start node i (every node when None) on its ports and store; with
        wait, until JetStream has a meta leader that every running node
        knows (bounded: an AssertionError after timeout seconds)."""
        for node in self.nodes if i is None else [self.nodes[i]]:
            if node.running():
                continue
            node.proc = subprocess.Popen(
                [self.binary, "-c", str(node.conf)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=open(node.log, "ab"))
        if wait:
            self.wait_ready(timeout)
        return self

    def stop(self, i, timeout=10):
        """SIGTERM node i by PID and wait for it; SIGKILL after timeout."""
        self._end(self.nodes[i], signal.SIGTERM, timeout)

    def kill(self, i):
        """SIGKILL node i by PID (a crash: nothing flushed) and reap it."""
        self._end(self.nodes[i], signal.SIGKILL, 10)

    def _end(self, node, sig, timeout):
        if node.proc is None:
            return
        if node.proc.poll() is None:
            self._cont(node)
            node.proc.send_signal(sig)
            try:
                node.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
                raise AssertionError(f"nats-server {node.name} did not "
                                     f"stop in time:\n{self.log_text(node)}")

    def restart(self, i, wait=True, timeout=45):
        self.stop(i)
        return self.start(i, wait=wait, timeout=timeout)

    @staticmethod
    def _cont(node):
        try:
            os.kill(node.proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    def pause(self, i):
        """SIGSTOP node i: it holds its sockets but answers nothing."""
        node = self.nodes[i]
        if node.running():
            os.kill(node.proc.pid, signal.SIGSTOP)

    def resume(self, i):
        node = self.nodes[i]
        if node.running():
            self._cont(node)

    def pause_all(self):
        for i in range(len(self.nodes)):
            self.pause(i)

    def resume_all(self):
        for i in range(len(self.nodes)):
            self.resume(i)

    def stop_all(self):
        """SIGTERM every node (NATS down, stores kept); start() again."""
        for i in range(len(self.nodes)):
            self.stop(i)

    def down_for(self, seconds, pause=False):
        """NATS down for seconds: every node stopped (SIGTERM; stores
        kept) or, with pause, frozen (SIGSTOP: connections hang rather than
        close), then started or resumed, until ready again."""
        if pause:
            self.pause_all()
        else:
            self.stop_all()
        time.sleep(seconds)
        if pause:
            self.resume_all()
        else:
            self.start(wait=False)
        return self.wait_ready()

    def cleanup(self):
        """Kill the rig's own processes (by PID) and reap them."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                self._cont(node)
                node.proc.kill()
                node.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # -- monitoring ------------------------------------------------------
    def monitor(self, i, path, timeout=2):
        """GET http://127.0.0.1:<mon>/path of node i as JSON; None when the
        node does not answer (down, paused, starting)."""
        return monitor(self.nodes[i].mon_port, path, timeout)

    def healthy(self, i):
        """Does node i report JetStream healthy?  Plain /healthz answers
        503 until a meta leader is known and the node's streams and
        consumers are current; ?js-enabled-only=true says ok long before
        (some 5 to 8 s after a whole cluster restarts)."""
        res = self.monitor(i, "/healthz")
        return res is not None and res.get("status") == "ok" and \
            self.meta_leader(i) is not None

    def meta_leader(self, i):
        """The JetStream meta leader's server name as node i sees it (the
        node itself with one server), or None."""
        jsz = self.monitor(i, "/jsz")
        if jsz is None or jsz.get("disabled"):
            return None
        if len(self.nodes) == 1:
            return self.nodes[0].name
        meta = jsz.get("meta_cluster") or {}
        return meta.get("leader") or None

    def index_of(self, name):
        for i, node in enumerate(self.nodes):
            if node.name == name:
                return i
        return None

    def meta_leader_index(self):
        """Index of the meta leader that every running node agrees on, or
        None."""
        seen = {self.meta_leader(i) for i, n in enumerate(self.nodes)
                if n.running()}
        if len(seen) != 1:
            return None
        name = seen.pop()
        return None if name is None else self.index_of(name)

    def wait_ready(self, timeout=45):
        """Every running node healthy and one agreed meta leader."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None \
                        and node.proc.returncode != -signal.SIGKILL and \
                        node.proc.returncode != 0 and \
                        node.proc.returncode != -signal.SIGTERM:
                    raise AssertionError(
                        f"nats-server {node.name} exited "
                        f"{node.proc.returncode}:\n{self.log_text(node)}")
            if all(self.healthy(i) for i, n in enumerate(self.nodes)
                   if n.running()) and self.meta_leader_index() is not None:
                return self
            time.sleep(0.1)
        raise AssertionError("NATS cluster not ready in time:\n"
                             + self.log_text())

    def stream_info(self, stream, i=None):
        """The monitoring view of stream on node i (or the first running
        node that has it): a dict with config, state and, in a cluster,
        cluster.leader; None when no node reports it."""
        for j in range(len(self.nodes)) if i is None else [i]:
            if not self.nodes[j].running():
                continue
            jsz = self.monitor(j, "/jsz?accounts=true&streams=true"
                               "&consumers=true&config=true")
            for acc in (jsz or {}).get("account_details") or []:
                for st in acc.get("stream_detail") or []:
                    if st.get("name") == stream:
                        return st
        return None

    def stream_leader(self, stream):
        """Index of the node leading stream's replicas (0 with one server),
        or None while it has none."""
        if len(self.nodes) == 1:
            return 0 if self.stream_info(stream) is not None else None
        names = set()
        for i, node in enumerate(self.nodes):
            st = self.stream_info(stream, i) if node.running() else None
            leader = ((st or {}).get("cluster") or {}).get("leader")
            if leader:
                names.add(leader)
        if len(names) != 1:
            return None
        return self.index_of(names.pop())

    def wait_stream_leader(self, stream, timeout=45, not_index=None):
        """Wait until stream has a leader (other than not_index); its
        index."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            i = self.stream_leader(stream)
            if i is not None and i != not_index and \
                    self.nodes[i].running():
                return i
            time.sleep(0.1)
        raise AssertionError(f"stream {stream}: no leader in time:\n"
                             + self.log_text())

    def log_text(self, node=None):
        out = []
        for n in [node] if node is not None else self.nodes:
            try:
                text = n.log.read_text(errors="replace")
            except OSError:
                text = ""
            out.append(f"--- {n.name} ({n.log}) ---\n{text[-4000:]}")
        return "\n".join(out)

    def client(self, i=None, timeout=5):
        """A NatsClient connected to node i (the first running one when
        None)."""
        if i is None:
            i = next(j for j, n in enumerate(self.nodes) if n.running())
        return NatsClient("127.0.0.1", self.nodes[i].port, timeout)


class NatsClient:
    """The least of the NATS text protocol: publish and request/reply, for
    the JetStream API.  One request at a time; not for load."""

    def __init__(self, host, port, timeout=5):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.sid = 0
        self.inbox = f"_INBOX.rig{os.getpid()}.{port}.{id(self)}"
        line = self._line()
        if not line.startswith(b"INFO "):
            raise AssertionError(f"NATS said {line!r}, not INFO")
        self._send(b'CONNECT {"verbose":false,"pedantic":false,'
                   b'"headers":true,"no_responders":true,"protocol":1}'
                   b"\r\nPING\r\n")
        self._wait_pong()
        self.sub = self._subscribe(self.inbox + ".*")

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("NATS: no answer in time")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("NATS closed the connection")
        self.buf += chunk

    def _line(self, deadline=None):
        deadline = deadline or time.monotonic() + self.timeout
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n, deadline):
        while len(self.buf) < n + 2:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _wait_pong(self):
        deadline = time.monotonic() + self.timeout
        while True:
            line = self._line(deadline)
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                raise AssertionError(f"NATS: {line.decode()}")

    def _subscribe(self, subject):
        self.sid += 1
        self._send(f"SUB {subject} {self.sid}\r\n".encode())
        return self.sid

    def publish(self, subject, payload=b"", reply=None):
        if isinstance(payload, str):
            payload = payload.encode()
        head = f"PUB {subject} {reply + ' ' if reply else ''}"
        self._send(f"{head}{len(payload)}\r\n".encode() + payload + b"\r\n")

    def request(self, subject, payload=b"", timeout=None):
        """Publish with a reply inbox; the reply's payload (bytes).  A
        no-responders status (503) is a ConnectionError."""
        reply = f"{self.inbox}.{time.monotonic_ns()}"
        self.publish(subject, payload, reply)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            line = self._line(deadline)
            if line == b"PING":
                self._send(b"PONG\r\n")
                continue
            if line.startswith(b"-ERR"):
                raise AssertionError(f"NATS: {line.decode()}")
            parts = line.split()
            if parts[:1] == [b"MSG"]:
                data = self._take(int(parts[-1]), deadline)
                if parts[1].decode() == reply:
                    return data
            elif parts[:1] == [b"HMSG"]:
                data = self._take(int(parts[-1]), deadline)
                hlen = int(parts[-2])
                head, body = data[:hlen], data[hlen:]
                if parts[1].decode() != reply:
                    continue
                status = head.split(b"\r\n", 1)[0].split()
                if len(status) >= 2 and status[1] == b"503":
                    raise ConnectionError(f"NATS: no responders for "
                                          f"{subject}")
                return body

    def js_publish(self, subject, payload, timeout=None):
        """Publish to a stream's subject; the PubAck ({"stream", "seq"})."""
        res = json.loads(self.request(subject, payload, timeout))
        if "error" in res:
            raise AssertionError(f"JetStream publish: {res['error']}")
        return res

    def js(self, api, req=None, timeout=None):
        """A JetStream API request ($JS.API.<api>) as JSON; an
        AssertionError with the error when JetStream answers one."""
        payload = json.dumps(req).encode() if req is not None else b""
        res = json.loads(self.request(f"$JS.API.{api}", payload, timeout))
        if "error" in res:
            raise AssertionError(f"JetStream {api}: {res['error']}")
        return res

    def stream_create(self, name, subjects, replicas=1, **config):
        cfg = {"name": name, "subjects": subjects, "num_replicas": replicas,
               "storage": "file"}
        cfg.update(config)
        return self.js(f"STREAM.CREATE.{name}", cfg)

    def stream_delete(self, name):
        return self.js(f"STREAM.DELETE.{name}")

    def stream_info_api(self, name):
        return self.js(f"STREAM.INFO.{name}")
