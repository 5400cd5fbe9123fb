"""Cluster mode (issue #16): ringcast nodes that share one event order
through NATS JetStream.  Three nats-server processes form a JetStream
cluster (nats_rig.py) and two ringcast nodes, A and B, publish into one
stream with three replicas.  The tests publish on one node and read on the
other, reconnect clients alternately to A and B with Last-Event-ID, kill
the stream's leader mid-run, stop all of NATS for five seconds, restart a
node, and delete and make the stream anew; every acknowledged event must
reach every subscriber exactly once, in id order."""

import http.client
import signal
import threading
import time

import pytest

from ringcast_harness import SLOW, StreamEnded, wait_for

STREAM = "RINGCAST"


@pytest.fixture
def rig(make_nats):
    """Three nats-servers, one JetStream cluster (conftest's make_nats)."""
    return make_nats(3)


def make_node(make_server, rig, name, replicas=3, start=True,
              extra_cluster=None, **extra):
    cluster = {"nats": rig.urls(), "replicas": str(replicas),
               "publish_timeout": "8s", "max_bytes": "64M"}
    cluster.update(extra_cluster or {})
    srv = make_server(start=False, sub=name, cluster=cluster, **extra)
    # The first node adds the topic to the cluster's catalog; the others
    # pull it, as an operator would on a new node.
    res = srv.ctl("topic", "add", "news", check=False)
    if res.returncode != 0:
        assert "already exists in the cluster" in res.stderr, res.stderr
        srv.ctl("cluster", "sync", "--once")
    if start:
        srv.start()
        wait_consuming(srv)
    return srv


def wait_consuming(srv, timeout=20):
    assert wait_for(lambda: srv.metrics().get(
        "ringcast_cluster_consuming") == 1.0, timeout), \
        "the relay is not consuming:\n" + srv.log_text()[-3000:]


