"""Fixtures: three edge sites (`medmec serve mobilecare-edge`, one per sample base station)
and the destination ward's nursing service as real processes; each test starts its own
mobility service with its own transports (session ids), so tests do not share sessions."""
from __future__ import annotations

import asyncio
import itertools
import uuid

import httpx
import pytest

from medmec.workloads.mobilecare.ambulance import Monitor, resolver
from medmec.workloads.mobilecare.local_service import LocalEdgeSite, LocalMobility, write_key
from medmec.workloads.nursing.local_service import LocalNursingService

ROUTE = ["gnb-east", "gnb-south", "gnb-north"]
WARD = "4a"
TOKENS = {
    "ambulance-monitor": {"token": "tok-ambulance-device-01", "role": "device", "ward": WARD},
    "dr-ed": {"token": "tok-doctor-ed-00000001", "role": "doctor", "ward": WARD},
}
_vehicles = itertools.count(1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("mobilecare")


@pytest.fixture(scope="module")
def nursing(workdir):
    svc = LocalNursingService(workdir, f"sqlite:///{workdir}/nursing.db", TOKENS, [WARD]).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def sites(workdir, nursing):
    key = write_key(workdir / "context.key")
    token = workdir / "device-token"
    token.write_text(TOKENS["ambulance-monitor"]["token"])
    started = {bs: LocalEdgeSite(workdir, bs, key, nursing_token_file=token).start() for bs in ROUTE}
    yield started
    for site in started.values():
        site.stop()


def transport(route=ROUTE, destination=None, **extra) -> dict:
    n = next(_vehicles)
    t = {"vehicle": f"amb-{n}", "sessionId": f"sess-{uuid.uuid4().hex[:12]}", "route": route, **extra}
    if destination:
        t["destination"] = destination
    return t


@pytest.fixture
def mobility(workdir, sites):
    """Start a mobility service over the module's sites (plus `extra_sites`) for transports."""
    started = []

    def start(transports: list[dict], extra_sites: dict | None = None, admit_token=None):
        all_sites = {**sites, **(extra_sites or {})}
        config = {"sites": [{"baseStation": bs, "target": s.target} for bs, s in all_sites.items()],
                  "transports": transports}
        folder = workdir / f"mobility-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        started.append(LocalMobility(folder, config, admit_token).start())
        return started[-1]
    yield start
    for m in started:
        m.stop()


def stored(sites: dict, session_id: str) -> list[int]:
    """Every seq the sites' stores hold for the session, with repeats."""
    return sorted(seq for site in sites.values() for seq in site.samples(session_id))


async def run_monitor(url: str, session_id: str, body, rate_hz: float = 1.0):
    """Stream a monitor while `body(monitor, client)` runs; then drain and return it."""
    async with httpx.AsyncClient() as client:
        monitor = Monitor(session_id, resolver(url, session_id, client), rate_hz=rate_hz)
        done = asyncio.Event()
        runner = asyncio.create_task(monitor.run(done))
        try:
            await body(monitor, client)
        finally:
            done.set()
        await asyncio.wait_for(runner, 60)
        return monitor
