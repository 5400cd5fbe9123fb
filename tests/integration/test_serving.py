"""Serving under load and misbehaviour, against the real daemon: many
subscribers over several workers, keep-alive publishing, connection caps,
slow consumers, and clients or publishers that vanish halfway."""

import http.client
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

from ringcast_harness import SLOW, read_response
from test_streams import TINY_RING, Publisher, ids_of, publish_many


def news_server(make_server, **sections):
    srv = make_server(start=False, **sections)
    srv.ctl("topic", "add", "news")
    return srv.start()


def test_publishes_on_one_keepalive_connection_get_increasing_ids(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port,
                                      timeout=5 * SLOW)
    try:
        ids, sock = [], None
        for i in range(5):
            conn.request("POST", "/publish/news", body=f"k{i}".encode())
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 201, body
            assert resp.getheader("Connection") != "close"
            ids.append(int(resp.getheader("Ringcast-Event-ID")))
            sock = sock or conn.sock
            assert conn.sock is sock, "the connection was not kept"
        assert ids == sorted(ids) and len(set(ids)) == 5
    finally:
        conn.close()


def test_publisher_disconnect_mid_body_appends_nothing(server):
    before = server.publish("news", "before")
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=5 * SLOW) as s:
        s.sendall(b"POST /publish/news HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Length: 100\r\n\r\n0123456789")
        time.sleep(0.2)
    # A second one that resets instead of closing.
    s = socket.create_connection(("127.0.0.1", server.port),
                                 timeout=5 * SLOW)
    s.sendall(b"POST /publish/news HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Length: 100\r\n\r\n0123456789")
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    time.sleep(0.2)
    after = server.publish("news", "after")
    assert after == before + 1
    sub = server.subscribe("/events/news", headers={"Last-Event-ID": "0"})
    try:
        got = sub.events(2, timeout=5)
        assert [(int(e["id"]), e["data"]) for e in got] == \
            [(before, "before"), (after, "after")]
    finally:
        sub.close()


def test_500_subscribers_over_all_workers_each_get_every_event(make_server):
    srv = news_server(make_server, server={"workers": "4"})
    subs = []
    try:
        # Connect in parallel bursts: one client connecting in a loop would
        # mostly meet whichever worker waits first (EPOLLEXCLUSIVE).
        with ThreadPoolExecutor(max_workers=50) as pool:
            subs = list(pool.map(
                lambda _: srv.subscribe("/events/news", timeout=20),
                range(500)))
        assert all(sub.status == 200 for sub in subs)
        streams = {k: v for k, v in srv.metrics().items()
                   if k.startswith("ringcast_connections{")
                   and 'kind="stream"' in k}
        assert sum(streams.values()) == 500, streams
        assert sum(1 for v in streams.values() if v) >= 2, streams
        print("streams per worker:", sorted(streams.values()))
        datas = [f"fan-{i}" for i in range(200)]
        ids = publish_many(srv, "news", datas)
        want = list(zip(ids, datas))
        for sub in subs:
            got = sub.events(200, timeout=20)
            assert [(int(e["id"]), e["data"]) for e in got] == want
    finally:
        for sub in subs:
            sub.close()


def test_stream_over_max_connections_is_soft_rejected(make_server):
    srv = news_server(make_server, limits={"max_connections": "2"})
    first = srv.subscribe("/events/news")
    second = srv.subscribe("/events/news")
    try:
        third = srv.subscribe("/events/news")
        assert third.status == 200
        assert third.read_until_end(timeout=5) == []
        assert third.clean_end
        assert len(third.retry) == 1 and third.retry[0] >= 1000
        assert any("full" in c for c in third.comments), third.comments
        third.close()
    finally:
        first.close()
        second.close()


def test_publish_over_max_connections_is_503_with_retry_after(make_server):
    srv = news_server(make_server, limits={"max_connections": "2"})
    first = srv.subscribe("/events/news")
    second = srv.subscribe("/events/news")
    try:
        status, headers, _ = srv.request("POST", "/publish/news", body=b"x")
        assert status == 503
        assert int(headers["retry-after"]) > 0
    finally:
        first.close()
        second.close()
    # With room again, publishing works.
    deadline = time.monotonic() + 5 * SLOW
    while True:
        status, _, _ = srv.request("POST", "/publish/news", body=b"x")
        if status == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 201


def test_slow_consumer_is_closed_and_told_of_the_gap(make_server):
    srv = news_server(make_server, **TINY_RING)
    # A small receive window, and no reading: the server soon blocks.
    sub = srv.subscribe("/events/news", rcvbuf=4096)
    # More than the server's socket buffer can ever absorb, with margin.
    wmem_max = int(open("/proc/sys/net/ipv4/tcp_wmem").read().split()[2])
    count = max(2000, int(1.5 * (wmem_max + 256 * 1024) / 3000))
    datas = [f"{i:05d}" + "s" * 3000 for i in range(count)]
    ids = publish_many(srv, "news", datas)
    by_id = dict(zip(ids, datas))
    got = sub.read_until_end(timeout=10)
    sub.close()
    # It may end mid-frame (the frame it was blocked in is gone); the
    # strict client then drops the torn tail, as an EventSource would.
    assert sub.eof
    # Whole events only, in order, no gap in what it got, none torn.
    assert got, "the consumer got nothing at all"
    assert ids_of(got) == ids[:len(got)]
    assert all(e["data"] == by_id[int(e["id"])] for e in got)
    assert len(got) < len(ids), "the slow consumer was never closed"
    assert sum(v for k, v in srv.metrics().items() if k.startswith(
        "ringcast_slow_consumer_closes_total{")) >= 1
    again = srv.subscribe("/events/news",
                          headers={"Last-Event-ID": got[-1]["id"]})
    try:
        gap = again.events(1, timeout=5)[0]
        assert gap["event"] == "ringcast-gap"
        oldest = int(gap["data"])
        assert oldest > int(got[-1]["id"]) + 1
        retained = [s for s in ids if s >= oldest]
        assert ids_of(again.events(len(retained), timeout=5)) == retained
    finally:
        again.close()


def reset_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


def test_client_vanishing_mid_stream_disturbs_nobody(make_server):
    srv = news_server(make_server, server={"workers": "1"})
    worker = srv.worker_pids()
    publish_many(srv, "news", ["b" * 2000] * 200)
    stayer = srv.subscribe("/events/news")
    leavers = [srv.subscribe("/events/news") for _ in range(3)]
    # One more that asks for a replay it never reads.
    backlog = srv.subscribe("/events/news", headers={"Last-Event-ID": "0"},
                            rcvbuf=4096)
    pub = Publisher(srv)
    try:
        ids = [pub.publish("news", "e0")]
        for sub in leavers:
            assert ids_of(sub.events(1, timeout=5)) == ids
        reset_close(leavers[0].sock)        # RST
        leavers[1].close()                  # FIN
        leavers[2].sock.shutdown(socket.SHUT_RDWR)
        leavers[2].close()
        reset_close(backlog.sock)
        ids += [pub.publish("news", f"e{i}") for i in range(1, 100)]
        got = stayer.events(len(ids), timeout=10)
        assert [(int(e["id"]), e["data"]) for e in got] == \
            [(s, f"e{i}") for i, s in enumerate(ids)]
        assert srv.worker_pids() == worker, "the worker died"
        assert srv.request("GET", "/healthz")[0] == 200
    finally:
        pub.close()
        stayer.close()
