"""What a CareRobotFleet becomes: the dispatcher Deployment, its Service, its state volume
and the fleet ConfigMap (pure). The container follows `medmec serve dispatch`."""
from __future__ import annotations

import json

from medmec.operator import meta
from medmec.operator import render_pods as pods
from medmec.operator.settings import OperatorSettings

GRPC_PORT, HTTP_PORT = 50051, 8080
MAP_DIR, FLEET_DIR, STATE_DIR = "/etc/medmec/map", "/etc/medmec/fleet", "/var/lib/medmec/dispatch"


def child_name(crf: dict) -> str:
    return f"{crf['metadata']['name']}-dispatch"


def _labels(crf: dict) -> dict[str, str]:
    return meta.labels("dispatch", crf["metadata"]["name"], crf["spec"]["sliceRef"]["name"],
                       {f"{meta.GROUP}/robot-fleet": crf["metadata"]["name"]})


def selector(crf: dict) -> dict[str, str]:
    return {"app.kubernetes.io/instance": crf["metadata"]["name"],
            "app.kubernetes.io/component": "dispatch"}


def fleet_configmap(crf: dict) -> dict:
    """The declared robots and dispatch policy, for the dispatcher and fleet tooling."""
    spec = crf["spec"]
    fleet = {"robots": spec["robots"], "dispatchPolicy": spec.get("dispatchPolicy", {})}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta.child_metadata(crf, f"{child_name(crf)}-fleet", _labels(crf)),
            "data": {"fleet.json": json.dumps(fleet, indent=2, sort_keys=True) + "\n"}}


def deployment(crf: dict, ms: dict, zones: list[str], settings: OperatorSettings) -> dict:
    spec = crf["spec"]
    name = child_name(crf)
    map_ref = spec["mapRef"]
    pod_spec = {
        "priorityClassName": meta.priority_class_name(ms["spec"].get("priority", "standard")),
        "affinity": pods.zone_affinity(zones),
        "containers": [{
            "name": "dispatch",
            "image": settings.image,
            "imagePullPolicy": settings.image_pull_policy,
            "command": ["medmec", "serve", "dispatch", "--grpc-port", str(GRPC_PORT),
                        "--http-port", str(HTTP_PORT), "--map", f"{MAP_DIR}/map.json",
                        "--state-dir", STATE_DIR,
                        # robots and dispatch policy, re-read when the fleet's spec changes
                        "--fleet-settings", f"{FLEET_DIR}/fleet.json"],
            "ports": [{"name": "grpc", "containerPort": GRPC_PORT},
                      {"name": "http", "containerPort": HTTP_PORT}],
            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                          "limits": {"memory": "1Gi"}},
            "readinessProbe": pods.http_probe("/healthz", "http"),
            "livenessProbe": pods.http_probe("/healthz", "http", period=10),
            "volumeMounts": [{"name": "map", "mountPath": MAP_DIR, "readOnly": True},
                             {"name": "fleet", "mountPath": FLEET_DIR, "readOnly": True},
                             {"name": "state", "mountPath": STATE_DIR}],
        }],
        "volumes": [
            {"name": "map", "configMap": {"name": map_ref["name"], "items": [
                {"key": map_ref.get("key", "map.json"), "path": "map.json"}]}},
            {"name": "fleet", "configMap": {"name": f"{name}-fleet"}},
            {"name": "state", "persistentVolumeClaim": {"claimName": f"{name}-state"}},
        ],
    }
    return pods.deployment(crf, name, _labels(crf), selector(crf), pod_spec)


def children(crf: dict, ms: dict, zones: list[str], settings: OperatorSettings) -> list[dict]:
    storage = crf["spec"].get("stateStorage", {})
    name = child_name(crf)
    return [
        fleet_configmap(crf),
        pods.volume_claim(crf, f"{name}-state", _labels(crf), str(storage.get("size", "1Gi")),
                          storage.get("storageClassName")),
        deployment(crf, ms, zones, settings),
        pods.service(crf, name, _labels(crf), selector(crf),
                     [("grpc", GRPC_PORT, "grpc"), ("http", HTTP_PORT, None)]),
    ]


def endpoint(crf: dict) -> str:
    return f"{child_name(crf)}.{crf['metadata']['namespace']}.svc:{GRPC_PORT}"


def map_problem(spec: dict, map_text: str | None) -> tuple[str, str] | None:
    """Why the fleet's map cannot be used, as (reason, message), or None.

    `map_text` is the mapRef ConfigMap's value, None when the ConfigMap or key is missing."""
    ref = spec["mapRef"]
    key = ref.get("key", "map.json")
    if map_text is None:
        return ("MapNotFound", f"spec.mapRef: ConfigMap {ref['name']} with key {key} does not exist")
    try:
        nodes = {node["id"] for node in json.loads(map_text)["nodes"]}
    except (ValueError, KeyError, TypeError) as err:
        return ("InvalidMap", f"spec.mapRef: {ref['name']}/{key} is not a hospital map "
                              f"(JSON with nodes, edges, lifts): {err}")
    away = [robot["id"] for robot in spec["robots"] if robot["home"] not in nodes]
    if away:
        return ("RobotHomeNotOnMap", f"spec.robots: the home of {', '.join(away)} is not a node "
                                     f"of map {ref['name']}")
    return None
