"""Bad input against the real daemon, one test per row of the matrix in
issue #9: each malformed, oversized, slow or unauthorised request gets the
status DESIGN §4 promises, and a subscriber that was already streaming
(the witness) loses nothing: it receives exactly the events published
around the bad input, in order, and its stream stays open.

Start-up failures (a corrupt ring or catalog, no space for the ring) have
no running daemon to witness; they check the exit status and the message."""

import os
import pathlib
import socket
import subprocess
import threading
import time

import pytest

import ringcast_harness
from ringcast_harness import RINGCASTD, SLOW

HOST = "127.0.0.1"


# -- a raw HTTP client: the bad input must reach the server as written ------

class Response:
    def __init__(self, status, headers, body, sock):
        self.status = status
        self.headers = headers
        self.body = body
        self.sock = sock

    def closed_by_server(self, timeout=3):
        """True when the server ends the connection (EOF or reset)."""
        self.sock.settimeout(timeout * SLOW)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        except socket.timeout:
            return False
        return True


def connect(srv, source=None, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    if source is not None:
        s.bind((source, 0))
    s.connect((HOST, srv.port))
    return s


def read_response(sock):
    """One response: status, lower-cased headers and its Content-Length
    body.  Raises if the server closes before a full head."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed after {raw!r}")
        raw += data
    head, rest = raw.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            break
        rest += data
    return Response(status, headers, rest[:length], sock)


def exchange(srv, data, source=None, timeout=5):
    """Send data on a new connection and read one response."""
    s = connect(srv, source, timeout)
    s.sendall(data)
    return read_response(s)


def request_bytes(method, path, headers=(), body=b"", host=True):
    lines = [f"{method} {path} HTTP/1.1"]
    if host:
        lines.append(f"Host: {HOST}")
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def publish(srv, topic, data, token=None, source=None):
    if isinstance(data, str):
        data = data.encode()
    headers = [f"Content-Length: {len(data)}", "Connection: close"]
    if token is not None:
        headers.append(f"Authorization: Bearer {token}")
    r = exchange(srv, request_bytes("POST", f"/publish/{topic}", headers,
                                    data), source)
    r.sock.close()
    return r


def subscribe_from(srv, source, path, headers=None):
    """srv.subscribe with the client socket bound to a source address."""
    return srv.subscribe(path, headers, source=source)


# -- the witness -----------------------------------------------------------

class Witness:
    """A subscriber of 'news' opened before the bad input.  Two events are
    published and received before it (so it is streaming), and check()
    publishes two more and asserts it received exactly the ones published,
    in order, with nothing between them and its stream still open."""

    def __init__(self, srv, source=None, token=None):
        self.srv = srv
        self.source = source
        self.token = token
        self.published = []
        self.received = []
        self.checked = False
        if source is None:
            self.sub = srv.subscribe("/events/news")
        else:
            self.sub = subscribe_from(srv, source, "/events/news")
        assert self.sub.status == 200
        self.publish("before-1")
        self.publish("before-2")
        self.received += self.sub.events(2, timeout=5)
        assert self.received == self.expected()

    def publish(self, data, wait=5):
        """Publish to 'news' (retrying while the server says 503: the row
        may hold the server at a connection cap for a moment)."""
        deadline = time.monotonic() + wait * SLOW
        while True:
            r = publish(self.srv, "news", data, self.token, self.source)
            if r.status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status == 201, (r.status, r.body)
        self.published.append((int(r.headers["ringcast-event-id"]), data))

    def expected(self):
        return [{"id": str(seq), "event": "message", "data": data}
                for seq, data in self.published[:len(self.received)]]

    def check(self):
        self.publish("after-1")
        self.publish("after-2")
        missing = len(self.published) - len(self.received)
        self.received += self.sub.events(missing, timeout=5)
        assert self.received == [
            {"id": str(seq), "event": "message", "data": data}
            for seq, data in self.published]
        assert not self.sub.eof
        self.checked = True

    def close(self):
        self.sub.close()


@pytest.fixture
def witness():
    """witness(srv, source=None, token=None): a Witness on srv's 'news';
    every test must call its check() after the bad input."""
    made = []

    def make(srv, **kwargs):
        w = Witness(srv, **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
    assert all(w.checked for w in made), "a witness was never checked"


def news_server(make_server, **sections):
    srv = make_server(start=False, **sections)
    srv.ctl("topic", "add", "news")
    return srv.start()


def hold_streams(srv, n, source="127.0.0.1", timeout=10):
    """n streams that are really streaming, not soft-rejected because a
    connection from before (a publish lingering in close) still counted."""
    held = []
    deadline = time.monotonic() + timeout * SLOW
    while len(held) < n:
        assert time.monotonic() < deadline, "could not fill the cap"
        h = subscribe_from(srv, source, "/events/news")
        assert h.status == 200
        try:
            h.events(1, timeout=0.3)
            raise AssertionError("an event on an idle topic")
        except socket.timeout:
            held.append(h)      # open, quiet: a real stream
        except ringcast_harness.StreamEnded:
            h.close()           # soft-rejected: try again
            time.sleep(0.05)
    return held


def assert_error(r, status, says=None):
    assert r.status == status, (r.status, r.body)
    assert r.body.startswith(f"{status} ".encode()), r.body
    if says is not None:
        assert says.encode() in r.body, r.body


# -- the rows ---------------------------------------------------------------

@pytest.mark.parametrize("what", ["request-line", "one-header",
                                  "many-headers"])
def test_request_line_or_headers_too_large_is_431(server, witness, what):
    w = witness(server)
    big = 20 * 1024         # over the default max_header_bytes of 16K
    if what == "request-line":
        data = request_bytes("GET", "/events/news?x=" + "a" * big)
    elif what == "one-header":
        data = request_bytes("GET", "/events/news", [f"X-Big: {'b' * big}"])
    else:
        data = request_bytes("GET", "/events/news",
                             [f"X-H{i}: {'c' * 60}" for i in range(400)])
    r = exchange(server, data)
    assert_error(r, 431)
    assert r.headers.get("connection") == "close"
    assert r.closed_by_server()
    w.check()


def test_slowloris_headers_get_408_within_header_timeout(make_server,
                                                         witness):
    srv = news_server(make_server, limits={"header_timeout": "1s"})
    w = witness(srv)
    s = connect(srv, timeout=10)
    start = time.monotonic()
    s.sendall(b"GET /events/news HTTP/1.1\r\nHost: x\r\n")
    # Trickle a header byte by byte: each byte is progress, but the header
    # timeout counts from the start of the request, not from the last byte.
    head = b""
    s.settimeout(0.2)
    for ch in b"X-Slow: " + b"z" * 100:
        try:
            s.sendall(bytes([ch]))
            head = s.recv(65536)
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if head:
            break
    answered = time.monotonic() - start
    s.settimeout(5)
    while b"\r\n\r\n" not in head:
        data = s.recv(65536)
        assert data, head
        head += data
    assert head.startswith(b"HTTP/1.1 408 "), head
    r = Response(408, {}, b"", s)
    assert r.closed_by_server(2)
    closed = time.monotonic() - start
    # 1 s of header timeout, plus the 100 ms tick, plus slack.
    assert 0.9 <= answered <= 1.0 + 0.6 * SLOW, answered
    assert closed <= 1.0 + 1.0 * SLOW, closed
    w.check()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_max_event_bytes_is_413(make_server, witness, framing):
    srv = news_server(make_server, limits={"max_event_bytes": "4K"})
    w = witness(srv)
    body = b"x" * (4 * 1024 + 1)
    if framing == "content-length":
        data = request_bytes("POST", "/publish/news",
                             [f"Content-Length: {len(body)}"], body)
    else:
        chunks = b"".join(b"%x\r\n%s\r\n" % (1024, body[i:i + 1024])
                          for i in range(0, len(body) - 1, 1024))
        data = request_bytes("POST", "/publish/news",
                             ["Transfer-Encoding: chunked"],
                             chunks + b"1\r\nx\r\n0\r\n\r\n")
    r = exchange(srv, data)
    assert_error(r, 413)
    assert r.closed_by_server()
    w.publish("y" * 4096)      # exactly the limit is fine
    w.check()


def test_content_length_with_transfer_encoding_is_400(server, witness):
    w = witness(server)
    r = exchange(server, request_bytes(
        "POST", "/publish/news",
        ["Content-Length: 5", "Transfer-Encoding: chunked"],
        b"5\r\nhello\r\n0\r\n\r\n"))
    assert_error(r, 400)
    assert r.closed_by_server()
    w.check()


@pytest.mark.parametrize("lengths", [("5", "5"), ("5", "6")])
def test_two_content_lengths_are_400(server, witness, lengths):
    w = witness(server)
    r = exchange(server, request_bytes(
        "POST", "/publish/news",
        [f"Content-Length: {n}" for n in lengths], b"hello!"))
    assert_error(r, 400)
    assert r.closed_by_server()
    w.check()


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",            # size not hex
    b"-5\r\nhello\r\n0\r\n\r\n",            # negative size
    b"ffffffffffffffffff\r\nx\r\n",         # size overflows
    b"5\nhello\r\n0\r\n\r\n",              # bare LF after the size
    b"5\rXhello\r\n0\r\n\r\n",             # CR, no LF after the size
    b"5\r\nhelloXX0\r\n\r\n",               # no CRLF after the data
    b"5\r\nhello\nX0\r\n\r\n",              # bare LF after the data
    b"5\r\nhello\rX0\r\n\r\n",              # CR, no LF after the data
    b"5\r\nhelloworld\r\n0\r\n\r\n",        # more data than the size
    b"5\r\nhello\r\n0\r\n\rX",              # CR, no LF at the end
], ids=["bad-hex", "negative", "overflow", "size-bare-lf", "size-no-lf",
        "data-no-crlf", "data-bare-lf", "data-no-lf", "data-too-long",
        "end-no-lf"])
def test_broken_chunked_body_is_400_and_publishes_nothing(server, witness,
                                                          body):
    w = witness(server)
    r = exchange(server, request_bytes(
        "POST", "/publish/news", ["Transfer-Encoding: chunked"], body))
    assert r.status in (400, 413), (r.status, r.body)
    if body.startswith(b"ffff"):
        # A size over max_event_bytes may be refused as too large.
        assert r.body.startswith(f"{r.status} ".encode())
    else:
        assert_error(r, 400)
    assert r.closed_by_server()
    # check() proves nothing reached 'news': any event would sit before
    # the next one published and break the exact sequence.
    w.check()


@pytest.mark.parametrize("method,path,allow", [
    ("FROB", "/events/news", "GET, POST, OPTIONS"),
    ("BREW", "/publish/news", "GET, POST, OPTIONS"),
    ("DELETE", "/publish/news", "POST, OPTIONS"),
    ("PUT", "/events/news", "GET, OPTIONS"),
    ("POST", "/healthz", "GET"),
])
def test_unknown_method_is_405_with_allow(server, witness, method, path,
                                          allow):
    w = witness(server)
    r = exchange(server, request_bytes(method, path, ["Content-Length: 0"]))
    assert_error(r, 405)
    assert r.headers["allow"] == allow
    w.check()


@pytest.mark.parametrize("name", [
    "..", "%2e%2e", "%2E%2E", ".", "", "a" * 129, "a/../news", "a/./b",
    "/news", "news/", "a//b", ":news", "news:", "sp%20ace", "n%00ul",
    "%2e%2e%2fetc%2fpasswd", "caf%C3%A9",
])
@pytest.mark.parametrize("kind", ["events", "publish"])
def test_bad_topic_names_are_400(server, witness, kind, name):
    w = witness(server)
    if kind == "events":
        r = exchange(server, request_bytes("GET", f"/events/{name}"))
    else:
        r = exchange(server, request_bytes(
            "POST", f"/publish/{name}", ["Content-Length: 1"], b"x"))
    assert_error(r, 400)
    w.check()


def test_bad_topic_names_in_the_query_are_400(server, witness):
    w = witness(server)
    for q in ["topic=..", "topic=%2e%2e", "topic=", "topic=" + "a" * 129,
              "topic=news&topic=..", "topic=%zz"]:
        r = exchange(server, request_bytes("GET", f"/events?{q}"))
        assert_error(r, 400)
        r.sock.close()
    w.check()


@pytest.mark.parametrize("header", [
    b"X-Nul: a\x00b", b"X-Cr: a\rb", b"X-\x00Name: v", b"X-C\rr: v",
    b"Last-Event-ID: 1\x00", b"Last-Event-ID: 1\r2",
    b"Ringcast-Event: a\rb",
], ids=["nul-value", "cr-value", "nul-name", "cr-name", "nul-lei",
        "cr-lei", "cr-event-type"])
def test_nul_and_bare_cr_in_headers_are_400(server, witness, header):
    w = witness(server)
    data = (b"POST /publish/news HTTP/1.1\r\nHost: x\r\n" + header +
            b"\r\nContent-Length: 1\r\n\r\nx")
    r = exchange(server, data)
    assert_error(r, 400)
    assert r.closed_by_server()
    w.check()


def test_megabyte_last_event_id_is_431(server, witness):
    w = witness(server)
    s = connect(server)
    data = request_bytes("GET", "/events/news",
                         ["Last-Event-ID: " + "9" * (1 << 20)])

    def send():
        try:
            s.sendall(data)
        except OSError:
            pass        # the server may stop reading once it has answered

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    r = read_response(s)
    assert_error(r, 431)
    sender.join(10 * SLOW)
    s.close()
    w.check()


def test_too_many_connections_soft_reject_streams_503_publishes(
        make_server, witness):
    # The witness holds one connection, two more fill max_connections.
    srv = news_server(make_server, limits={"max_connections": "3"})
    w = witness(srv)
    held = hold_streams(srv, 2)
    extra = srv.subscribe("/events/news")
    assert extra.status == 200
    assert extra.headers["content-type"].startswith("text/event-stream")
    assert extra.read_until_end(5) == []
    assert extra.clean_end
    assert extra.retry and 5000 <= extra.retry[0] <= 10000
    assert any("full" in c for c in extra.comments), extra.comments
    r = publish(srv, "news", "refused")
    assert_error(r, 503)
    assert int(r.headers["retry-after"]) > 0
    for h in held:
        h.close()
    w.check()       # its publishes retry until the held ones are gone


def test_per_address_cap_rejects_the_next_and_serves_other_addresses(
        make_server, witness):
    n = 2
    srv = news_server(make_server, limits={
        "max_connections_per_address": str(n)})
    # The witness comes from its own address, outside the cap under test.
    w = witness(srv, source="127.0.0.3")
    held = hold_streams(srv, n, "127.0.0.1")
    extra = subscribe_from(srv, "127.0.0.1", "/events/news")
    assert extra.status == 200
    assert extra.read_until_end(5) == []
    assert extra.clean_end
    assert extra.retry and extra.retry[0] >= 5000
    assert any("full" in c for c in extra.comments), extra.comments
    r = publish(srv, "news", "refused", source="127.0.0.1")
    assert_error(r, 503)
    assert int(r.headers["retry-after"]) > 0
    # Another address is still served, stream and publish alike.
    other = subscribe_from(srv, "127.0.0.2", "/events/news")
    assert other.status == 200
    r = publish(srv, "news", "from-2", source="127.0.0.2")
    assert r.status == 201, r.body
    seq = int(r.headers["ringcast-event-id"])
    assert other.events(1, timeout=5) == [
        {"id": str(seq), "event": "message", "data": "from-2"}]
    w.published.append((seq, "from-2"))
    for h in held + [other]:
        h.close()
    w.check()


def token_server(make_server):
    srv = make_server(start=False, publish={"require_token": "yes"})
    srv.ctl("topic", "add", "news")
    srv.ctl("topic", "add", "other")
    out = srv.ctl("token", "add", "--publish", "--topic", "news").stdout
    secret = out.splitlines()[1].split(": ", 1)[1]
    out = srv.ctl("token", "add", "--publish", "--topic", "other").stdout
    other = out.splitlines()[1].split(": ", 1)[1]
    return srv.start(), secret, other


def test_publish_without_a_token_is_401(make_server, witness):
    srv, secret, _ = token_server(make_server)
    w = witness(srv, token=secret)
    r = publish(srv, "news", "x")
    assert_error(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    # Not a bearer token, or too long to be one (over HTTP_AUTH_MAX, 4096:
    # JWTs are long): as if there were none.
    for auth in ["Basic " + secret, "Bearer", "Bearer " + "a" * 5000]:
        r = exchange(srv, request_bytes(
            "POST", "/publish/news",
            [f"Authorization: {auth}", "Content-Length: 1"], b"x"))
        assert_error(r, 401)
        r.sock.close()
    w.check()


def test_publish_with_a_wrong_token_is_403(make_server, witness):
    # conn_publish: a token the catalog does not know for this topic and
    # right is CATALOG_NOT_FOUND, answered 403.
    srv, secret, other = token_server(make_server)
    w = witness(srv, token=secret)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for token in ["x" * len(secret), flipped, other]:
        assert_error(publish(srv, "news", "x", token=token), 403)
    w.check()


def test_publish_with_a_truncated_token_is_rejected(make_server, witness):
    srv, secret, _ = token_server(make_server)
    w = witness(srv, token=secret)
    for cut in [1, len(secret) // 2, len(secret) - 1]:
        assert_error(publish(srv, "news", "x", token=secret[:cut]), 403)
    assert_error(publish(srv, "news", "x", token=secret + "A"), 403)
    w.check()


# -- start-up failures: nothing runs, so nothing to witness -----------------

def start_fails(srv, *says, timeout=10):
    """ringcastd exits 1 at start, and its log says each of says."""
    proc = subprocess.run([RINGCASTD, "-d", "-f", str(srv.conf)],
                          capture_output=True, text=True,
                          timeout=timeout * SLOW)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    for s in says:
        assert s in proc.stderr, proc.stderr
    return proc.stderr


def made_ring(make_server):
    """A server's ring file, created by a run that published an event."""
    srv = make_server(start=False, catalog={"auto_create_topics": "yes"})
    srv.start()
    srv.publish("news", "x")
    assert srv.stop() == 0
    return srv, pathlib.Path(srv.sections["ring"]["path"])


@pytest.mark.parametrize("damage", [
    "garbage-header", "flipped-header-byte", "garbage-whole-file",
    "truncated-half", "truncated-in-header", "empty", "padded",
])
def test_corrupt_ring_file_exits_1_naming_the_file_and_the_fix(
        make_server, damage):
    srv, ring = made_ring(make_server)
    size = ring.stat().st_size
    with open(ring, "r+b") as f:
        if damage == "garbage-header":
            f.write(os.urandom(4096))
        elif damage == "flipped-header-byte":
            f.seek(20)
            b = f.read(1)
            f.seek(20)
            f.write(bytes([b[0] ^ 0x40]))
        elif damage == "garbage-whole-file":
            f.write(os.urandom(size))
        elif damage == "truncated-half":
            f.truncate(size // 2)
        elif damage == "truncated-in-header":
            f.truncate(100)
        elif damage == "empty":
            f.truncate(0)
        else:
            f.seek(size)
            f.write(b"\0" * 4096)
    start_fails(srv, f"ring {ring}:", "ringcastctl ring reset")


@pytest.mark.parametrize("damage", ["garbage", "garbage-pages",
                                    "truncated"])
def test_corrupt_catalog_exits_1_naming_the_file(make_server, damage):
    srv, _ = made_ring(make_server)
    mdb = pathlib.Path(srv.sections["catalog"]["path"]) / "data.mdb"
    if damage == "garbage":
        mdb.write_bytes(os.urandom(mdb.stat().st_size))
    elif damage == "garbage-pages":
        # The two meta pages intact, garbage in the trees: LMDB follows
        # the page numbers it finds there, out of the file.
        with open(mdb, "r+b") as f:
            f.seek(8192)
            f.write(os.urandom(mdb.stat().st_size - 8192))
    else:
        with open(mdb, "r+b") as f:
            f.truncate(1000)
    start_fails(srv, f"catalog {mdb.parent}")


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (needs root and mount(2)); skipped with the reason
    when this machine does not allow it."""
    d = tmp_path / "small"
    d.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MiB tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs",
                        str(d)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=True)


def test_no_space_for_the_ring_exits_1_with_a_clear_error(make_server,
                                                          small_fs):
    ring = small_fs / "ring"
    srv = make_server(start=False, ring={"path": str(ring), "size": "8M"})
    start_fails(srv, f"ring {ring}:", "No space left on device")
    # Neither the ring nor its temporary file is left behind.
    assert list(small_fs.iterdir()) == []


@pytest.mark.parametrize("body,status", [
    (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 201),
    (b"5\r\nhelloXX6\r\n world\r\n0\r\n\r\n", 400),
    (b"5\r\nhello\r\n6\rX world\r\n0\r\n\r\n", 400),
], ids=["valid", "data-no-crlf", "size-no-lf"])
def test_chunked_framing_is_checked_across_reads(server, witness, body,
                                                 status):
    # One byte per read on the server side: every framing CRLF is split
    # from its neighbours, and the check must still see it.
    w = witness(server)
    s = connect(server)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(request_bytes("POST", "/publish/news",
                            ["Transfer-Encoding: chunked",
                             "Connection: close"]))
    for i in range(len(body)):
        try:
            s.sendall(body[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.005)
    r = read_response(s)
    assert r.status == status, r.body
    if status == 201:
        seq = int(r.headers["ringcast-event-id"])
        w.published.append((seq, "hello world"))
    w.check()
