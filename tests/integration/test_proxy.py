"""Behind a reverse proxy (issue #18): [server] trusted_proxies decides
whose X-Forwarded-For and PROXY protocol header name the client, and that
client is the one the per-address connection cap counts.  The "proxy" here
is a test socket bound to a chosen 127.0.0.x source address; the clients it
speaks for are documentation addresses (RFC 5737) that never connect."""

import socket
import struct
import time

import pytest

import ringcast_harness
from ringcast_harness import SLOW, free_port

PROXY = "127.0.0.1"         # the trusted proxy
STRANGER = "127.0.0.2"      # a peer that is not trusted
CAP = 2


def proxied_server(make_server, proxy_protocol=False, cap=CAP):
    """A server trusting PROXY, with a per-address cap of cap, the topic
    'news', and (proxy_protocol) a second listener marked proxy_protocol
    at srv.pport."""
    srv = make_server(start=False, limits={
        "max_connections_per_address": str(cap)})
    srv.sections["server"]["trusted_proxies"] = f"{PROXY}/32, fd00::/8"
    if proxy_protocol:
        srv.pport = free_port()
        srv.sections["server"]["listen"] += (f", 127.0.0.1:{srv.pport} "
                                             "proxy_protocol")
    srv.write_config()
    srv.ctl("topic", "add", "news")
    return srv.start()


def v1(client, port=51000):
    fam = "TCP6" if ":" in client else "TCP4"
    dst = "::1" if fam == "TCP6" else "127.0.0.1"
    return f"PROXY {fam} {client} {dst} {port} 8443\r\n".encode()


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(client, cmd=1, tlvs=b""):
    if cmd == 0:
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) \
            + tlvs
    if ":" in client:
        addrs = (socket.inet_pton(socket.AF_INET6, client)
                 + socket.inet_pton(socket.AF_INET6, "::1")
                 + struct.pack("!HH", 51000, 8443))
        fam = 0x21
    else:
        addrs = (socket.inet_aton(client) + socket.inet_aton("127.0.0.1")
                 + struct.pack("!HH", 51000, 8443))
        fam = 0x11
    body = addrs + tlvs
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) \
        + body


def stream(srv, client=None, source=PROXY, header=None, port=None):
    """A subscription to 'news' from source: through the proxy for client
    (X-Forwarded-For unless header, a PROXY header, is given)."""
    headers = {}
    if client is not None and header is None:
        headers["X-Forwarded-For"] = client
    return srv.subscribe("/events/news", headers, source=source,
                         port=port, preamble=header or b"", timeout=5)


def is_live(sub):
    """A 200 stream that stays open (not a soft reject: that is a 200
    too, with retry: and a clean end)."""
    assert sub.status == 200
    try:
        sub.events(1, timeout=0.3)
        raise AssertionError("an event on an idle topic")
    except socket.timeout:
        return True
    except ringcast_harness.StreamEnded:
        return False


def is_full(sub):
    assert sub.status == 200
    assert sub.read_until_end(5) == []
    assert sub.clean_end
    return any("full" in c for c in sub.comments)


def hold(srv, n, **kwargs):
    """n live streams opened with stream(srv, **kwargs); retried while a
    lingering connection from before still counts against the cap."""
    held = []
    deadline = time.monotonic() + 10 * SLOW
    while len(held) < n:
        assert time.monotonic() < deadline, "could not fill the cap"
        sub = stream(srv, **kwargs)
        if is_live(sub):
            held.append(sub)
        else:
            sub.close()
            time.sleep(0.05)
    return held


def closed_without_answer(sock, timeout=5):
    """The server closes (EOF or reset) having sent nothing."""
    sock.settimeout(timeout * SLOW)
    got = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            got += data
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError(f"still open after {timeout}s; got {got!r}")
    assert got == b"", got
    return True


