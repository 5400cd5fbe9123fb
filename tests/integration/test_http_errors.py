"""Every status of DESIGN §4 that is not a stream's 200, against the real
daemon: publish answers, bad names, tokens, size and header limits, the
smuggling-prone requests, CORS preflight, /healthz and /metrics."""

import json
import socket
import time

import pytest

from ringcast_harness import SLOW, read_response

BAD_TOPICS = [
    pytest.param("..", id="dotdot"),
    pytest.param("%2e%2e", id="encoded-dotdot"),
    pytest.param("", id="empty"),
    pytest.param("a" * 129, id="129-chars"),
    pytest.param("/news", id="leading-slash"),
]


def request_bytes(method, path, headers=(), body=b"", version="1.1"):
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- publish ---------------------------------------------------------------

def test_publish_answers_201_with_the_event_id(shared_server):
    status, headers, body = shared_server.request(
        "POST", "/publish/news", body=b"hello")
    assert status == 201
    assert headers["content-type"] == "application/json"
    seq = headers["ringcast-event-id"]
    assert seq.isdigit() and int(seq) > 0
    assert json.loads(body) == {"id": seq}


def test_publish_to_unknown_topic_is_404(shared_server):
    status, _, _ = shared_server.request("POST", "/publish/nosuch",
                                         body=b"x")
    assert status == 404


@pytest.mark.parametrize("name", BAD_TOPICS)
def test_publish_to_bad_topic_name_is_400(shared_server, name):
    status, _, _ = shared_server.request("POST", f"/publish/{name}",
                                         body=b"x")
    assert status == 400


def test_publish_body_over_max_event_bytes_is_413(shared_server):
    status, _, _ = shared_server.request("POST", "/publish/news",
                                         body=b"x" * 4097)
    assert status == 413


def test_publish_body_of_exactly_max_event_bytes_is_accepted(shared_server):
    status, _, _ = shared_server.request("POST", "/publish/news",
                                         body=b"x" * 4096)
    assert status == 201


def test_publish_event_type_of_64_bytes_is_accepted(shared_server):
    status, _, _ = shared_server.request(
        "POST", "/publish/news", body=b"x",
        headers={"Ringcast-Event": "t" * 64})
    assert status == 201


def test_publish_event_type_over_64_bytes_is_400(shared_server):
    status, _, _ = shared_server.request(
        "POST", "/publish/news", body=b"x",
        headers={"Ringcast-Event": "t" * 65})
    assert status == 400


@pytest.mark.parametrize("value", [
    pytest.param(b"a\rb", id="bare-CR"),
    pytest.param(b"a\nb", id="bare-LF"),
    pytest.param(b"a\r\nb", id="CRLF"),
])
def test_publish_event_type_with_cr_or_lf_is_400(shared_server, value):
    # http.client refuses to send these, so they go out on a raw socket.
    req = (b"POST /publish/news HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Ringcast-Event: " + value + b"\r\n"
           b"Content-Length: 1\r\n\r\nx")
    status, _, _ = shared_server.raw(req)
    assert status == 400


def test_publish_without_token_is_401_when_tokens_are_required(make_server):
    srv = make_server(start=False, publish={"require_token": "yes"})
    srv.ctl("topic", "add", "news")
    srv.start()
    status, headers, _ = srv.request("POST", "/publish/news", body=b"x")
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")


def test_publish_with_wrong_token_is_403(make_server):
    srv = make_server(start=False, publish={"require_token": "yes"})
    srv.ctl("topic", "add", "news")
    srv.ctl("topic", "add", "other")
    other = srv.token("--publish", "--topic", "other")
    reader = srv.token("--subscribe", "--topic", "news")
    srv.start()
    for token in ("not-a-token", other, reader):
        status, _, _ = srv.request(
            "POST", "/publish/news", body=b"x",
            headers={"Authorization": f"Bearer {token}"})
        assert status == 403, token


def test_publish_with_publish_token_is_201(make_server):
    srv = make_server(start=False, publish={"require_token": "yes"})
    srv.ctl("topic", "add", "news")
    token = srv.token("--publish", "--topic", "news")
    srv.start()
    assert srv.publish("news", "x", token=token) > 0


# -- streams that are refused ---------------------------------------------

def test_stream_of_unknown_topic_is_404(shared_server):
    status, headers, _ = shared_server.request("GET", "/events/nosuch")
    assert status == 404
    assert "text/event-stream" not in headers.get("content-type", "")


@pytest.mark.parametrize("name", BAD_TOPICS)
def test_stream_of_bad_topic_name_is_400(shared_server, name):
    status, _, _ = shared_server.request("GET", f"/events/{name}")
    assert status == 400


def test_multi_topic_stream_with_unknown_topic_is_404(shared_server):
    status, _, _ = shared_server.request(
        "GET", "/events?topic=news&topic=nosuch")
    assert status == 404


def test_private_stream_without_token_is_401(shared_server):
    status, headers, _ = shared_server.request("GET", "/events/secret")
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")


def test_private_stream_with_wrong_token_is_403(shared_server):
    publisher = shared_server.token("--publish", "--topic", "secret")
    for token in ("not-a-token", publisher):
        status, _, _ = shared_server.request(
            "GET", "/events/secret",
            headers={"Authorization": f"Bearer {token}"})
        assert status == 403, token
        status, _, _ = shared_server.request(
            "GET", f"/events/secret?token={token}")
        assert status == 403, token


