"""pytest wiring for the integration tests; the harness is in
ringcast_harness.py so test files can import it by name."""

import pytest

from nats_rig import NatsRig
from ringcast_harness import Server


@pytest.fixture
def make_server(tmp_path):
    """Make (and at the end stop) servers in tmp_path, or in base when given
    (a directory the caller owns): make_server(**sections)."""
    servers = []

    def make(start=True, sub=None, base=None, **sections):
        d = (base or tmp_path) / (sub or f"s{len(servers)}")
        d.mkdir(exist_ok=True)
        srv = Server(d, **sections)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    troubles = []
    for srv in servers:
        try:
            srv.stop()
        except AssertionError:
            srv.kill_all()
        # Shown by pytest only when the test failed.
        print(f"--- ringcastd log ({srv.tmp}) ---\n{srv.log_text()}")
        troubles += srv.troubles()
    assert not troubles, "\n".join(troubles)


@pytest.fixture
def server(make_server):
    """A running server with a public topic 'news' (created by ringcastctl)."""
    srv = make_server(start=False)
    srv.ctl("topic", "add", "news")
    return srv.start()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for a module's tests that only ask questions of it: the
    public topic 'news', the private topic 'secret', CORS for
    http://app.example, events of at most 4K."""
    srv = Server(tmp_path_factory.mktemp("shared"),
                 cors={"allow_origins": "http://app.example"},
                 limits={"max_event_bytes": "4K"})
    srv.ctl("topic", "add", "news")
    srv.ctl("topic", "add", "secret", "--private")
    srv.start()
    yield srv
    try:
        srv.stop()
    except AssertionError:
        srv.kill_all()
    assert not srv.troubles(), "\n".join(srv.troubles())


@pytest.fixture
def make_nats(tmp_path):
    """Make and start NATS rigs (nats_rig.NatsRig) in tmp_path:
    make_nats(n=3) is a JetStream cluster of three, make_nats(1) one server.
    Each is killed at the end (its own PIDs only); its logs show when the
    test failed."""
    rigs = []

    def make(n=3, start=True, **kw):
        rig = NatsRig(tmp_path / f"nats{len(rigs)}", n, **kw)
        rigs.append(rig)
        if start:
            rig.start()
        return rig

    yield make
    for rig in rigs:
        rig.cleanup()
        print(rig.log_text())
