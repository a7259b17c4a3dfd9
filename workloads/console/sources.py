"""Reading what the console shows: the Kubernetes API and the workloads' own endpoints.
Anything unreachable becomes a line in `problems` and an empty part, never a failure."""
from __future__ import annotations

import asyncio
import datetime
import json

import httpx
from kubernetes import client

from medmec.operator.meta import GROUP, VERSION
from medmec.workloads.qos.endpoints import Endpoints
from medmec.workloads.qos.triton_metrics import fetch_p99_ms

from . import view


# the dispatcher's REST view of fleet state (workloads/dispatch/server.py)
DISPATCH_FLEET_PATH = "/v1/fleet"


class Sources:
    def __init__(self, api_client: client.ApiClient | None, endpoints: Endpoints = Endpoints(),
                 nursing_tokens: dict[str, str] | None = None):
        self.custom = client.CustomObjectsApi(api_client) if api_client else None
        self.core = client.CoreV1Api(api_client) if api_client else None
        self.endpoints, self.nursing_tokens = endpoints, nursing_tokens or {}
        self.http = httpx.AsyncClient(timeout=3.0)

    async def _kube(self, problems: list[str]) -> dict[str, list]:
        names = ("basestations", "medicalslices", "edgeinferenceservices", "carerobotfleets",
                 "cloudnursingservices")
        try:
            lists = await asyncio.gather(
                *(asyncio.to_thread(self.custom.list_cluster_custom_object, GROUP, VERSION, n)
                  for n in names),
                asyncio.to_thread(self.core.list_node), asyncio.to_thread(self.core.list_pod_for_all_namespaces))
        except Exception as err:  # unreachable, forbidden, CRDs missing: say so on the page
            problems.append(f"Kubernetes API: {_short(err)}")
            return {n: [] for n in (*names, "nodes", "pods")}
        result = {n: lst["items"] for n, lst in zip(names, lists[:5])}
        sanitize = client.ApiClient().sanitize_for_serialization
        result["nodes"] = [sanitize(n) for n in lists[5].items]
        result["pods"] = [sanitize(p) for p in lists[6].items]
        return result

    async def _transports(self, problems: list[str]) -> list[dict]:
        """EmergencyTransports (apart from the other kinds: a cluster without that CRD still
        shows the rest)."""
        try:
            found = await asyncio.to_thread(self.custom.list_cluster_custom_object, GROUP, VERSION,
                                            "emergencytransports")
        except Exception as err:
            problems.append(f"emergency transports: {_short(err)}")
            return []
        return found["items"]

    async def _map(self, crf: dict, problems: list[str]) -> dict | None:
        ref = crf["spec"].get("mapRef") or {}
        try:
            cm = await asyncio.to_thread(self.core.read_namespaced_config_map, ref["name"],
                                         crf["metadata"]["namespace"])
            return json.loads(cm.data[ref.get("key", "map.json")])
        except Exception as err:
            problems.append(f"map of fleet {crf['metadata']['namespace']}/{crf['metadata']['name']}: "
                            f"{_short(err)}")
            return None

    async def _get_json(self, url: str, what: str, problems: list[str],
                        headers: dict | None = None) -> dict | None:
        try:
            response = await self.http.get(url, headers=headers)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as err:
            problems.append(f"{what}: {_short(err)}")
            return None

    async def _p99(self, eis: dict, problems: list[str]) -> tuple[str, float | None]:
        key = f"{eis['metadata']['namespace']}/{eis['metadata']['name']}"
        value = await fetch_p99_ms(self.http, self.endpoints.inference_metrics(eis),
                                   eis["spec"]["model"]["name"])
        if value is None:
            problems.append(f"inference {key}: no p99 (metrics endpoint unreachable or no quantiles)")
        return key, value

    async def _alerts(self, cns: dict, problems: list[str]) -> list[dict]:
        base = self.endpoints.nursing(cns)
        what = f"nursing {cns['metadata']['namespace']}/{cns['metadata']['name']}"
        calls = []
        for ward in (w["id"] for w in cns["spec"].get("wards", [])):
            token = self.nursing_tokens.get(ward) or self.nursing_tokens.get("*")
            if token:
                calls.append(self._get_json(f"{base}/wards/{ward}/alerts?open=true",
                                            f"{what} ward {ward}", problems,
                                            {"Authorization": f"Bearer {token}"}))
            else:
                problems.append(f"{what} ward {ward}: no nursing token for this ward")
        answers = await asyncio.gather(*calls)
        return [a for answer in answers if answer for a in answer.get("alerts", [])]

    async def snapshot(self) -> dict:
        problems: list[str] = []
        kube = await self._kube(problems) if self.custom else {}
        fleets = kube.get("carerobotfleets", [])
        kube_read = self.custom and not any(p.startswith("Kubernetes API") for p in problems)
        transports = await self._transports(problems) if kube_read else []
        maps, dispatch, p99, alerts = await asyncio.gather(
            asyncio.gather(*(self._map(f, problems) for f in fleets)),
            asyncio.gather(*(self._get_json(self.endpoints.dispatch(f) + DISPATCH_FLEET_PATH,
                                            f"dispatch {f['metadata']['namespace']}/"
                                            f"{f['metadata']['name']}", problems) for f in fleets)),
            asyncio.gather(*(self._p99(e, problems) for e in kube.get("edgeinferenceservices", []))),
            asyncio.gather(*(self._alerts(c, problems) for c in kube.get("cloudnursingservices", []))))
        slices = kube.get("medicalslices", [])
        now = datetime.datetime.now(datetime.timezone.utc)
        return {
            "generatedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "baseStations": view.base_stations(kube.get("basestations", []), slices,
                                               kube.get("nodes", []), kube.get("pods", [])),
            "slices": view.medical_slices(slices),
            "inference": view.inference_services(kube.get("edgeinferenceservices", []), dict(p99)),
            "fleets": [view.fleet(f, m, d) for f, m, d in zip(fleets, maps, dispatch)],
            "alerts": view.alert_feed(a for group in alerts for a in group),
            "ambulances": view.incoming_ambulances(transports, now.timestamp()),
            "problems": problems,
        }

    async def close(self) -> None:
        await self.http.aclose()


def _short(err: Exception) -> str:
    status = getattr(err, "status", None)
    reason = getattr(err, "reason", None)
    if status:
        return f"{status} {reason or ''}".strip()
    return (str(err).splitlines() or [type(err).__name__])[0][:200] or type(err).__name__
