"""A drive across the three sample base stations against real processes (edge sites,
mobility service, the ward's nursing service): every sample stored exactly once while the
session follows the ambulance, and what happens when a move cannot or does not finish."""
from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest

from medmec.waiting import wait_for
from medmec.workloads.mobilecare.ambulance import CHANNELS, cell_change, drive, vitals_at
from medmec.workloads.mobilecare.local_service import LocalEdgeSite
from medmec.workloads.mobilecare.protos import mobilecare_pb2 as pb
from medmec.workloads.mobilecare.protos import mobilecare_pb2_grpc as pb_grpc

from .conftest import ROUTE, TOKENS, WARD, run_monitor, stored, transport

pytestmark = pytest.mark.slow


def _status(url: str, vehicle: str) -> dict:
    return httpx.get(f"{url}/v1/transports/{vehicle}", timeout=10).json()


def _following(url: str, vehicle: str) -> dict:
    return next(c for c in _status(url, vehicle)["conditions"] if c["type"] == "Following")


def _admitted_transport(nursing, mobility) -> tuple[dict, object, dict]:
    """A transport to the ward, its mobility service, and the admitting doctor's header, once
    the ward has the patient's pre-arrival record."""
    dest = {"ward": WARD, "nursingUrl": nursing.url, "nursingGrpc": nursing.target}
    t = transport(destination=dest)
    m = mobility([t], admit_token=TOKENS["dr-ed"]["token"])
    wait_for(lambda: next(c for c in _status(m.url, t["vehicle"])["conditions"]
                          if c["type"] == "PreArrivalSent")["status"] == "True", 30, "pre-arrival")
    return t, m, {"Authorization": f"Bearer {TOKENS['dr-ed']['token']}"}


def _exactly_once(sites, monitor) -> None:
    seqs = stored(sites, monitor.session_id)
    assert monitor.acked == monitor.produced > 0
    assert seqs == list(range(1, monitor.produced + 1)), "a sample was lost or stored twice"


def test_drive_with_handovers_stores_every_sample_once_and_the_ward_gets_the_history(
        sites, nursing, mobility):
    # the pre-arrival admission: an Encounter in progress at the ward, the band the pseudonym
    t, m, doctor = _admitted_transport(nursing, mobility)
    found = httpx.post(f"{nursing.url}/wards/{WARD}/scan", json={"wristband": t["sessionId"]},
                       headers=doctor, timeout=10).json()
    assert found["encounter"]["status"] == "in-progress"
    answers = []

    async def body(monitor, client):
        producer = asyncio.create_task(monitor.produce(9.0))
        # there and back: east -> south -> north -> south -> east, a handover every 1.5 s
        answers.extend(await drive(m.url, t["vehicle"], ROUTE, 1.5, client, laps=2))
        await producer

    monitor = asyncio.run(run_monitor(m.url, t["sessionId"], body, rate_hz=2.0))
    assert [a["outcome"] for a in answers] == ["moved"] * 4, answers
    _exactly_once(sites, monitor)
    # the samples of each stint are at the site that held the session then
    assert all(site.samples(t["sessionId"]) for site in sites.values())
    assert len(monitor.switchovers()) == 4 and monitor.errors == []
    status = _status(m.url, t["vehicle"])
    assert status["edgeSite"] == status["servingBaseStation"] == "gnb-east"
    assert status["moves"] == 4 and status["lastMove"]["contextBytes"] > 0
    assert status["news2"]["risk"] == "high" and status["news2"]["trend"] == "rising"

    # the ward has every sample once, scored there, and the alerts raised on the way
    def observations():
        rsp = httpx.get(f"{nursing.url}/fhir/Observation", params={
            "patient": t["sessionId"], "_count": 10000}, headers=doctor, timeout=30).json()
        return rsp.get("entry", [])
    entries = wait_for(lambda: len(observations()) == monitor.produced and observations(), 60,
                       "every sample at the ward")
    ids = [next(i["value"] for i in e["resource"]["identifier"]) for e in entries]
    assert len(set(ids)) == monitor.produced
    alerts = httpx.get(f"{nursing.url}/wards/{WARD}/alerts", headers=doctor, timeout=10).json()["alerts"]
    mine = [a for a in alerts if a["patient_id"] == t["sessionId"]]
    assert {a["risk"] for a in mine} >= {"high"}

    # arrival: the session closes; the patient stays an admitted patient of the ward
    arrived = httpx.post(f"{m.url}/v1/transports/{t['vehicle']}/arrival", timeout=10).json()
    assert arrived["phase"] == "Arrived"
    assert httpx.get(f"{m.url}/v1/sessions/{t['sessionId']}/site", timeout=5).status_code == 409
    again = httpx.post(f"{nursing.url}/wards/{WARD}/scan", json={"wristband": t["sessionId"]},
                       headers=doctor, timeout=10).json()
    assert again["encounter"]["id"] == found["encounter"]["id"]
    assert again["encounter"]["status"] == "in-progress"