def test_private_stream_with_subscribe_token_is_200(shared_server):
    token = shared_server.token("--subscribe", "--topic", "secret")
    for how in ("header", "query"):
        if how == "header":
            sub = shared_server.subscribe(
                "/events/secret", headers={"Authorization": f"Bearer {token}"})
        else:
            sub = shared_server.subscribe(f"/events/secret?token={token}")
        try:
            assert sub.status == 200, how
        finally:
            sub.close()


# -- routing ---------------------------------------------------------------

@pytest.mark.parametrize("method,path,allow", [
    ("DELETE", "/events/news", "GET, OPTIONS"),
    ("POST", "/events/news", "GET, OPTIONS"),
    ("GET", "/publish/news", "POST, OPTIONS"),
    ("PUT", "/publish/news", "POST, OPTIONS"),
    ("POST", "/healthz", "GET"),
])
def test_wrong_method_is_405_with_allow(shared_server, method, path, allow):
    status, headers, _ = shared_server.request(method, path, body=b"")
    assert status == 405
    assert headers["allow"] == allow


def test_unknown_path_is_404(shared_server):
    status, _, _ = shared_server.request("GET", "/nope")
    assert status == 404


def test_healthz_is_200_ok(shared_server):
    status, _, body = shared_server.request("GET", "/healthz")
    assert (status, body) == (200, b"ok\n")


def test_metrics_is_404_on_the_main_listener(shared_server):
    status, _, _ = shared_server.request("GET", "/metrics")
    assert status == 404


def test_metrics_is_prometheus_text_on_the_admin_listener(shared_server):
    status, headers, body = shared_server.request("GET", "/metrics",
                                                  admin=True)
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert "# TYPE ringcast_events_published_total counter" in text
    assert "ringcast_ring_committed_seq " in text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            assert name and float(value) >= 0, line


def test_admin_listener_serves_no_streams(shared_server):
    status, _, _ = shared_server.request("GET", "/events/news", admin=True)
    assert status == 404


# -- CORS ------------------------------------------------------------------

def test_preflight_from_allowed_origin_echoes_it(shared_server):
    status, headers, _ = shared_server.request(
        "OPTIONS", "/events/news",
        headers={"Origin": "http://app.example",
                 "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "last-event-id"})
    assert status in (200, 204)
    assert headers["access-control-allow-origin"] == "http://app.example"
    allowed = [h.strip().lower() for h in
               headers["access-control-allow-headers"].split(",")]
    assert "last-event-id" in allowed and "authorization" in allowed


def test_preflight_from_other_origin_is_not_allowed(shared_server):
    for origin in ({"Origin": "http://evil.example"}, {}):
        status, headers, _ = shared_server.request(
            "OPTIONS", "/events/news",
            headers={**origin, "Access-Control-Request-Method": "GET"})
        assert status in (200, 204)
        assert "access-control-allow-origin" not in headers


def test_stream_from_allowed_origin_carries_cors_header(shared_server):
    sub = shared_server.subscribe("/events/news",
                                  headers={"Origin": "http://app.example"})
    try:
        assert sub.status == 200
        assert sub.headers["access-control-allow-origin"] == \
            "http://app.example"
    finally:
        sub.close()


# -- request limits and smuggling ----------------------------------------

def test_header_over_max_header_bytes_is_431(shared_server):
    status, _, _ = shared_server.request(
        "GET", "/events/news", headers={"X-Big": "b" * (20 * 1024)})
    assert status == 431


def test_half_a_request_line_is_408_after_the_header_timeout(shared_server):
    # header_timeout is 2s in the harness.
    with socket.create_connection(("127.0.0.1", shared_server.port),
                                  timeout=8 * SLOW) as s:
        start = time.monotonic()
        s.sendall(b"GET /events/ne")
        status, headers, _ = read_response(s)
        waited = time.monotonic() - start
        assert status == 408
        assert headers.get("connection") == "close"
        assert 1.5 <= waited <= 2 + 3 * SLOW, waited
        s.settimeout(2 * SLOW)
        assert s.recv(1) == b""


def test_duplicate_content_length_is_400(shared_server):
    status, _, _ = shared_server.raw(request_bytes(
        "POST", "/publish/news",
        ["Content-Length: 1", "Content-Length: 1"], b"x"))
    assert status == 400


def test_content_length_with_transfer_encoding_is_400(shared_server):
    status, _, _ = shared_server.raw(request_bytes(
        "POST", "/publish/news",
        ["Content-Length: 6", "Transfer-Encoding: chunked"],
        b"1\r\nx\r\n0\r\n\r\n"))
    assert status == 400


def test_smuggling_attempts_append_nothing(shared_server):
    before = shared_server.publish("news", "before")
    shared_server.raw(request_bytes(
        "POST", "/publish/news",
        ["Content-Length: 1", "Content-Length: 1"], b"x"))
    shared_server.raw(request_bytes(
        "POST", "/publish/news",
        ["Content-Length: 6", "Transfer-Encoding: chunked"],
        b"1\r\nx\r\n0\r\n\r\n"))
    assert shared_server.publish("news", "after") == before + 1
