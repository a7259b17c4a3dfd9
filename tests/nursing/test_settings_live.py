"""The nursing service reads the early-warning thresholds the operator writes (nursing.json)
and scores with new ones as soon as the file changes, without a restart."""
import json
import os

import httpx

from medmec.waiting import wait_for
from medmec.workloads.nursing.local_service import LocalNursingService

# NEWS2 5 with no single parameter at 3: medium by the RCP's thresholds
FIVE = {"respiration_rate": 22, "spo2": 95, "on_oxygen": False, "systolic_bp": 105,
        "pulse": 95, "consciousness": "A", "temperature_c": 37.0}


def _settings(medium: int, high: int) -> str:
    return json.dumps({"wards": [{"id": "ward-a"}], "earlyWarning": {"mediumScore": medium,
                                                                     "highScore": high}})


def test_new_thresholds_reach_the_running_service(tmp_path, h):
    settings = tmp_path / "nursing.json"
    settings.write_text(_settings(6, 8))
    with LocalNursingService(tmp_path, f"sqlite:///{tmp_path}/nursing.db", h.TOKENS, ["ward-a"],
                             extra_args=["--settings", str(settings)]).start() as svc, \
            httpx.Client(base_url=svc.url, timeout=30) as http:
        pid = h.admit(http, "ward-a", "WB-settings-1")["patient"]["id"]

        def alerts() -> list:
            return [a for a in http.get("/wards/ward-a/alerts", headers=h.auth("nurse-a"))
                    .json()["alerts"] if a["patient_id"] == pid]
        r = http.post("/fhir/Observation", headers=h.auth("nurse-a"),
                      json=h.vitals_resource(pid, **FIVE))
        assert r.status_code == 201, r.text
        assert alerts() == []  # 5 is under this service's medium threshold of 6

        aside = settings.with_name("nursing.json.new")  # swapped atomically, as the kubelet does
        aside.write_text(_settings(4, 6))
        os.replace(aside, settings)

        def alerted() -> list:
            assert http.post("/fhir/Observation", headers=h.auth("nurse-a"),
                             json=h.vitals_resource(pid, **FIVE)).status_code == 201
            return alerts()
        [alert] = wait_for(alerted, 15, "a reading scored with the new thresholds", interval=1)
        assert (alert["score"], alert["risk"]) == (5, "medium")
