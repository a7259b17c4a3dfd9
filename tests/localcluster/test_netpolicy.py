"""kube-router's firewall (netpolicy.py) enforcing a strict slice's NetworkPolicy on real packets.

The control plane, kube-router and the node's bridge run in a network namespace made for the
test; the three pods are network namespaces on that bridge whose Pod objects carry their
addresses (no kubelet runs here, hence `netns_pods` in the test's name). The policy is the
one the operator renders for a strict slice.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medmec import processes
from medmec.localcluster import binaries, cluster as lc, netpolicy
from medmec.operator import render_slice
from medmec.waiting import wait_for

NETNS = f"mmnp{os.getpid()}"
NODE, NODE_IP = "np-node", "10.250.0.1"
# pod -> (address, slice label); pod-b is in the slice's namespace but not in the slice
PODS = {"a": ("10.250.0.10", "icu"), "b": ("10.250.0.11", None), "c": ("10.250.0.12", "icu")}
SERVER = PODS["a"][0]
# simulated nodes only: the node and pods here are the test's own
KWOK_TOPOLOGY = Path(lc.__file__).with_name("topology-kwok.yaml")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def pod_netns(pod: str) -> str:
    return f"{NETNS}-{pod}"


def enter(netns: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{netns}", "--"]


def test_only_the_firewall_runs_and_nothing_listens(tmp_path):
    argv = netpolicy.kube_router_argv(tmp_path / "kube-router", tmp_path / "kr.kubeconfig",
                                      "node-1", "10.96.0.0/16")
    assert {"--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
            "--health-port=0", "--metrics-port=0", "--hostname-override=node-1",
            "--service-cluster-ip-range=10.96.0.0/16"} <= set(argv)


@pytest.fixture
def node_netns():
    """A node namespace with a bridge, like the bridge CNI plugin's, and three pod namespaces."""
    ip("netns", "add", NETNS)
    try:
        ip("-n", NETNS, "link", "set", "lo", "up")
        ip("-n", NETNS, "link", "add", "br0", "type", "bridge")
        ip("-n", NETNS, "addr", "add", f"{NODE_IP}/24", "dev", "br0")
        ip("-n", NETNS, "link", "set", "br0", "up")
        for pod, (address, _) in PODS.items():
            ip("netns", "add", pod_netns(pod))
            ip("-n", NETNS, "link", "add", f"veth-{pod}", "type", "veth",
               "peer", "name", "eth0", "netns", pod_netns(pod))
            ip("-n", NETNS, "link", "set", f"veth-{pod}", "master", "br0", "up")
            ip("-n", pod_netns(pod), "link", "set", "lo", "up")
            ip("-n", pod_netns(pod), "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", pod_netns(pod), "link", "set", "eth0", "up")
        yield NETNS
    finally:
        for pod in PODS:
            subprocess.run(["ip", "netns", "del", pod_netns(pod)], capture_output=True)
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)


@pytest.fixture
def cluster_in_netns(node_netns, tmp_path):
    """A local control plane inside the node namespace (kube-router must reach its API)."""
    folder = tmp_path / "cluster"
    subprocess.run([*enter(node_netns), sys.executable, "-m", "medmec", "cluster", "up",
                    "--state-dir", str(folder), "--topology", str(KWOK_TOPOLOGY)],
                   check=True, capture_output=True, text=True, timeout=300)
    try:
        yield folder
    finally:
        lc.down(folder)


def kubectl(folder, *args: str, input: str | None = None) -> str:
    proc = subprocess.run([*enter(NETNS), str(binaries.binary("kubectl")),
                           f"--kubeconfig={folder / 'admin.kubeconfig'}", *args],
                          input=input, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def create_node_and_pods(folder) -> None:
    kubectl(folder, "create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}}))
    kubectl(folder, "patch", "node", NODE, "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"addresses": [{"type": "InternalIP", "address": NODE_IP}]}}))
    kubectl(folder, "create", "namespace", "ward")
    # pods are admitted only once the namespace's default ServiceAccount exists
    kubectl(folder, "wait", "--for=create", "serviceaccount/default", "-n", "ward", "--timeout=60s")
    for pod, (address, slice_name) in PODS.items():
        labels = {"medmec.io/slice": slice_name} if slice_name else {}
        kubectl(folder, "create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{pod}", "namespace": "ward", "labels": labels},
            "spec": {"nodeName": NODE, "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": "app", "image": "netns-stand-in"}]}}))
        kubectl(folder, "patch", "pod", "-n", "ward", f"pod-{pod}", "--subresource=status",
                "--type=merge", "-p", json.dumps({"status": {
                    "phase": "Running", "hostIP": NODE_IP,
                    "podIP": address, "podIPs": [{"ip": address}]}}))


def strict_slice_policy() -> str:
    ms = {"apiVersion": "medmec.io/v1alpha1", "kind": "MedicalSlice",
          "metadata": {"name": "icu", "namespace": "ward", "uid": "0"},
          "spec": {"isolation": "strict"}}
    policy = render_slice.network_policy(ms)
    del policy["metadata"]["ownerReferences"]  # no MedicalSlice object in this cluster
    return json.dumps(policy)


def reaches_server(pod: str) -> bool:
    """Whether an HTTP GET from `pod` to pod-a's server gets its answer."""
    get = (f"import urllib.request; urllib.request.urlopen('http://{SERVER}:8080/', timeout=2)")
    return subprocess.run([*enter(pod_netns(pod)), sys.executable, "-c", get],
                          capture_output=True).returncode == 0


@pytest.mark.slow
def test_kube_router_drops_a_packet_from_outside_a_strict_slice_netns_pods(cluster_in_netns):
    folder = cluster_in_netns
    create_node_and_pods(folder)
    server = processes.start("pod-a-http", [
        *enter(pod_netns("a")), sys.executable, "-m", "http.server", "8080",
        "--bind", SERVER], folder / "logs" / "pod-a-http.log")
    router = None
    try:
        wait_for(lambda: reaches_server("c"), timeout=30, what="pod-a's HTTP server")
        router = netpolicy.start(folder, enter(NETNS), folder / "admin.kubeconfig", NODE,
                                 str(lc.running(folder).plan().service_cidr))
        assert reaches_server("b"), "kube-router dropped traffic before any policy existed"

        kubectl(folder, "apply", "-f", "-", input=strict_slice_policy())
        wait_for(lambda: not reaches_server("b"), timeout=30,
                 what="kube-router to drop pod-b's connection to the strict slice")
        assert reaches_server("c"), "a pod of the slice itself was cut off"
        assert "KUBE-POD-FW-" in subprocess.run(
            [*enter(NETNS), "iptables-save", "-t", "filter"],
            capture_output=True, text=True).stdout

        kubectl(folder, "delete", "networkpolicy", "-n", "ward", "icu-isolation")
        wait_for(lambda: reaches_server("b"), timeout=30,
                 what="pod-b to reach the server once the policy is gone")
    finally:
        if router:
            router.stop()
        server.stop()
