"""pytest wiring for the integration tests; the harness is in
ringcast_harness.py so test files can import it by name."""

import pytest

from ringcast_harness import Server


@pytest.fixture
def make_server(tmp_path):
    """Make (and at the end stop) servers in tmp_path: make_server(**sections)."""
    servers = []

    def make(start=True, sub=None, **sections):
        d = tmp_path / (sub or f"s{len(servers)}")
        d.mkdir(exist_ok=True)
        srv = Server(d, **sections)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in servers:
        try:
            srv.stop()
        except AssertionError:
            srv.kill_all()
        # Shown by pytest only when the test failed.
        print(f"--- ringcastd log ({srv.tmp}) ---\n{srv.log_text()}")


@pytest.fixture
def server(make_server):
    """A running server with a public topic 'news' (created by ringcastctl)."""
    srv = make_server(start=False)
    srv.ctl("topic", "add", "news")
    return srv.start()
