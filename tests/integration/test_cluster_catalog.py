"""The catalog across cluster nodes (issue #16): a ringcastctl change on
node A goes to the JetStream key-value bucket first and reaches node B's
own LMDB catalog (here through `ringcastctl cluster sync --once`, what a
node's watcher does when it starts); a node synced later catches up; with
NATS away nothing changes anywhere.  One nats-server with JetStream
(nats_rig, the make_nats fixture); two nodes are two configs with their
own ring and catalog."""

import re
import signal
import subprocess
import time

import pytest

from ringcast_harness import RINGCASTCTL, SLOW

CONFIG = """\
[server]
pidfile = {dir}/ringcastd.pid
[ring]
path = {dir}/ring
size = 8M
slots = 1024
[catalog]
path = {dir}/catalog
map_size = 4M
[log]
target = stderr
[cluster]
nats = {url}
max_bytes = 64M
publish_timeout = 5s
"""


class CtlNode:
    """ringcastctl against one node's config."""

    def __init__(self, tmp, name, url):
        self.dir = tmp / name
        self.dir.mkdir()
        self.conf = self.dir / "ringcast.conf"
        self.conf.write_text(CONFIG.format(dir=self.dir, url=url))

    def run(self, *args):
        return subprocess.run([RINGCASTCTL, "-f", str(self.conf), *args],
                              capture_output=True, text=True,
                              timeout=60 * SLOW)

    def ok(self, *args):
        p = self.run(*args)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p.stdout

    def sync(self):
        out = self.ok("cluster", "sync", "--once")
        assert re.match(r"cluster catalog: \d+ entries, \d+ applied, "
                        r"0 failed$", out.strip()), out
        return out

    def topics(self, missing_ok=False):
        """name -> (flags, description) of `topic list --members`; with
        missing_ok, {} while the catalog is not there yet."""
        p = self.run("topic", "list", "--members")
        # The watcher may be making the catalog right now.
        if missing_ok and p.returncode != 0 and (
                "mdb_env_open" in p.stderr or
                "not initialized" in p.stderr):
            return {}
        assert p.returncode == 0, p.stderr
        rows = {}
        for line in p.stdout.splitlines():
            name, _id, flags, _created, desc = line.split("\t")
            rows[name] = (flags, desc)
        return rows

    def tokens(self):
        """id -> (rights, topic) of `token list`."""
        rows = {}
        for line in self.ok("token", "list").splitlines():
            tid, rights, topic, _created = line.split("\t")
            rows[tid] = (rights, topic)
        return rows

    def token_add(self, *args):
        out = self.ok("token", "add", *args)
        return re.search(r"^id: ([0-9a-f]{12})$", out, re.M).group(1)


@pytest.fixture
def nats(make_nats):
    """One nats-server with JetStream (nats_rig.NatsRig)."""
    return make_nats(1)


@pytest.fixture
def nodes(tmp_path, nats):
    return (CtlNode(tmp_path, "a", nats.urls()),
            CtlNode(tmp_path, "b", nats.urls()))


def test_changes_on_a_reach_b(nodes):
    a, b = nodes
    a.ok("topic", "add", "news", "--description", "the news", "--keep", "10")
    a.ok("topic", "add", "user/*", "--private")
    a.ok("topic", "add", "ops:alerts", "--private")
    alice = a.token_add("--subscribe", "--topic", "user/alice")
    pub = a.token_add("--publish", "--topic", "news")
    every = a.token_add("--publish", "--subscribe", "--all")
    a.ok("topic", "set", "news", "--max-age", "1h")

    b.sync()
    assert b.topics() == {
        "news": ("public", "the news"),
        "ops:alerts": ("private", ""),
        "user/*": ("private,family", ""),
        # Materialised on B for the token bound to it.
        "user/alice": ("private,member", ""),
    }
    show = b.ok("topic", "show", "news")
    assert "keep: 10\n" in show and "max_age: 3600s\n" in show
    assert b.tokens() == {
        alice: ("subscribe", "user/alice"),
        pub: ("publish", "news"),
        every: ("publish,subscribe", "*"),
    }

    # Removals travel too; a topic takes its tokens with it.
    a.ok("topic", "rm", "news")
    a.ok("token", "rm", every)
    a.ok("topic", "rm", "ops:alerts")
    b.sync()
    assert set(b.topics()) == {"user/*", "user/alice"}
    assert b.tokens() == {alice: ("subscribe", "user/alice")}
    # A's own catalog took the same changes.
    assert a.topics() == {"user/*": ("private,family", ""),
                          "user/alice": ("private,member", "")}
    assert a.tokens() == b.tokens()


def test_a_node_synced_later_catches_up(tmp_path, nats, nodes):
    a, _ = nodes
    a.ok("topic", "add", "news")
    tok = a.token_add("--subscribe", "--topic", "news")
    # Written after its token: a replay meets the token first.
    a.ok("topic", "set", "news", "--keep", "5")
    a.ok("topic", "add", "gone")
    a.ok("topic", "rm", "gone")
    a.ok("topic", "add", "later", "--description", "after")

    c = CtlNode(tmp_path, "c", nats.urls())
    out = c.sync()
    assert "0 failed" in out
    assert c.topics() == {"news": ("public", ""), "later": ("public", "after")}
    assert c.tokens() == {tok: ("subscribe", "news")}
    assert "keep: 5\n" in c.ok("topic", "show", "news")
    # A second sync changes nothing.
    assert re.search(r", 0 applied,", c.sync())


