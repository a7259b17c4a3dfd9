"""The console over the sample hospital, in headless Chromium: the real operator admits the
sample slices, `medmec qos run` measures them over Toxiproxy links, the real nursing service
raises an alert; every panel renders, a link breach shows up, and no patient identifier does.
Screenshots go to test-artifacts/console/."""
from __future__ import annotations

import datetime
import sys
import time

import grpc
import httpx
import pytest

from medmec import processes
from medmec.operator import devtools
from medmec.workloads.console import testing
from medmec.workloads.console.local_service import LocalConsole
from medmec.workloads.dispatch.local_service import LocalDispatcher
from medmec.workloads.dispatch.protos import dispatch_pb2 as dpb, dispatch_pb2_grpc
from medmec.workloads.nursing.local_service import LocalNursingService
from medmec.workloads.qos import emulation

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "console-e2e-token-5d1b7a90"
NURSING = {"dr": {"token": "tok-doctor-4a-00000001", "role": "doctor", "ward": "4a"},
           "dr-5b": {"token": "tok-doctor-5b-00000001", "role": "doctor", "ward": "5b"},
           "nurse": {"token": "tok-nurse-4a-000000001", "role": "nurse", "ward": "4a"}}
WRISTBAND, FAMILY = "WB-E2E-3141", "Testperson"
SLICES = ["imaging/radiology", "logistics/robot-logistics", "surgery/robotic-surgery",
          "wards/bedside-monitoring"]


def _loinc(code, value, unit):
    return {"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                              "code": unit}}


def raise_alert(url: str) -> str:
    """Admit a patient to ward 4a and post deteriorating vitals; returns the patient id."""
    auth = lambda who: {"Authorization": f"Bearer {NURSING[who]['token']}"}  # noqa: E731
    admitted = httpx.post(f"{url}/wards/4a/admissions", headers=auth("dr"), timeout=30, json={
        "patient": {"resourceType": "Patient", "gender": "female", "birthDate": "1950-01-01",
                    "identifier": [{"system": "https://medmec.io/fhir/sid/wristband",
                                    "value": WRISTBAND}],
                    "name": [{"family": FAMILY, "given": ["Pat"]}]},
        "spo2_scale": 1, "assigned_nurse": None})
    assert admitted.status_code == 201, admitted.text
    pid = admitted.json()["patient"]["id"]
    news2 = "https://medmec.io/fhir/CodeSystem/news2"
    obs = httpx.post(f"{url}/fhir/Observation", headers=auth("nurse"), timeout=30, json={
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85353-1"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "component": [_loinc("9279-1", 26, "/min"), _loinc("59408-5", 90, "%"),
                      _loinc("8480-6", 88, "mm[Hg]"), _loinc("8867-4", 135, "/min"),
                      _loinc("8310-5", 39.5, "Cel"),
                      {"code": {"coding": [{"system": news2, "code": "consciousness"}]},
                       "valueCodeableConcept": {"coding": [{"code": "A"}]}},
                      {"code": {"coding": [{"system": news2, "code": "on-oxygen"}]},
                       "valueBoolean": False}]})
    assert obs.status_code == 201, obs.text
    return pid


def start_dispatch(workdir) -> tuple[LocalDispatcher, str]:
    """The real dispatcher on the sample hospital's map (the map the sample fleet uses), with
    robot amr-01 away from home at the lab and one queued delivery."""
    dispatcher = LocalDispatcher(workdir, heartbeat_timeout_s=600).start()
    with grpc.insecure_channel(dispatcher.target) as channel:
        stub = dispatch_pb2_grpc.DispatchStub(channel)
        stub.RegisterRobot(dpb.RegisterRobotRequest(robot_id="amr-01", node="laboratory",
                                                    home="f0-park-00a",
                                                    speed_mps=1.0, payload_kg=30,
                                                    capabilities=["medicine", "specimen"]))
        stub.Heartbeat(dpb.HeartbeatRequest(robot_id="amr-01", node="laboratory", battery_pct=76))
        stub.SubmitTask(dpb.SubmitTaskRequest(task_id="specimen-17", pickup="laboratory",
                                              dropoff="f0-ward-a2", weight_kg=1, kind="specimen",
                                              priority=dpb.PRIORITY_HIGH))
    return dispatcher, dispatcher.url


