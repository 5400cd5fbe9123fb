"""The shortest end-to-end story: publish, replay from Last-Event-ID, go
live, and end cleanly on SIGTERM."""


def test_publish_replay_live_and_drain(make_server):
    srv = make_server(catalog={"auto_create_topics": "yes"})
    first = srv.publish("news", "one")
    sub = srv.subscribe("/events/news", headers={"Last-Event-ID": "0"})
    assert sub.status == 200
    assert sub.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert "content-length" not in sub.headers
    second = srv.publish("news", "two\r\nlines", event="note")
    events = sub.events(2, timeout=5)
    assert events == [
        {"id": str(first), "event": "message", "data": "one"},
        {"id": str(second), "event": "note", "data": "two\nlines"},
    ]
    assert sub.retry == [1000]
    assert srv.stop() == 0
    assert sub.read_until_end(5) == []
    assert sub.clean_end
    # The closing retry hint carries jitter: between retry and twice it.
    assert 1000 <= sub.retry[-1] <= 2000


def test_http10_stream_is_close_delimited(make_server):
    srv = make_server(catalog={"auto_create_topics": "yes"})
    seq = srv.publish("news", "x")
    sub = srv.subscribe("/events/news", headers={"Last-Event-ID": "0"},
                        version="1.0")
    assert sub.headers.get("connection") == "close"
    assert "transfer-encoding" not in sub.headers
    assert sub.events(1, timeout=5) == [
        {"id": str(seq), "event": "message", "data": "x"}]


def test_replay_hands_over_to_the_window_across_other_topics(make_server):
    # Events from before this worker started are read from the ring; the
    # next event of the topic is in the worker's window, behind other
    # topics' events.  The stream must hand over, not stall.
    srv = make_server(catalog={"auto_create_topics": "yes"})
    a1 = srv.publish("a", "a1")
    for i in range(20):
        srv.publish("b", f"b{i}")
    assert srv.stop() == 0
    srv.start()
    for i in range(5):
        srv.publish("b", f"late-b{i}")
    a2 = srv.publish("a", "a2")
    sub = srv.subscribe("/events/a", headers={"Last-Event-ID": str(a1)})
    assert sub.events(1, timeout=5) == [
        {"id": str(a2), "event": "message", "data": "a2"}]


def test_over_the_cap_streams_soft_reject_and_publishes_get_503(make_server):
    srv = make_server(catalog={"auto_create_topics": "yes"},
                      limits={"max_connections": "2"})
    srv.publish("news", "x")
    held = [srv.subscribe("/events/news") for _ in range(2)]
    extra = srv.subscribe("/events/news")
    assert extra.status == 200
    assert extra.read_until_end(5) == []
    assert extra.clean_end
    assert extra.retry and extra.retry[0] >= 5000
    assert any("full" in c for c in extra.comments)
    status, headers, _ = srv.request("POST", "/publish/news", body=b"y")
    assert status == 503
    assert int(headers["retry-after"]) > 0
    for h in held:
        h.close()


def test_two_thousand_pipelined_requests_are_answered_in_order(make_server):
    import socket
    srv = make_server(catalog={"auto_create_topics": "yes"})
    n = 2000
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    s.sendall(req * n + last)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.count(b"HTTP/1.1 200 OK\r\n") == n
    assert data.rstrip().endswith(b"no such resource")
    assert data.count(b"HTTP/1.1 404 ") == 1