def post(srv, topic, data, timeout=15):
    """(status, headers, body) of a publish; never raises on a status."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                      timeout=timeout * SLOW)
    try:
        conn.request("POST", f"/publish/{topic}", body=data.encode())
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, \
            resp.read()
    finally:
        conn.close()


def read_ids(srv, n, last_id=None, timeout=15):
    """The next n events of news on srv after last_id: [(id, data)]."""
    headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
    c = srv.subscribe("/events/news", headers=headers, timeout=timeout)
    try:
        out = []
        while len(out) < n:
            ev = c.next_event()
            assert ev["event"] == "message", ev
            out.append((int(ev["id"]), ev["data"]))
        return out
    finally:
        c.close()


def read_upto(srv, after, upto, timeout=30):
    """The events of news on srv after id `after` up to id `upto`
    (reading until one with an id >= upto arrives): [(id, data)]."""
    c = srv.subscribe("/events/news", headers={"Last-Event-ID": str(after)},
                      timeout=timeout)
    out = []
    try:
        while not out or out[-1][0] < upto:
            ev = c.next_event()
            assert ev["event"] == "message", ev
            out.append((int(ev["id"]), ev["data"]))
        return [o for o in out if o[0] <= upto]
    finally:
        c.close()


class Publisher(threading.Thread):
    """Publish "e<N>" to the nodes in turn, every interval seconds, until
    stopped; acked maps id -> data, refused counts 503s (each must carry
    Retry-After)."""

    def __init__(self, nodes, interval=0.01):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.interval = interval
        self.acked = {}
        self.ack_times = []
        self.refused = 0
        self.sent = 0
        self.bad = []
        self.halt = threading.Event()

    def run(self):
        i = 0
        while not self.halt.is_set() and i < 20000:
            srv = self.nodes[i % len(self.nodes)]
            data = f"e{i}"
            try:
                status, hdrs, body = post(srv, "news", data)
            except OSError as e:
                self.bad.append(f"{data}: {e}")
                status = None
            self.sent += 1
            if status == 201:
                self.acked[int(hdrs["ringcast-event-id"])] = data
                self.ack_times.append(time.monotonic())
            elif status == 503:
                self.refused += 1
                if "retry-after" not in hdrs:
                    self.bad.append(f"{data}: 503 without Retry-After")
            elif status is not None:
                self.bad.append(f"{data}: {status} {body!r}")
            i += 1
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(30)

    def longest_pause(self):
        """The longest time between two acknowledged publishes (s)."""
        t = self.ack_times
        return max((b - a for a, b in zip(t, t[1:])), default=0.0)


def check_delivery(got, pub, allow_unacked=True):
    """got: [(id, data)] as a client saw them.  Every acked event exactly
    once, ids strictly increasing, and an event that was not acked (its
    publish got 503 after JetStream stored it) only if it had no twin."""
    ids = [i for i, _ in got]
    assert ids == sorted(set(ids)), "ids not strictly increasing"
    seen = {i: d for i, d in got}
    missing = [i for i in pub.acked if i not in seen]
    assert not missing, f"{len(missing)} acked events missing: {missing[:10]}"
    wrong = [i for i, d in pub.acked.items() if seen[i] != d]
    assert not wrong, f"events with another body under their id: {wrong[:5]}"
    extra = [i for i in seen if i not in pub.acked]
    datas = [d for _, d in got]
    assert len(datas) == len(set(datas)), "an event delivered twice"
    if not allow_unacked:
        assert not extra, f"unacknowledged events delivered: {extra[:5]}"
    assert len(extra) <= pub.refused, (extra, pub.refused)


def test_publish_on_a_subscribe_on_b_same_ids(make_server, rig):
    a = make_node(make_server, rig, "a")
    b = make_node(make_server, rig, "b")
    sub_b = b.subscribe("/events/news")
    sub_a = a.subscribe("/events/news")
    ids = [a.publish("news", f"from-a-{i}") for i in range(20)]
    ids += [b.publish("news", f"from-b-{i}") for i in range(20)]
    assert ids == sorted(ids) and len(set(ids)) == 40
    # The first stream of a fresh cluster: ids are the stream sequences.
    assert ids == list(range(1, 41))
    for c in (sub_a, sub_b):
        got = [(int(e["id"]), e["data"]) for e in c.events(40)]
        assert got == list(zip(ids, [f"from-a-{i}" for i in range(20)] +
                                [f"from-b-{i}" for i in range(20)]))
        c.close()
    m = b.metrics()
    assert m["ringcast_cluster_last_id"] == 40
    assert m["ringcast_cluster_gaps_total"] == 0
    assert m["ringcast_cluster_duplicates_total"] == 0
    # A batch gets the ids JetStream gave, in line order.
    status, hdrs, body = a.request(
        "POST", "/publish", headers={"Content-Type": "application/x-ndjson"},
        body=b'{"topic":"news","data":"x1"}\n{"topic":"news","data":"x2"}\n')
    assert status == 201, body
    assert body == b'{"ids":["41","42"]}\n'
    assert read_ids(b, 2, last_id=40) == [(41, "x1"), (42, "x2")]


def test_clients_alternating_nodes_miss_nothing(make_server, rig):
    a = make_node(make_server, rig, "a")
    b = make_node(make_server, rig, "b")
    pub = Publisher([a, b], interval=0.005)
    pub.start()
    got, last = [], None
    deadline = time.monotonic() + 60 * SLOW
    try:
        for turn in range(16):
            srv = (a, b)[turn % 2]
            got += read_ids(srv, 25, last_id=last)
            last = got[-1][0]
            assert time.monotonic() < deadline
    finally:
        pub.stop()
    # What was published by the end, read from either node.
    if max(pub.acked) > last:
        got += read_upto(a, last, max(pub.acked))
    assert not pub.bad, pub.bad[:5]
    assert pub.refused == 0
    check_delivery(got, pub, allow_unacked=False)
    assert len(got) == len(pub.acked) >= 400


def test_stream_leader_killed_mid_run(make_server, rig):
    a = make_node(make_server, rig, "a")
    b = make_node(make_server, rig, "b")
    a.publish("news", "first")
    leader = rig.wait_stream_leader(STREAM)
    pub = Publisher([a, b], interval=0.01)
    pub.start()
    try:
        assert wait_for(lambda: len(pub.acked) >= 50, 20)
        rig.kill(leader)
        new = rig.wait_stream_leader(STREAM, not_index=leader)
        assert new != leader
        n = len(pub.acked)
        assert wait_for(lambda: len(pub.acked) >= n + 100, 40), \
            "publishing did not resume after the leader change"
    finally:
        pub.stop()
    assert not pub.bad, pub.bad[:5]
    print(f"FIGURE leader killed: {len(pub.acked)} acked, {pub.refused} "
          f"refused (503), longest pause between acks "
          f"{pub.longest_pause():.2f} s")
    for srv in (a, b):
        got = read_upto(srv, 1, max(pub.acked))
        check_delivery(got, pub)
    # The killed server comes back and the cluster goes on.
    rig.start(leader)
    a.publish("news", "after")


def test_nats_down_five_seconds(make_server, rig):
    a = make_node(make_server, rig, "a")
    b = make_node(make_server, rig, "b")
    ids = [a.publish("news", f"before-{i}") for i in range(10)]
    live = b.subscribe("/events/news", headers={"Last-Event-ID": "0"})
    assert [int(e["id"]) for e in live.events(10)] == ids
    for i in range(3):
        rig.stop(i)
    t0 = time.monotonic()
    # Publishes get 503 + Retry-After, never an acknowledgement.
    assert wait_for(lambda: post(a, "news", "probe", 3)[0] == 503, 10)
    status, hdrs, body = post(a, "news", "down")
    assert status == 503 and "retry-after" in hdrs, (status, body)
    assert b"cluster" in body
    # The node says so, and streams go on from the ring.
    status, hdrs, body = a.request("GET", "/healthz")
    assert status == 200 and body.startswith(b"degraded"), body
    assert hdrs.get("ringcast-health") == "degraded"
    assert wait_for(lambda: b.metrics()["ringcast_cluster_connected"] == 0,
                    10)
    assert read_ids(b, 10, last_id=0) == [(i, f"before-{i - 1}")
                                          for i in ids]
    time.sleep(max(0, 5 - (time.monotonic() - t0)))
    for i in range(3):
        rig.start(i, wait=False)
    rig.wait_ready()
    wait_consuming(a, 40)
    wait_consuming(b, 40)
    assert wait_for(lambda: post(a, "news", "back", 5)[0] == 201, 40), \
        a.log_text()[-3000:]
    print(f"FIGURE NATS down 5 s: publishing again "
          f"{time.monotonic() - t0 - 5:.2f} s after NATS was started again")
    more = [b.publish("news", f"after-{i}") for i in range(10)]
    # The stream that stayed open sees the new events, no hole, and the
    # probes that JetStream stored after all (none were acknowledged).
    seen = []
    while len([d for _, d in seen if d.startswith("after-")]) < 10:
        e = live.next_event()
        assert e["event"] == "message", e
        seen.append((int(e["id"]), e["data"]))
    assert [i for i, d in seen if d.startswith("after-")] == more
    assert all(d in ("probe", "down", "back") or d.startswith("after-")
               for _, d in seen)
    assert not any(d.startswith("before") for _, d in seen)
    live.close()
    assert a.metrics()["ringcast_cluster_disconnects_total"] >= 1


def test_node_restarted_catches_up(make_server, rig):
    a = make_node(make_server, rig, "a")
    b = make_node(make_server, rig, "b")
    first = [a.publish("news", f"one-{i}") for i in range(5)]
    assert read_ids(b, 5, last_id=0)[-1][0] == first[-1]
    b.stop()
    missed = [a.publish("news", f"two-{i}") for i in range(50)]
    t0 = time.monotonic()
    b.start()
    wait_consuming(b)
    got = read_ids(b, 50, last_id=first[-1])
    print(f"FIGURE node restarted: 50 missed events served "
          f"{time.monotonic() - t0:.2f} s after start")
    assert got == [(i, f"two-{n}") for n, i in enumerate(missed)]
    assert b.metrics()["ringcast_cluster_gaps_total"] == 0


def test_stream_made_anew_is_a_new_epoch(make_server, rig):
    a = make_node(make_server, rig, "a")
    b = make_node(make_server, rig, "b")
    old = [a.publish("news", f"old-{i}") for i in range(5)]
    live = b.subscribe("/events/news", headers={"Last-Event-ID": "0"})
    assert [int(e["id"]) for e in live.events(5)] == old
    with rig.client() as nc:
        reply = nc.request(f"$JS.API.STREAM.DELETE.{STREAM}", b"")
    assert b'"success":true' in reply, reply
    # A node makes it again, with a base above its ids: ids never go back.
    assert wait_for(lambda: post(a, "news", "new-0", 5)[0] == 201, 20), \
        a.log_text()[-3000:]
    new = a.publish("news", "new-1")
    assert new > old[-1]
    for srv in (a, b):
        assert wait_for(lambda: srv.metrics()[
            "ringcast_cluster_epochs_total"] >= 1, 10)
    # The open stream's next event went with the old epoch: it is closed
    # at an event boundary, and a reconnect is told of the gap, then gets
    # the new epoch's events.
    with pytest.raises(StreamEnded):
        live.next_event()
    live.close()
    c = b.subscribe("/events/news", headers={"Last-Event-ID": str(old[-1])})
    gap = c.next_event()
    assert gap["event"] == "ringcast-gap", gap
    got = [(int(e["id"]), e["data"]) for e in c.events(2)]
    c.close()
    assert got[-1] == (new, "new-1")
    assert got[0][1] == "new-0" and old[-1] < got[0][0] < new


def test_single_node_without_cluster_is_unchanged(make_server):
    srv = make_server(start=False)
    srv.ctl("topic", "add", "news")
    srv.start()
    assert srv.request("GET", "/healthz")[2] == b"ok\n"
    assert not any(k.startswith("ringcast_cluster_connected")
                   for k in srv.metrics())
    assert srv.publish("news", "x") >= 1


def test_node_far_behind_the_stream_gets_a_gap(make_server, rig):
    """A node down longer than the stream keeps events (max_age) cannot
    get them: its ring records a hole, its clients are told of the gap,
    and what follows flows without one."""
    bound = {"max_age": "2s"}
    a = make_node(make_server, rig, "a", extra_cluster=bound)
    b = make_node(make_server, rig, "b", extra_cluster=bound)
    seen = a.publish("news", "seen")
    assert read_ids(b, 1, last_id=0) == [(seen, "seen")]
    b.stop()
    lost = [a.publish("news", f"lost-{i}") for i in range(20)]
    # JetStream drops them after max_age (its sweep may lag a little).
    with rig.client() as nc:
        assert wait_for(lambda: b'"first_seq":%d' % (lost[-1] + 1) in
                        nc.request(f"$JS.API.STREAM.INFO.{STREAM}", b""),
                        20), "the stream kept its events"
    b.start()
    wait_consuming(b)
    after = a.publish("news", "after")
    assert wait_for(lambda: b.metrics()["ringcast_cluster_last_id"] >= after,
                    10)
    c = b.subscribe("/events/news", headers={"Last-Event-ID": str(seen)})
    gap = c.next_event()
    assert gap["event"] == "ringcast-gap", gap
    ev = c.next_event()
    assert (int(ev["id"]), ev["data"]) == (after, "after")
    c.close()
    assert b.metrics()["ringcast_cluster_gaps_total"] >= 1


def test_catalog_change_on_a_reaches_running_b(make_server, rig):
    """ringcastctl on one node writes the cluster's catalog bucket; the
    relay of every running node watches it into its own catalog."""
    a = make_node(make_server, rig, "a")
    b = make_node(make_server, rig, "b")
    a.ctl("topic", "add", "chat", "--private")
    secret = a.token("--topic", "chat", "--subscribe", "--publish")

    def b_serves_chat():
        status, _, _ = b.request("GET", "/topics/chat", admin=True)
        return status == 200

    assert wait_for(b_serves_chat, 10), b.log_text()[-2000:]
    # The token made on A opens a stream on B, and a publish on A with it
    # reaches that stream.
    c = b.subscribe("/events/chat",
                    headers={"Authorization": f"Bearer {secret}"})
    assert c.status == 200
    eid = a.publish("chat", "hi", token=secret)
    ev = c.next_event()
    assert (int(ev["id"]), ev["data"]) == (eid, "hi")
    c.close()
    assert wait_for(lambda: b.metrics()[
        "ringcast_cluster_catalog_applied_total"] >= 2, 5), \
        {k: v for k, v in b.metrics().items() if "cluster" in k}
    # A removal travels too.
    a.ctl("topic", "rm", "chat")
    assert wait_for(lambda: not b_serves_chat(), 10)


def test_upgrade_hands_the_relay_over(make_server, make_nats):
    """A binary upgrade (SIGUSR2) of a cluster node: the old master stops
    its relay before the new master starts one (never two consumers at
    once), the new relay consumes, and a stream opened before the upgrade
    gets every event, published before and after, once."""
    from ringcast_lifecycle import (alive, new_masters, read_pid,
                                    stop_new_master)
    rig = make_nats(1)
    srv = make_node(make_server, rig, "a", replicas=1)
    old_master = srv.proc.pid
    old_relay = [p for p in srv.child_pids() if b"relay" in srv._title(p)]
    assert len(old_relay) == 1
    sub = srv.subscribe("/events/news")
    new_master = None
    try:
        before = [srv.publish("news", f"before-{i}") for i in range(5)]
        srv.send_signal(signal.SIGUSR2)

        def old_master_gone():
            new_masters(srv)    # to stop at the end, whatever happens
            return srv.proc.poll() is not None
        assert wait_for(old_master_gone, 10)
        assert srv.proc.returncode == 0, srv.log_text()[-3000:]
        new_master = read_pid(srv)
        assert new_master not in (None, old_master)
        assert not alive(old_relay[0])
        assert wait_for(lambda: len([p for p in srv.child_pids(new_master)
                                     if b"relay" in srv._title(p)]) == 1,
                        10)
        wait_consuming(srv)
        after = [srv.publish("news", f"after-{i}") for i in range(5)]
        got = [int(ev["id"]) for ev in sub.events(10, timeout=15)]
        assert got == before + after
    finally:
        sub.close()
        stop_new_master(srv, old_master, new_master)
