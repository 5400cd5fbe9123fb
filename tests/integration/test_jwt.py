"""JWT authorization (issue #15, DESIGN §10.3): tokens signed here (PyJWT,
Debian's python3-jwt) with an HS256 secret, RS256 and ES256 keys; every
answer of the contract (401 without or with a bad token, 403 for a good one
that does not cover a topic), the three sources (Authorization, cookie,
query) in order, opaque ringcastctl tokens beside JWTs, publish rights, a
stream ended cleanly at exp, key rotation by reload, and CORS with
credentials."""

import json
import signal
import subprocess
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ringcast_harness import RINGCASTD, SLOW, StreamEnded

SECRET = "integration-test-secret-of-32-bytes-or-more"
ORIGIN = "http://app.example"


def token(claims=None, key=SECRET, alg="HS256", kid=None, exp_in=60,
          subscribe=None, publish=None):
    body = {"exp": int(time.time()) + exp_in}
    rc = {}
    if subscribe is not None:
        rc["subscribe"] = subscribe
    if publish is not None:
        rc["publish"] = publish
    if rc:
        body["ringcast"] = rc
    body.update(claims or {})
    headers = {"kid": kid} if kid else None
    return jwt.encode(body, key, algorithm=alg, headers=headers)


def wait_until(cond, timeout):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory):
    """Private topics user/42, user/43 and feed, the public news; HS256
    keys from a secret file; clock_skew 0 so exp is exact."""
    from ringcast_harness import Server
    tmp = tmp_path_factory.mktemp("jwt")
    (tmp / "secret").write_text(SECRET + "\n")
    srv = Server(tmp, auth={"jwt_key_file": str(tmp / "secret"),
                            "jwt_algorithms": "HS256",
                            "clock_skew": "0s"},
                 publish={"require_token": "yes"},
                 cors={"allow_origins": f"{ORIGIN}, *"})
    for t in ("user/42", "user/43", "feed", "room:*"):
        srv.ctl("topic", "add", t, "--private")
    srv.ctl("topic", "add", "news")
    srv.start()
    yield srv
    try:
        srv.stop()
    except AssertionError:
        srv.kill_all()
    assert not srv.troubles(), "\n".join(srv.troubles())


def status_of(srv, path, headers=None):
    """(status, headers, what was read) of a subscribe, then close it."""
    sub = srv.subscribe(path, headers=headers, timeout=5)
    sub.close()
    return sub.status, sub.headers, sub.raw.decode(errors="replace")


def bearer(tok):
    return {"Authorization": f"Bearer {tok}"}


def stream_ok(srv, path, headers=None, topic="user/42"):
    """Open path, publish one event to topic, and see it arrive."""
    sub = srv.subscribe(path, headers=headers)
    try:
        assert sub.status == 200, (sub.status, sub.raw)
        srv.publish(topic, "hello", token=token(publish=[topic]))
        ev = sub.next_event()
        assert ev["data"] == "hello"
    finally:
        sub.close()


# -- answers ------------------------------------------------------------------

def test_private_topic_without_credentials_is_401(jwt_server):
    status, hdrs, body = status_of(jwt_server, "/events/user/42")
    assert status == 401, body
    assert hdrs["www-authenticate"].startswith("Bearer")


def test_bearer_jwt_covering_the_topic_streams(jwt_server):
    stream_ok(jwt_server, "/events/user/42",
              bearer(token(subscribe=["user/42"])))


def test_family_pattern_covers_its_members(jwt_server):
    stream_ok(jwt_server, "/events/user/43",
              bearer(token(subscribe=["user/*"])), topic="user/43")


def test_jwt_pattern_covers_members_of_a_private_family(jwt_server):
    """room:7 exists only through the catalog's family room:*."""
    tok = token(subscribe=["room:*"], publish=["room:*"])
    sub = jwt_server.subscribe("/events/room:7", headers=bearer(tok))
    try:
        assert sub.status == 200, sub.raw
        jwt_server.publish("room:7", "in the room", token=tok)
        assert sub.next_event()["data"] == "in the room"
    finally:
        sub.close()
    status, _, _ = status_of(jwt_server, "/events/room:7",
                             bearer(token(subscribe=["room:8"])))
    assert status == 403


def test_cookie_carries_the_jwt(jwt_server):
    tok = token(subscribe=["user/42"])
    stream_ok(jwt_server, "/events/user/42",
              {"Cookie": f"theme=dark; ringcast_token={tok}; x=1"})


