"""A BaseStation is Ready when its MEC site has a Ready, schedulable node (and says why not);
an admitted slice's namespace enforces the restricted Pod Security Standard, so the API
server itself refuses a pod that breaks it."""
from __future__ import annotations

import json
import uuid

import pytest

from medmec.localcluster import topology

from .conftest import apply, base_station, condition, get, medical_slice, wait_for

pytestmark = pytest.mark.e2e


def _site_node(zone: str) -> dict:
    """One KWOK node in `zone` (KWOK keeps it Ready), as the local topology makes them."""
    z = topology.Zone.model_validate({"zone": zone, "nodePools": [
        {"name": "cpu", "count": 1, "cpu": "4", "memory": "8Gi"}]})
    return topology.node_manifest(z, z.node_pools[0], 1)


def _ready(cluster, name: str) -> dict:
    return condition(get(cluster, "basestation", name), "Ready")


def test_base_station_ready_follows_its_sites_nodes(cluster, operator):
    if not cluster.local:
        pytest.skip("creates KWOK nodes: the local cluster only")
    zone, bs = f"mec-t{uuid.uuid4().hex[:6]}", "t-site"
    node = _site_node(zone)
    try:
        apply(cluster, base_station(bs, zone))
        no_nodes = wait_for(lambda: (c := _ready(cluster, bs)).get("reason") == "NoNodes" and c,
                            60, "NoNodes on a site without nodes")
        assert no_nodes["status"] == "False" and zone in no_nodes["message"]

        apply(cluster, node)
        ready = wait_for(lambda: (c := _ready(cluster, bs)).get("status") == "True" and c,
                         90, "Ready once KWOK's node in the zone is Ready")
        assert ready["reason"] == "NodesReady" and "1 of 1 node(s)" in ready["message"]

        cluster.kubectl("cordon", node["metadata"]["name"])
        cordoned = wait_for(lambda: (c := _ready(cluster, bs)).get("reason") == "NodesNotReady" and c,
                            90, "NotReady once the site's only node takes no pods")
        assert f"{node['metadata']['name']}: cordoned" in cordoned["message"]

        def reasons() -> set[str]:
            events = json.loads(cluster.kubectl("get", "events", "-A", "--field-selector",
                                                f"involvedObject.name={bs}", "-o", "json").stdout)
            return {e["reason"] for e in events["items"]}
        wait_for(lambda: {"NoNodes", "NodesReady", "NodesNotReady"} <= reasons(), 30,
                 "an Event for each transition")
    finally:
        cluster.kubectl("delete", "node", node["metadata"]["name"], "--ignore-not-found", check=False)
        cluster.kubectl("delete", "basestation", bs, "--ignore-not-found", check=False)


ROOT_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "runs-as-root"},
            "spec": {"containers": [{"name": "c", "image": "localhost/medmec:any",
                                     "securityContext": {"runAsUser": 0, "privileged": True}}]}}


def test_an_admitted_slices_namespace_refuses_a_pod_breaking_restricted(cluster, operator, namespace):
    bs = "t-pss"
    try:
        apply(cluster, base_station(bs, "mec-east"), medical_slice("pss", namespace, [bs]))
        wait_for(lambda: get(cluster, "namespace", namespace)["metadata"]["labels"]
                 .get("pod-security.kubernetes.io/enforce") == "restricted", 60,
                 "the operator to label the slice's namespace")
        proc = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(ROOT_POD),
                               check=False)
        assert proc.returncode != 0
        assert 'violates PodSecurity "restricted:latest"' in proc.stderr, proc.stderr
        assert get(cluster, "pod", "runs-as-root", namespace) is None
    finally:
        cluster.kubectl("delete", "basestation", bs, "--ignore-not-found", check=False)
