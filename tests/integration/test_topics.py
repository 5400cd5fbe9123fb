"""Many topics (issue #13): subscriber counts per topic on the admin
listener (GET /topics/{topic}, the busiest-topics metric), summed over
workers, and that a publish wakes only the workers that follow its topic."""

import json

from ringcast_harness import wait_for


def topic_info(srv, name):
    status, hdrs, body = srv.request("GET", f"/topics/{name}", admin=True)
    assert status == 200, (status, body)
    assert hdrs["content-type"] == "application/json"
    return json.loads(body)


def test_topic_counts_subscribers_over_every_worker(make_server):
    srv = make_server(start=False, server={"workers": "2"})
    srv.ctl("topic", "add", "news")
    srv.ctl("topic", "add", "other")
    srv.start()
    # Enough streams that both workers hold some (the balance rule).
    news = [srv.subscribe("/events/news") for _ in range(40)]
    other = srv.subscribe("/events/other")
    both = srv.subscribe("/events?topic=news&topic=other")
    assert wait_for(lambda: topic_info(srv, "news")["subscribers"] == 41)
    assert topic_info(srv, "other")["subscribers"] == 2
    for s in news[:10]:
        s.close()
    assert wait_for(lambda: topic_info(srv, "news")["subscribers"] == 31)
    for s in news[10:] + [other, both]:
        s.close()
    assert wait_for(lambda: topic_info(srv, "news")["subscribers"] == 0)


def test_topic_reports_newest_id_and_retained_count(server):
    info = topic_info(server, "news")
    assert info == {"topic": "news", "subscribers": 0, "newest_id": None,
                    "retained": 0}
    ids = [server.publish("news", f"e{i}") for i in range(5)]
    info = topic_info(server, "news")
    assert info["newest_id"] == str(ids[-1])
    assert info["retained"] == 5


def test_topic_answers_404_400_and_only_on_the_admin_listener(server):
    status, _, body = server.request("GET", "/topics/nope", admin=True)
    assert status == 404 and b"unknown topic 'nope'" in body
    status, _, _ = server.request("GET", "/topics/..", admin=True)
    assert status in (400, 404)
    status, _, _ = server.request("GET", "/topics/bad%20name", admin=True)
    assert status == 400
    status, _, _ = server.request("POST", "/topics/news", admin=True)
    assert status == 405
    status, _, _ = server.request("GET", "/topics/news")
    assert status == 404


def test_metrics_name_the_busiest_topics(server):
    subs = [server.subscribe("/events/news") for _ in range(3)]
    assert wait_for(lambda: server.metrics().get(
        'ringcast_topic_streams{topic="news"}') == 3)
    for s in subs:
        s.close()


def wakeups(srv):
    """ringcast_wakeups_total summed over workers."""
    return sum(v for k, v in srv.metrics().items()
               if k.startswith("ringcast_wakeups_total{"))


def test_publish_wakes_only_workers_that_follow_the_topic(make_server):
    """A publish of a topic no stream follows wakes no worker; one that a
    single stream follows wakes at most that stream's worker, once per
    event at most (an already-signalled worker is not signalled again)."""
    srv = make_server(start=False, server={"workers": "2"})
    srv.ctl("topic", "add", "news")
    srv.ctl("topic", "add", "quiet")
    srv.start()
    before = wakeups(srv)
    for i in range(50):
        srv.publish("quiet", f"q{i}")
    assert wakeups(srv) == before
    sub = srv.subscribe("/events/news")
    before = wakeups(srv)
    ids = [srv.publish("news", f"n{i}") for i in range(50)]
    assert [int(e["id"]) for e in sub.events(50)] == ids
    woken = wakeups(srv) - before
    # The publishing worker, when it is the stream's, needs no wake-up.
    assert 0 <= woken <= 50
    for i in range(50):
        srv.publish("quiet", f"q{i}")
    assert wakeups(srv) - before == woken
    sub.close()
