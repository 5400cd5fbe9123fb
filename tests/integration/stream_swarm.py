"""A client process for the reload tests at scale: it opens n SSE streams
(HTTP/1.0, close-delimited) on one topic from one 127.0.0.x source address,
says "ready" when every stream has its 200, and reads them all with epoll,
keeping each stream's event ids and when they arrived (CLOCK_MONOTONIC, the
same clock as the parent's).  The parent then writes one JSON line: the
confirmed ids with the times their publishes were answered, and when the
reloads began.  The swarm
reads on until every stream has the last id (bounded), and prints one JSON
report: streams that ended, duplicated, lost or reordered events, and the
latest any event reached a stream after the first of this swarm's streams
had it, before the reloads and since: how long a stream was silent beyond
the publisher's own gap, without counting a slow publish or a stall of the
whole machine (the first figure is what these clients cost anyway).  It never
reconnects: a stream that ends is counted, not replaced.

usage: stream_swarm.py port topic n source timeout"""

import array
import json
import selectors
import socket
import sys
import time


class Stream:
    __slots__ = ("sock", "buf", "head", "ids", "times", "ended")

    def __init__(self, sock):
        self.sock, self.buf, self.head = sock, b"", False
        self.ids, self.times = array.array("q"), array.array("d")
        self.ended = False


def parse(s, now):
    """Take the whole events in s.buf; the id of each, and when."""
    if not s.head:
        end = s.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        status = s.buf.split(b" ", 2)[1]
        if status != b"200":
            raise OSError(f"status {status!r}")
        s.buf, s.head = s.buf[end + 4:], True
    while True:
        end = s.buf.find(b"\n\n")
        if end < 0:
            return
        frame, s.buf = s.buf[:end], s.buf[end + 2:]
        for line in frame.split(b"\n"):
            if line.startswith(b"id:"):
                s.ids.append(int(line[3:]))
                s.times.append(now)
                break


def main():
    port, topic, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    source, timeout = sys.argv[4], float(sys.argv[5])
    request = (f"GET /events/{topic} HTTP/1.0\r\n"
               f"Host: 127.0.0.1:{port}\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    streams = []
    for _ in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        sock.sendall(request)
        sock.setblocking(False)
        s = Stream(sock)
        streams.append(s)
        sel.register(sock, selectors.EVENT_READ, s)
    sel.register(sys.stdin, selectors.EVENT_READ, None)

    def read(s):
        now = time.monotonic()
        try:
            while True:
                data = s.sock.recv(65536)
                if not data:
                    raise OSError("end of stream")
                s.buf += data
                parse(s, now)
        except BlockingIOError:
            pass
        except OSError:
            s.ended = True
            sel.unregister(s.sock)

    ready, want = False, None
    deadline = time.monotonic() + timeout
    while want is None:
        if not ready and all(s.head or s.ended for s in streams):
            print(f"ready {sum(s.head for s in streams)}", flush=True)
            ready = True
        if not ready and time.monotonic() > deadline:
            print("ready 0", flush=True)
            ready = True
        for key, _ in sel.select(0.05):
            if key.data is None:
                line = sys.stdin.readline()
                want = json.loads(line) if line else {"ids": [], "at": []}
                sel.unregister(sys.stdin)
            else:
                read(key.data)
    ids, at = want["ids"], want["at"]
    last = ids[-1] if ids else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(
            s.ended or (s.ids and s.ids[-1] >= last) for s in streams):
        for key, _ in sel.select(0.05):
            read(key.data)

    published = dict(zip(ids, at))
    first = {}
    for s in streams:
        for seq, t in zip(s.ids, s.times):
            if t < first.get(seq, t + 1):
                first[seq] = t
    want_set = set(ids)
    report = {"streams": n, "ended": 0, "dups": 0, "reordered": 0,
              "lost": 0, "lost_example": None, "late_ms": 0.0,
              "late_example": None, "base_late_ms": 0.0}
    for i, s in enumerate(streams):
        got = list(s.ids)
        report["ended"] += s.ended
        report["dups"] += len(got) - len(set(got))
        report["reordered"] += got != sorted(got)
        missing = want_set.difference(got)
        if missing:
            report["lost"] += 1
            report["lost_example"] = [i, sorted(missing)[:5]]
        for seq, t in zip(got, s.times):
            late = (t - first[seq]) * 1000
            if published.get(seq, t) < want.get("split", 0):
                report["base_late_ms"] = max(report["base_late_ms"], late)
            elif late > report["late_ms"]:
                report["late_ms"] = late
                report["late_example"] = [i, seq]
        s.sock.close()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    sys.exit(main())
