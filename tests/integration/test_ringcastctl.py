"""ringcastctl end to end: every subcommand, its bad inputs and its exit
status (0 done, 1 usage or not found, 2 failure), against a private config
whose ring, catalog and pidfile live in pytest's tmp_path.  The binary is
$RINGCASTCTL, or ringcastctl in the build directory two levels up."""

import fcntl
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

CTL = os.environ.get(
    "RINGCASTCTL",
    str(Path(__file__).resolve().parent.parent.parent / "ringcastctl"))

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
TOKEN_ID = re.compile(r"^[0-9a-f]{12}$")

CONFIG = """\
[server]
pidfile = {tmp}/run/ringcastd.pid
[ring]
path = {tmp}/ring
size = 1M
slots = 1024
[catalog]
path = {tmp}/catalog
map_size = 1M
[limits]
max_event_bytes = 4K
[log]
target = stderr
"""


class Ctl:
    """ringcastctl bound to one temporary configuration."""

    def __init__(self, tmp):
        self.tmp = tmp
        (tmp / "run").mkdir()
        self.conf = tmp / "ringcast.conf"
        self.conf.write_text(CONFIG.format(tmp=tmp))

    def run(self, *args, stdin=None, conf=None):
        return subprocess.run(
            [CTL, "-f", str(conf or self.conf), *args], input=stdin,
            capture_output=True, text=True, timeout=60)

    def ok(self, *args, stdin=None):
        p = self.run(*args, stdin=stdin)
        assert p.returncode == 0, p.stderr
        return p.stdout

    def fails(self, status, *args, stdin=None, says=None):
        p = self.run(*args, stdin=stdin)
        assert p.returncode == status, (p.stdout, p.stderr)
        if says is not None:
            assert says in p.stderr, p.stderr
        return p

    def run_at_once(self, commands):
        """Start every command before waiting for any; their stdouts."""
        procs = [subprocess.Popen(
            [CTL, "-f", str(self.conf), *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True) for args in commands]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            outs.append(out)
        return outs

    def topic_id(self, name):
        return int(self.ok("topic", "show", name).split("\n")[1][4:])

    def token(self, *args):
        out = self.ok("token", "add", *args).splitlines()
        assert out[0].startswith("id: ") and out[1].startswith("secret: ")
        return out[0][4:], out[1][8:]


@pytest.fixture
def ctl(tmp_path):
    return Ctl(tmp_path)


def usage_error(p):
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "usage: ringcastctl" in p.stderr
    assert p.stdout == ""


# -- command line --------------------------------------------------------

def test_no_command_prints_usage(ctl):
    usage_error(ctl.run())


@pytest.mark.parametrize("args", [
    ["bogus"], ["topic"], ["topic", "frob"], ["token"], ["ring"],
    ["ring", "frob"], ["check-config", "extra"],
])
def test_unknown_command_prints_usage(ctl, args):
    usage_error(ctl.run(*args))


@pytest.mark.parametrize("args", [
    ["topic", "add", "x", "--bogus"], ["topic", "add", "x", "--private=1"],
    ["topic", "add", "x", "--description"], ["topic", "add"],
    ["topic", "add", "a", "b"], ["topic", "rm"], ["topic", "show"],
    ["topic", "list", "x"], ["token", "add", "--all"],
    ["token", "add", "--publish"],
    ["token", "add", "--publish", "--all", "--topic", "x"],
    ["token", "rm"], ["token", "list", "-x"], ["ring", "info", "x"],
    ["ring", "reset", "--now"], ["publish"], ["publish", "x", "y", "z"],
    ["publish", "x", "--event"],
])
def test_bad_arguments_print_usage(ctl, args):
    usage_error(ctl.run(*args))


def test_unknown_global_flag_prints_usage(ctl):
    p = subprocess.run([CTL, "-z", "topic", "list"], capture_output=True,
                       text=True)
    usage_error(p)


# -- check-config ----------------------------------------------------------

def test_check_config_ok(ctl):
    assert ctl.ok("check-config") == "configuration OK\n"


def test_check_config_reports_errors(ctl):
    bad = ctl.tmp / "bad.conf"
    bad.write_text("[ring]\nsize = lots\n[nope]\nkey = 1\n")
    p = ctl.run("check-config", conf=bad)
    assert p.returncode == 1
    assert f"{bad}:2:" in p.stderr and f"{bad}:4:" in p.stderr
    assert "configuration test failed" in p.stderr


def test_missing_config_file_names_it(ctl):
    missing = ctl.tmp / "missing.conf"
    for args, status in ((["check-config"], 1), (["topic", "list"], 2)):
        p = ctl.run(*args, conf=missing)
        assert p.returncode == status
        assert str(missing) in p.stderr


def test_bad_config_stops_every_command_with_exit_2(ctl):
    bad = ctl.tmp / "bad.conf"
    bad.write_text("[catalog]\nmap_size = 1\n")
    p = ctl.run("topic", "add", "news", conf=bad)
    assert p.returncode == 2
    assert f"{bad}:2:" in p.stderr
    assert not (ctl.tmp / "catalog").exists()


# -- topics ----------------------------------------------------------------

def test_topic_add_prints_the_topic(ctl):
    out = ctl.ok("topic", "add", "news", "--description", "daily news")
    assert re.fullmatch(rf"news\t1\tpublic\t{ISO}\tdaily news\n", out)


def test_topic_add_creates_catalog_directory(ctl):
    ctl.ok("topic", "add", "news")
    mode = (ctl.tmp / "catalog").stat().st_mode
    assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o750


def test_topic_add_duplicate_is_exit_1(ctl):
    ctl.ok("topic", "add", "news")
    ctl.fails(1, "topic", "add", "news", says="topic 'news': already exists")


@pytest.mark.parametrize("name", [
    "", ".", "..", "/a", "a/", ":a", "a:", "a//b", "a/./b", "a/../b",
    "a:..:b", "%2e", "a b", "caf\u00e9", "x" * 129,
])
def test_topic_bad_names_are_exit_1(ctl, name):
    for args in (["topic", "add", name], ["topic", "rm", name],
                 ["topic", "show", name], ["publish", name, "x"],
                 ["token", "add", "--publish", "--topic", name]):
        p = ctl.fails(1, *args, says="invalid name")
        assert "usage:" not in p.stderr


def test_topic_longest_name_is_fine(ctl):
    ctl.ok("topic", "add", "x" * 128)


@pytest.mark.parametrize("desc", ["tab\there", "bell\a", "d" * 256])
def test_topic_bad_description_is_exit_1(ctl, desc):
    ctl.fails(1, "topic", "add", "news", "--description", desc,
              says="description")


def test_topic_list_format(ctl):
    assert ctl.ok("topic", "add", "news") != ""
    ctl.ok("topic", "add", "chat/room-1", "--private",
           "--description", "a room")
    lines = ctl.ok("topic", "list").splitlines()
    assert len(lines) == 2
    assert re.fullmatch(rf"chat/room-1\t2\tprivate\t{ISO}\ta room", lines[0])
    assert re.fullmatch(rf"news\t1\tpublic\t{ISO}\t", lines[1])


def test_topic_show(ctl):
    ctl.ok("topic", "add", "news", "--private", "--description", "d")
    out = ctl.ok("topic", "show", "news")
    assert re.fullmatch(
        rf"name: news\nid: 1\nflags: private\ncreated: {ISO}\n"
        r"description: d\nkeep: 0 \(the \[history\] default\)\n"
        r"max_age: 0s \(the \[history\] default\)\n", out)


def test_topic_retention_add_set_show(ctl):
    ctl.ok("topic", "add", "quiet", "--keep", "100", "--max-age", "2h")
    out = ctl.ok("topic", "show", "quiet")
    assert "keep: 100\nmax_age: 7200s\n" in out
    # An option left out keeps its value.
    assert ctl.ok("topic", "set", "quiet", "--keep", "5") == \
        "keep: 5\nmax_age: 7200s\n"
    ctl.ok("topic", "set", "quiet", "--max-age", "0")
    assert "keep: 5\nmax_age: 0s (the [history] default)\n" in \
        ctl.ok("topic", "show", "quiet")
    ctl.fails(1, "topic", "set", "ghost", "--keep", "1",
              says="topic 'ghost': not found")
    ctl.fails(1, "topic", "set", "quiet", "--keep", "-1", says="--keep")
    ctl.fails(1, "topic", "add", "other", "--max-age", "soon",
              says="--max-age soon: bad duration")
    ctl.fails(1, "topic", "set", "quiet", says="give --keep")


def test_topic_unknown_is_exit_1(ctl):
    ctl.ok("topic", "add", "news")
    ctl.fails(1, "topic", "show", "ghost", says="topic 'ghost': not found")
    ctl.fails(1, "topic", "rm", "ghost", says="topic 'ghost': not found")


def test_topic_rm_then_add_gets_a_new_id(ctl):
    ctl.ok("topic", "add", "a")
    ctl.ok("topic", "add", "b")
    assert "removed" in ctl.ok("topic", "rm", "b")
    assert ctl.ok("topic", "list").startswith("a\t1\t")
    ctl.ok("topic", "add", "b")
    assert ctl.topic_id("b") == 3


# -- families ------------------------------------------------------------

def test_family_add_list_show(ctl):
    ctl.ok("topic", "add", "user/*", "--private", "--description", "per user")
    ctl.ok("topic", "add", "room:*")
    ctl.ok("topic", "add", "*")
    lines = ctl.ok("topic", "list").splitlines()
    assert [line.split("\t")[0] for line in lines] == ["*", "room:*", "user/*"]
    assert re.fullmatch(rf"user/\*\t1\tprivate,family\t{ISO}\tper user",
                        lines[2])
    assert re.fullmatch(
        rf"name: user/\*\nid: 1\nflags: private,family\ncreated: {ISO}\n"
        r"description: per user\n"
        r"keep: 0 \(the \[history\] default\)\n"
        r"max_age: 0s \(the \[history\] default\)\n", ctl.ok("topic", "show", "user/*"))
    ctl.fails(1, "topic", "add", "user/*", says="already exists")


@pytest.mark.parametrize("name", ["user/**", "a*", "*/x", "user/*/x", "/*",
                                  "**"])
def test_family_bad_patterns_are_exit_1(ctl, name):
    for args in (["topic", "add", name], ["topic", "rm", name],
                 ["topic", "show", name],
                 ["token", "add", "--publish", "--topic", name]):
        ctl.fails(1, *args, says="invalid name")


def test_family_member_is_shown_before_use_and_stored_by_publish(ctl):
    ctl.ok("topic", "add", "user/*", "--private", "--description", "per user")
    assert re.fullmatch(
        rf"name: user/42\nid: -\nflags: private,member\ncreated: {ISO}\n"
        r"description: per user\nfamily: user/\*\n"
        r"keep: 0 \(the \[history\] default\)\n"
        r"max_age: 0s \(the \[history\] default\)\n",
        ctl.ok("topic", "show", "user/42"))
    assert len(ctl.ok("topic", "list", "--members").splitlines()) == 1
    ctl.ok("publish", "user/42", "hello")
    assert ctl.topic_id("user/42") == 2
    assert len(ctl.ok("topic", "list").splitlines()) == 1
    lines = ctl.ok("topic", "list", "--members").splitlines()
    assert re.fullmatch(rf"user/42\t2\tprivate,member\t{ISO}\tper user",
                        lines[1])
    ctl.fails(1, "topic", "show", "users/42", says="not found")
    ctl.fails(1, "publish", "user/42/x", "y", says="not found")
    ctl.fails(1, "publish", "user/*", "y", says="invalid name")


def test_family_retention_is_its_members(ctl):
    ctl.ok("topic", "add", "user/*", "--keep", "5")
    assert "keep: 5\n" in ctl.ok("topic", "show", "user/42")
    ctl.ok("topic", "set", "user/*", "--max-age", "1m")
    assert "keep: 5\nmax_age: 60s\n" in ctl.ok("topic", "show", "user/7")


def test_family_rm_keeps_its_members_unless_asked(ctl):
    ctl.ok("topic", "add", "user/*")
    ctl.ok("topic", "add", "user/admin")
    ctl.ok("publish", "user/1", "x")
    ctl.ok("publish", "user/2", "x")
    assert "members stay" in ctl.ok("topic", "rm", "user/*")
    ctl.fails(1, "publish", "user/3", "x", says="not found")
    assert ctl.topic_id("user/1") == 3
    ctl.ok("topic", "add", "user/*")
    assert "2 members" in ctl.ok("topic", "rm", "user/*", "--members")
    ctl.fails(1, "topic", "show", "user/1", says="not found")
    assert ctl.topic_id("user/admin") == 2
    ctl.fails(1, "topic", "rm", "user/*", "--members", says="not found")
    ctl.fails(1, "topic", "rm", "user/admin", "--members",
              says="--members needs a family")


def test_family_token(ctl):
    ctl.ok("topic", "add", "user/*", "--private")
    tid, _ = ctl.token("--subscribe", "--topic", "user/*")
    lines = [line.split("\t") for line in
             ctl.ok("token", "list").splitlines()]
    assert [line[:3] for line in lines] == [[tid, "subscribe", "user/*"]]
    ctl.token("--publish", "--topic", "user/7")
    assert ctl.topic_id("user/7") == 2
    ctl.fails(1, "token", "add", "--publish", "--topic", "room/*",
              says="not found")
    ctl.ok("topic", "rm", "user/*")
    assert len(ctl.ok("token", "list").splitlines()) == 1


def test_missing_catalog_is_exit_2_naming_it(ctl):
    catalog = str(ctl.tmp / "catalog")
    for args in (["topic", "list"], ["topic", "show", "x"],
                 ["topic", "rm", "x"], ["token", "list"],
                 ["token", "rm", "0123456789ab"], ["publish", "x", "y"]):
        ctl.fails(2, *args, says=f"catalog {catalog}")
    assert not (ctl.tmp / "catalog").exists()


def test_catalog_in_missing_directory_is_exit_2(ctl):
    deep = ctl.tmp / "deep.conf"
    deep.write_text(CONFIG.format(tmp=ctl.tmp).replace(
        f"{ctl.tmp}/catalog", f"{ctl.tmp}/no/such/catalog"))
    p = ctl.run("topic", "add", "news", conf=deep)
    assert p.returncode == 2
    assert f"catalog {ctl.tmp}/no/such/catalog: mkdir" in p.stderr


def test_corrupt_catalog_is_exit_2(ctl):
    (ctl.tmp / "catalog").mkdir()
    (ctl.tmp / "catalog" / "data.mdb").write_bytes(b"x" * 16384)
    for args in (["topic", "list"], ["topic", "add", "news"]):
        p = ctl.fails(2, *args, says=f"catalog {ctl.tmp}/catalog")
        assert "mdb_env_open" in p.stderr


def test_concurrent_writers_all_succeed(ctl):
    ctl.ok("topic", "add", "first")
    outs = ctl.run_at_once([["topic", "add", f"t{i}"] for i in range(12)])
    ids = [int(out.split("\t")[1]) for out in outs]
    assert sorted(ids) == list(range(2, 14))


# -- tokens ----------------------------------------------------------------

def test_token_add_prints_id_and_secret_once(ctl):
    ctl.ok("topic", "add", "news")
    p = ctl.run("token", "add", "--publish", "--topic", "news")
    assert p.returncode == 0
    out = p.stdout.splitlines()
    assert len(out) == 2
    assert TOKEN_ID.match(out[0][4:]) and SECRET.match(out[1][8:])
    assert "only this once" in p.stderr and out[1][8:] not in p.stderr


def test_token_list_never_prints_a_secret(ctl):
    ctl.ok("topic", "add", "news")
    id1, s1 = ctl.token("--publish", "--topic", "news")
    id2, s2 = ctl.token("--publish", "--subscribe", "--all")
    id3, s3 = ctl.token("--subscribe", "--topic", "news")
    p = ctl.run("token", "list")
    assert p.returncode == 0
    for secret in (s1, s2, s3):
        assert secret not in p.stdout and secret not in p.stderr
        assert secret[:12] not in p.stdout
    rows = dict(line.split("\t", 1) for line in p.stdout.splitlines())
    assert set(rows) == {id1, id2, id3}
    assert re.fullmatch(rf"publish\tnews\t{ISO}", rows[id1])
    assert re.fullmatch(rf"publish,subscribe\t\*\t{ISO}", rows[id2])
    assert re.fullmatch(rf"subscribe\tnews\t{ISO}", rows[id3])


def test_token_add_unknown_topic_is_exit_1(ctl):
    ctl.ok("topic", "add", "news")
    ctl.fails(1, "token", "add", "--publish", "--topic", "ghost",
              says="topic 'ghost': not found")


def test_token_rm(ctl):
    ctl.ok("topic", "add", "news")
    tid, _ = ctl.token("--publish", "--topic", "news")
    assert ctl.ok("token", "rm", tid) == f"token {tid} removed\n"
    assert ctl.ok("token", "list") == ""
    ctl.fails(1, "token", "rm", tid, says=f"token '{tid}': not found")


@pytest.mark.parametrize("tid", ["", "xyz", "0123456789abc", "zzzzzzzzzzzz"])
def test_token_rm_bad_id_is_exit_1(ctl, tid):
    ctl.ok("topic", "add", "news")
    ctl.fails(1, "token", "rm", tid, says="not found")


def test_topic_rm_removes_its_tokens(ctl):
    ctl.ok("topic", "add", "news")
    ctl.ok("topic", "add", "sport")
    ctl.token("--publish", "--topic", "news")
    kept, _ = ctl.token("--publish", "--topic", "sport")
    everywhere, _ = ctl.token("--publish", "--all")
    ctl.ok("topic", "rm", "news")
    ids = {line.split("\t")[0] for line in ctl.ok("token", "list").split(
        "\n") if line}
    assert ids == {kept, everywhere}


# -- ring and publish ------------------------------------------------------

def ring_info(ctl):
    out = ctl.ok("ring", "info")
    return dict(line.split(": ", 1) for line in out.splitlines())


def test_publish_prints_increasing_ids(ctl):
    ctl.ok("topic", "add", "news")
    first = int(ctl.ok("publish", "news", "hello"))
    second = int(ctl.ok("publish", "news", "--event", "greet", "again"))
    assert second == first + 1


def test_publish_reads_stdin(ctl):
    ctl.ok("topic", "add", "news")
    a = int(ctl.ok("publish", "news", stdin="from stdin\nline two"))
    b = int(ctl.ok("publish", "news", "-", stdin="dash"))
    assert b > a
    info = ring_info(ctl)
    assert int(info["committed"]) == b


def test_publish_unknown_topic_is_exit_1(ctl):
    ctl.ok("topic", "add", "news")
    ctl.fails(1, "publish", "ghost", "x", says="topic 'ghost': not found")


def test_publish_bad_event_type_is_exit_1(ctl):
    ctl.ok("topic", "add", "news")
    for event in ("", "a\nb", "e" * 65):
        ctl.fails(1, "publish", "news", "--event", event, "x",
                  says="bad event type")


def test_publish_over_max_event_bytes_is_exit_1(ctl):
    ctl.ok("topic", "add", "news")
    ctl.fails(1, "publish", "news", stdin="x" * 4097,
              says="max_event_bytes")
    ctl.ok("publish", "news", stdin="x" * 4096)


def test_ring_info_fields(ctl):
    ctl.ok("topic", "add", "news")
    seq = int(ctl.ok("publish", "news", "hello"))
    info = ring_info(ctl)
    assert info["file"] == str(ctl.tmp / "ring")
    assert int(info["committed"]) == seq
    assert int(info["oldest"]) == seq
    assert int(info["slots"]) == 1024
    assert int(info["size"]) > 0
    assert 0 < int(info["used"]) <= int(info["size"])
    assert re.fullmatch(ISO, info["created"])
    assert {"version", "epoch"} <= set(info)


def test_ring_info_without_ring_is_exit_2(ctl):
    ctl.fails(2, "ring", "info", says=str(ctl.tmp / "ring"))


def test_ring_reset_keeps_ids_increasing(ctl):
    ctl.ok("topic", "add", "news")
    before = int(ctl.ok("publish", "news", "one"))
    epoch = ring_info(ctl)["epoch"]
    out = ctl.ok("ring", "reset")
    assert "reset" in out and str(ctl.tmp / "ring") in out
    info = ring_info(ctl)
    assert info["epoch"] != epoch and int(info["used"]) == 0
    after = int(ctl.ok("publish", "news", "two"))
    assert after > before


def test_ring_reset_repairs_a_corrupt_ring(ctl):
    ctl.ok("topic", "add", "news")
    before = int(ctl.ok("publish", "news", "one"))
    ring = ctl.tmp / "ring"
    with open(ring, "r+b") as f:
        f.truncate(100)
    ctl.fails(2, "ring", "info", says=str(ring))
    ctl.fails(2, "publish", "news", "x", says=str(ring))
    assert ctl.run("ring", "reset").returncode == 0
    assert int(ctl.ok("publish", "news", "two")) > before


@pytest.mark.parametrize("contents,pid", [
    (str(os.getpid()), str(os.getpid())),  # as libbsd pidfile_write does
    ("garbage\n", "unknown"),
])
def test_ring_reset_refuses_while_ringcastd_runs(ctl, contents, pid):
    ctl.ok("topic", "add", "news")
    seq = int(ctl.ok("publish", "news", "one"))
    pidfile = ctl.tmp / "run" / "ringcastd.pid"
    with open(pidfile, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(contents)
        held.flush()
        p = ctl.fails(2, "ring", "reset")
        assert (f"ringcastd is running (pid {pid}); stop it first "
                "or use --force") in p.stderr
        assert int(ring_info(ctl)["committed"]) == seq
        ctl.ok("ring", "reset", "--force")
    assert int(ctl.ok("publish", "news", "two")) > seq


def test_concurrent_publishers_get_distinct_ids(ctl):
    ctl.ok("topic", "add", "news")
    outs = ctl.run_at_once([["publish", "news", f"event {i}"]
                            for i in range(10)])
    ids = [int(out) for out in outs]
    assert len(set(ids)) == 10
    assert int(ring_info(ctl)["committed"]) == max(ids)
