"""`make demo` end to end: its own local cluster, the chart, the operator, the workloads and
one real request to each; then `medmec cluster down` leaves nothing running."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from medmec.localcluster import cluster as lc

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_runs_the_platform_and_cluster_down_stops_it(tmp_path):
    if os.environ.get("KUBECONFIG"):
        pytest.skip("the demo runs on its own local cluster")
    folder = tmp_path / "cluster"
    env = {**os.environ, "MEDMEC_CLUSTER_DIR": str(folder)}
    try:
        demo = subprocess.run([sys.executable, "-m", "medmec.demo"], env=env, text=True,
                              capture_output=True, timeout=900)
        out = demo.stdout
        assert demo.returncode == 0, demo.stderr[-3000:]
        assert "base station gnb-north (zone mec-north): 3 nodes, 16 GPUs" in out
        assert "medicalslice.medmec.io/robotic-surgery" in out
        assert "edgeinferenceservice.medmec.io/breast-cancer-screening" in out
        assert '"decided_by": "breast-cancer' in out
        assert '"robot": "tug-' in out
        assert '"risk": "high"' in out
        assert "patient_id" not in out
        # the ambulance's session followed it, and the ward got every sample once
        assert '"handovers": ["gnb-south: moved", "gnb-north: moved"]' in out
        assert '"stored_once": true' in out and "emergencytransport.medmec.io/amb-07" in out
        state = lc.running(folder)
        names = {p.name for p in state.addons if p.alive()}
        assert {"minio", "medmec-operator", "inference-edge", "inference-large", "dispatch",
                "nursing", "edge-gnb-east", "edge-gnb-south", "edge-gnb-north", "mobility"} <= names
    finally:
        down = subprocess.run([sys.executable, "-m", "medmec", "cluster", "down"], env=env,
                              text=True, capture_output=True, timeout=120)
    assert down.returncode == 0
    assert not folder.exists()
