"""`medmec cluster up | down | status` with the real binaries: reuse, stale state, failures."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from medmec.localcluster import cluster as lc, topology

KWOK = str(topology.KWOK_ONLY)  # these tests are about the processes: no real nodes

pytestmark = pytest.mark.slow


def alive_pids(state):
    return {p.name: p.pid for p in state.procs if p.alive()}


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "cluster"
    yield path
    lc.down(path)


def test_up_reuses_a_running_cluster_and_down_stops_every_process(folder):
    messages = []
    first = lc.up(folder, KWOK, log=messages.append)
    assert set(alive_pids(first)) == {"etcd", "kube-apiserver", "kube-controller-manager",
                                      "kube-scheduler", "kwok"}
    again = lc.up(folder, KWOK, log=messages.append)
    assert alive_pids(again) == alive_pids(first)
    assert any("already running" in m for m in messages)
    assert "base station gnb-north (zone mec-north): 3 nodes, 16 GPUs" in lc.describe(again)

    first_addon = lc.processes.start("demo-addon", ["sleep", "300"], folder / "logs" / "a.log")
    lc.attach(folder, first_addon)
    assert lc.stop_addons(folder) == ["demo-addon"]
    assert not first_addon.alive() and lc.running(folder).addons == []
    addon = lc.processes.start("demo-addon", ["sleep", "300"], folder / "logs" / "addon.log")
    lc.attach(folder, addon)
    assert "demo-addon" in lc.describe(lc.running(folder))

    running = alive_pids(first)
    stopped = lc.down(folder)
    assert sorted(stopped) == sorted([*running, "demo-addon"])
    assert not addon.alive()
    assert not any(p.alive() for p in first.procs)
    assert not folder.exists()
    with pytest.raises(lc.ClusterError, match="no local cluster"):
        lc.running(folder)


def test_stale_state_from_a_killed_run_is_detected_and_cleaned(folder):
    first = lc.up(folder, KWOK)
    apiserver = next(p for p in first.procs if p.name == "kube-apiserver")
    os.kill(apiserver.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while apiserver.alive() and time.monotonic() < deadline:  # SIGKILL is not instant
        time.sleep(0.05)
    # the controller-manager may exit too, without its API server: both are then named
    with pytest.raises(lc.ClusterError, match=r"is broken \((.*, )?kube-apiserver(, .*)? not running"):
        lc.running(folder)
    messages = []
    second = lc.up(folder, KWOK, log=messages.append)
    assert any("stale" in m for m in messages)
    assert not any(p.alive() for p in first.procs)  # the survivors of the first were stopped
    assert len(alive_pids(second)) == 5
    assert lc.running(folder).ports == second.ports


def test_a_component_that_cannot_start_is_named_with_its_log_and_nothing_is_left(
        folder, monkeypatch):
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    asked = []

    def free_port():  # etcd's two ports are free; every port after them is taken
        asked.append(1)
        return real_free_port() if len(asked) <= 2 else taken

    real_free_port = lc.free_port
    monkeypatch.setattr(lc, "free_port", free_port)
    started = []
    monkeypatch.setattr(lc.processes, "start", _recording(lc.processes.start, started))
    try:
        with pytest.raises(lc.ClusterError) as err:
            lc.up(folder, KWOK)
    finally:
        squatter.close()
    message = str(err.value)
    assert "kube-apiserver" in message and "address already in use" in message
    assert "all started processes were stopped" in message
    assert started and not any(p.alive() for p in started)
    assert not (folder / "state.json").exists()


def _recording(start, into):
    def wrapper(*args, **kwargs):
        proc = start(*args, **kwargs)
        into.append(proc)
        return proc
    return wrapper


def medmec(*args, env=None):
    return subprocess.run([sys.executable, "-m", "medmec", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_refuses_a_broken_topology_before_starting_anything(tmp_path):
    bad = tmp_path / "topology.yaml"
    bad.write_text("zones: [{zone: a, nodePools: [{name: a, count: 1, cpu: '1'}]}]")
    result = medmec("cluster", "up", "--topology", str(bad), "--state-dir", str(tmp_path / "c"))
    assert result.returncode == 1
    assert "zones.0.nodePools.0: Value error, a kwok pool needs memory" in result.stderr
    assert not (tmp_path / "c").exists()


def test_cli_status_and_kubeconfig_without_a_cluster_say_how_to_start_one(tmp_path):
    for action in ("status", "kubeconfig"):
        result = medmec("cluster", action, "--state-dir", str(tmp_path / "none"))
        assert result.returncode == 1
        assert "medmec cluster up" in result.stderr


def test_a_port_taken_before_the_component_binds_it_is_replaced(folder, monkeypatch):
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    asked = []

    def free_port():  # the API server's first port is taken; later ones are free
        asked.append(1)
        return taken if len(asked) == 3 else real_free_port()

    real_free_port = lc.free_port
    monkeypatch.setattr(lc, "free_port", free_port)
    messages = []
    try:
        state = lc.up(folder, KWOK, log=messages.append)
    finally:
        squatter.close()
    assert any("kube-apiserver: a port was taken" in m for m in messages)
    assert state.ports["apiserver"] != taken
    assert f"https://127.0.0.1:{state.ports['apiserver']}" in state.kubeconfig.read_text()
    assert len(alive_pids(state)) == 5
    assert lc.running(folder).ports == state.ports
