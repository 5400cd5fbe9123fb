"""Churn: many short connections against a daemon with two workers, in the
mix a real client population produces (streams, publishes, keep-alive,
and requests cut short or reset at every stage).  Afterwards each worker
holds as many descriptors as before, and its memory stayed flat once
warm.  Under the sanitizers (RINGCAST_SANITIZED=1) the run is scaled down
to 20,000 cycles, and RSS is reported but not bounded: ASan's quarantine
holds freed memory on purpose."""

import multiprocessing
import os
import random
import socket
import struct
import time

import pytest

from ringcast_harness import SLOW

SANITIZED = bool(os.environ.get("RINGCAST_SANITIZED"))
CYCLES = 20_000 if SANITIZED else 100_000
WARMUP = 2_000 if SANITIZED else 10_000
CLIENTS = 4
RSS_GROWTH_MAX = 2 * 1024 * 1024
FD_SLACK = 3
BODY = ("x" * 999).encode()     # big enough that the warm-up wraps the ring

# (kind, weight): what one cycle does.
MIX = [
    ("stream", 14),             # GET a stream, read its head, close
    ("stream-reset", 8),        # ... and reset it right after the head
    ("stream-replay", 2),       # resume from an old id, close mid-replay
    ("publish", 18),            # POST, read 201, close
    ("publish-keepalive", 8),   # three POSTs on one connection
    ("half-request-line", 8),   # "GET /eve", close
    ("half-headers", 8),        # head cut inside a header, close or reset
    ("body-cut-short", 8),      # Content-Length: 100, 10 bytes, close
    ("bad-request", 8),         # a 400, read, close
    ("connect-only", 8),        # connect and close at once
    ("healthz", 10),            # keep-alive GET /healthz, client closes
]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- the client side, run in several processes ---------------------------------