def test_the_eta_reaches_the_wards_record_follows_the_ambulance_and_clears_on_arrival(
        sites, nursing, mobility):
    t, m, doctor = _admitted_transport(nursing, mobility)

    def incoming() -> list[dict]:
        return [p for p in httpx.get(f"{nursing.url}/wards/{WARD}/incoming", headers=doctor,
                                     timeout=10).json()["patients"] if p["patient_id"] == t["sessionId"]]

    async def send(target: str, seq: int, eta_s: int) -> pb.SampleAck:
        async with grpc.aio.insecure_channel(target) as ch:
            call = pb_grpc.EdgeSessionStub(ch).StreamSamples()
            await call.write(pb.SampleBatch(session_id=t["sessionId"], samples=[
                pb.Sample(seq=seq, pulse=90)], position=pb.Position(
                    latitude=51.5, longitude=-0.12, speed_mps=14.0, eta_s=eta_s)))
            ack = await call.read()
            await call.done_writing()
            return ack

    def ward_expects(status_eta: str) -> bool:
        found = incoming()
        return bool(found) and found[0]["expected_arrival"].replace("Z", "+00:00")[:19] == status_eta[:19]

    assert asyncio.run(send(sites["gnb-east"].target, 1, 600)).position_ignored == ""
    first = wait_for(lambda: _status(m.url, t["vehicle"])["expectedArrival"], 30, "the session's ETA")
    wait_for(lambda: ward_expects(first), 30, "the ETA at the ward")
    # impossible ETAs are ignored, said so, and change nothing; the samples are committed
    for seq, eta in ((2, -5), (3, 10**6)):
        ack = asyncio.run(send(sites["gnb-east"].target, seq, eta))
        assert ack.committed_through == seq and "out of range" in ack.position_ignored
    assert _status(m.url, t["vehicle"])["expectedArrival"] == first
    # held up by 20 minutes: the ward is told; the ETA moves with the session to the next site
    assert asyncio.run(send(sites["gnb-east"].target, 4, 1800)).position_ignored == ""
    later = _status(m.url, t["vehicle"])["expectedArrival"]
    assert later > first
    wait_for(lambda: ward_expects(later), 30, "the new ETA at the ward")
    moved = httpx.post(f"{m.url}/v1/notifications/cell-change",
                       json=cell_change(t["vehicle"], "gnb-east", "gnb-south"), timeout=10).json()
    assert moved["outcome"] == "moved"
    status = _status(m.url, t["vehicle"])
    assert status["edgeSite"] == "gnb-south" and status["expectedArrival"] == later
    assert status["destination"]["expectedArrival"][:19] == later[:19]
    encounter = httpx.post(f"{nursing.url}/wards/{WARD}/scan", json={"wristband": t["sessionId"]},
                           headers=doctor, timeout=10).json()["encounter"]
    assert encounter["location"][0]["status"] == "planned"
    # arrival: the ward no longer expects the patient, who stays admitted
    httpx.post(f"{m.url}/v1/transports/{t['vehicle']}/arrival", timeout=10).raise_for_status()
    wait_for(lambda: incoming() == [], 30, "the ETA cleared at the ward")
    encounter = httpx.post(f"{nursing.url}/wards/{WARD}/scan", json={"wristband": t["sessionId"]},
                           headers=doctor, timeout=10).json()["encounter"]
    assert encounter["status"] == "in-progress" and "status" not in encounter["location"][0]
    assert _status(m.url, t["vehicle"])["destination"]["expectedArrival"] is None


