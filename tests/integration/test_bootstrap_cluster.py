"""./bootstrap cluster (issue #16), on free loopback ports in a temporary
directory with this build's binaries (RINGCASTD and RINGCASTCTL set: it
installs and builds nothing): three nats-servers form one JetStream
cluster, two ringcastd nodes start with a [cluster] section naming all
three, and Ctrl-C, or any of them dying, stops every process it started.
Events crossing from node A to node B are the cluster tests' business."""

import os
import pathlib
import signal
import subprocess
import time

import pytest

import nats_rig
from ringcast_harness import (HERE, RINGCASTCTL, RINGCASTD, SLOW,
                              free_port, wait_for)

BOOTSTRAP = HERE.parent.parent / "bootstrap"


class Demo:
    """One ./bootstrap cluster run."""

    def __init__(self, tmp):
        self.dir = pathlib.Path(tmp) / "cluster"
        self.out = pathlib.Path(tmp) / "bootstrap.out"
        self.nats = [free_port() for _ in range(3)]
        self.routes = [free_port() for _ in range(3)]
        self.mons = [free_port() for _ in range(3)]
        self.nodes = [free_port() for _ in range(2)]
        self.admins = [free_port() for _ in range(2)]
        self.env = dict(
            os.environ, CLUSTER_DIR=str(self.dir),
            CLUSTER_NATS_PORTS=" ".join(map(str, self.nats)),
            CLUSTER_ROUTE_PORTS=" ".join(map(str, self.routes)),
            CLUSTER_MON_PORTS=" ".join(map(str, self.mons)),
            CLUSTER_NODE_PORTS=" ".join(map(str, self.nodes)),
            CLUSTER_ADMIN_PORTS=" ".join(map(str, self.admins)),
            RINGCASTD=RINGCASTD, RINGCASTCTL=RINGCASTCTL,
            NATS_SERVER=nats_rig.nats_server_path())
        self.proc = subprocess.Popen(
            ["/bin/sh", str(BOOTSTRAP), "cluster"], env=self.env,
            stdin=subprocess.DEVNULL, stdout=open(self.out, "wb"),
            stderr=subprocess.STDOUT)

    def output(self):
        return self.out.read_text(errors="replace")

    def wait_running(self, timeout=60):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if "cluster running" in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("./bootstrap cluster did not come up:\n"
                             + self.output())

    def pids(self, partial=False):
        """The PIDs of its five servers, from their pid files (with
        partial, of those that wrote one)."""
        files = [self.dir / "nats" / f"n{i}" / "nats.pid"
                 for i in (1, 2, 3)]
        files += [self.dir / f"node{n}" / "ringcastd.pid" for n in "AB"]
        if partial:
            files = [f for f in files if f.exists()]
        return [int(f.read_text().split()[0]) for f in files]

    def ours(self, pid):
        """Is pid still one of this run's servers (not a reused PID)?"""
        try:
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        state = stat.rsplit(")", 1)[1].split()[0]
        return state != "Z" and (str(self.dir).encode() in cmd or
                                 b"ringcastd" in cmd)

    def wait_exit(self, timeout=40):
        try:
            return self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            raise AssertionError("./bootstrap cluster did not exit:\n"
                                 + self.output())

    def assert_all_gone(self, pids, timeout=10):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            left = [p for p in pids if self.ours(p)]
            if not left:
                return
            time.sleep(0.1)
        raise AssertionError(f"still running: {left}\n" + self.output())

    def cleanup(self):
        """Stop the run whatever state it is in: SIGTERM to the script
        (it stops its servers), then SIGKILL to whatever is left."""
        pids = self.pids(partial=True)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in pids:
            if self.ours(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def demo(tmp_path):
    d = Demo(tmp_path)
    try:
        d.wait_running()
        yield d
    finally:
        d.cleanup()
        print(d.output())


def test_cluster_mode_starts_nats_and_two_nodes_and_ctrl_c_stops_all(demo):
    urls = ",".join(f"nats://127.0.0.1:{p}" for p in demo.nats)
    assert urls in demo.output()
    # The NATS half: one JetStream cluster of three with one meta leader.
    leaders = set()
    for port in demo.mons:
        # The script waits for a JetStream leader; a follower may report
        # healthy a moment later.
        assert wait_for(lambda: nats_rig.monitor(port, "/healthz") ==
                        {"status": "ok"}, 15), port
        meta = nats_rig.monitor(port, "/jsz")["meta_cluster"]
        assert meta["cluster_size"] == 3
        leaders.add(meta["leader"])
    assert len(leaders) == 1 and leaders.pop() in {"n1", "n2", "n3"}
    # Each node: [cluster] names all three, replicas 3, the config is one
    # ringcastctl accepts, and the demo topic exists.
    for name, port, admin in zip("AB", demo.nodes, demo.admins):
        conf = demo.dir / f"node{name}" / "ringcast.conf"
        text = conf.read_text()
        assert f"\n[cluster]\nnats = {urls}\n" in text
        assert "\nreplicas = 3\n" in text
        assert f"listen = 127.0.0.1:{port}\n" in text
        assert f"admin_listen = 127.0.0.1:{admin}\n" in text
        res = subprocess.run([RINGCASTCTL, "-f", str(conf), "topic",
                              "show", "demo"], capture_output=True,
                             timeout=10 * SLOW)
        assert res.returncode == 0, res.stderr
        assert f"http://127.0.0.1:{port}/" in demo.output()
    pids = demo.pids()
    assert len(set(pids)) == 5
    assert all(demo.ours(p) for p in pids)

    demo.proc.send_signal(signal.SIGINT)
    assert demo.wait_exit() == 130
    demo.assert_all_gone(pids)
    assert "stopping" in demo.output()


def test_cluster_mode_stops_everything_when_one_dies(demo):
    pids = demo.pids()
    os.kill(pids[1], signal.SIGKILL)	# nats-server n2
    assert demo.wait_exit(timeout=30) == 1
    demo.assert_all_gone(pids)
    assert f"process {pids[1]} exited" in demo.output()