def test_family_removed_with_members_everywhere(nodes):
    a, b = nodes
    a.ok("topic", "add", "user/*")
    a.token_add("--subscribe", "--topic", "user/alice")
    b.sync()
    assert "user/alice" in b.topics()
    out = a.ok("topic", "rm", "user/*", "--members")
    assert "removed on every node" in out
    b.sync()
    assert b.topics() == {}
    assert b.tokens() == {}
    assert a.topics() == {}


def test_token_made_on_a_node_that_has_not_synced(nodes):
    """B never synced: its token on A's topic is still made and held."""
    a, b = nodes
    a.ok("topic", "add", "news")
    a.ok("topic", "add", "user/*")
    tok = b.token_add("--publish", "--topic", "news")
    member = b.token_add("--subscribe", "--topic", "user/bob")
    assert b.tokens() == {tok: ("publish", "news"),
                          member: ("subscribe", "user/bob")}
    assert set(b.topics()) == {"news", "user/*", "user/bob"}


def test_topic_add_twice_is_refused_by_the_cluster(nodes):
    a, b = nodes
    a.ok("topic", "add", "news")
    p = b.run("topic", "add", "news")
    assert p.returncode == 1
    assert "already exists in the cluster" in p.stderr
    p = b.run("topic", "rm", "nothing")
    assert p.returncode == 1 and "not found in the cluster" in p.stderr
    # A removed name may be added again, from any node.
    a.ok("topic", "rm", "news")
    b.ok("topic", "add", "news", "--description", "again")
    a.ok("topic", "add", "user/*")
    b.ok("topic", "rm", "user/*", "--members")
    a.ok("topic", "add", "user/*", "--private")
    a.sync()
    assert a.topics() == {"news": ("public", "again"),
                          "user/*": ("private,family", "")}


CHANGES = (("topic", "add", "other"), ("topic", "rm", "news"),
           ("topic", "set", "news", "--keep", "3"),
           ("token", "add", "--publish", "--all"), ("token", "rm",
                                                     "0123456789ab"))


@pytest.mark.parametrize("how", ["stopped", "frozen"])
def test_nats_away_changes_nothing(nats, nodes, how):
    """Stopped (connections refused) or frozen by SIGSTOP (connections
    hang): every change exits 1 and says so, and no catalog changes."""
    a, _ = nodes
    a.ok("topic", "add", "news")
    before = (a.topics(), a.tokens())
    if how == "stopped":
        nats.stop_all()
    else:
        nats.pause_all()
    try:
        for args in CHANGES:
            t0 = time.monotonic()
            p = a.run(*args)
            assert p.returncode == 1, (args, p.stderr)
            assert f"cluster unreachable at {nats.urls()}: " in p.stderr
            assert "nothing was changed" in p.stderr
            assert time.monotonic() - t0 < 10 * SLOW
        assert (a.topics(), a.tokens()) == before
        # Reading commands stay local.
        assert "news" in a.ok("topic", "show", "news")
    finally:
        nats.resume_all()


def test_publish_goes_to_jetstream(nodes):
    a, b = nodes
    a.ok("topic", "add", "news")
    assert a.ok("publish", "news", "one").strip() == "1"
    assert a.ok("publish", "news", "--event", "x", "two").strip() == "2"
    # B has not synced: the topic is fetched from the cluster on use, and
    # the id continues the same sequence.
    assert b.ok("publish", "news", "three").strip() == "3"
    p = a.run("publish", "nosuch", "x")
    assert p.returncode == 1 and "not found" in p.stderr


def test_cluster_sync_needs_a_cluster(tmp_path):
    n = CtlNode(tmp_path, "single", "")
    p = n.run("cluster", "sync", "--once")
    assert p.returncode == 1
    assert "[cluster] nats is not set" in p.stderr


def wait_for(what, fn, timeout=10, log=None):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}"
                         + (f":\n{log.read_text()}" if log else ""))


def test_watcher_follows_through_a_nats_restart(tmp_path, nats, nodes):
    """`cluster sync` without --once runs the watcher ringcastd's relay
    hosts: the bucket first, then each change, through a NATS restart."""
    a, b = nodes
    a.ok("topic", "add", "news")
    out = tmp_path / "follow.out"
    follow = subprocess.Popen(
        [RINGCASTCTL, "-f", str(b.conf), "cluster", "sync"],
        stdout=open(out, "w"), stderr=subprocess.STDOUT)
    try:
        wait_for("the bucket on B",
                 lambda: "news" in b.topics(missing_ok=True), log=out)
        a.ok("topic", "add", "second")
        wait_for("a change on B", lambda: "second" in b.topics(), log=out)
        nats.stop_all()
        time.sleep(1)
        assert follow.poll() is None, out.read_text()
        nats.start()
        a.ok("topic", "add", "third", "--private")
        a.ok("topic", "rm", "news")
        wait_for("changes after the restart on B",
                 lambda: b.topics() == {"second": ("public", ""),
                                        "third": ("private", "")},
                 log=out)
    finally:
        follow.send_signal(signal.SIGTERM)
        try:
            rc = follow.wait(10 * SLOW)
        except subprocess.TimeoutExpired:
            follow.kill()
            follow.wait()
            raise
    assert rc == 0, out.read_text()
    assert "0 failed" in out.read_text().splitlines()[-1], out.read_text()
