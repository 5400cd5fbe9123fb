"""SSE streams against the real daemon: the 200's headers and framing for
HTTP/1.1 and 1.0, replay from Last-Event-ID (header or query), the
ringcast-gap event, multi-topic streams, heartbeats, and the replay→live
seam under concurrent publishing."""

import http.client
import socket
import threading
import time

from ringcast_harness import SLOW, StreamEnded

TINY_RING = {"ring": {"size": "64K", "slots": "64"},
             "limits": {"max_event_bytes": "4K"}}


def ids_of(events):
    return [int(e["id"]) for e in events]


class Publisher:
    """Publishes over one keep-alive connection (much faster than a new
    connection per event)."""

    def __init__(self, srv, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                               timeout=timeout * SLOW)

    def publish(self, topic, data, headers=None):
        self.conn.request("POST", f"/publish/{topic}", body=data.encode(),
                          headers=headers or {})
        resp = self.conn.getresponse()
        resp.read()
        assert resp.status == 201, resp.status
        return int(resp.getheader("Ringcast-Event-ID"))

    def close(self):
        self.conn.close()


def publish_many(srv, topic, datas):
    pub = Publisher(srv)
    try:
        return [pub.publish(topic, d) for d in datas]
    finally:
        pub.close()


# -- headers and framing ---------------------------------------------------

def test_stream_answers_200_with_event_stream_headers(server):
    sub = server.subscribe("/events/news")
    try:
        assert sub.status == 200
        assert sub.headers["content-type"] == \
            "text/event-stream; charset=utf-8"
        assert sub.headers["cache-control"] == "no-cache"
        assert sub.headers["x-accel-buffering"] == "no"
        assert "content-length" not in sub.headers
        assert sub.headers["transfer-encoding"] == "chunked"
    finally:
        sub.close()


def test_stream_starts_with_a_retry_hint(server):
    sub = server.subscribe("/events/news")
    try:
        seq = server.publish("news", "one")
        assert ids_of(sub.events(1, timeout=5)) == [seq]
        assert sub.retry[0] == 1000  # [stream] retry = 1s in the harness
    finally:
        sub.close()