def _connect(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Choose the port at connect time, from the whole 4-tuple's space.
    s.setsockopt(socket.SOL_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((source, 0))
    s.settimeout(10 * SLOW)
    s.connect(("127.0.0.1", port))
    return s


def _reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def _response(s, buf=b""):
    """Read one response; return (status, rest of the buffer)."""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            raise ConnectionError(f"closed after {buf[:80]!r}")
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = s.recv(65536)
        if not data:
            raise ConnectionError("closed in the body")
        rest += data
    return status, rest[length:]


def _post(topic):
    return (f"POST /publish/{topic} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY


def _cycle(kind, port, source, rnd):
    """One connection; returns a list of unexpected outcomes (empty: ok)."""
    bad = []
    s = _connect(port, source)
    try:
        if kind in ("stream", "stream-reset"):
            s.sendall(b"GET /events/news HTTP/1.1\r\nHost: x\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = s.recv(65536)
                if not data:
                    break
                buf += data
            if not buf.startswith(b"HTTP/1.1 200 "):
                bad.append((kind, buf[:40]))
            if kind == "stream-reset":
                _reset(s)
        elif kind == "stream-replay":
            s.sendall(b"GET /events/news HTTP/1.1\r\nHost: x\r\n"
                      b"Last-Event-ID: 1\r\n\r\n")
            data = s.recv(65536)
            if not data.startswith(b"HTTP/1.1 200 "):
                bad.append((kind, data[:40]))
            _reset(s)
        elif kind in ("publish", "publish-keepalive"):
            rest = b""
            for _ in range(3 if kind == "publish-keepalive" else 1):
                s.sendall(_post("news"))
                status, rest = _response(s, rest)
                if status != 201:
                    bad.append((kind, status))
        elif kind == "half-request-line":
            s.sendall(b"GET /eve")
        elif kind == "half-headers":
            s.sendall(b"GET /events/news HTTP/1.1\r\nHost: x\r\nLast-Ev")
            if rnd.random() < 0.5:
                _reset(s)
        elif kind == "body-cut-short":
            s.sendall(b"POST /publish/news HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100\r\n\r\n0123456789")
        elif kind == "bad-request":
            s.sendall(b"GET /events/%2e%2e HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _ = _response(s)
            if status != 400:
                bad.append((kind, status))
        elif kind == "connect-only":
            pass
        elif kind == "healthz":
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _ = _response(s)
            if status != 200:
                bad.append((kind, status))
    except OSError as e:
        bad.append((kind, repr(e)))
    finally:
        s.close()
    return bad


def _client(args):
    port, index, count, deadline = args
    rnd = random.Random(index)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    # Spread over source addresses: the client side keeps TIME_WAIT.
    sources = [f"127.0.0.{10 + (index * 7 + i) % 50}" for i in range(7)]
    bad, done = [], 0
    for i in range(count):
        if time.monotonic() > deadline:
            break
        kind = rnd.choices(kinds, weights)[0]
        bad += _cycle(kind, port, sources[i % len(sources)], rnd)
        done += 1
    return done, bad[:20], len(bad)


def churn(pool, port, cycles, budget):
    deadline = time.monotonic() + budget
    per = cycles // CLIENTS
    started = time.monotonic()
    results = pool.map(_client, [(port, i + int(started), per, deadline)
                                 for i in range(CLIENTS)])
    elapsed = time.monotonic() - started
    done = sum(r[0] for r in results)
    samples = [b for r in results for b in r[1]]
    nbad = sum(r[2] for r in results)
    return done, elapsed, nbad, samples


def steady_fds(pids, timeout=15):
    """Descriptor counts once they stop moving (a worker may still be
    opening its catalog when the daemon first answers)."""
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while True:
        counts = {p: fd_count(p) for p in pids}
        if counts == last or time.monotonic() > deadline:
            return counts
        last = counts
        time.sleep(0.5)


def settle(pids, baseline, timeout=15):
    """Wait until each worker is back to its baseline descriptor count."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        counts = {p: fd_count(p) for p in pids}
        if all(abs(counts[p] - baseline[p]) <= FD_SLACK for p in pids):
            return counts
        if time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def test_churn_leaks_no_descriptors_and_no_memory(make_server, capsys):
    srv = make_server(start=False, server={"workers": "2"},
                      ring={"size": "2M", "slots": "4096"},
                      # Caps well above what the clients hold: a count
                      # that leaked would trip them before long.
                      limits={"max_event_bytes": "64K",
                              "max_connections": "1000",
                              "max_connections_per_address": "20"},
                      log={"level": "info"})
    srv.ctl("topic", "add", "news")
    srv.start()
    pids = srv.worker_pids()
    assert len(pids) == 2
    fds_start = steady_fds(pids)

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(CLIENTS) as pool:
        done, elapsed, nbad, samples = churn(pool, srv.port, WARMUP,
                                             60 * SLOW)
        assert done == WARMUP and nbad == 0, samples
        fds_warm = settle(pids, fds_start)
        rss_warm = {p: rss_kib(p) for p in pids}
        done, elapsed, nbad, samples = churn(pool, srv.port, CYCLES,
                                             120 * SLOW)
    fds_end = settle(pids, fds_start)
    rss_end = {p: rss_kib(p) for p in pids}
    rate = done / elapsed
    with capsys.disabled():
        print(f"\nchurn: {done} cycles in {elapsed:.1f} s ({rate:.0f}/s), "
              f"{CLIENTS} clients, after {WARMUP} warm-up cycles")
        for p in pids:
            print(f"  worker {p}: fds {fds_start[p]} at start, "
                  f"{fds_warm[p]} after warm-up, {fds_end[p]} at the end; "
                  f"VmRSS {rss_warm[p]} KiB after warm-up, {rss_end[p]} KiB "
                  f"at the end ({rss_end[p] - rss_warm[p]:+d} KiB)")
    assert done == CYCLES, f"only {done} cycles in the time budget"
    assert nbad == 0, samples
    # No worker crashed or was replaced.
    assert srv.worker_pids() == pids
    for p in pids:
        assert abs(fds_end[p] - fds_start[p]) <= FD_SLACK, (fds_start, fds_end)
    if not SANITIZED:
        for p in pids:
            assert (rss_end[p] - rss_warm[p]) * 1024 <= RSS_GROWTH_MAX, (
                rss_warm, rss_end)
    # The connection gauges (what the caps count) are back to zero.
    status, _, body = srv.request("GET", "/metrics", admin=True)
    assert status == 200
    open_conns = [line for line in body.decode().splitlines()
                  if line.startswith("ringcast_connections{")
                  and 'kind="admin"' not in line]
    assert open_conns and all(line.endswith(" 0") for line in open_conns), (
        open_conns)
    # The server still serves streams and publishes.
    sub = srv.subscribe("/events/news")
    seq = srv.publish("news", "after the churn")
    assert sub.events(1, timeout=5) == [
        {"id": str(seq), "event": "message", "data": "after the churn"}]
    sub.close()
