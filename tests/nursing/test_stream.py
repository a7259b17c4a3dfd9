"""The gRPC side of a real nursing service: wearable vitals stream, alert stream, and that
a kill -9 in the middle of a stream loses no acknowledged reading (SQLite, PostgreSQL)."""
import queue
import threading
import time
import uuid

import grpc
import httpx
import pytest

from medmec.workloads.nursing.local_service import LocalNursingService
from medmec.workloads.nursing.protos import nursing_pb2, nursing_pb2_grpc


def band() -> str:
    return f"WB-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def stub(service):
    with grpc.insecure_channel(service.target) as channel:
        yield nursing_pb2_grpc.CloudNursingStub(channel)


def stream(stub, h, batches, subject="gw-a"):
    return list(stub.StreamVitals(iter(batches), metadata=h.grpc_auth(subject)))


def next_alert(call, timeout: float):
    """The next alert of a WatchAlerts stream, or None after `timeout` seconds."""
    box: queue.Queue = queue.Queue()

    def read():
        try:
            box.put(next(call, None))
        except grpc.RpcError:  # cancelled at the end of the test
            box.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        return box.get(timeout=timeout)
    except queue.Empty:
        return None


def test_stream_acks_each_batch_and_rejects_bad_readings_with_reasons(stub, http, h):
    pid = h.admit(http, "ward-a", band())["patient"]["id"]
    other_ward = h.admit(http, "ward-b", band())["patient"]["id"]
    first = nursing_pb2.VitalBatch(readings=[
        h.reading(pid, "ok-1", pulse=72, spo2=97),
        h.reading(pid, "bad-spo2", spo2=140),
        h.reading(pid, "bad-pulse", pulse=-3),
        h.reading(str(uuid.uuid4()), "unknown-patient", pulse=80),
        h.reading(other_ward, "other-ward", pulse=80),
        nursing_pb2.VitalReading(patient_id=pid, pulse=70),
        h.reading(pid, "empty"),
    ])
    second = nursing_pb2.VitalBatch(readings=[h.reading(pid, "ok-2", respiration_rate=18)])
    acks = stream(stub, h, [first, second])
    assert [a.handled for a in acks] == [7, 8]
    reasons = {r.reading_id: r.reason for r in acks[0].rejected}
    assert set(reasons) == {"bad-spo2", "bad-pulse", "unknown-patient", "other-ward", "", "empty"}
    assert "spo2" in reasons["bad-spo2"] and "pulse" in reasons["bad-pulse"]
    assert "your ward" in reasons["other-ward"] and "your ward" in reasons["unknown-patient"]
    assert list(acks[1].rejected) == []
    stored = http.get(f"/fhir/Observation?patient={pid}", headers=h.auth("nurse-a")).json()
    assert sorted(e["resource"]["identifier"][0]["value"] for e in stored["entry"]) == ["ok-1", "ok-2"]
    assert http.get(f"/fhir/Observation?patient={other_ward}",
                    headers=h.auth("nurse-b")).json()["total"] == 0


