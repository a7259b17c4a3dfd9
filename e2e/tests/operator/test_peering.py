"""Several replicas: the one with the highest peering priority reconciles, the others stand
by and take over when it stops (kopf peering on ClusterKopfPeering `medmec`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from medmec.operator import devtools

from .conftest import apply, base_station, condition, get, medical_slice, wait_for

pytestmark = pytest.mark.e2e


def _log(path: str) -> str:
    return Path(path).read_text(errors="replace")


def test_higher_priority_replica_takes_over_and_hands_back(cluster, operator, namespace, tmp_path):
    first = operator.proc.log
    resumed_before = _log(first).count("Resuming operations")
    bs = "t-peering"
    second = devtools.start_operator(cluster.kubeconfig, tmp_path / "second.log",
                                     extra_env={"MEDMEC_OPERATOR_PRIORITY": "100"})
    try:
        wait_for(lambda: "Pausing operations in favour of" in _log(first),
                 what="the first replica to stand by")
        handled_while_paused = _log(first).count("Handler 'reconcile'")
        apply(cluster, base_station(bs, "mec-south", 100, 100),
              medical_slice("standby", namespace, [bs], mbps=10))
        wait_for(lambda: condition(get(cluster, "medicalslice", "standby", namespace), "Admitted")
                 .get("status") == "True", what="the slice admitted by the second replica")
        # the handler writes Admitted, then updates the ledgers; kopf logs its success after
        wait_for(lambda: "Handler 'reconcile' succeeded" in _log(second.log),
                 what="the second replica to log the handler's success")
        assert _log(first).count("Handler 'reconcile'") == handled_while_paused
    finally:
        second.stop()
        cluster.kubectl("delete", "basestation", bs, check=False)
    wait_for(lambda: _log(first).count("Resuming operations") > resumed_before,
             what="the first replica to resume")
