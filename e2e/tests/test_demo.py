"""`make demo` end to end: its own local cluster with real nodes, the two Helm charts, the
hospital's workloads as pods on the real node of each base station, real requests through
the Services; then `medmec cluster down` leaves nothing running."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from medmec.localcluster import cluster as lc

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _section(out: str, title: str) -> str:
    return out.split(f"== {title}", 1)[1].split("\n== ", 1)[0]


def test_demo_runs_the_hospital_on_real_pods_and_cluster_down_stops_it(tmp_path):
    if os.environ.get("KUBECONFIG"):
        pytest.skip("the demo runs on its own local cluster")
    folder = tmp_path / "cluster"
    env = {**os.environ, "MEDMEC_CLUSTER_DIR": str(folder)}
    try:
        demo = subprocess.run([sys.executable, "-m", "medmec.demo"], env=env, text=True,
                              capture_output=True, timeout=1200)
        out = demo.stdout
        assert demo.returncode == 0, demo.stderr[-3000:]
        assert "mec-north-edge-1     real      Ready" in out
        # every pod of the hospital on a real node, none left waiting
        pods = _section(out, "kubectl get pods -A -o wide").strip().splitlines()[1:]
        hospital = [line.split() for line in pods
                    if line.split()[0] in {"medmec-system", "imaging", "logistics", "wards", "emergency"}]
        assert len(hospital) >= 15
        assert all(any(cell.endswith("-edge-1") for cell in row) for row in hospital), pods
        assert all(row[3] in {"Running", "Terminating"} for row in hospital), pods
        # the requests, through the Services
        assert '"decided_by": "breast-cancer-large:1"' in out  # the one escalated case
        assert out.count('"decided_by": "breast-cancer:1"') == 5
        assert '"robot": "amr-0' in out
        assert '"risk": "high"' in out
        assert "patient_id" not in out
        assert '"handovers": ["gnb-south: moved", "gnb-north: moved"]' in out
        assert '"stored_once": true' in out
        # the live columns filled from the running workloads
        columns = _section(out, "kubectl get medmec -A")
        fleet = re.search(r"delivery-robots\s+robot-logistics\s+3\s+(\d+)\s+(\d+)\s+(\d+)\s+Ready\s+True",
                          columns)
        assert fleet and int(fleet[1]) == 2, columns
        assert re.search(r"amb-07\s+amb-07\s+gnb-north\s+gnb-north\s+\d+\s+rising", columns), columns
        # no workload runs as a local process
        assert lc.running(folder).addons == []
    finally:
        down = subprocess.run([sys.executable, "-m", "medmec", "cluster", "down"], env=env,
                              text=True, capture_output=True, timeout=180)
    assert down.returncode == 0, down.stderr
    assert not folder.exists()