def connect(port, source=PROXY):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5 * SLOW)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def get(sock, path="/healthz", headers=()):
    lines = [f"GET {path} HTTP/1.1", "Host: x", *headers, "", ""]
    sock.sendall("\r\n".join(lines).encode())
    return ringcast_harness.read_response(sock)


# -- X-Forwarded-For ---------------------------------------------------------

def test_cap_counts_the_client_behind_a_trusted_proxy(make_server):
    srv = proxied_server(make_server)
    held = hold(srv, CAP, client="203.0.113.7")
    # The same client, again through the proxy: over its cap.
    assert is_full(stream(srv, client="1.1.1.1, 203.0.113.7"))
    # Other clients through the same proxy: the proxy's address is not
    # what the cap counts, so they are served.
    others = [stream(srv, client=f"203.0.113.{i}") for i in (8, 9, 10)]
    assert all(is_live(s) for s in others)
    # A hop of the chain that is a trusted proxy is skipped.
    assert is_full(stream(srv, client="203.0.113.7, 127.0.0.1"))
    text = srv.log_text()
    assert "client 203.0.113.7 (X-Forwarded-For from 127.0.0.1)" in text
    for s in held + others:
        s.close()


def test_clients_of_one_keepalive_connection_are_charged_each(make_server):
    srv = proxied_server(make_server)
    held = hold(srv, CAP, client="203.0.113.7")
    sock = connect(srv.port)
    # One upstream connection, as nginx keeps it alive: each request is
    # charged to its own client.
    status, headers, body = get(sock, "/publish/news",
                                ["X-Forwarded-For: 203.0.113.7"])
    assert status == 503 and b"too many connections" in body, body
    sock.close()
    sock = connect(srv.port)
    for client in ("198.51.100.1", "198.51.100.2", "198.51.100.1"):
        status, _, _ = get(sock, "/healthz", [f"X-Forwarded-For: {client}"])
        assert status == 200
    status, _, body = get(sock, "/healthz", ["X-Forwarded-For: 203.0.113.7"])
    assert status == 503, body
    sock.close()
    for s in held:
        s.close()


def test_forwarded_for_from_an_untrusted_peer_changes_nothing(make_server):
    srv = proxied_server(make_server)
    # Each claims another client: all are the stranger's, and the cap
    # holds at CAP connections.
    held = hold(srv, CAP, client="198.51.100.1", source=STRANGER)
    assert is_full(stream(srv, client="198.51.100.99", source=STRANGER))
    # And a stranger naming a client that is at its cap is not refused
    # for that client: its claim is not believed either way.
    capped = hold(srv, CAP, client="203.0.113.7")
    other = stream(srv, client="203.0.113.7", source="127.0.0.3")
    assert is_live(other)
    assert "X-Forwarded-For from 127.0.0.2" not in srv.log_text()
    for s in held + capped + [other]:
        s.close()


def test_without_trusted_proxies_forwarded_for_is_ignored(make_server):
    srv = make_server(start=False, limits={
        "max_connections_per_address": str(CAP)})
    srv.ctl("topic", "add", "news")
    srv.start()
    held = hold(srv, CAP, client="198.51.100.1")
    assert is_full(stream(srv, client="198.51.100.2"))
    for s in held:
        s.close()


# -- PROXY protocol ----------------------------------------------------------

@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("client", ["203.0.113.7", "2001:db8::7"])
def test_proxy_header_names_the_client_for_caps_and_logs(make_server,
                                                         version, client):
    srv = proxied_server(make_server, proxy_protocol=True)
    head = v1 if version == 1 else v2
    held = hold(srv, CAP, header=head(client), port=srv.pport)
    assert is_full(stream(srv, header=head(client), port=srv.pport))
    other = stream(srv, header=head("198.51.100.1"), port=srv.pport)
    assert is_live(other)
    assert (f"client {client} (PROXY v{version} from 127.0.0.1)"
            in srv.log_text())
    # The plain listener is not affected by the mark.
    sock = connect(srv.port)
    assert get(sock)[0] == 200
    sock.close()
    for s in held + [other]:
        s.close()


