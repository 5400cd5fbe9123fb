"""DESIGN section 10.5: a reload hands every established stream to the new
generation of workers.  Many streams, a publisher running, three reloads:
no stream is ended or reconnected (each client keeps its socket and never
sees the chunked terminator), no event is lost or duplicated, and each old
generation is gone within drain_timeout.  A worker killed during a hand-off
loses no stream silently: its clients see the connection end and replay."""

import os
import signal
import time

from ringcast_harness import SLOW
from ringcast_lifecycle import (Publisher, ReconnectingSubscriber, Streams,
                                alive, check_delivery, wait_until)

TOPIC = "news"
STREAMS = 200
DRAIN = 5


def old_generation_gone(srv, old):
    return not (set(srv.worker_pids()) & old)


def test_three_reloads_keep_every_stream(make_server):
    srv = make_server(start=False, server={"drain_timeout": f"{DRAIN}s"})
    srv.ctl("topic", "add", TOPIC)
    srv.start()
    streams = Streams(srv.port, TOPIC, STREAMS)
    pub = Publisher(srv.port, TOPIC, interval=0.02)
    pub.start()
    try:
        streams.pump(0.5)
        for n in range(3):
            old = set(srv.worker_pids())
            srv.send_signal(signal.SIGHUP)
            t0 = time.monotonic()
            while not old_generation_gone(srv, old) and \
                    time.monotonic() - t0 < DRAIN * SLOW:
                streams.pump(0.1)
            assert old_generation_gone(srv, old), \
                f"reload {n}: old workers outlived drain_timeout\n" + \
                srv.log_text()
            assert len(srv.worker_pids()) == 2
            streams.pump(0.3)
        pub.stop()
        pub.join(10 * SLOW)
        streams.check_delivery(pub, srv.log_text)
        # Round robin: the new workers hold about half each.
        per_worker = [v for k, v in srv.metrics().items()
                      if k.startswith("ringcast_connections{")
                      and 'kind="stream"' in k]
        assert len(per_worker) == 2 and sum(per_worker) == STREAMS, \
            per_worker
        assert all(abs(v - STREAMS / 2) <= STREAMS / 10
                   for v in per_worker), per_worker
        text = srv.log.read_text(errors="replace")
        assert text.count("reloaded: generation") == 3
        assert "handed" in text
        assert "killed by signal" not in text, text
    finally:
        pub.stop()
        streams.close()
    assert srv.stop() == 0


def test_worker_killed_during_a_hand_off_loses_no_stream(make_server):
    srv = make_server(start=False, server={"drain_timeout": f"{DRAIN}s"})
    srv.ctl("topic", "add", TOPIC)
    srv.start()
    subs = [ReconnectingSubscriber(srv.port, TOPIC) for _ in range(20)]
    for s in subs:
        s.start()
    for s in subs:
        assert s.ready.wait(5 * SLOW), "subscriber did not connect"
    pub = Publisher(srv.port, TOPIC)
    pub.start()
    victims = []
    try:
        time.sleep(0.5)
        old = set(srv.worker_pids())
        srv.send_signal(signal.SIGHUP)
        # A new worker stopped as it starts: the old workers hand it its
        # share all the same (it waits in its inbox) and exit.  Killed
        # then, it is respawned, and the new process adopts what was
        # queued; whatever it had adopted before the stop dies with it,
        # and those clients reconnect and replay.
        assert wait_until(lambda: len(set(srv.worker_pids()) - old) >= 1,
                          5, step=0.002)
        new = sorted(set(srv.worker_pids()) - old)[0]
        victims.append(new)
        os.kill(new, signal.SIGSTOP)
        assert wait_until(lambda: old_generation_gone(srv, old), DRAIN), \
            srv.log_text()
        os.kill(new, signal.SIGKILL)
        os.kill(new, signal.SIGCONT)
        assert wait_until(lambda: not alive(new), 5)
        # The killed new worker is respawned; everyone is served again.
        assert wait_until(lambda: len(srv.worker_pids()) == 2, 10)
        time.sleep(1)
        pub.stop()
        pub.join(10 * SLOW)
        last = pub.confirmed[-1][0]
        for i, s in enumerate(subs):
            assert s.wait_for(last, 15), (
                f"subscriber {i} silent at {s.last_id()} < {last}\n"
                + srv.log_text())
        for s in subs:
            s.stop()
        for s in subs:
            s.join(5 * SLOW)
        check_delivery(pub, subs)
        # The other new worker took its share without a reconnect.
        assert any(s.connects == 1 for s in subs)
        assert "handed" in srv.log.read_text(errors="replace")
    finally:
        pub.stop()
        for s in subs:
            s.stop()
        for pid in victims:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    srv.stop()



def test_reload_closes_the_streams_of_a_removed_topic(make_server):
    """Streams the new configuration no longer allows are not adopted:
    those of a topic removed before the reload end at a frame boundary
    with retry:, the others are handed over and go on."""
    srv = make_server(start=False, server={"drain_timeout": f"{DRAIN}s"})
    srv.ctl("topic", "add", TOPIC)
    srv.ctl("topic", "add", "gone")
    srv.start()
    keep = [srv.subscribe(f"/events/{TOPIC}") for _ in range(10)]
    drop = [srv.subscribe("/events/gone") for _ in range(10)]
    srv.publish(TOPIC, "before")
    srv.publish("gone", "before")
    for c in keep + drop:
        assert c.next_event()["data"] == "before"
    local = [c.sock.getsockname() for c in keep]
    srv.ctl("topic", "rm", "gone")
    old = set(srv.worker_pids())
    srv.send_signal(signal.SIGHUP)
    assert wait_until(lambda: old_generation_gone(srv, old), DRAIN + 2), \
        srv.log_text()
    for c in drop:
        assert c.read_until_end(timeout=5) == []
        # Ended at a frame boundary, told again when to come back.
        assert c.clean_end and len(c.retry) >= 2, (c.clean_end, c.retry)
        c.close()
    after = srv.publish(TOPIC, "after")
    for c, addr in zip(keep, local):
        ev = c.next_event()
        assert (int(ev["id"]), ev["data"]) == (after, "after")
        assert c.sock.getsockname() == addr
        c.close()
    m = srv.metrics()
    handed = sum(v for k, v in m.items()
                 if k.startswith("ringcast_streams_handed_total"))
    # All twenty were handed over; the new worker ended the ten of the
    # removed topic.
    assert handed == 20, m
