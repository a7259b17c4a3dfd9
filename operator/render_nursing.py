"""What a CloudNursingService becomes: the nursing Deployment, its Service, its database
volume (embedded SQLite) and its settings ConfigMap (pure). The container follows
`medmec serve nursing`."""
from __future__ import annotations

import json

from medmec.operator import meta
from medmec.operator import render_pods as pods
from medmec.operator.settings import OperatorSettings

HTTP_PORT, GRPC_PORT = 8080, 50051
DATA_DIR, TOKENS_DIR, CONFIG_DIR = "/var/lib/medmec/nursing", "/etc/medmec/tokens", "/etc/medmec/nursing"
DSN_ENV = "MEDMEC_NURSING_DSN"


def child_name(cns: dict) -> str:
    return f"{cns['metadata']['name']}-nursing"


def _labels(cns: dict) -> dict[str, str]:
    return meta.labels("nursing", cns["metadata"]["name"], cns["spec"]["sliceRef"]["name"],
                       {f"{meta.GROUP}/nursing-service": cns["metadata"]["name"]})


def selector(cns: dict) -> dict[str, str]:
    return {"app.kubernetes.io/instance": cns["metadata"]["name"],
            "app.kubernetes.io/component": "nursing"}


def _embedded(cns: dict) -> bool:
    return cns["spec"].get("storage", {}).get("type", "embedded") == "embedded"


def settings_configmap(cns: dict) -> dict:
    spec = cns["spec"]
    config = {"wards": spec["wards"],
              "earlyWarning": spec.get("earlyWarning", {"mediumScore": 5, "highScore": 7})}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta.child_metadata(cns, f"{child_name(cns)}-settings", _labels(cns)),
            "data": {"nursing.json": json.dumps(config, indent=2, sort_keys=True) + "\n"}}


def deployment(cns: dict, ms: dict, zones: list[str], settings: OperatorSettings) -> dict:
    spec = cns["spec"]
    name = child_name(cns)
    args = ["medmec", "serve", "nursing", "--http-port", str(HTTP_PORT),
            "--grpc-port", str(GRPC_PORT),
            # early-warning thresholds, re-read when the service's spec changes
            "--settings", f"{CONFIG_DIR}/nursing.json"]
    mounts = [{"name": "tokens", "mountPath": TOKENS_DIR, "readOnly": True},
              {"name": "settings", "mountPath": CONFIG_DIR, "readOnly": True}]
    volumes = [{"name": "tokens", "secret": {"secretName": spec["tokensSecretRef"]["name"],
                                             "items": [{"key": "tokens.json", "path": "tokens.json"}]}},
               {"name": "settings", "configMap": {"name": f"{name}-settings"}}]
    env = []
    if _embedded(cns):
        args += ["--database", f"sqlite:///{DATA_DIR}/nursing.db"]
        mounts.append({"name": "data", "mountPath": DATA_DIR})
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": f"{name}-data"}})
    else:
        ref = spec["storage"]["postgresql"]["secretRef"]
        args += ["--database-env", DSN_ENV]
        env.append({"name": DSN_ENV, "valueFrom": {"secretKeyRef": {
            "name": ref["name"], "key": ref.get("key", "dsn")}}})
    for ward in spec["wards"]:
        args += ["--ward", ward["id"]]
    args += ["--tokens-file", f"{TOKENS_DIR}/tokens.json"]
    container = {
        "name": "nursing",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": args,
        "ports": [{"name": "http", "containerPort": HTTP_PORT},
                  {"name": "grpc", "containerPort": GRPC_PORT}],
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "readinessProbe": pods.http_probe("/healthz", "http"),
        "livenessProbe": pods.http_probe("/healthz", "http", period=10),
        "volumeMounts": mounts,
    }
    if env:
        container["env"] = env
    pod_spec = {
        "priorityClassName": meta.priority_class_name(ms["spec"].get("priority", "standard")),
        "affinity": pods.zone_affinity(zones),
        "containers": [container],
        "volumes": volumes,
    }
    if _embedded(cns):
        return pods.deployment(cns, name, _labels(cns), selector(cns), pod_spec)
    # with an external database the replicas hold no state: two, rolled one at a time
    return pods.deployment(cns, name, _labels(cns), selector(cns), pod_spec, replicas=2,
                           strategy=pods.ROLLING)


def children(cns: dict, ms: dict, zones: list[str], settings: OperatorSettings) -> list[dict]:
    name = child_name(cns)
    objects = [settings_configmap(cns)]
    if _embedded(cns):
        storage = cns["spec"].get("storage", {})
        objects.append(pods.volume_claim(cns, f"{name}-data", _labels(cns),
                                         str(storage.get("size", "1Gi")),
                                         storage.get("storageClassName")))
    objects += [deployment(cns, ms, zones, settings),
                pods.service(cns, name, _labels(cns), selector(cns),
                             [("http", HTTP_PORT, None), ("grpc", GRPC_PORT, "grpc")])]
    return objects


def endpoint(cns: dict) -> str:
    return f"http://{child_name(cns)}.{cns['metadata']['namespace']}.svc:{HTTP_PORT}"
