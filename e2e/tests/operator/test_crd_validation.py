"""The API server itself refuses malformed or contradictory medmec resources, naming the
field (structural schemas, enums, patterns and CEL rules in crds/)."""
from __future__ import annotations

import copy
import json

import pytest

from .conftest import base_station, inference_service, medical_slice

pytestmark = pytest.mark.e2e

NS = "default"


def _slice(**changes) -> dict:
    obj = medical_slice("bad-slice", NS, ["gnb-north"])
    obj["spec"].update(changes)
    return obj


def _without(obj: dict, *path: str) -> dict:
    obj = copy.deepcopy(obj)
    target = obj
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return obj


def _eis(**changes) -> dict:
    obj = inference_service("bad-eis", NS, "some-slice")
    for dotted, value in changes.items():
        target = obj["spec"]
        *parents, last = dotted.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return obj


def _with_spec(obj: dict, **changes) -> dict:
    obj = copy.deepcopy(obj)
    obj["spec"].update(changes)
    return obj


ROBOTS = {"apiVersion": "medmec.io/v1alpha1", "kind": "CareRobotFleet",
          "metadata": {"name": "bad-fleet", "namespace": NS},
          "spec": {"sliceRef": {"name": "s"}, "mapRef": {"name": "m"},
                   "robots": [{"id": "r1", "home": "a", "payloadKg": 10}]}}
NURSING = {"apiVersion": "medmec.io/v1alpha1", "kind": "CloudNursingService",
           "metadata": {"name": "bad-nursing", "namespace": NS},
           "spec": {"sliceRef": {"name": "s"}, "wards": [{"id": "4a"}],
                    "tokensSecretRef": {"name": "t"}}}

# (case, object, text the API server's message must contain)
MALFORMED = [
    ("unknown profile", _slice(profile="tele-dentistry"), "spec.profile"),
    ("profile and qos together", _slice(profile="remote-ecg"), "exactly one of spec.profile"),
    ("neither profile nor qos", _without(_slice(), "spec", "qos"), "exactly one of spec.profile"),
    ("surgery not URLLC", _without(_slice(profile="remote-surgery"), "spec", "qos"), "spec.sliceType"),
    ("bad slice type", _slice(sliceType="4G"), "spec.sliceType"),
    ("e2e latency below network latency",
     _slice(qos={"uplinkMbps": 1, "downlinkMbps": 1, "networkLatencyMs": 100,
                 "endToEndLatencyMs": 50, "jitterMs": 1}), "spec.qos.endToEndLatencyMs"),
    ("no base stations", _slice(baseStations=[]), "spec.baseStations"),
    ("bad priority", _slice(priority="urgent"), "spec.priority"),
    ("bad slice differentiator", _slice(sliceDifferentiator="xyz"), "spec.sliceDifferentiator"),
    ("bad cidr", _slice(allowedIngress=[{"cidr": "10.0.0.0/99"}]), "cidr"),
    ("negative capacity", _with_spec(base_station("bad-bs", "z"), uplinkMbps=-5), "spec.uplinkMbps"),
    ("gnb id too large", _with_spec(base_station("bad-bs", "z"), gnbId=2**33), "spec.gnbId"),
    ("storage uri not s3", _eis(**{"model.storageUri": "http://example.org/m.onnx"}), "spec.model.storageUri"),
    ("sha256 not hex", _eis(**{"model.sha256": "not-a-digest"}), "spec.model.sha256"),
    ("min above max replicas", _eis(**{"scaling.minReplicas": 4, "scaling.maxReplicas": 2}),
     "spec.scaling.minReplicas"),
    ("canary same version", _eis(canary={"version": "1", "sha256": "b" * 64, "trafficPercent": 10}),
     "spec.canary.version"),
    ("canary 100 percent", _eis(canary={"version": "2", "sha256": "b" * 64, "trafficPercent": 100}),
     "spec.canary.trafficPercent"),
    ("gpu product without gpus", _eis(gpu={"count": 0, "product": "NVIDIA-L40S"}), "spec.gpu.product"),
    ("escalation not http", _eis(escalation={"confidenceThreshold": 0.5, "url": "ftp://x"}),
     "spec.escalation.url"),
    ("duplicate robot ids", _with_spec(ROBOTS, robots=[{"id": "r1", "home": "a", "payloadKg": 10},
                                                       {"id": "r1", "home": "b", "payloadKg": 5}]),
     "spec.robots"),
    ("robot without payload", _with_spec(ROBOTS, robots=[{"id": "r1", "home": "a"}]),
     "spec.robots[0].payloadKg"),
    ("postgresql without secret", _with_spec(NURSING, storage={"type": "postgresql"}),
     "spec.storage.postgresql"),
    ("early warning inverted", _with_spec(NURSING, earlyWarning={"mediumScore": 7, "highScore": 5}),
     "spec.earlyWarning.mediumScore"),
]


@pytest.mark.parametrize("case,obj,field", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_api_server_refuses_malformed_resource(cluster, operator, case, obj, field):
    proc = cluster.kubectl("create", "-f", "-", input=json.dumps(obj), check=False)
    assert proc.returncode != 0, f"{case}: accepted"
    assert field in proc.stderr, proc.stderr
    gone = cluster.kubectl("get", obj["kind"].lower(), obj["metadata"]["name"],
                           *(["-n", NS] if obj["kind"] != "BaseStation" else []), check=False)
    assert gone.returncode != 0  # nothing was stored


def test_slice_type_and_zone_are_immutable(cluster, operator, namespace):
    bs = base_station("t-immutable", "mec-east", 10, 10)
    ms = medical_slice("immutable", namespace, ["t-immutable"], mbps=1)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(bs))
    cluster.kubectl("apply", "-f", "-", input=json.dumps(ms))
    try:
        changed = _with_spec(ms, sliceType="URLLC")
        proc = cluster.kubectl("apply", "-f", "-", input=json.dumps(changed), check=False)
        assert proc.returncode != 0 and "sliceType is immutable" in proc.stderr, proc.stderr
        proc = cluster.kubectl("apply", "-f", "-", input=json.dumps(_with_spec(bs, zone="mec-west")),
                               check=False)
        assert proc.returncode != 0 and "zone is immutable" in proc.stderr, proc.stderr
    finally:
        cluster.kubectl("delete", "basestation", "t-immutable", check=False)