@pytest.fixture
def hospital(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)  # for devtools' API client
    devtools.install(cluster.kubeconfig)
    devtools.apply_samples(cluster.kubeconfig)
    started = []
    try:
        started.append(devtools.start_operator(cluster.kubeconfig, tmp_path / "operator.log"))
        links = emulation.start(["gnb-north", "gnb-south", "gnb-east"], tmp_path)
        started.append(links)
        started.append(processes.start("qos-run", [
            sys.executable, "-m", "medmec", "qos", "run", *links.link_args(),
            "--interval", "100ms", "--timeout", "500ms", "--window", "4s",
            "--evaluate-every", "1s", "--burst-every", "10m"], tmp_path / "qos-run.log",
            env=cluster.env))
        (tmp_path / "nursing").mkdir()
        nursing = LocalNursingService(tmp_path / "nursing", f"sqlite:///{tmp_path}/nursing.db",
                                      NURSING, ["4a", "5b"])
        started.append(nursing.start())
        patient = raise_alert(nursing.url)
        dispatch, dispatch_url = start_dispatch(tmp_path)
        started.append(dispatch)
        # the nursing service reads alerts for nurses and doctors of a ward: one token per ward
        (tmp_path / "nursing-tokens").write_text(
            f"4a {NURSING['dr']['token']}\n5b {NURSING['dr-5b']['token']}\n")
        console = LocalConsole(tmp_path, TOKEN, cluster.env, [
            "--endpoint", f"nursing/wards/bedside={nursing.url}",
            "--endpoint", f"dispatch/logistics/delivery-robots={dispatch_url}",
            "--nursing-tokens-file", str(tmp_path / "nursing-tokens")]).start()
        started.append(console)
        yield {"url": console.url, "links": links, "patient": patient}
    finally:
        for thing in reversed(started):
            thing.stop()


def test_console_renders_the_sample_hospital_and_shows_a_breach(hospital):
    shots = testing.artifacts_dir("console")
    with testing.browser() as context:
        page = context.new_page()
        page.goto(hospital["url"])
        page.fill("#token", TOKEN)
        page.click("#login-form button")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)

        for key in SLICES:  # every sample slice measured on every link, within budget
            page.wait_for_selector(f'#slices [data-key="{key}"][data-qos="True"]', timeout=90_000)
        for bs in ("gnb-north", "gnb-south", "gnb-east"):
            card = page.locator(f'#base-stations [data-key="{bs}"]')
            assert card.locator("canvas").count() == 1
        north = page.text_content('#base-stations [data-key="gnb-north"] .alloc')
        assert "uplink 0/" not in north  # the admitted slices' reservations are drawn
        surgery = page.locator('#slices [data-key="surgery/robotic-surgery"]')
        assert surgery.locator("canvas").count() == 1
        assert surgery.locator('tr[data-base-station="gnb-north"]').count() == 1
        assert page.locator('#inference tr[data-key="imaging/chest-xray-triage"]').count() == 1
        fleet = page.locator('#fleets [data-key="logistics/delivery-robots"]')
        assert fleet.locator("canvas").count() == 1
        assert fleet.locator("tr[data-robot]").count() == 3
        # live from the dispatcher: amr-01 at the lab with its delivery queued
        assert "live positions" in fleet.text_content()
        amr01 = fleet.locator('tr[data-robot="amr-01"]').text_content()
        assert "laboratory" in amr01 and "76 %" in amr01 and "specimen-17" in amr01
        assert "specimen-17" in fleet.locator("tr:not([data-robot])").first.text_content()
        assert "dispatch" not in page.text_content("#problems")
        page.wait_for_selector('#alerts li[data-risk="high"]', timeout=30_000)
        assert "ward 4a" in page.text_content("#alerts")
        page.screenshot(path=str(shots / "sample-hospital.png"), full_page=True)

        text = page.content()
        for identifier in (hospital["patient"], WRISTBAND, FAMILY):
            assert identifier not in text
        api = httpx.get(hospital["url"] + "/api/overview",
                        headers={"Authorization": f"Bearer {TOKEN}"}).text
        assert hospital["patient"] not in api and WRISTBAND not in api

        hospital["links"].toxiproxy.add_latency("gnb-north", 80)
        injected = time.monotonic()
        page.wait_for_selector('#slices [data-key="surgery/robotic-surgery"][data-qos="False"]',
                               timeout=30_000)
        assert "NetworkLatencyOverBudget" in surgery.text_content()
        assert page.locator('#slices [data-key="surgery/robotic-surgery"] '
                            'tr[data-base-station="gnb-north"][data-meets="False"]').count() == 1
        page.screenshot(path=str(shots / "breach.png"), full_page=True)
        assert time.monotonic() - injected < 30
