"""Topic families (issue #14): `ringcastctl topic add 'user/*'` makes every
user/<segment> a topic, with the family's options, that a client may
subscribe to before anything was published there; an exact topic
overrides its family; auto_create_topics covers subscribing too."""

import json

import pytest


def status_of(srv, path, headers=None):
    status, _, body = srv.request("GET", path, headers=headers)
    return status, body


@pytest.fixture
def fam(make_server):
    """A server with the public family user/*, the private family room:*,
    and the private topic user/admin overriding user/*."""
    srv = make_server(start=False)
    srv.ctl("topic", "add", "user/*")
    srv.ctl("topic", "add", "room:*", "--private")
    srv.ctl("topic", "add", "user/admin", "--private")
    return srv.start()


def test_family_topic_streams_before_its_first_publish(fam):
    sub = fam.subscribe("/events/user/42")
    try:
        assert sub.status == 200
        seq = fam.publish("user/42", "hello")
        ev = sub.events(1, timeout=5)[0]
        assert ev == {"id": str(seq), "event": "message", "data": "hello"}
    finally:
        sub.close()


def test_family_topics_are_separate_topics(fam):
    sub = fam.subscribe("/events?topic=user/1&topic=user/2")
    try:
        a = fam.publish("user/1", "one")
        fam.publish("user/3", "not ours")
        b = fam.publish("user/2", "two")
        got = sub.events(2, timeout=5)
        assert [(int(e["id"]), e["data"]) for e in got] == \
            [(a, "one"), (b, "two")]
    finally:
        sub.close()


@pytest.mark.parametrize("name", ["news", "user", "user/1/inbox", "users/1",
                                  "room/1", "user:1"])
def test_unknown_topic_outside_any_family_is_404(fam, name):
    status, body = status_of(fam, f"/events/{name}")
    assert status == 404, body
    assert f"unknown topic '{name}'".encode() in body
    fam.publish(name, "x", expect=404)


def test_a_pattern_is_not_a_topic(fam):
    assert status_of(fam, "/events/user/*")[0] == 400
    fam.publish("user/*", "x", expect=400)


def test_exact_topic_overrides_its_family(fam):
    status, _ = status_of(fam, "/events/user/admin")
    assert status == 401
    sub = fam.subscribe("/events/user/someone")
    try:
        assert sub.status == 200
    finally:
        sub.close()


def test_private_family_needs_a_token(fam):
    assert status_of(fam, "/events/room:lobby")[0] == 401
    token = fam.token("--subscribe", "--topic", "room:*")
    other = fam.token("--subscribe", "--topic", "user/admin")
    assert status_of(fam, f"/events/room:lobby?token={other}")[0] == 403
    # The family's token does not open the exact topic overriding user/*.
    assert status_of(fam, f"/events/user/admin?token={token}")[0] == 403
    sub = fam.subscribe("/events/room:lobby",
                        headers={"Authorization": f"Bearer {token}"})
    try:
        assert sub.status == 200
        seq = fam.publish("room:lobby", "hi all")
        assert sub.events(1, timeout=5)[0]["id"] == str(seq)
    finally:
        sub.close()
    # And any other member of the family, stored or not yet.
    sub = fam.subscribe(f"/events/room:kitchen?token={token}")
    try:
        assert sub.status == 200
    finally:
        sub.close()


def test_removed_family_admits_no_new_members(fam):
    fam.publish("user/1", "stored")
    fam.ctl("topic", "rm", "user/*")
    assert status_of(fam, "/events/user/2")[0] == 404
    sub = fam.subscribe("/events/user/1?lastEventId=0")
    try:
        assert sub.status == 200
        assert sub.events(1, timeout=5)[0]["data"] == "stored"
    finally:
        sub.close()


def test_admin_reports_a_member_not_used_yet(fam):
    status, _, body = fam.request("GET", "/topics/user/9", admin=True)
    assert status == 200, body
    assert json.loads(body) == {"topic": "user/9", "subscribers": 0,
                                "newest_id": None, "retained": 0}
    # Asking stored nothing.
    assert "user/9" not in fam.ctl("topic", "list", "--members").stdout


def test_auto_create_covers_subscribe(make_server):
    srv = make_server(catalog={"auto_create_topics": "yes"})
    sub = srv.subscribe("/events/orders/17")
    try:
        assert sub.status == 200
        seq = srv.publish("orders/17", "shipped")
        assert sub.events(1, timeout=5)[0]["id"] == str(seq)
    finally:
        sub.close()
    out = srv.ctl("topic", "show", "orders/17").stdout
    assert "flags: public\n" in out


def test_without_auto_create_a_subscribe_creates_nothing(server):
    assert status_of(server, "/events/orders/17")[0] == 404
    assert server.ctl("topic", "show", "orders/17",
                      check=False).returncode == 1


def test_family_publish_token(make_server):
    srv = make_server(start=False, publish={"require_token": "yes"})
    srv.ctl("topic", "add", "user/*")
    srv.ctl("topic", "add", "room/*")
    token = srv.token("--publish", "--topic", "user/*")
    srv.start()
    srv.publish("user/5", "x", expect=401)
    assert srv.publish("user/5", "x", token=token) > 0
    assert srv.publish("user/6", "y", token=token) > 0
    srv.publish("room/5", "x", token=token, expect=403)
