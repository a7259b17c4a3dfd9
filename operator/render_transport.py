"""What an EmergencyTransport becomes (pure): an edge session service per base station of its
route, each a Deployment pinned to that base station's zone with its Service and its session
store's PersistentVolumeClaim, and the mobility service (the handover API) with its
configuration. The containers follow
`medmec serve mobilecare-edge` and `medmec serve mobility`."""
from __future__ import annotations

import json

from medmec.operator import meta
from medmec.operator import render_nursing
from medmec.operator import render_pods as pods
from medmec.operator.settings import OperatorSettings

EDGE_PORT, MOBILITY_PORT = 50061, 8090
SECRETS_DIR, CONFIG_DIR, DATA_DIR = "/etc/medmec/mobilecare", "/etc/medmec/mobility", "/var/lib/medmec/mobilecare"
COMPONENT = "mobilecare"
MAX_SITES = 8  # the CRD's route maxItems
DEFAULT_STORE_SIZE = "1Gi"  # the CRD's spec.sessionStorage.size default


def route(et: dict) -> list[str]:
    return list(et["spec"]["relocation"]["route"])


def site_name(et: dict, bs: str) -> str:
    return f"{et['metadata']['name']}-edge-{bs}"


def store_claim_name(et: dict, bs: str) -> str:
    return f"{site_name(et, bs)}-store"


def mobility_name(et: dict) -> str:
    return f"{et['metadata']['name']}-mobility"


def nth_site_name(i: int):
    """The i-th site's child name (for deleting children; the first again past the route's end)."""
    return lambda et: site_name(et, route(et)[i] if i < len(route(et)) else route(et)[0])


def site_zones(ms: dict) -> dict[str, str]:
    """Base station -> zone for the slice's base stations, as the operator sees them."""
    return dict((ms.get("status") or {}).get("baseStationZones") or {})


def route_problem(et: dict, ms: dict | None) -> tuple[str, str] | None:
    """(reason, message) when the route leaves the slice's base stations."""
    if ms is None:
        return None  # reported as SliceNotFound
    off = [bs for bs in route(et) if bs not in (ms["spec"].get("baseStations") or [])]
    if off:
        return ("RouteOffSlice", f"route base station(s) {', '.join(off)} are not base stations "
                                 f"of MedicalSlice {et['spec']['sliceRef']['name']}")
    return None


def _labels(et: dict, role: str, bs: str | None = None) -> dict[str, str]:
    extra = {f"{meta.GROUP}/emergency-transport": et["metadata"]["name"],
             f"{meta.GROUP}/mobilecare-role": role}
    if bs:
        extra[meta.BASE_STATION_LABEL] = bs
    return meta.labels(COMPONENT, et["metadata"]["name"], et["spec"]["sliceRef"]["name"], extra)


def _selector(et: dict, role: str, bs: str | None = None) -> dict[str, str]:
    sel = {"app.kubernetes.io/instance": et["metadata"]["name"],
           "app.kubernetes.io/component": COMPONENT, f"{meta.GROUP}/mobilecare-role": role}
    if bs:
        sel[meta.BASE_STATION_LABEL] = bs
    return sel


def _secret_volume(et: dict, items: list[str]) -> dict:
    return {"name": "secrets", "secret": {"secretName": et["spec"]["secretRef"]["name"],
                                          "items": [{"key": k, "path": k} for k in items]}}


def _tcp_probe(period: int) -> dict:
    # the site listens only once its store is loaded and in-doubt moves are being resolved
    return {"tcpSocket": {"port": "grpc"}, "periodSeconds": period, "failureThreshold": 3}


