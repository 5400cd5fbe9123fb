"""Per-topic history (DESIGN §10.2): a quiet topic's last N events outlive
a ring flooded by a busy topic, replay reads history then the ring without
a seam, --max-age trims, a SIGKILLed archiver loses and duplicates nothing,
and a full history map stops history, not publishing."""

import http.client
import os
import random
import signal
import time

from ringcast_harness import SLOW

RING = {"size": "1M", "slots": "16384"}
# A 1 MiB ring takes events of at most a quarter of it.
LIMITS = {"max_event_bytes": "64K"}


def publish_many(srv, topic, count, size):
    """count events of size bytes on one keep-alive connection; their ids."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    body = b"x" * size
    ids = []
    try:
        for _ in range(count):
            conn.request("POST", f"/publish/{topic}", body=body)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 201, resp.status
            ids.append(int(resp.getheader("Ringcast-Event-ID")))
    finally:
        conn.close()
    return ids


def wait_until(cond, timeout):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def wait_archived(srv, seq, timeout=10):
    assert wait_until(lambda: srv.metrics().get(
        "ringcast_history_archived_seq", 0) >= seq, timeout), \
        srv.log_text()


def archiver(srv, not_pid=None):
    """The archiver's PID, once one other than not_pid has named itself."""
    assert wait_until(lambda: srv.archiver_pid() not in (None, not_pid),
                      15), srv.log_text()
    return srv.archiver_pid()


def flood(srv, megabytes):
    """Push megabytes of a busy topic through the ring, and wait for the
    archiver to have looked at all of it."""
    ids = publish_many(srv, "busy", int(megabytes * 256), 4000)
    wait_archived(srv, ids[-1])


def replay(srv, topic, last, n, timeout=10):
    """Resume topic after id last; the first n events (gaps included)."""
    sub = srv.subscribe(f"/events/{topic}",
                        headers={"Last-Event-ID": str(last)})
    try:
        return sub.events(n, timeout=timeout)
    finally:
        sub.close()


def history_server(make_server, **sections):
    srv = make_server(start=False, ring=RING, limits=LIMITS,
                      **sections)
    srv.ctl("topic", "add", "quiet", "--keep", "100")
    srv.ctl("topic", "add", "busy")
    return srv.start()


def test_quiet_topic_replays_from_history_then_live(make_server):
    srv = history_server(make_server)
    quiet = [srv.publish("quiet", f"q{i}") for i in range(100)]
    wait_archived(srv, quiet[-1])
    flood(srv, 10)
    assert srv.metrics()["ringcast_ring_oldest_seq"] > quiet[-1]

    def check(want, live_data):
        """Resume after quiet[0]: want (id, data) from history, no gap,
        then a live event; returns the live event's (id, data)."""
        sub = srv.subscribe("/events/quiet",
                            headers={"Last-Event-ID": str(quiet[0])})
        try:
            got = sub.events(len(want), timeout=10)
            assert [e["event"] for e in got] == ["message"] * len(want), \
                got[:2]
            assert [(int(e["id"]), e["data"]) for e in got] == want
            live = srv.publish("quiet", live_data)
            nxt = sub.events(1, timeout=5)[0]
            assert (int(nxt["id"]), nxt["data"]) == (live, live_data)
            return (live, live_data)
        finally:
            sub.close()

    want = [(quiet[i], f"q{i}") for i in range(1, 100)]
    live = check(want, "live-1")
    srv.stop()
    srv.start()
    # --keep 100 of 101: quiet[0] went, the other 99 and live-1 stay.
    check(want + [live], "live-2")


def test_history_survives_restart_without_gap(make_server):
    srv = history_server(make_server)
    quiet = [srv.publish("quiet", f"q{i}") for i in range(50)]
    wait_archived(srv, quiet[-1])
    flood(srv, 2)
    srv.stop()
    srv.start()
    got = replay(srv, "quiet", quiet[0], 49)
    assert [int(e["id"]) for e in got] == quiet[1:]
    assert all(e["event"] == "message" for e in got)


def test_trimmed_history_says_gap(make_server):
    srv = history_server(make_server)
    quiet = [srv.publish("quiet", f"q{i}") for i in range(150)]
    wait_archived(srv, quiet[-1])
    flood(srv, 2)
    got = replay(srv, "quiet", quiet[0], 101)
    assert got[0]["event"] == "ringcast-gap"
    assert int(got[0]["data"]) == quiet[50]
    assert [int(e["id"]) for e in got[1:]] == quiet[50:]


