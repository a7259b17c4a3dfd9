"""An EmergencyTransport on the real control plane: an edge session service per route base
station placed in that base station's zone, its status following the session (serving base
station, edge site, NEWS2, why a session stays), and the API server refusing bad specs.

The cluster's pods run no containers here, so the edge sites and the mobility service run as
local processes, and for this test the session's operator is replaced by one that reads the
mobility service through MEDMEC_OPERATOR_TRANSPORT_URL_TEMPLATE instead of the Service."""
from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from playwright.sync_api import expect

from medmec.operator import devtools
from medmec.workloads.console import testing
from medmec.workloads.console.local_service import LocalConsole
from medmec.workloads.mobilecare.ambulance import Monitor, cell_change, resolver
from medmec.workloads.mobilecare.local_service import LocalEdgeSite, LocalMobility, write_key

from .conftest import apply, base_station, condition, get, medical_slice, wait_for

pytestmark = pytest.mark.e2e
ZONES = {"t-et-east": "mec-east", "t-et-south": "mec-south", "t-et-north": "mec-north"}
ROUTE = list(ZONES)
CONSOLE_TOKEN = "console-e2e-token-0000001"


def transport(namespace: str, name: str = "amb-e2e", route=ROUTE, pseudonym="sess-e2e-0001") -> dict:
    return {"apiVersion": "medmec.io/v1alpha1", "kind": "EmergencyTransport",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"vehicle": {"id": name, "callSign": "Medic E2E"},
                     "sliceRef": {"name": "ambulance"}, "session": {"pseudonym": pseudonym},
                     "relocation": {"route": route}, "secretRef": {"name": "ambulance-keys"}}}


def columns(cluster, namespace: str, name: str) -> dict:
    """`kubectl get et NAME -o wide` as printed: column name -> cell (names may hold one space)."""
    header, row = cluster.kubectl("get", "et", name, "-n", namespace, "-o", "wide").stdout.splitlines()[:2]
    found = list(re.finditer(r"\S+(?: \S+)*", header))
    starts = [m.start() for m in found] + [None]
    return {m.group(): row[a:b].strip() for m, a, b in zip(found, starts, starts[1:])}


