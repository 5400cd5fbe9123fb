"""The NATS rig itself (nats_rig.py), no ringcast code: a single server and
a three-node JetStream cluster come up on loopback, a leader exists,
killing the stream's leader elects another within a bound and loses no
acknowledged message, a restarted node rejoins and catches up, a paused
cluster answers nothing and comes back, and a missing nats-server fails
the tests instead of skipping them."""

import os
import signal
import time

import pytest

import nats_rig
from ringcast_harness import SLOW

# Raft elections in nats-server 2.9 take a few seconds; well within this.
ELECTION_BOUND = 15


def publish_n(client, subject, n):
    """Publish n messages; their stream sequences from the PubAcks."""
    seqs = []
    for k in range(n):
        ack = client.js_publish(subject, f"m{k}")
        seqs.append(ack["seq"])
    return seqs


def publish_retrying(client, subject):
    """Publish one message while the stream may have no leader yet (no
    responders, a JetStream error, a timeout), for ELECTION_BOUND at most;
    its sequence."""
    deadline = time.monotonic() + ELECTION_BOUND * SLOW
    while True:
        try:
            return client.js_publish(subject, "retried", timeout=2)["seq"]
        except (AssertionError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_single_server_has_jetstream_and_keeps_its_store(make_nats):
    rig = make_nats(1)
    assert rig.urls() == f"nats://127.0.0.1:{rig.nodes[0].port}"
    assert rig.meta_leader_index() == 0
    with rig.client() as c:
        c.stream_create("ONE", ["one.>"])
        assert publish_n(c, "one.a", 3) == [1, 2, 3]
    assert rig.stream_leader("ONE") == 0
    rig.stop(0)
    assert rig.pids() == []
    assert rig.monitor(0, "/jsz") is None
    rig.start(0)
    st = rig.stream_info("ONE")
    assert st["state"]["last_seq"] == 3
    with rig.client() as c:
        assert publish_n(c, "one.b", 1) == [4]


def test_cluster_forms_with_one_meta_leader(make_nats):
    rig = make_nats(3)
    urls = rig.urls().split(",")
    assert len(urls) == 3
    assert all(u.startswith("nats://127.0.0.1:") for u in urls)
    assert len(set(urls)) == 3
    leader = rig.meta_leader_index()
    assert leader is not None
    for i in range(3):
        jsz = rig.monitor(i, "/jsz")
        assert jsz["meta_cluster"]["cluster_size"] == 3
        assert jsz["meta_cluster"]["leader"] == rig.nodes[leader].name
    assert len(rig.pids()) == 3


def wait_caught_up(rig, i, stream, last_seq, timeout=ELECTION_BOUND):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        st = rig.stream_info(stream, i)
        if st is not None and st["state"]["last_seq"] >= last_seq:
            return st
        time.sleep(0.1)
    raise AssertionError(f"{rig.nodes[i].name} did not catch up to "
                         f"{last_seq}:\n{rig.log_text()}")


def test_killing_the_stream_leader_elects_another_and_restart_rejoins(
        make_nats):
    rig = make_nats(3)
    with rig.client() as c:
        c.stream_create("R3", ["r3.>"], replicas=3)
        assert publish_n(c, "r3.x", 5) == [1, 2, 3, 4, 5]
    old = rig.wait_stream_leader("R3")
    for i in range(3):
        wait_caught_up(rig, i, "R3", 5)

    t0 = time.monotonic()
    rig.kill(old)
    assert not rig.nodes[old].running()
    new = rig.wait_stream_leader("R3", timeout=ELECTION_BOUND,
                                 not_index=old)
    elapsed = time.monotonic() - t0
    assert new != old
    assert elapsed < ELECTION_BOUND * SLOW
    # Nothing acknowledged was lost; the next sequence follows on.
    survivor = next(i for i in range(3) if i != old)
    with rig.client(survivor) as c:
        assert publish_retrying(c, "r3.y") == 6
        info = c.stream_info_api("R3")
        assert info["state"]["first_seq"] == 1
        assert info["state"]["last_seq"] == 6

    # Restarted on the same ports and store, it rejoins and catches up.
    rig.start(old)
    assert rig.nodes[old].running()
    st = wait_caught_up(rig, old, "R3", 6)
    assert st["state"]["messages"] == 6
    assert rig.meta_leader_index() is not None
    assert len(rig.pids()) == 3


def test_killing_the_meta_leader_elects_another(make_nats):
    rig = make_nats(3)
    old = rig.meta_leader_index()
    rig.kill(old)
    deadline = time.monotonic() + ELECTION_BOUND * SLOW
    new = None
    while time.monotonic() < deadline:
        new = rig.meta_leader_index()
        if new is not None and new != old:
            break
        time.sleep(0.1)
    assert new is not None and new != old, rig.log_text()
    rig.start(old)
    assert rig.meta_leader_index() is not None


def test_paused_cluster_answers_nothing_then_resumes(make_nats):
    rig = make_nats(3)
    with rig.client() as c:
        c.stream_create("P", ["p.>"], replicas=3)
        assert publish_n(c, "p.a", 2) == [1, 2]
    rig.pause_all()
    try:
        assert rig.monitor(0, "/jsz", timeout=0.5) is None
        with pytest.raises(OSError):
            rig.client(0, timeout=0.5).request("p.a", b"x", timeout=0.5)
    finally:
        rig.resume_all()
    rig.wait_ready()
    rig.down_for(0.5, pause=True)
    with rig.client() as c:
        assert publish_retrying(c, "p.a") == 3


def test_stop_all_then_start_keeps_the_stream(make_nats):
    rig = make_nats(3)
    with rig.client() as c:
        c.stream_create("S", ["s.>"], replicas=3)
        assert publish_n(c, "s.a", 2) == [1, 2]
    for i in range(3):
        wait_caught_up(rig, i, "S", 2)
    rig.stop_all()
    assert rig.pids() == []
    rig.start()
    rig.wait_stream_leader("S")
    t0 = time.monotonic()
    rig.down_for(1)
    assert time.monotonic() - t0 >= 1
    assert len(rig.pids()) == 3
    rig.wait_stream_leader("S")
    with rig.client() as c:
        info = c.stream_info_api("S")
        assert info["state"]["last_seq"] == 2


def test_cleanup_kills_only_its_own_pids(make_nats):
    rig = make_nats(1)
    bystander = os.fork()
    if bystander == 0:
        time.sleep(30)
        os._exit(0)
    try:
        pids = rig.pids()
        rig.cleanup()
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        # A process the rig did not start is untouched.
        os.kill(bystander, 0)
    finally:
        os.kill(bystander, signal.SIGKILL)
        os.waitpid(bystander, 0)


def test_missing_nats_server_fails_instead_of_skipping(tmp_path,
                                                       monkeypatch):
    monkeypatch.setattr(nats_rig, "NATS_SERVER",
                        str(tmp_path / "no-such-nats-server"))
    with pytest.raises(AssertionError, match="nats-server not found"):
        nats_rig.NatsRig(tmp_path, 1)