def test_query_parameter_carries_the_jwt(jwt_server):
    tok = token(subscribe=["user/42"])
    stream_ok(jwt_server, f"/events/user/42?token={tok}")


def test_the_header_wins_over_the_cookie(jwt_server):
    good = token(subscribe=["user/42"])
    bad = token(subscribe=["user/42"], key="x" * 40)
    status, _, body = status_of(
        jwt_server, "/events/user/42",
        {**bearer(bad), "Cookie": f"ringcast_token={good}"})
    assert status == 401, body
    status, _, _ = status_of(
        jwt_server, f"/events/user/42?token={bad}",
        {"Cookie": f"ringcast_token={good}"})
    assert status == 200


def test_good_token_not_covering_the_topic_is_403(jwt_server):
    tok = token(subscribe=["user/42"])
    status, _, body = status_of(jwt_server, "/events/user/43", bearer(tok))
    assert status == 403, body
    status, _, body = status_of(jwt_server, "/events/feed", bearer(tok))
    assert status == 403, body


def test_multi_topic_stream_needs_every_private_topic(jwt_server):
    tok = token(subscribe=["user/42", "feed"])
    path = "/events?topic=news&topic=user/42&topic=feed"
    status, _, _ = status_of(jwt_server, path + "&topic=user/43",
                             bearer(tok))
    assert status == 403
    sub = jwt_server.subscribe(path, headers=bearer(tok))
    try:
        assert sub.status == 200
    finally:
        sub.close()


@pytest.mark.parametrize("why,tok", [
    ("bad signature", lambda: token(subscribe=["user/42"], key="k" * 40)),
    ("expired", lambda: token(subscribe=["user/42"], exp_in=-5)),
    ("not valid yet", lambda: token(
        {"nbf": int(time.time()) + 300}, subscribe=["user/42"])),
    ("no exp", lambda: jwt.encode({"ringcast": {"subscribe": ["user/42"]}},
                                  SECRET, algorithm="HS256")),
    ("alg not allowed", lambda: token(subscribe=["user/42"], alg="HS512")),
    ("alg none", lambda: jwt.encode(
        {"exp": int(time.time()) + 60,
         "ringcast": {"subscribe": ["user/42"]}}, None, algorithm="none")),
    ("bad claim", lambda: token(subscribe=["user/**"])),
])
def test_refused_tokens_are_401(jwt_server, why, tok):
    status, hdrs, body = status_of(jwt_server, "/events/user/42",
                                   bearer(tok()))
    assert status == 401, (why, body)
    assert 'error="invalid_token"' in hdrs["www-authenticate"]


def test_public_topic_ignores_a_bad_token(jwt_server):
    sub = jwt_server.subscribe("/events/news",
                               headers=bearer("not.a.token"))
    try:
        assert sub.status == 200
    finally:
        sub.close()


def test_opaque_ringcastctl_tokens_keep_working(jwt_server):
    secret = jwt_server.token("--subscribe", "--topic", "feed")
    stream_ok(jwt_server, "/events/feed", bearer(secret), topic="feed")
    stream_ok(jwt_server, f"/events/feed?token={secret}", topic="feed")
    status, _, _ = status_of(jwt_server, "/events/user/42", bearer(secret))
    assert status == 403


def test_query_token_is_never_logged(jwt_server):
    tok = token(subscribe=["user/42"])
    status_of(jwt_server, f"/events/user/43?token={tok}")
    status_of(jwt_server, f"/events/user/42?token={tok}x")
    assert tok not in jwt_server.log_text()


# -- publish ----------------------------------------------------------------

def test_publish_with_jwt_rights(jwt_server):
    assert jwt_server.publish("news", "a", token=token(publish=["news"]))
    jwt_server.publish("news", "b", token=token(subscribe=["news"]),
                       expect=403)
    jwt_server.publish("news", "c", token=token(publish=["news"],
                                                key="z" * 40), expect=401)


def test_publish_takes_no_cookie(jwt_server):
    tok = token(publish=["news"])
    status, _, _ = jwt_server.request(
        "POST", "/publish/news", body=b"x",
        headers={"Cookie": f"ringcast_token={tok}"})
    assert status == 401


