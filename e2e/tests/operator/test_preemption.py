"""When a zone's GPUs are full, a critical slice's inference service preempts a standard
one (the slices' PriorityClasses, decided by the real kube-scheduler)."""
from __future__ import annotations

import json

import pytest

from .conftest import (apply, base_station, condition, get, inference_service, medical_slice,
                       wait_for)

pytestmark = pytest.mark.e2e


def _running_gpu_pods(cluster, namespace: str) -> list[dict]:
    pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    return [p for p in pods if p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def test_critical_service_preempts_standard_when_gpus_are_full(cluster, operator, namespace):
    critical_ns = f"{namespace}-crit"
    cluster.kubectl("create", "namespace", critical_ns)
    bs = "t-preempt"  # zone mec-east: two nodes with 2 A100 each, 4 GPUs in all
    try:
        apply(cluster, base_station(bs, "mec-east", uplink=1000, downlink=1000))
        apply(cluster, medical_slice("research", namespace, [bs], priority="standard"),
              inference_service("cohort-study", namespace, "research", replicas=4))
        wait_for(lambda: condition(get(cluster, "eis", "cohort-study", namespace), "Ready")
                 .get("status") == "True", timeout=120, what="standard service on all 4 GPUs")
        assert len(_running_gpu_pods(cluster, namespace)) == 4

        apply(cluster, medical_slice("stroke", critical_ns, [bs], priority="critical"),
              inference_service("stroke-ct", critical_ns, "stroke", replicas=2))
        wait_for(lambda: condition(get(cluster, "eis", "stroke-ct", critical_ns), "Ready")
                 .get("status") == "True", timeout=120, what="critical service Ready by preemption")
        placed = get(cluster, "eis", "stroke-ct", critical_ns)["status"]["placement"]
        assert placed["zones"] == ["mec-east"]

        wait_for(lambda: len(_running_gpu_pods(cluster, namespace)) == 2, what="2 standard pods evicted")
        stuck = wait_for(lambda: (c := condition(get(cluster, "eis", "cohort-study", namespace),
                                                 "Scheduled")).get("status") == "False" and c,
                         what="standard service reports it cannot be scheduled")
        assert stuck["reason"] == "Unschedulable"
        assert "nvidia.com/gpu" in stuck["message"]  # the scheduler's own reason
    finally:
        cluster.kubectl("delete", "namespace", critical_ns, "--wait=false", check=False)
        cluster.kubectl("delete", "eis", "--all", "-n", namespace, check=False)
        cluster.kubectl("delete", "basestation", bs, check=False)
