"""`cluster down` leaves the host as it found it, and `cluster up` after a killed run cleans
what the killed run left (its kubelet's and containerd's survivors, shims and containers
included) before it starts afresh, beside another running cluster without colliding."""
from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from medmec.localcluster import cluster as lc, ledger, nodeconfig, slots
from medmec.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ONE_SITE = {"zones": [{"zone": "mec-test", "baseStation": "gnb-test", "nodePools": [
    {"name": "edge", "kind": "real", "count": 1, "gpu": {"count": 1, "product": "NVIDIA-L4"},
     "taints": []},
    {"name": "sim", "count": 1, "cpu": "8", "memory": "32Gi"}]}]}


def _lines(argv: list[str]) -> list[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()


def others() -> list[tuple[str, str]]:
    """(slot, folder) of the other clusters on this host (the demo's, say): what they
    change while a test runs is theirs, not the test's cluster's."""
    if not slots.REGISTRY.exists():
        return []
    return [(p.name, str(slots.owner(int(p.name)))) for p in slots.REGISTRY.glob("[0-9]*")]


def host_snapshot(ignore: list[tuple[str, str]]) -> dict:
    """What a cluster may change on the host, as comparable data, without what belongs to
    the clusters in `ignore` ((slot, folder) pairs)."""
    def theirs(text: str) -> bool:
        return any(re.search(rf"medmec[-_]?{slot}\b|/run/medmec/{slot}(/|$)", text)
                   or folder in text for slot, folder in ignore)
    sysctls = nodeconfig.KUBELET_SYSCTLS + ["net.ipv4.ip_forward",
                                            "net.netfilter.nf_conntrack_max",
                                            "net.netfilter.nf_conntrack_tcp_timeout_established",
                                            "net.bridge.bridge-nf-call-iptables"]
    snapshot = {
        "links": [line.split(":")[1].strip().split("@")[0] for line in _lines(["ip", "-o", "link"])],
        "routes": _lines(["ip", "route"]),
        "netns": [line.split()[0] for line in _lines(["ip", "netns", "list"])],
        "nft tables": _lines(["nft", "list", "tables"]),
        "mounts": [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()],
        "cgroups": [str(p) for p in Path("/sys/fs/cgroup").glob("*/medmec-*")],
        "/run/medmec": [str(p) for p in Path("/run/medmec").glob("[0-9]*")]
        if Path("/run/medmec").exists() else [],
    }
    kept = {key: sorted(v for v in values if not theirs(v)) for key, values in snapshot.items()}
    if ignore:  # host-wide: the last cluster to go down puts them back
        return kept
    return {**kept, "sysctls": {k: ledger.read_sysctl(k) for k in sysctls},
            "/var/lib/cni": Path("/var/lib/cni").exists()}


@pytest.fixture
def topology_file(tmp_path):
    path = tmp_path / "one-site.yaml"
    path.write_text(yaml.safe_dump(ONE_SITE))
    return str(path)


def test_down_leaves_the_host_as_it_found_it(tmp_path, topology_file):
    ignore = others()
    before = host_snapshot(ignore)
    folder = tmp_path / "cluster"
    state = lc.up(folder, topology_file)
    try:
        plan = state.plan()
        during = host_snapshot(ignore)
        assert plan.netns in during["netns"]
        assert plan.host_link in during["links"]
        assert any(plan.nft_table in t for t in during["nft tables"])
        assert ledger.read_sysctl("kernel.panic") == "10"  # what the kubelet sets
        assert any(m.startswith(plan.run_dir + "/") for m in during["mounts"])
    finally:
        lc.down(folder)
    assert host_snapshot(ignore) == before


def test_up_after_a_killed_run_cleans_its_survivors_beside_a_running_cluster(
        tmp_path, topology_file, real_cluster):
    ignore = others()
    before = host_snapshot(ignore)
    folder = tmp_path / "cluster"
    first = lc.up(folder, topology_file)
    other = real_cluster.state
    if other is not None:  # two clusters on one host: nothing shared
        assert first.slot != other.slot
        assert not first.plan().block.overlaps(other.plan().block)
    # a pod, so that a shim and a container outlive the kill
    kubectl = [str(lc.binaries.binary("kubectl")), "--kubeconfig", str(first.kubeconfig)]
    subprocess.run([*kubectl, "run", "survivor", "--image", _pause(), "--restart=Never",
                    "--overrides", '{"spec":{"nodeSelector":{"medmec.io/node-kind":"real"}}}'],
                   check=True, capture_output=True)
    wait_for(lambda: subprocess.run([*kubectl, "get", "pod", "survivor", "-o",
                                     "jsonpath={.status.phase}"], capture_output=True,
                                    text=True).stdout == "Running", 180, "the pod Running")
    shims = ledger.pids_with(first.plan().run_dir + "/", "containerd-shim")
    assert shims, "a running pod has a containerd shim"
    # kill every recorded process at once, as the end of a session does
    for proc in first.procs:
        os.kill(proc.pid, signal.SIGKILL)
    wait_for(lambda: not any(p.alive() for p in first.procs), 30, "the killed run gone")
    assert any(os.path.exists(f"/proc/{pid}") for pid in shims)  # the shim survived

    messages = []
    second = lc.up(folder, topology_file, log=messages.append)
    try:
        assert any("stale" in m for m in messages)
        assert not any(os.path.exists(f"/proc/{pid}") for pid in shims)
        assert lc.running(folder).procs == second.procs
    finally:
        lc.down(folder)
    assert host_snapshot(ignore) == before


def _pause() -> str:
    from medmec.localcluster import images
    return images.ensure("pause").ref
