"""The sample hospital in crds/samples converges: every resource Ready, pods Running in the
zones of their slices' base stations, base-station ledgers filled in."""
from __future__ import annotations

import json

import pytest

from medmec.operator import devtools

from .conftest import condition, get

pytestmark = pytest.mark.e2e

ZONES = {"imaging": {"mec-north", "mec-south"},
         "logistics": {"mec-north", "mec-south", "mec-east"}, "wards": {"mec-east"}}


def _node_zones(cluster) -> dict[str, str]:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {n["metadata"]["name"]: n["metadata"]["labels"].get("topology.kubernetes.io/zone")
            for n in nodes}


def test_sample_hospital_converges(cluster, operator):
    devtools.apply_samples(cluster.kubeconfig)
    devtools.wait_converged(cluster.kubeconfig, timeout=150)

    for ns, name in [("surgery", "robotic-surgery"), ("imaging", "radiology"),
                     ("logistics", "robot-logistics"), ("wards", "bedside-monitoring")]:
        ms = get(cluster, "medicalslice", name, ns)
        for type_ in ("Admitted", "Isolated", "Ready"):
            assert condition(ms, type_)["status"] == "True", (name, type_, ms["status"])
        assert ms["status"]["observedGeneration"] == ms["metadata"]["generation"]
        for kind, suffix in (("resourcequota", "-budget"), ("networkpolicy", "-isolation"),
                             ("configmap", "-qos")):
            assert get(cluster, kind, name + suffix, ns), (kind, name)
    assert get(cluster, "medicalslice", "robotic-surgery", "surgery")["status"]["snssai"] == "2-000001"
    quota = get(cluster, "resourcequota", "robotic-surgery-budget", "surgery")
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "8"
    pc = get(cluster, "priorityclass", "medmec-critical")
    assert pc["value"] > get(cluster, "priorityclass", "medmec-high")["value"]

    eis = get(cluster, "edgeinferenceservice", "chest-xray-triage", "imaging")
    for type_ in ("SliceReady", "Scheduled", "Ready"):
        assert condition(eis, type_)["status"] == "True", (type_, eis["status"])
    assert eis["status"]["readyReplicas"] == 2
    assert eis["status"]["endpoints"]["grpc"] == "chest-xray-triage-predictor.imaging.svc:8001"
    # preferred GPU product: the L40S nodes of mec-south
    assert set(eis["status"]["placement"]["zones"]) == {"mec-south"}

    node_zone = _node_zones(cluster)
    for ns, zones in ZONES.items():
        pods = json.loads(cluster.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        assert running, f"no running pods in {ns}"
        for pod in running:
            assert node_zone[pod["spec"]["nodeName"]] in zones, (ns, pod["spec"]["nodeName"])

    north = get(cluster, "basestation", "gnb-north")
    # surgery 100 + radiology 100 + robots 20 + ambulance monitoring 20 Mbps uplink on gnb-north
    assert north["status"]["allocatedUplinkMbps"] == 240
    assert north["status"]["allocatableGPUs"] == 16
    listed = cluster.kubectl("get", "medmec", "-A").stdout
    assert "chest-xray-triage" in listed and "gnb-north" in listed