def test_transport_renders_a_site_per_base_station_and_shows_its_session(cluster, operator,
                                                                         namespace, tmp_path):
    key = write_key(tmp_path / "context.key")
    sites = {bs: LocalEdgeSite(tmp_path, bs, key).start() for bs in ROUTE}
    (tmp_path / "mobility").mkdir()
    mobility = LocalMobility(tmp_path / "mobility", {
        "sites": [{"baseStation": bs, "target": s.target} for bs, s in sites.items()],
        "transports": [{"vehicle": "amb-e2e", "sessionId": "sess-e2e-0001", "route": ROUTE}]}).start()
    operator.stop()
    replaced = None
    try:
        replaced = devtools.start_operator(cluster.kubeconfig, tmp_path / "operator.log", extra_env={
            "MEDMEC_OPERATOR_PEERING": "", "MEDMEC_OPERATOR_RECHECK_SECONDS": "1",
            "MEDMEC_OPERATOR_TRANSPORT_URL_TEMPLATE": f"{mobility.url}/v1/transports/{{vehicle}}"})
        apply(cluster, *(base_station(bs, zone, 200, 200) for bs, zone in ZONES.items()),
              medical_slice("ambulance", namespace, ROUTE, mbps=20, gpus=0), transport(namespace))
        try:
            wait_for(lambda: condition(get(cluster, "et", "amb-e2e", namespace), "Ready")
                     .get("status") == "True", 120, "the transport Ready")
        except TimeoutError:
            raise AssertionError(json.dumps(get(cluster, "et", "amb-e2e", namespace).get("status"),
                                            indent=1)) from None

        # one edge site per base station, on a node of that base station's zone
        nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        node_zone = {n["metadata"]["name"]: n["metadata"]["labels"].get("topology.kubernetes.io/zone")
                     for n in nodes}
        pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l",
                                          "medmec.io/mobilecare-role=edge", "-o", "json").stdout)["items"]
        placed = {p["metadata"]["labels"]["medmec.io/base-station"]: node_zone[p["spec"]["nodeName"]]
                  for p in pods if p["spec"].get("nodeName")}
        assert placed == ZONES
        for bs in ROUTE:
            assert get(cluster, "service", f"amb-e2e-edge-{bs}", namespace)
        assert get(cluster, "configmap", "amb-e2e-mobility", namespace)

        # the session's figures reach the resource, and follow a handover
        async def stream_and_hand_over():
            async with httpx.AsyncClient() as client:
                monitor = Monitor("sess-e2e-0001", resolver(mobility.url, "sess-e2e-0001", client),
                                  rate_hz=3.0, eta=lambda: 420)
                done = asyncio.Event()
                runner = asyncio.create_task(monitor.run(done))
                await monitor.produce(3.0)
                rsp = await client.post(f"{mobility.url}/v1/notifications/cell-change",
                                        json=cell_change("amb-e2e", ROUTE[0], ROUTE[1]))
                assert rsp.json()["outcome"] == "moved"
                await monitor.produce(1.0)
                done.set()
                await runner
        asyncio.run(stream_and_hand_over())
        wait_for(lambda: (get(cluster, "et", "amb-e2e", namespace)["status"].get("edgeSite")
                          == "t-et-south"), 60, "the edge site on the resource")
        status = get(cluster, "et", "amb-e2e", namespace)["status"]
        assert status["servingBaseStation"] == "t-et-south" and status["etaSeconds"] == 420
        assert status["news2"]["risk"] in ("low", "low-medium", "medium", "high")
        shown = columns(cluster, namespace, "amb-e2e")
        assert (shown["VEHICLE"], shown["SERVING BS"], shown["EDGE SITE"], shown["ETA"]) == \
            ("amb-e2e", "t-et-south", "t-et-south", "420")

        # the console lists the incoming ambulance with where its session is
        with LocalConsole(tmp_path, CONSOLE_TOKEN, cluster.env).start() as console, \
                testing.browser() as context:
            page = context.new_page()
            page.goto(console.url)
            page.fill("#token", CONSOLE_TOKEN)
            page.click("#login-form button")
            row = page.locator(f'#ambulances tr[data-key="{namespace}/amb-e2e"]')
            expect(row).to_contain_text("t-et-south", timeout=30_000)
            expect(row).to_contain_text(re.compile(r"\b[67] min \d+ s"))  # counting down from 7 min
            expect(row).to_contain_text("following")
            assert "sess-e2e-0001" not in page.content()

        # a handover to a site that is down: the session stays, and the resource says why
        sites["t-et-north"].stop()
        httpx.post(f"{mobility.url}/v1/notifications/cell-change",
                   json=cell_change("amb-e2e", ROUTE[1], ROUTE[2]), timeout=30)
        wait_for(lambda: condition(get(cluster, "et", "amb-e2e", namespace), "Following")
                 .get("reason") == "TargetUnavailable", 60, "Following=False TargetUnavailable")
        status = get(cluster, "et", "amb-e2e", namespace)["status"]
        assert (status["servingBaseStation"], status["edgeSite"]) == ("t-et-north", "t-et-south")
        shown = columns(cluster, namespace, "amb-e2e")
        assert (shown["FOLLOWING"], shown["WHY"]) == ("False", "TargetUnavailable")

        # a route off the slice: not deployed, with the reason and an Event
        apply(cluster, base_station("t-et-far", "cloud", 200, 200),
              transport(namespace, "amb-off", ROUTE[:1] + ["t-et-far"], "sess-e2e-0002"))
        wait_for(lambda: condition(get(cluster, "et", "amb-off", namespace), "Ready")
                 .get("reason") == "RouteOffSlice", 60, "Ready=False RouteOffSlice")
        events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
        assert "RouteOffSlice" in events
        assert not get(cluster, "deployment", "amb-off-mobility", namespace)
    finally:
        if replaced:
            replaced.stop()
        operator.start()
        mobility.stop()
        for s in sites.values():
            s.stop()
        for bs in [*ROUTE, "t-et-far"]:
            cluster.kubectl("delete", "basestation", bs, "--ignore-not-found", check=False)


def test_api_server_refuses_a_repeated_base_station_and_a_changed_pseudonym(cluster, operator,
                                                                          namespace):
    with pytest.raises(RuntimeError, match="names each base station once"):
        cluster_apply(cluster, transport(namespace, route=["a", "b", "a"]))
    cluster_apply(cluster, transport(namespace))
    with pytest.raises(RuntimeError, match="pseudonym is immutable"):
        cluster_apply(cluster, transport(namespace, pseudonym="sess-other-0001"))
    with pytest.raises(RuntimeError, match="spec.session.pseudonym"):
        cluster_apply(cluster, transport(namespace, name="amb-short", pseudonym="short"))


def cluster_apply(cluster, obj: dict) -> None:
    proc = cluster.kubectl("apply", "-f", "-", input=json.dumps(obj), check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
