"""Batch publish (issue #13): POST /publish with an application/x-ndjson
body, one event per line; all appended or none, ids in line order, a bad
line named in the answer, tokens checked per topic."""

import json

import pytest

NDJSON = {"Content-Type": "application/x-ndjson"}


def batch(srv, lines, headers=None, raw=None):
    body = raw if raw is not None else (
        "\n".join(json.dumps(x) for x in lines) + "\n").encode()
    h = dict(NDJSON)
    h.update(headers or {})
    return srv.request("POST", "/publish", body=body, headers=h)


def newest(srv, topic):
    status, _, body = srv.request("GET", f"/topics/{topic}", admin=True)
    assert status == 200
    return json.loads(body)["newest_id"]


@pytest.fixture
def two_topics(make_server):
    srv = make_server(start=False)
    srv.ctl("topic", "add", "news")
    srv.ctl("topic", "add", "sport")
    return srv.start()


def test_batch_appends_every_line_in_order_with_consecutive_ids(two_topics):
    srv = two_topics
    news = srv.subscribe("/events/news")
    sport = srv.subscribe("/events/sport")
    lines = [{"topic": "news", "data": "n1"},
             {"topic": "sport", "data": "s1", "event": "goal"},
             {"topic": "news", "data": "two\nlines"},
             {"topic": "sport", "data": "é ✓"}]
    status, hdrs, body = batch(srv, lines)
    assert status == 201, body
    ids = [int(x) for x in json.loads(body)["ids"]]
    assert ids == list(range(ids[0], ids[0] + 4))
    assert hdrs["ringcast-event-id"] == f"{ids[0]}-{ids[-1]}"
    got = news.events(2)
    assert [(int(e["id"]), e["data"]) for e in got] == [
        (ids[0], "n1"), (ids[2], "two\nlines")]
    got = sport.events(2)
    assert [(int(e["id"]), e.get("event"), e["data"]) for e in got] == [
        (ids[1], "goal", "s1"), (ids[3], "message", "é ✓")]


@pytest.mark.parametrize("raw,status,message", [
    (b'{"topic":"news","data":"ok"}\n{"topic":"news"}\n', 400,
     b'line 2: "data" is missing'),
    (b'{"topic":"news","data":"ok"}\nnot json\n', 400, b"line 2: not JSON"),
    (b'{"topic":"news","data":"a"}\n{"topic":"bad name","data":"b"}\n', 400,
     b"line 2: bad topic name"),
    (b'{"topic":"news","data":"a","id":"7"}\n', 400,
     b'line 1: unknown key "id"'),
    (b'{"topic":"news","data":"a"}\n\n{"topic":"nope","data":"b"}\n', 404,
     b"line 3: unknown topic 'nope'"),
    (b"", 400, b"no events"),
])
def test_batch_with_a_bad_line_appends_nothing(two_topics, raw, status,
                                               message):
    srv = two_topics
    before = srv.publish("news", "before")
    st, _, body = batch(srv, None, raw=raw)
    assert st == status, body
    assert message in body
    assert newest(srv, "news") == str(before)
    assert srv.publish("news", "after") == before + 1


def test_batch_checks_the_token_for_each_topic(make_server):
    srv = make_server(start=False, publish={"require_token": "yes"})
    srv.ctl("topic", "add", "news")
    srv.ctl("topic", "add", "sport")
    token = srv.token("--publish", "--topic", "news")
    srv.start()
    auth = {"Authorization": f"Bearer {token}"}
    st, _, body = batch(srv, [{"topic": "news", "data": "1"}], auth)
    assert st == 201, body
    first = int(json.loads(body)["ids"][0])
    st, _, body = batch(srv, [{"topic": "news", "data": "2"},
                              {"topic": "sport", "data": "3"}], auth)
    assert st == 403 and b"line 2: the token may not publish to 'sport'" \
        in body
    st, _, _ = batch(srv, [{"topic": "news", "data": "4"}])
    assert st == 401
    assert newest(srv, "news") == str(first)


def test_batch_limits_answer_413_and_400(make_server):
    srv = make_server(start=False, publish={"max_batch_bytes": "4K",
                                            "max_batch_events": "3"})
    srv.ctl("topic", "add", "news")
    srv.start()
    st, _, body = batch(srv, [{"topic": "news", "data": "x" * 5000}])
    assert st == 413 and b"max_batch_bytes" in body
    st, _, body = batch(srv, [{"topic": "news", "data": str(i)}
                              for i in range(4)])
    assert st == 400 and b"line 4" in body
    st, _, body = batch(srv, [{"topic": "news", "data": str(i)}
                              for i in range(3)])
    assert st == 201, body


def test_batch_needs_the_ndjson_content_type(two_topics):
    st, _, body = two_topics.request(
        "POST", "/publish", body=b'{"topic":"news","data":"x"}\n',
        headers={"Content-Type": "application/json"})
    assert st == 415 and b"application/x-ndjson" in body
    st, hdrs, _ = two_topics.request("GET", "/publish")
    assert st == 405 and "POST" in hdrs["allow"]