def test_max_age_trims(make_server):
    srv = make_server(start=False, ring=RING, limits=LIMITS)
    srv.ctl("topic", "add", "aged", "--max-age", "1s")
    srv.ctl("topic", "add", "busy")
    srv.start()
    aged = [srv.publish("aged", f"a{i}") for i in range(3)]
    wait_archived(srv, aged[-1])
    assert wait_until(lambda: srv.metrics().get(
        "ringcast_history_trimmed_total", 0) >= 3, 5), srv.log_text()
    flood(srv, 1.5)
    got = replay(srv, "aged", aged[0] - 1, 1)
    assert got[0]["event"] == "ringcast-gap"


def test_killed_archiver_loses_and_duplicates_nothing(make_server):
    srv = make_server(start=False, ring=RING, limits=LIMITS)
    srv.ctl("topic", "add", "quiet", "--keep", "100000")
    srv.ctl("topic", "add", "busy")
    srv.start()
    rng = random.Random(14)
    quiet = []
    for _ in range(6):
        pid = archiver(srv)
        # Kill it while it archives a stream of publishes.
        quiet += publish_many(srv, "quiet", 40, 200)
        time.sleep(rng.uniform(0, 0.05))
        os.kill(pid, signal.SIGKILL)
        quiet += publish_many(srv, "quiet", 10, 200)
        archiver(srv, not_pid=pid)
    wait_archived(srv, quiet[-1], timeout=15)
    assert srv.metrics()["ringcast_archiver_restarts_total"] >= 6
    flood(srv, 1.5)
    assert srv.metrics()["ringcast_ring_oldest_seq"] > quiet[-1]
    got = replay(srv, "quiet", quiet[0], len(quiet) - 1)
    assert [int(e["id"]) for e in got] == quiet[1:]


def test_full_history_map_keeps_publishing(make_server):
    srv = make_server(start=False, ring={"size": "8M", "slots": "16384"},
                      history={"map_size": "1M"})
    srv.ctl("topic", "add", "quiet", "--keep", "1000000")
    srv.start()
    ids = publish_many(srv, "quiet", 600, 4000)
    assert len(ids) == 600
    wait_archived(srv, ids[-1])
    m = srv.metrics()
    assert m["ringcast_history_map_full_total"] >= 1
    assert m["ringcast_history_full"] == 1
    assert m["ringcast_history_dropped_total"] > 0
    assert "stops growing" in srv.log_text()
    # The ring still serves them all.
    got = replay(srv, "quiet", ids[0], 599)
    assert [int(e["id"]) for e in got] == ids[1:]


def test_history_survives_reload_and_ring_reset(make_server):
    srv = history_server(make_server)
    quiet = [srv.publish("quiet", f"q{i}") for i in range(20)]
    wait_archived(srv, quiet[-1])
    old = archiver(srv)
    srv.send_signal(signal.SIGHUP)
    # The archiver is started again with the new configuration.
    archiver(srv, not_pid=old)
    flood(srv, 2)
    assert [int(e["id"]) for e in replay(srv, "quiet", quiet[0], 19)] == \
        quiet[1:]
    srv.stop()
    srv.ctl("ring", "reset", "--force")
    srv.start()
    # Ids are never reused; a clean stop archived everything, so the new
    # ring's first id says no gap, and history still holds them all.
    after = srv.publish("quiet", "new")
    assert after > quiet[-1]
    got = replay(srv, "quiet", quiet[0], 20)
    assert [(int(e["id"]), e["event"]) for e in got] == \
        [(i, "message") for i in quiet[1:] + [after]]


def test_multi_topic_stream_merges_histories_in_order(make_server):
    srv = history_server(make_server)
    srv.ctl("topic", "add", "other", "--keep", "100")
    ids = [srv.publish("quiet" if i % 3 else "other", f"m{i}")
           for i in range(30)]
    wait_archived(srv, ids[-1])
    flood(srv, 2)
    sub = srv.subscribe("/events?topic=quiet&topic=other",
                        headers={"Last-Event-ID": str(ids[0])})
    try:
        got = sub.events(29, timeout=10)
        assert [(int(e["id"]), e["data"], e["event"]) for e in got] == \
            [(ids[i], f"m{i}", "message") for i in range(1, 30)]
        live = srv.publish("other", "live")
        assert int(sub.events(1, timeout=5)[0]["id"]) == live
    finally:
        sub.close()


def test_family_member_keeps_the_familys_history(make_server):
    srv = make_server(start=False, ring=RING, limits=LIMITS)
    srv.ctl("topic", "add", "user/*", "--keep", "10")
    srv.ctl("topic", "add", "busy")
    srv.start()
    ids = [srv.publish("user/42", f"u{i}") for i in range(15)]
    wait_archived(srv, ids[-1])
    flood(srv, 2)
    got = replay(srv, "user/42", ids[4], 10)
    assert [(int(e["id"]), e["event"]) for e in got] == \
        [(i, "message") for i in ids[5:]]