def test_handover_to_a_site_that_is_down_keeps_the_session_where_it_is(sites, mobility):
    t = transport()
    m = mobility([t])
    seen = {}

    async def body(monitor, client):
        producer = asyncio.create_task(monitor.produce(3.0))
        await asyncio.sleep(1)
        sites["gnb-south"].stop()
        try:
            rsp = await client.post(f"{m.url}/v1/notifications/cell-change",
                                    json=cell_change(t["vehicle"], "gnb-east", "gnb-south"))
            assert rsp.status_code == 200 and rsp.json()["outcome"] == "stayed"
            await asyncio.sleep(1)
            seen["status"] = (await client.get(f"{m.url}/v1/transports/{t['vehicle']}")).json()
        finally:
            sites["gnb-south"].start()
        # the radio side reports the cell again once the site is back: now it moves
        rsp = await client.post(f"{m.url}/v1/notifications/cell-change",
                                json=cell_change(t["vehicle"], "gnb-east", "gnb-south"))
        assert rsp.json()["outcome"] == "moved", rsp.json()["following"]
        await producer
        await monitor.produce(1.0)  # samples for the new site, however long the restart took

    monitor = asyncio.run(run_monitor(m.url, t["sessionId"], body))
    _exactly_once(sites, monitor)
    status = seen["status"]
    assert status["servingBaseStation"] == "gnb-south" and status["edgeSite"] == "gnb-east"
    following = next(c for c in status["conditions"] if c["type"] == "Following")
    assert following["status"] == "False" and following["reason"] == "TargetUnavailable"
    assert "gnb-south" in following["message"] and "stays at site gnb-east" in following["message"]
    # acknowledged at the source all along while the target was down, then at the target
    sites_in_order = [a.site for a in monitor.acks]
    assert sites_in_order[0] == "gnb-east" and sites_in_order[-1] == "gnb-south"
    assert len(monitor.switchovers()) == 1
    assert _following(m.url, t["vehicle"])["status"] == "True"


def test_handover_to_a_full_site_keeps_the_session_and_says_so(workdir, sites, mobility):
    key = workdir / "context.key"
    full = LocalEdgeSite(workdir, "gnb-west", key, max_sessions=1).start()
    try:
        holder, t = transport(route=["gnb-west"]), transport(route=["gnb-east", "gnb-west"])
        m = mobility([holder, t], extra_sites={"gnb-west": full})
        wait_for(lambda: _following(m.url, holder["vehicle"])["status"] == "True", 30, "opened")
        wait_for(lambda: _following(m.url, t["vehicle"])["status"] == "True", 30, "opened")
        rsp = httpx.post(f"{m.url}/v1/notifications/cell-change",
                         json=cell_change(t["vehicle"], "gnb-east", "gnb-west"), timeout=10).json()
        assert rsp["outcome"] == "stayed" and rsp["edgeSite"] == "gnb-east"
        assert rsp["following"]["reason"] == "TargetOverCapacity"
        assert "holds its 1 sessions" in rsp["following"]["message"]
    finally:
        full.stop()


def test_source_killed_in_the_middle_of_a_move_loses_nothing_and_stores_nothing_twice(
        sites, mobility):
    t = transport(prewarm=False)
    m = mobility([t])
    east, south = sites["gnb-east"], sites["gnb-south"]
    outcome = {}

    async def source_state() -> str:
        async with grpc.aio.insecure_channel(east.target) as ch:
            view = await pb_grpc.EdgeSessionStub(ch).GetSession(
                pb.SessionRef(session_id=t["sessionId"]), timeout=2)
            return view.state

    async def body(monitor, client):
        producer = asyncio.create_task(monitor.produce(8.0))
        await asyncio.sleep(1.5)
        south.freeze()  # the target takes the context only after the source has died
        try:
            handover = asyncio.create_task(client.post(
                f"{m.url}/v1/notifications/cell-change",
                json=cell_change(t["vehicle"], "gnb-east", "gnb-south"), timeout=30))
            while await source_state() != "moving":
                await asyncio.sleep(0.02)
            east.kill()
        finally:
            south.thaw()
        outcome["handover"] = (await handover).json()
        east.start()  # same store: resolves the move it was in with the target
        await asyncio.sleep(1)
        rsp = await client.post(f"{m.url}/v1/notifications/cell-change",
                                json=cell_change(t["vehicle"], "gnb-south", "gnb-north"))
        outcome["next"] = rsp.json()
        await producer

    monitor = asyncio.run(run_monitor(m.url, t["sessionId"], body))
    assert outcome["handover"]["outcome"] in ("moved", "stayed"), outcome
    _exactly_once(sites, monitor)
    holders = []
    for bs, site in sites.items():
        with grpc.insecure_channel(site.target) as ch:
            try:
                view = pb_grpc.EdgeSessionStub(ch).GetSession(pb.SessionRef(session_id=t["sessionId"]),
                                                              timeout=5)
            except grpc.RpcError:
                continue
            holders += [bs] if view.state == "active" else []
    assert len(holders) == 1, holders  # the session is active at exactly one site