def test_proxy_header_then_forwarded_for_of_a_trusted_hop(make_server):
    srv = proxied_server(make_server, proxy_protocol=True)
    # The PROXY header names a trusted proxy (fd00::/8), so its
    # X-Forwarded-For is believed in turn.
    held = hold(srv, CAP, header=v2("fd00::5"), port=srv.pport)
    sock = connect(srv.pport)
    sock.sendall(v2("fd00::5"))
    assert get(sock, headers=["X-Forwarded-For: 203.0.113.7"])[0] == 200
    sock.close()
    for s in held:
        s.close()


def test_proxy_local_command_keeps_the_peer(make_server):
    srv = proxied_server(make_server, proxy_protocol=True)
    sock = connect(srv.pport)
    sock.sendall(v2("", cmd=0) + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ringcast_harness.read_response(sock)[0] == 200
    sock.close()
    sock = connect(srv.pport)
    sock.sendall(b"PROXY UNKNOWN\r\n")
    assert get(sock)[0] == 200
    sock.close()


def test_proxy_header_in_pieces_is_read_whole(make_server):
    srv = proxied_server(make_server, proxy_protocol=True)
    sock = connect(srv.pport)
    data = v1("203.0.113.7") + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for i in range(0, len(data), 5):
        sock.sendall(data[i:i + 5])
        time.sleep(0.01)
    assert ringcast_harness.read_response(sock)[0] == 200
    sock.close()


MALFORMED = {
    "plain-http": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "v1-bare-lf": b"PROXY TCP4 203.0.113.7 127.0.0.1 1 2\n",
    "v1-family": b"PROXY TCP4 2001:db8::1 ::1 1 2\r\n",
    "v1-port": b"PROXY TCP4 203.0.113.7 127.0.0.1 1 65536\r\n",
    "v1-spaces": b"PROXY TCP4  203.0.113.7 127.0.0.1 1 2\r\n",
    "v1-too-long": b"PROXY UNKNOWN " + b"x" * 120 + b"\r\n",
    "v2-version": V2_SIG + b"\x11\x11\x00\x0c" + b"\x00" * 12,
    "v2-command": V2_SIG + b"\x22\x11\x00\x0c" + b"\x00" * 12,
    "v2-short": V2_SIG + b"\x21\x21\x00\x0c" + b"\x00" * 12,
    "v2-huge": V2_SIG + b"\x21\x11\xff\xff" + b"\x00" * 12,
    "v2-signature": b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + b"\0" * 12,
}


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_malformed_proxy_header_is_closed_without_answer(make_server, what):
    srv = proxied_server(make_server, proxy_protocol=True)
    sock = connect(srv.pport)
    sock.sendall(MALFORMED[what] + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert closed_without_answer(sock)
    sock.close()
    assert "malformed PROXY header" in srv.log_text()
    # The listener still serves a good header.
    sock = connect(srv.pport)
    sock.sendall(v1("203.0.113.7"))
    assert get(sock)[0] == 200
    sock.close()


def test_proxy_listener_refuses_an_untrusted_peer(make_server):
    srv = proxied_server(make_server, proxy_protocol=True)
    sock = connect(srv.pport, source=STRANGER)
    try:
        sock.sendall(v1("203.0.113.7")
                     + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_without_answer(sock)
    sock.close()
    assert "127.0.0.2 is not a trusted proxy" in srv.log_text()


def test_silent_proxy_is_closed_at_the_header_timeout(make_server):
    srv = proxied_server(make_server, proxy_protocol=True)
    sock = connect(srv.pport)
    sock.sendall(b"PROXY TCP4 203.0")
    start = time.monotonic()
    # header_timeout is 2s in the harness; no 408 for a proxy.
    assert closed_without_answer(sock, timeout=6)
    assert time.monotonic() - start >= 1.5
    sock.close()
