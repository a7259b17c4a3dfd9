"""Slice admission against base-station capacity: refused over capacity with the numbers
named, then admitted without anyone touching it once another slice frees capacity."""
from __future__ import annotations

import json

import pytest

from .conftest import apply, base_station, condition, get, medical_slice, wait_for

pytestmark = pytest.mark.e2e


def wait_for_ledger(cluster, operator, bs: str, uplink_mbps: int, what: str) -> None:
    """Until the base station's ledger shows `uplink_mbps` allocated; a timeout names the
    ledger and the slices as the API shows them, and the operator's log tail."""
    ledger = lambda: (get(cluster, "basestation", bs) or {}).get("status", {})  # noqa: E731

    def explain() -> str:
        slices = json.loads(cluster.kubectl("get", "medicalslices", "-A", "-o", "json").stdout)
        shown = {f"{s['metadata']['namespace']}/{s['metadata']['name']}":
                 [(c["type"], c["status"], c["reason"]) for c in s.get("status", {}).get("conditions", [])]
                 for s in slices["items"]}
        return f"\nledger: {ledger()}\nslices: {shown}\noperator log ends:\n{operator.proc.log_tail(60)}"
    wait_for(lambda: ledger().get("allocatedUplinkMbps") == uplink_mbps, what=f"ledger shows {what}",
             explain=explain)


def test_over_capacity_slice_waits_then_is_admitted(cluster, operator, namespace):
    other_ns = f"{namespace}-b"
    cluster.kubectl("create", "namespace", other_ns)
    bs = "t-admission"
    try:
        apply(cluster, base_station(bs, "mec-east", uplink=100, downlink=100))
        apply(cluster, medical_slice("first", namespace, [bs], mbps=70))
        wait_for(lambda: condition(get(cluster, "medicalslice", "first", namespace), "Admitted")
                 .get("status") == "True", what="first slice admitted")

        apply(cluster, medical_slice("second", other_ns, [bs], mbps=50))
        refused = wait_for(lambda: (c := condition(get(cluster, "medicalslice", "second", other_ns),
                                                   "Admitted")).get("reason") == "OverCapacity" and c,
                           what="second slice refused")
        assert refused["status"] == "False"
        assert f"base station {bs}" in refused["message"]
        assert "needs 50 Mbps but only 30 of 100 Mbps are free" in refused["message"]
        wait_for(lambda: any(
            e["reason"] == "OverCapacity" and e["involvedObject"]["name"] == "second"
            for e in json.loads(cluster.kubectl("get", "events", "-n", other_ns,
                                                "-o", "json").stdout)["items"]),
            what="an OverCapacity Event")
        assert get(cluster, "resourcequota", "second-budget", other_ns) is None
        # the base station's ledger is written after the slices' conditions
        wait_for_ledger(cluster, operator, bs, 70, "the first slice")

        cluster.kubectl("delete", "medicalslice", "first", "-n", namespace)
        wait_for(lambda: condition(get(cluster, "medicalslice", "second", other_ns), "Admitted")
                 .get("status") == "True", what="second slice admitted after first deleted")
        wait_for(lambda: get(cluster, "resourcequota", "second-budget", other_ns), what="quota")
        wait_for_ledger(cluster, operator, bs, 50, "only the second slice")

        # the base station goes away: so do the reservation and what the slice made
        cluster.kubectl("delete", "basestation", bs)
        wait_for(lambda: condition(get(cluster, "medicalslice", "second", other_ns), "Admitted")
                 .get("reason") == "BaseStationNotFound", what="slice loses its base station")
        wait_for(lambda: get(cluster, "resourcequota", "second-budget", other_ns) is None,
                 what="quota removed")
    finally:
        cluster.kubectl("delete", "namespace", other_ns, "--wait=false", check=False)
        cluster.kubectl("delete", "basestation", bs, check=False)


def test_slice_on_missing_base_station_is_not_admitted(cluster, operator, namespace):
    apply(cluster, medical_slice("orphan", namespace, ["t-no-such-gnb"], mbps=1))
    cond = wait_for(lambda: condition(get(cluster, "medicalslice", "orphan", namespace), "Admitted")
                    or None, what="status")
    assert cond["status"] == "False" and cond["reason"] == "BaseStationNotFound"
    assert "t-no-such-gnb" in cond["message"]
