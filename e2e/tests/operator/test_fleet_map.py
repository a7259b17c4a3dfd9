"""A robot fleet whose map is missing is refused with a reason and deploys nothing; once
the map exists the fleet's dispatcher is deployed without anyone touching the fleet."""
from __future__ import annotations

import json

import pytest

from medmec.operator import devtools

from .conftest import apply, base_station, condition, get, medical_slice, wait_for

pytestmark = pytest.mark.e2e


def test_fleet_waits_for_its_map(cluster, operator, namespace):
    bs = "t-fleet"
    fleet = {"apiVersion": "medmec.io/v1alpha1", "kind": "CareRobotFleet",
             "metadata": {"name": "porters", "namespace": namespace},
             "spec": {"sliceRef": {"name": "logistics"}, "mapRef": {"name": "ward-map"},
                      "robots": [{"id": "amr-1", "home": "f0-park-00a", "payloadKg": 20}]}}
    try:
        apply(cluster, base_station(bs, "mec-east", 100, 100),
              medical_slice("logistics", namespace, [bs], mbps=5, gpus=0), fleet)
        ready = wait_for(lambda: (c := condition(get(cluster, "crf", "porters", namespace), "Ready"))
                         .get("reason") == "MapNotFound" and c, 60, "MapNotFound")
        assert "ConfigMap ward-map" in ready["message"]
        assert get(cluster, "crf", "porters", namespace)["status"]["phase"] == "Failed"
        assert get(cluster, "deployment", "porters-dispatch", namespace) is None
        events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
        assert any(e["reason"] == "MapNotFound" for e in events["items"])

        apply(cluster, devtools.sample_map_configmap(namespace, "ward-map"))
        wait_for(lambda: condition(get(cluster, "crf", "porters", namespace), "Ready")
                 .get("status") == "True", 90, "fleet Ready once its map exists")
        assert get(cluster, "deployment", "porters-dispatch", namespace)
    finally:
        cluster.kubectl("delete", "basestation", bs, check=False)