def test_only_devices_stream_and_only_the_ward_watches(stub, h, service):
    for subject, code in (("nurse-a", grpc.StatusCode.PERMISSION_DENIED),):
        with pytest.raises(grpc.RpcError) as err:
            stream(stub, h, [nursing_pb2.VitalBatch()], subject=subject)
        assert err.value.code() == code
    with pytest.raises(grpc.RpcError) as err:
        list(stub.StreamVitals(iter([]), metadata=[("authorization", "Bearer nope-nope-nope-nope")]))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        next(stub.WatchAlerts(nursing_pb2.WatchAlertsRequest(ward="ward-a"),
                              metadata=h.grpc_auth("nurse-b")))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_wearable_readings_complete_the_nurses_set_and_escalations_alert_the_ward(
        stub, http, h, service):
    pid = h.admit(http, "ward-a", band())["patient"]["id"]
    watch_a, chan_a = h.watch_alerts(service.target, "ward-a", "nurse-a")
    watch_b, chan_b = h.watch_alerts(service.target, "ward-b", "nurse-b")
    try:
        # the nurse's round: blood pressure, consciousness, temperature (no score yet)
        nurse_part = {k: h.NORMAL[k] for k in ("systolic_bp", "consciousness", "temperature_c")}
        assert http.post("/fhir/Observation", headers=h.auth("nurse-a"),
                         json=h.vitals_resource(pid, **nurse_part)).status_code == 201
        t = time.time()
        calm = dict(respiration_rate=16, spo2=97, on_oxygen=False, pulse=70)
        worse = dict(respiration_rate=23, spo2=93, on_oxygen=False, pulse=115)  # 2+2+2 = 6
        stream(stub, h, [nursing_pb2.VitalBatch(readings=[
            h.reading(pid, "w-1", t, **calm),
            h.reading(pid, "w-2", t + 1, **worse),
            h.reading(pid, "w-3", t + 2, **worse),  # still medium: no second alert
        ])])
        alert = next_alert(watch_a, timeout=10)
        assert alert is not None and alert.patient_id == pid
        assert (alert.score, alert.risk) == (6, "medium")
        assert dict(alert.parameters) == {"respiration_rate": 2, "spo2": 2, "on_oxygen": 0,
                                          "systolic_bp": 0, "pulse": 2, "consciousness": 0,
                                          "temperature_c": 0}
        assert alert.effective_time_ms == int((t + 1) * 1000)
        worst = dict(worse, spo2=91)  # 2+3+2 = 7: high
        stream(stub, h, [nursing_pb2.VitalBatch(readings=[h.reading(pid, "w-4", t + 3, **worst)])])
        alert = next_alert(watch_a, timeout=10)
        assert (alert.score, alert.risk) == (7, "high")
        assert next_alert(watch_b, timeout=1) is None  # ward B hears nothing of ward A
        stored = http.get(f"/fhir/Observation?patient={pid}", headers=h.auth("nurse-a")).json()
        scores = {e["resource"]["identifier"][0]["value"]: [
            c.get("valueInteger") for c in e["resource"]["component"]
            if c["code"]["coding"][0]["code"] == "score"] for e in stored["entry"]}
        assert scores["w-1"] == [0] and scores["w-2"] == [6] and scores["w-4"] == [7]
    finally:
        watch_a.cancel(), watch_b.cancel(), chan_a.close(), chan_b.close()


# -- crash safety -------------------------------------------------------------------------
def _kill_mid_stream(svc: LocalNursingService, h) -> None:
    with httpx.Client(base_url=svc.url) as http:
        pid = h.admit(http, "ward-a", band())["patient"]["id"]
    stop = threading.Event()

    def batches():
        i = 0
        while not stop.is_set():
            yield nursing_pb2.VitalBatch(readings=[
                h.reading(pid, f"r-{i + k}", pulse=60 + (i + k) % 40, spo2=95 + (i + k) % 5)
                for k in range(50)])
            i += 50

    acked = 0
    with grpc.insecure_channel(svc.target) as channel:
        call = nursing_pb2_grpc.CloudNursingStub(channel).StreamVitals(
            batches(), metadata=h.grpc_auth("gw-a"))
        with pytest.raises(grpc.RpcError) as err:
            for ack in call:
                acked = ack.handled
                if acked >= 3000 and svc.proc is not None:
                    svc.kill()  # SIGKILL while readings keep arriving
        stop.set()
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    svc.start()  # same database, fresh process
    with httpx.Client(base_url=svc.url, timeout=60) as http:
        r = http.get(f"/fhir/Observation?patient={pid}&_count=10000", headers=h.auth("nurse-a"))
    stored = {e["resource"]["identifier"][0]["value"] for e in r.json()["entry"]}
    lost = [f"r-{i}" for i in range(acked) if f"r-{i}" not in stored]
    assert acked >= 3000 and lost == []


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_reading_sqlite(tmp_path, h):
    svc = LocalNursingService(tmp_path, f"sqlite:///{tmp_path}/nursing.db", h.TOKENS, h.WARDS)
    try:
        _kill_mid_stream(svc.start(), h)
    finally:
        svc.stop()


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_reading_postgresql(tmp_path, h, postgres):
    svc = LocalNursingService(tmp_path, postgres.dsn, h.TOKENS, h.WARDS)
    try:
        _kill_mid_stream(svc.start(), h)
    finally:
        svc.stop()
