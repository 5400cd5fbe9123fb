"""Replay of a subscriber behind the worker's window: its next event is
already in the window while its cursor is still before the window's start
(the events in between belong to other topics)."""

import http.client

RING = {"size": "64M", "slots": "65536"}
AUTO = {"auto_create_topics": "yes"}


def publish_many(srv, topic, count, size):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    body = b"x" * size
    try:
        for _ in range(count):
            conn.request("POST", f"/publish/{topic}", body=body)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 201
    finally:
        conn.close()


def test_replay_reaches_an_event_held_by_the_window(make_server):
    srv = make_server(ring=RING, catalog=AUTO, server={"workers": "1"})
    first = srv.publish("quiet", "one")
    # More than the window's 8 MiB of other topics: "one" is now only in
    # the ring, and the worker's window starts after it.
    publish_many(srv, "busy", 2200, 4000)
    second = srv.publish("quiet", "two")
    sub = srv.subscribe("/events/quiet", headers={"Last-Event-ID": "0"})
    events = sub.events(2, timeout=5)
    assert [e["data"] for e in events] == ["one", "two"]
    assert [int(e["id"]) for e in events] == [first, second]
    sub.close()
    sub = srv.subscribe("/events/quiet",
                        headers={"Last-Event-ID": str(first)})
    assert sub.events(1, timeout=5)[0]["data"] == "two"
    sub.close()


def test_long_replay_completes_without_new_publishes(make_server):
    """More frames than one flush sends (16 rounds of 64): the rest must
    follow without waiting for the next publish."""
    srv = make_server(catalog=AUTO, server={"workers": "1"})
    publish_many(srv, "long", 3000, 16)
    sub = srv.subscribe("/events/long", headers={"Last-Event-ID": "0"})
    events = sub.events(3000, timeout=5)
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(set(ids))
    sub.close()