def test_bad_input_gets_a_clear_error_and_the_session_goes_on(sites, mobility):
    t = transport()
    m = mobility([t])
    wait_for(lambda: _following(m.url, t["vehicle"])["status"] == "True", 30, "opened")
    post = lambda body: httpx.post(f"{m.url}/v1/notifications/cell-change", json=body, timeout=10)  # noqa: E731
    unknown = post(cell_change("amb-nobody", "gnb-east", "gnb-south"))
    assert unknown.status_code == 404 and unknown.json()["title"] == "Unknown vehicle"
    nowhere = post(cell_change(t["vehicle"], "gnb-east", "gnb-atlantis"))
    assert nowhere.status_code == 422 and "gnb-atlantis" in nowhere.json()["detail"]
    malformed = post({"notificationType": "CellChangeNotification", "hoStatus": "COMPLETED",
                      "associateId": [{"type": "VEHICLE_ID", "value": t["vehicle"]}]})
    assert malformed.status_code == 422 and "trgEcgi" in malformed.json()["detail"]
    assert httpx.get(f"{m.url}/v1/transports/amb-nobody", timeout=5).status_code == 404
    assert httpx.get(f"{m.url}/v1/sessions/sess-unknown/site", timeout=5).status_code == 404

    async def unknown_session():
        async with grpc.aio.insecure_channel(sites["gnb-east"].target) as ch:
            call = pb_grpc.EdgeSessionStub(ch).StreamSamples()
            await call.write(pb.SampleBatch(session_id="sess-unknown", samples=[pb.Sample(seq=1, pulse=80)]))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call.read()
            return err.value
    err = asyncio.run(unknown_session())
    assert err.code() == grpc.StatusCode.NOT_FOUND and "no session" in err.details()

    async def body(monitor, client):
        monitor.add("pulse", 80)
        monitor.add("spo2", 140)          # out of range
        monitor.add("temperature_c", 12.0)  # out of range
        for i, channel in enumerate(CHANNELS * 2):
            monitor.add(channel, vitals_at(channel, 0.1, monitor.rng))
        rsp = await client.post(f"{m.url}/v1/notifications/cell-change",
                                json=cell_change(t["vehicle"], "gnb-east", "gnb-south"))
        assert rsp.json()["outcome"] == "moved"
        monitor.add("pulse", 500)         # out of range, at the new site
        monitor.add("pulse", 90)

    monitor = asyncio.run(run_monitor(m.url, t["sessionId"], body))
    reasons = dict(monitor.rejected)
    assert set(reasons) == {2, 3, monitor.produced - 1}
    assert "spo2" in reasons[2] and "temperature_c" in reasons[3] and "pulse" in reasons[monitor.produced - 1]
    seqs = stored(sites, t["sessionId"])
    assert seqs == [s for s in range(1, monitor.produced + 1) if s not in reasons]
    assert monitor.acked == monitor.produced


def test_drive_command_streams_and_hands_over(sites, mobility):
    import json
    import subprocess
    import sys
    t = transport(route=ROUTE[:2])
    m = mobility([t])
    proc = subprocess.run([sys.executable, "-m", "medmec", "mobilecare", "drive", "--mobility", m.url,
                           "--vehicle", t["vehicle"], "--session", t["sessionId"],
                           "--route", ",".join(ROUTE[:2]), "--dwell", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    *answers, summary = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["outcome"] for a in answers] == ["moved"]
    assert summary["samples"] == summary["acknowledged"] > 0 and len(summary["switchoverMs"]) == 1
    assert stored(sites, t["sessionId"]) == list(range(1, summary["samples"] + 1))
    bad = subprocess.run([sys.executable, "-m", "medmec", "mobilecare", "drive", "--mobility", m.url,
                          "--vehicle", "v", "--session", "s", "--route", "gnb-east"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "two base stations" in bad.stderr
