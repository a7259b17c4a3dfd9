"""`medmec chart check`: what `helm test` runs in the cluster: the platform's endpoints
answer, and every medmec resource (base stations included) is Ready."""
from __future__ import annotations

import socket
import urllib.error
import urllib.request

from medmec.waiting import wait_for

GROUP, VERSION = "medmec.io", "v1alpha1"
PLURALS = ("basestations", "medicalslices", "edgeinferenceservices", "carerobotfleets",
           "cloudnursingservices")


def not_ready(items: list[dict]) -> list[str]:
    """The resources whose Ready condition is not True, each with its reason and message."""
    waiting = []
    for item in items:
        ready = next((c for c in (item.get("status") or {}).get("conditions") or []
                      if c.get("type") == "Ready"), {})
        if ready.get("status") != "True":
            md = item["metadata"]
            where = f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]
            why = f"{ready.get('reason')}: {ready.get('message')}" if ready else "no Ready condition yet"
            waiting.append(f"{item['kind']} {where}: {why}")
    return waiting


def http_problem(url: str, timeout: float = 3.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return None if response.status == 200 else f"{url}: HTTP {response.status}"
    except (urllib.error.URLError, OSError) as err:
        return f"{url}: {err}"


def tcp_problem(address: str, timeout: float = 3.0) -> str | None:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
        return None
    except OSError as err:
        return f"{address}: {err}"


def _resources() -> list[dict]:
    from kubernetes import client, config
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    custom = client.CustomObjectsApi()
    return [item for plural in PLURALS
            for item in custom.list_cluster_custom_object(GROUP, VERSION, plural)["items"]]


def problems(http: list[str], tcp: list[str], resources: bool) -> list[str]:
    found = [p for url in http if (p := http_problem(url))]
    found += [p for address in tcp if (p := tcp_problem(address))]
    if resources:
        try:
            found += not_ready(_resources())
        except Exception as err:  # forbidden, unreachable, CRDs missing: say which
            found.append(f"Kubernetes API: {err}")
    return found


def check(http: list[str], tcp: list[str], resources: bool, timeout: float) -> list[str]:
    """Wait until nothing is wrong; what is still wrong after `timeout` seconds."""
    last: list[str] = []

    def ok() -> bool:
        last[:] = problems(http, tcp, resources)
        return not last
    try:
        wait_for(ok, timeout, "the platform", interval=2)
    except TimeoutError:
        return last
    return []
