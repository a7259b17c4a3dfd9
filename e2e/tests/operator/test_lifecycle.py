"""Children follow their owners: no Deployment without an admitted slice, deleting a
service or a slice removes what it made, and a slice's deletion returns its capacity."""
from __future__ import annotations

import pytest

from .conftest import (apply, base_station, condition, get, inference_service, medical_slice,
                       wait_for)

pytestmark = pytest.mark.e2e
CHILDREN = ("deployment", "service", "horizontalpodautoscaler", "poddisruptionbudget")


def test_service_waits_for_slice_and_children_follow_owners(cluster, operator, namespace):
    bs = "t-lifecycle"
    try:
        apply(cluster, base_station(bs, "mec-north", uplink=500, downlink=500))
        apply(cluster, inference_service("triage", namespace, "lab"))
        waiting = wait_for(lambda: condition(get(cluster, "eis", "triage", namespace), "SliceReady")
                           or None, what="SliceReady condition")
        assert waiting["status"] == "False" and waiting["reason"] == "SliceNotFound"
        assert get(cluster, "deployment", "triage-predictor", namespace) is None

        apply(cluster, medical_slice("lab", namespace, [bs], mbps=100))
        wait_for(lambda: condition(get(cluster, "eis", "triage", namespace), "Ready")
                 .get("status") == "True", what="service Ready once the slice is admitted")
        # no finalizers: deleting works even while the operator is down
        for kind, name, ns in (("eis", "triage", namespace), ("medicalslice", "lab", namespace),
                               ("basestation", bs, None)):
            assert not get(cluster, kind, name, ns)["metadata"].get("finalizers"), kind
        dep = get(cluster, "deployment", "triage-predictor", namespace)
        pod = dep["spec"]["template"]["spec"]
        assert pod["priorityClassName"] == "medmec-standard"
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["mec-north"]
        assert pod["initContainers"][0]["command"][:3] == ["medmec", "models", "pull"]
        assert get(cluster, "basestation", bs)["status"]["allocatedUplinkMbps"] == 100

        # deleting the slice: the service's Deployment goes, its status says why, capacity returns
        cluster.kubectl("delete", "medicalslice", "lab", "-n", namespace)
        wait_for(lambda: get(cluster, "deployment", "triage-predictor", namespace) is None,
                 what="Deployment removed with the slice")
        cond = wait_for(lambda: (c := condition(get(cluster, "eis", "triage", namespace),
                                                "SliceReady")).get("status") == "False" and c,
                        what="SliceReady=False")
        assert cond["reason"] == "SliceNotFound"
        wait_for(lambda: get(cluster, "basestation", bs)["status"].get("allocatedUplinkMbps") == 0,
                 what="capacity returned")

        # back again, then delete the service: garbage collection takes every child
        apply(cluster, medical_slice("lab", namespace, [bs], mbps=100))
        wait_for(lambda: get(cluster, "deployment", "triage-predictor", namespace), what="redeployed")
        cluster.kubectl("delete", "eis", "triage", "-n", namespace)
        for kind in CHILDREN:
            wait_for(lambda: get(cluster, kind, "triage-predictor", namespace) is None,
                     what=f"{kind} garbage-collected")
        cluster.kubectl("delete", "medicalslice", "lab", "-n", namespace)
        for kind, suffix in (("resourcequota", "-budget"), ("networkpolicy", "-isolation"),
                             ("configmap", "-qos")):
            wait_for(lambda: get(cluster, kind, "lab" + suffix, namespace) is None,
                     what=f"slice {kind} garbage-collected")
    finally:
        cluster.kubectl("delete", "basestation", bs, check=False)
