"""The emergency-rescue step of `make demo`: ambulance AMB-07's edge sites and mobility
service as local processes, a drive across the three base stations while its monitor
streams, and what the destination ward received."""
from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path

import httpx

from medmec.waiting import wait_for

from .ambulance import Monitor, drive, eta_countdown, resolver
from .local_service import LocalEdgeSite, LocalMobility, write_key

ROUTE = ["gnb-east", "gnb-south", "gnb-north"]
DWELL_S = 2.0


def emergency_rescue(work: Path, nursing_url: str, nursing_target: str, ward: str,
                     admit_token: str, device_token: str, attach: Callable) -> dict:
    """Run the drive; returns what it did (no patient identifier: the session id is a
    pseudonym, and it is not printed either)."""
    work.mkdir(parents=True, exist_ok=True)
    key = write_key(work / "context.key")
    token_file = work / "nursing-device-token"
    token_file.write_text(device_token)
    sites = {bs: LocalEdgeSite(work, bs, key, nursing_token_file=token_file).start() for bs in ROUTE}
    for site in sites.values():
        attach(site.proc)
    session = f"sess-{secrets.token_hex(6)}"
    (work / "mobility").mkdir(exist_ok=True)
    mobility = LocalMobility(work / "mobility", {
        "sites": [{"baseStation": bs, "target": s.target} for bs, s in sites.items()],
        "transports": [{"vehicle": "amb-07", "sessionId": session, "route": ROUTE,
                        "destination": {"ward": ward, "nursingUrl": nursing_url,
                                        "nursingGrpc": nursing_target}}]}, admit_token).start()
    attach(mobility.proc)
    duration = DWELL_S * len(ROUTE)

    async def run() -> tuple[Monitor, list[dict]]:
        async with httpx.AsyncClient() as client:
            monitor = Monitor(session, resolver(mobility.url, session, client),
                              eta=eta_countdown(duration + 120))
            done = asyncio.Event()
            runner = asyncio.create_task(monitor.run(done))
            producer = asyncio.create_task(monitor.produce(duration))
            answers = await drive(mobility.url, "amb-07", ROUTE, DWELL_S, client)
            await producer
            done.set()
            await runner
            return monitor, answers
    monitor, answers = asyncio.run(run())
    stored = sorted(seq for s in sites.values() for seq in s.samples(session))
    doctor = {"Authorization": f"Bearer {admit_token}"}

    def at_ward() -> list:
        bundle = httpx.get(f"{nursing_url}/fhir/Observation", params={
            "patient": session, "_count": 10000}, headers=doctor, timeout=30).json()
        return bundle.get("entry", [])
    wait_for(lambda: len(at_ward()) == monitor.produced, 60, "every sample at the ward")
    alerts = httpx.get(f"{nursing_url}/wards/{ward}/alerts", headers=doctor, timeout=10).json()
    status = httpx.get(f"{mobility.url}/v1/transports/amb-07", timeout=10).json()
    return {"handovers": [f"{a['servingBaseStation']}: {a['outcome']}" for a in answers],
            "samples": monitor.produced, "acknowledged": monitor.acked,
            "stored_once": stored == list(range(1, monitor.produced + 1)),
            "switchover_ms": [round(1000 * s) for s in monitor.switchovers()],
            "edge_site": status["edgeSite"], "news2": status["news2"],
            "ward_observations": len(at_ward()),
            "ward_alerts": [a["risk"] for a in alerts["alerts"] if a["patient_id"] == session]}