def test_batch_publish_verifies_once_and_checks_each_topic(jwt_server):
    tok = token(publish=["news", "user/*"])
    body = (b'{"topic":"news","data":"1"}\n'
            b'{"topic":"user/42","data":"2"}\n')
    status, _, text = jwt_server.request(
        "POST", "/publish", body=body,
        headers={**bearer(tok), "Content-Type": "application/x-ndjson"})
    assert status == 201, text
    body += b'{"topic":"feed","data":"3"}\n'
    status, _, text = jwt_server.request(
        "POST", "/publish", body=body,
        headers={**bearer(tok), "Content-Type": "application/x-ndjson"})
    assert status == 403 and b"line 3" in text, text


# -- expiry -------------------------------------------------------------------

def test_stream_ends_cleanly_at_exp(jwt_server):
    tok = token(subscribe=["user/42"], exp_in=2)
    sub = jwt_server.subscribe("/events/user/42", headers=bearer(tok),
                               timeout=8)
    try:
        assert sub.status == 200
        jwt_server.publish("user/42", "before exp",
                           token=token(publish=["user/42"]))
        assert sub.next_event()["data"] == "before exp"
        hints = len(sub.retry)
        t0 = time.monotonic()
        rest = sub.read_until_end(timeout=8)
        assert rest == []
        assert sub.clean_end, "no chunked terminator: not a clean end"
        assert len(sub.retry) > hints, "no retry: hint before the end"
        assert time.monotonic() - t0 < 5 * SLOW
    finally:
        sub.close()
    metrics = jwt_server.metrics()
    assert sum(v for k, v in metrics.items()
               if k.startswith("ringcast_streams_expired_total")) >= 1


# -- CORS -------------------------------------------------------------------

def test_listed_origin_gets_credentials(jwt_server):
    tok = token(subscribe=["user/42"])
    sub = jwt_server.subscribe("/events/user/42", headers={
        "Origin": ORIGIN, "Cookie": f"ringcast_token={tok}"})
    try:
        assert sub.status == 200
        assert sub.headers["access-control-allow-origin"] == ORIGIN
        assert sub.headers["access-control-allow-credentials"] == "true"
    finally:
        sub.close()


def test_wildcard_origin_never_gets_credentials(jwt_server):
    sub = jwt_server.subscribe("/events/news",
                               headers={"Origin": "http://other.example"})
    try:
        assert sub.status == 200
        assert sub.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in sub.headers
    finally:
        sub.close()


# -- keys -------------------------------------------------------------------

def pem_pair(kind):
    key = (rsa.generate_private_key(65537, 2048) if kind == "rsa"
           else ec.generate_private_key(ec.SECP256R1()))
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, pub


def test_rs256_es256_and_rotation_by_reload(make_server, tmp_path):
    rkey, rpub = pem_pair("rsa")
    ekey, epub = pem_pair("ec")
    (tmp_path / "rsa.pem").write_text(rpub)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"r1": {"pem_file": "rsa.pem"}}))
    srv = make_server(start=False, auth={
        "jwt_key_file": str(keys), "jwt_algorithms": "RS256, ES256"})
    srv.ctl("topic", "add", "user/42", "--private")
    srv.start()
    rtok = token(key=rkey, alg="RS256", kid="r1", subscribe=["user/42"])
    etok = token(key=ekey, alg="ES256", kid="e1", subscribe=["user/42"])
    assert status_of(srv, "/events/user/42", bearer(rtok))[0] == 200
    assert status_of(srv, "/events/user/42", bearer(etok))[0] == 401

    # A broken key file fails the reload; the old keys keep serving.
    keys.write_text('{"e1": {"pem": "not a key"}}')
    srv.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "still serving the old configuration"
                      in srv.log_text(), 5), srv.log_text()
    assert "jwt_key_file" in srv.log_text()
    assert status_of(srv, "/events/user/42", bearer(rtok))[0] == 200

    # Rotate: e1 in, r1 out.
    old = set(srv.worker_pids())
    keys.write_text(json.dumps({"e1": {"pem": epub}}))
    srv.send_signal(signal.SIGHUP)
    assert wait_until(lambda: not (set(srv.worker_pids()) & old), 10), \
        srv.log_text()
    assert wait_until(lambda: status_of(
        srv, "/events/user/42", bearer(etok))[0] == 200, 5)
    assert status_of(srv, "/events/user/42", bearer(rtok))[0] == 401


def test_bad_key_file_fails_the_config_test(tmp_path):
    (tmp_path / "short").write_text("too short\n")
    conf = tmp_path / "ringcast.conf"
    conf.write_text(f"[auth]\njwt_key_file = {tmp_path / 'short'}\n")
    res = subprocess.run([RINGCASTD, "-n", "-f", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "[auth] jwt_key_file" in res.stderr and "32" in res.stderr