def edge_deployment(et: dict, ms: dict, bs: str, zone: str, settings: OperatorSettings) -> dict:
    spec = et["spec"]
    args = ["medmec", "serve", "mobilecare-edge", "--port", str(EDGE_PORT), "--site", bs,
            "--database", f"{DATA_DIR}/sessions.db",
            "--context-key-file", f"{SECRETS_DIR}/context.key",
            "--max-sessions", str(spec["relocation"].get("maxSessionsPerSite", 200))]
    secrets = ["context.key"]
    if spec.get("destination"):
        args += ["--nursing-token-file", f"{SECRETS_DIR}/nursing-device-token"]
        secrets.append("nursing-device-token")
    container = {
        "name": "edge", "image": settings.image, "imagePullPolicy": settings.image_pull_policy,
        "command": args, "ports": [{"name": "grpc", "containerPort": EDGE_PORT}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "readinessProbe": _tcp_probe(5), "livenessProbe": _tcp_probe(10),
        "volumeMounts": [{"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
                         {"name": "data", "mountPath": DATA_DIR}],
    }
    pod_spec = {
        "priorityClassName": meta.priority_class_name(ms["spec"].get("priority", "standard")),
        # the edge site of this base station, and no other
        "nodeSelector": {meta.ZONE_LABEL: zone},
        "containers": [container],
        # the session store outlives the pod: committed samples not yet forwarded to the
        # ward, and a session caught in a move, are still there when a new pod starts
        "volumes": [_secret_volume(et, secrets),
                    {"name": "data", "persistentVolumeClaim": {"claimName": store_claim_name(et, bs)}}],
    }
    return pods.deployment(et, site_name(et, bs), _labels(et, "edge", bs),
                           _selector(et, "edge", bs), pod_spec)


def store_claim(et: dict, bs: str) -> dict:
    """The site's session store volume (ReadWriteOnce: the Deployment is recreated, never
    rolled, so one pod writes it at a time)."""
    storage = et["spec"].get("sessionStorage") or {}
    return pods.volume_claim(et, store_claim_name(et, bs), _labels(et, "edge", bs),
                             str(storage.get("size", DEFAULT_STORE_SIZE)),
                             storage.get("storageClassName"))


def mobility_config(et: dict) -> dict:
    spec, ns = et["spec"], et["metadata"]["namespace"]
    transport: dict = {"vehicle": spec["vehicle"]["id"], "sessionId": spec["session"]["pseudonym"],
                       "route": route(et), "spo2Scale": spec["session"].get("spo2Scale", 1),
                       "prewarm": spec["relocation"].get("prewarm", "NextOnRoute") == "NextOnRoute"}
    if spec["relocation"].get("policy", "FollowServingCell") == "Stay":
        transport["route"] = route(et)[:1]
    if dest := spec.get("destination"):
        ref = dest["nursingServiceRef"]
        host = f"{render_nursing.child_name({'metadata': {'name': ref['name']}})}." \
               f"{ref.get('namespace') or ns}.svc"
        transport["destination"] = {"ward": dest["ward"],
                                    "nursingUrl": f"http://{host}:{render_nursing.HTTP_PORT}",
                                    "nursingGrpc": f"{host}:{render_nursing.GRPC_PORT}"}
    sites = [{"baseStation": bs, "target": f"{site_name(et, bs)}.{ns}.svc:{EDGE_PORT}"}
             for bs in transport["route"]]
    return {"sites": sites, "transports": [transport]}


def mobility_configmap(et: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta.child_metadata(et, mobility_name(et), _labels(et, "mobility")),
            "data": {"mobility.json": json.dumps(mobility_config(et), indent=2, sort_keys=True) + "\n"}}


def mobility_deployment(et: dict, ms: dict, zones: list[str], settings: OperatorSettings) -> dict:
    args = ["medmec", "serve", "mobility", "--port", str(MOBILITY_PORT),
            "--config", f"{CONFIG_DIR}/mobility.json"]
    volumes = [{"name": "config", "configMap": {"name": mobility_name(et)}}]
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    if et["spec"].get("destination"):
        args += ["--admit-token-file", f"{SECRETS_DIR}/nursing-admit-token"]
        volumes.append(_secret_volume(et, ["nursing-admit-token"]))
        mounts.append({"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True})
    container = {
        "name": "mobility", "image": settings.image, "imagePullPolicy": settings.image_pull_policy,
        "command": args, "ports": [{"name": "http", "containerPort": MOBILITY_PORT}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "readinessProbe": pods.http_probe("/healthz", "http"),
        "livenessProbe": pods.http_probe("/healthz", "http", period=10),
        "volumeMounts": mounts,
    }
    pod_spec = {
        "priorityClassName": meta.priority_class_name(ms["spec"].get("priority", "standard")),
        "affinity": pods.zone_affinity(zones), "containers": [container], "volumes": volumes,
    }
    return pods.deployment(et, mobility_name(et), _labels(et, "mobility"),
                           _selector(et, "mobility"), pod_spec)


def children(et: dict, ms: dict, zones: list[str], settings: OperatorSettings) -> list[dict]:
    """Per route base station of the slice whose zone is known: its session store's claim,
    edge Deployment and Service; then the mobility service's ConfigMap, Deployment and
    Service."""
    objects = []
    allocated = site_zones(ms)
    for bs in route(et):
        if bs not in allocated:
            continue
        objects += [store_claim(et, bs), edge_deployment(et, ms, bs, allocated[bs], settings),
                    pods.service(et, site_name(et, bs), _labels(et, "edge", bs),
                                 _selector(et, "edge", bs), [("grpc", EDGE_PORT, "grpc")])]
    objects += [mobility_configmap(et), mobility_deployment(et, ms, zones, settings),
                pods.service(et, mobility_name(et), _labels(et, "mobility"),
                             _selector(et, "mobility"), [("http", MOBILITY_PORT, None)])]
    return objects


def want_ready(et: dict) -> int:
    return len(route(et)) + 1


def endpoint(et: dict) -> str:
    return f"http://{mobility_name(et)}.{et['metadata']['namespace']}.svc:{MOBILITY_PORT}"


def sites(et: dict) -> list[dict]:
    return [{"baseStation": bs, "service": site_name(et, bs)} for bs in route(et)]
