"""NetworkPolicy enforced on the real nodes by kube-router's firewall (netpolicy.py): the
operator's policy for a strict slice drops connections from pods outside the slice, routed
from another node or bridged on the same node, and lets one from a pod of the slice through.

kube-router polices the pods of the one real node it is started for (netpolicy.py says
why), so the slice's server runs there. The test removes its pods and waits for kube-router
to drop their rules before stopping it, so no stale rule outlives it in the cluster's
namespace."""
from __future__ import annotations

import subprocess

import pytest

from medmec.localcluster import network, netpolicy
from medmec.operator import meta, render_slice
from medmec.waiting import wait_for

from .conftest import apply, container, get, pod, ready

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SLICE = "icu"


def strict_slice_policy(ns: str) -> dict:
    ms = {"apiVersion": "medmec.io/v1alpha1", "kind": "MedicalSlice",
          "metadata": {"name": SLICE, "namespace": ns, "uid": "0"},
          "spec": {"isolation": "strict"}}
    policy = render_slice.network_policy(ms)
    del policy["metadata"]["ownerReferences"]  # no MedicalSlice object: the operator is not running
    return policy


def test_a_strict_slice_drops_a_packet_from_outside_it_and_passes_one_from_inside(
        real_cluster, ns, image):
    if not real_cluster.local:
        pytest.skip("kube-router is started only on the local cluster")
    state = real_cluster.state
    plan = state.plan()
    policed, other = (n.name for n in state.topology().real_nodes()[:2])
    enter = network.nsenter(plan)
    router = netpolicy.start(state.folder, enter, state.kubeconfig, policed, str(plan.service_cidr))
    sleeper = ["sleep", "3600"]
    pods = {
        "server": (policed, SLICE, ["python3", "-m", "http.server", "8080"]),
        "inside": (other, SLICE, sleeper),
        "outside": (other, None, sleeper),
        "outside-same-node": (policed, None, sleeper),
    }
    server_ip = None
    try:
        for name, (node, slice_name, command) in pods.items():
            obj = pod(name, [container(image, name, command)], nodeName=node)
            if slice_name:
                obj["metadata"]["labels"][meta.SLICE_LABEL] = slice_name
            apply(real_cluster, ns, obj)
        for name in pods:
            wait_for(lambda: ready(get(real_cluster, ns, "pod", name)), 180, f"pod {name} Ready")
        server_ip = get(real_cluster, ns, "pod", "server")["status"]["podIP"]
        fetch = f"import urllib.request; urllib.request.urlopen('http://{server_ip}:8080/', timeout=2)"

        def reaches(client: str) -> bool:
            return real_cluster.kubectl("exec", "-n", ns, client, "--", "python3", "-c", fetch,
                                        check=False).returncode == 0

        wait_for(lambda: reaches("inside"), 60, "the server answering")
        assert reaches("outside") and reaches("outside-same-node"), "dropped with no policy"

        apply(real_cluster, ns, strict_slice_policy(ns))
        wait_for(lambda: not reaches("outside"), 30, "kube-router dropping the routed packet")
        assert not reaches("outside-same-node"), "a bridged packet from outside the slice passed"
        assert reaches("inside"), "a packet from inside the slice was dropped"
    finally:
        real_cluster.kubectl("delete", "networkpolicy,pods", "--all", "-n", ns, "--wait=true",
                             "--timeout=120s", check=False)
        if server_ip:  # the server's rules reject: they must not outlive kube-router
            wait_for(lambda: f"-d {server_ip}/32" not in subprocess.run(
                [*enter, "iptables-save", "-t", "filter"], capture_output=True, text=True).stdout
                or not router.alive(), 60, "kube-router removing the server's rules")
        router.stop()