def test_stream_http11_writes_one_chunk_per_frame(server):
    """The raw bytes: a chunk for the retry hint, then one chunk holding
    one whole frame with data: first and id: last."""
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=5 * SLOW) as s:
        s.sendall(b"GET /events/news HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        raw = b""
        while b"retry: 1000\n\n\r\n" not in raw:
            data = s.recv(65536)
            assert data, raw
            raw += data
        head, body = raw.split(b"\r\n\r\n", 1)
        assert body == b"d\r\nretry: 1000\n\n\r\n"
        seq = server.publish("news", "hello\nworld", event="greeting")
        frame = (f"event: greeting\ndata: hello\ndata: world\n"
                 f"id: {seq}\n\n").encode()
        want = f"{len(frame):x}\r\n".encode() + frame + b"\r\n"
        got = b""
        while len(got) < len(want):
            data = s.recv(65536)
            assert data, got
            got += data
        assert got == want


def test_stream_http11_ends_with_the_chunked_terminator(make_server):
    srv = make_server(start=False)
    srv.ctl("topic", "add", "news")
    srv.start()
    sub = srv.subscribe("/events/news")
    seq = srv.publish("news", "last")
    assert ids_of(sub.events(1, timeout=5)) == [seq]
    srv.stop()
    assert sub.read_until_end(timeout=10) == []
    assert sub.clean_end
    assert len(sub.retry) == 2  # the opening hint and the closing one


def test_stream_http10_is_close_delimited(make_server):
    srv = make_server(start=False)
    srv.ctl("topic", "add", "news")
    srv.start()
    sub = srv.subscribe("/events/news", version="1.0")
    assert sub.status == 200
    assert sub.headers["connection"].lower() == "close"
    assert "transfer-encoding" not in sub.headers
    assert "content-length" not in sub.headers
    assert sub.raw == b"" or sub.raw.startswith(b"retry: ")
    seq = srv.publish("news", "plain")
    assert [(e["id"], e["data"]) for e in sub.events(1, timeout=5)] == \
        [(str(seq), "plain")]
    srv.stop()
    assert sub.read_until_end(timeout=10) == []
    assert sub.eof and not sub.clean_end


# -- replay ----------------------------------------------------------------

def test_stream_replays_from_last_event_id_header(server):
    ids = publish_many(server, "news", [f"e{i}" for i in range(6)])
    sub = server.subscribe("/events/news",
                           headers={"Last-Event-ID": str(ids[1])})
    try:
        got = sub.events(4, timeout=5)
        assert ids_of(got) == ids[2:]
        assert [e["data"] for e in got] == [f"e{i}" for i in range(2, 6)]
        live = server.publish("news", "live")
        assert sub.events(1, timeout=5)[0] == \
            {"id": str(live), "event": "message", "data": "live"}
    finally:
        sub.close()


def test_stream_replays_from_last_event_id_query(server):
    ids = publish_many(server, "news", [f"e{i}" for i in range(6)])
    sub = server.subscribe(f"/events/news?lastEventId={ids[3]}")
    try:
        assert ids_of(sub.events(2, timeout=5)) == ids[4:]
    finally:
        sub.close()


def test_stream_last_event_id_header_wins_over_query(server):
    ids = publish_many(server, "news", [f"e{i}" for i in range(6)])
    sub = server.subscribe(f"/events/news?lastEventId={ids[0]}",
                           headers={"Last-Event-ID": str(ids[3])})
    try:
        assert ids_of(sub.events(2, timeout=5)) == ids[4:]
        live = server.publish("news", "live")
        assert ids_of(sub.events(1, timeout=5)) == [live]
    finally:
        sub.close()


def test_stream_without_resume_point_gets_only_live_events(server):
    publish_many(server, "news", ["old1", "old2"])
    sub = server.subscribe("/events/news")
    try:
        live = server.publish("news", "new")
        assert ids_of(sub.events(1, timeout=5)) == [live]
    finally:
        sub.close()


def test_stream_replay_meets_live_without_gap_or_duplicate(server):
    """A publisher thread appends 2,000 events while subscribers join
    mid-stream with various Last-Event-IDs: each gets exactly the ids after
    its resume point, in order, with their payloads."""
    total = 2000
    published = []          # (seq, data), appended by the publisher
    lock = threading.Lock()
    done = threading.Event()
    errors = []

    def publisher():
        pub = Publisher(server)
        try:
            for i in range(total):
                data = f"seam-{i}"
                seq = pub.publish("news", data)
                with lock:
                    published.append((seq, data))
            pub.publish("news", "end")
        except Exception as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            pub.close()
            done.set()

    results = {}

    def subscriber(name, resume):
        headers = {} if resume is None else {"Last-Event-ID": str(resume)}
        try:
            sub = server.subscribe("/events/news", headers=headers)
        except Exception as exc:
            errors.append(exc)
            return
        got = []
        try:
            sub.sock.settimeout(20 * SLOW)
            while True:
                ev = sub.next_event()
                if ev["data"] == "end":
                    break
                got.append((int(ev["id"]), ev["data"]))
        except Exception as exc:
            errors.append((name, exc))
        finally:
            sub.close()
            results[name] = (resume, got)

    threads = [threading.Thread(target=publisher)]
    threads[0].start()
    subs = []
    deadline = time.monotonic() + 30 * SLOW
    for k, at in enumerate((1, 150, 400, 700, 1000, 1300, 1600, 1900)):
        while len(published) < at and not done.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.001)
        with lock:
            snapshot = list(published)
        # Resume from the very start, a little behind, and right at the
        # head the publisher has reached.
        for j, resume in enumerate((0, snapshot[len(snapshot) // 2][0],
                                    snapshot[-1][0])):
            t = threading.Thread(target=subscriber,
                                 args=(f"{k}.{j}@{resume}", resume))
            t.start()
            subs.append(t)
    done.wait(60 * SLOW)
    assert not errors, errors
    assert len(published) == total
    for t in subs:
        t.join(30 * SLOW)
        assert not t.is_alive()
    assert not errors, errors
    assert len(results) == 24
    for name, (resume, got) in results.items():
        want = [p for p in published if p[0] > resume]
        assert got == want, (name, resume, got[:3], want[:3])


# -- gaps ------------------------------------------------------------------

def flood(srv, topic, n, size=3000):
    """Publish n events of about size bytes; enough of them evicts the
    first from a tiny ring."""
    return publish_many(srv, topic, [f"{i:05d}" + "x" * size
                                     for i in range(n)])


def test_stream_from_evicted_id_says_gap_then_replays_retained(make_server):
    srv = make_server(start=False, **TINY_RING)
    srv.ctl("topic", "add", "news")
    srv.start()
    ids = flood(srv, "news", 60)
    oldest = int(srv.metrics()["ringcast_ring_oldest_seq"])
    assert oldest > ids[1], "nothing was evicted"
    sub = srv.subscribe("/events/news", headers={"Last-Event-ID": str(ids[0])})
    try:
        assert sub.status == 200
        gap = sub.events(1, timeout=5)[0]
        assert gap["event"] == "ringcast-gap"
        assert int(gap["data"]) == oldest
        retained = [s for s in ids if s >= oldest]
        got = sub.events(len(retained), timeout=5)
        assert ids_of(got) == retained
        assert all(e["event"] == "message" for e in got)
    finally:
        sub.close()


def test_stream_from_malformed_id_says_gap_then_replays_all(server):
    ids = publish_many(server, "news", ["a", "b", "c"])
    sub = server.subscribe("/events/news", headers={"Last-Event-ID": "abc"})
    try:
        assert sub.status == 200
        gap = sub.events(1, timeout=5)[0]
        assert (gap["event"], gap["data"]) == ("ringcast-gap", str(ids[0]))
        assert ids_of(sub.events(3, timeout=5)) == ids
    finally:
        sub.close()


def test_stream_from_future_id_says_gap_then_replays_all(server):
    ids = publish_many(server, "news", ["a", "b", "c"])
    sub = server.subscribe("/events/news",
                           headers={"Last-Event-ID": str(ids[-1] + 1000)})
    try:
        assert sub.status == 200
        gap = sub.events(1, timeout=5)[0]
        assert (gap["event"], gap["data"]) == ("ringcast-gap", str(ids[0]))
        assert ids_of(sub.events(3, timeout=5)) == ids
        live = server.publish("news", "d")
        assert ids_of(sub.events(1, timeout=5)) == [live]
    finally:
        sub.close()


def test_quiet_topic_in_a_busy_ring_gets_no_gap(make_server):
    """Only 'busy' events were evicted; 'quiet' had none before the resume
    point, so resuming 'quiet' from an evicted id is no gap."""
    srv = make_server(start=False, **TINY_RING)
    srv.ctl("topic", "add", "busy")
    srv.ctl("topic", "add", "quiet")
    srv.start()
    busy = flood(srv, "busy", 60)
    assert int(srv.metrics()["ringcast_ring_oldest_seq"]) > busy[1]
    quiet = srv.publish("quiet", "hush")
    sub = srv.subscribe("/events/quiet",
                        headers={"Last-Event-ID": str(busy[0])})
    try:
        first = sub.events(1, timeout=5)[0]
        assert first == {"id": str(quiet), "event": "message", "data": "hush"}
    finally:
        sub.close()


# -- multi-topic -------------------------------------------------------------

def test_multi_topic_stream_merges_topics_in_global_id_order(make_server):
    srv = make_server(catalog={"auto_create_topics": "yes"})
    pub = Publisher(srv)
    try:
        plan = ["a", "c", "b", "a", "a", "c", "b", "b", "a"]
        seqs = [(pub.publish(t, f"{t}{i}"), t, f"{t}{i}")
                for i, t in enumerate(plan)]
        sub = srv.subscribe("/events?topic=a&topic=b&lastEventId=0")
        want = [(s, d) for s, t, d in seqs if t != "c"]
        got = sub.events(len(want), timeout=5)
        assert [(int(e["id"]), e["data"]) for e in got] == want
        live = [(pub.publish(t, f"live-{t}"), f"live-{t}")
                for t in ("c", "b", "c", "a")]
        got = sub.events(2, timeout=5)
        assert [(int(e["id"]), e["data"]) for e in got] == \
            [live[1], live[3]]
        sub.close()
    finally:
        pub.close()


def test_multi_topic_stream_lists_a_topic_once(make_server):
    srv = make_server(catalog={"auto_create_topics": "yes"})
    seq = srv.publish("a", "once")
    sub = srv.subscribe("/events?topic=a&topic=a&lastEventId=0")
    try:
        assert ids_of(sub.events(1, timeout=5)) == [seq]
        nxt = srv.publish("a", "twice?")
        assert ids_of(sub.events(1, timeout=5)) == [nxt]
    finally:
        sub.close()


# -- heartbeat -----------------------------------------------------------------

def test_idle_stream_gets_a_heartbeat_comment(make_server):
    srv = make_server(start=False, stream={"heartbeat": "1s"})
    srv.ctl("topic", "add", "news")
    srv.start()
    sub = srv.subscribe("/events/news")
    try:
        start = time.monotonic()
        assert sub.next_comment(timeout=2.5) == ""
        waited = time.monotonic() - start
        assert 0.8 <= waited <= 2.5 * SLOW, waited
        # And again, for as long as the stream stays idle.
        assert sub.next_comment(timeout=2.5) == ""
    finally:
        sub.close()


def test_busy_stream_gets_no_heartbeat(make_server):
    srv = make_server(start=False, stream={"heartbeat": "1s"})
    srv.ctl("topic", "add", "news")
    srv.start()
    sub = srv.subscribe("/events/news")
    pub = Publisher(srv)
    try:
        end = time.monotonic() + 2.5
        n = 0
        while time.monotonic() < end:
            pub.publish("news", f"tick{n}")
            n += 1
            time.sleep(0.2)
        assert len(sub.events(n, timeout=5)) == n
        assert sub.comments == []
    finally:
        pub.close()
        sub.close()
