"""The operator killed mid-reconcile and started again converges to the same objects, with
no duplicates."""
from __future__ import annotations

import json
import time

import pytest

from .conftest import (apply, base_station, condition, get, inference_service, medical_slice,
                       wait_for)

pytestmark = pytest.mark.e2e
COUNT = 12


def test_killed_operator_converges_without_duplicates(cluster, operator, namespace):
    bs = "t-restart"
    try:
        apply(cluster, base_station(bs, "mec-north"))
        apply(cluster, medical_slice("ward", namespace, [bs], gpus=0))
        wait_for(lambda: condition(get(cluster, "medicalslice", "ward", namespace), "Admitted")
                 .get("status") == "True", what="slice admitted")
        services = [inference_service(f"svc-{i}", namespace, "ward", gpus=0) for i in range(COUNT)]
        apply(cluster, *services)
        time.sleep(0.5)  # some reconciles done, some in flight
        operator.kill()
        half = json.loads(cluster.kubectl("get", "deployments", "-n", namespace, "-o", "json").stdout)
        operator.start()

        def all_ready():
            items = json.loads(cluster.kubectl("get", "eis", "-n", namespace, "-o", "json").stdout)
            return all(condition(i, "Ready").get("status") == "True" for i in items["items"]) \
                and len(items["items"]) == COUNT
        wait_for(all_ready, timeout=120, what="all services Ready after the restart")

        for kind in ("deployments", "services", "horizontalpodautoscalers", "poddisruptionbudgets"):
            items = json.loads(cluster.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
            names = sorted(i["metadata"]["name"] for i in items)
            assert names == sorted(f"svc-{i}-predictor" for i in range(COUNT)), (kind, names)
            for item in items:
                assert len(item["metadata"]["ownerReferences"]) == 1
        pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        assert len([p for p in pods if not p["metadata"].get("deletionTimestamp")]) == COUNT
        # the kill happened mid-way: the restart had work left to do
        assert len(half["items"]) < COUNT or operator.starts > 1
    finally:
        cluster.kubectl("delete", "basestation", bs, check=False)
