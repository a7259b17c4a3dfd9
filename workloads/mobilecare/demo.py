"""The emergency-rescue step of `make demo`: ambulance AMB-07, whose edge sites and mobility
service the operator deployed from its EmergencyTransport, drives across the three base
stations while its monitor streams; then what the destination ward received."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from medmec.waiting import wait_for

from .ambulance import Monitor, drive, eta_countdown, resolver

DWELL_S = 2.0


def emergency_rescue(mobility_url: str, vehicle: str, route: list[str], dial: Callable[[str], str],
                     nursing_url: str, ward: str, doctor_token: str) -> dict:
    """Drive once per session: a session already driven is reported as it stands. The result
    carries no patient identifier (the session id is a pseudonym, and it is not printed)."""
    status = httpx.get(f"{mobility_url}/v1/transports/{vehicle}", timeout=10).json()
    session = status["sessionId"]
    doctor = {"Authorization": f"Bearer {doctor_token}"}

    def at_ward() -> list:
        bundle = httpx.get(f"{nursing_url}/fhir/Observation", params={
            "patient": session, "_count": 10000}, headers=doctor, timeout=30).json()
        return bundle.get("entry", [])
    if status["committedThrough"]:
        return {"already_driven": True, "edge_site": status["edgeSite"], "news2": status["news2"],
                "ward_observations": len(at_ward())}
    duration = DWELL_S * len(route)

    async def run() -> tuple[Monitor, list[dict]]:
        async with httpx.AsyncClient() as client:
            monitor = Monitor(session, resolver(mobility_url, session, client),
                              eta=eta_countdown(duration + 120), dial=dial)
            done = asyncio.Event()
            runner = asyncio.create_task(monitor.run(done))
            producer = asyncio.create_task(monitor.produce(duration))
            answers = await drive(mobility_url, vehicle, route, DWELL_S, client)
            await producer
            done.set()
            await runner
            return monitor, answers
    monitor, answers = asyncio.run(run())
    wait_for(lambda: len(at_ward()) >= monitor.acked, 60, "every acknowledged sample at the ward")
    alerts = httpx.get(f"{nursing_url}/wards/{ward}/alerts", headers=doctor, timeout=10).json()
    status = httpx.get(f"{mobility_url}/v1/transports/{vehicle}", timeout=10).json()
    stored = len(at_ward())
    return {"handovers": [f"{a['servingBaseStation']}: {a['outcome']}" for a in answers],
            "samples": monitor.produced, "acknowledged": monitor.acked,
            "stored_once": monitor.acked == monitor.produced == stored,
            "switchover_ms": [round(1000 * s) for s in monitor.switchovers()],
            "edge_site": status["edgeSite"], "news2": status["news2"],
            "ward_observations": stored,
            "ward_alerts": [a["risk"] for a in alerts["alerts"] if a["patient_id"] == session]}
