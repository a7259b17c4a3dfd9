"""What an EdgeInferenceService becomes: Deployment, Service, HorizontalPodAutoscaler and
PodDisruptionBudget (pure). The containers follow the workloads' `medmec serve inference`
and `medmec models pull` contract."""
from __future__ import annotations

from medmec.operator import meta
from medmec.operator import render_pods as pods
from medmec.operator.render_pods import http_probe, zone_affinity
from medmec.operator.settings import OperatorSettings

HTTP_PORT, GRPC_PORT, METRICS_PORT = 8000, 8001, 8002
MODEL_DIR = "/models"
STORE_BUCKET = "models"


def child_name(eis: dict) -> str:
    return f"{eis['metadata']['name']}-predictor"


def pod_labels(eis: dict) -> dict[str, str]:
    return meta.labels("inference", eis["metadata"]["name"], eis["spec"]["sliceRef"]["name"],
                       {f"{meta.GROUP}/inference-service": eis["metadata"]["name"]})


def selector(eis: dict) -> dict[str, str]:
    return {"app.kubernetes.io/instance": eis["metadata"]["name"],
            "app.kubernetes.io/component": "inference"}


def storage_uri_problem(spec: dict) -> str | None:
    """Why the model cannot be fetched from spec.model.storageUri, or None.

    The model store keeps a model at s3://models/NAME/VERSION; a URI elsewhere would make
    the init step fetch something other than what the user named."""
    model = spec["model"]
    expected = f"s3://{STORE_BUCKET}/{model['name']}/{model['version']}"
    if model["storageUri"].rstrip("/") != expected:
        return (f"spec.model.storageUri is {model['storageUri']}, but the model store serves "
                f"{model['name']} version {model['version']} from {expected}")
    return None


def served_versions(spec: dict) -> list[dict]:
    canary = spec.get("canary")
    if not canary:
        return [{"version": spec["model"]["version"], "trafficPercent": 100}]
    return [{"version": spec["model"]["version"], "trafficPercent": 100 - canary["trafficPercent"]},
            {"version": canary["version"], "trafficPercent": canary["trafficPercent"]}]


def endpoints(eis: dict) -> dict[str, str]:
    host = f"{child_name(eis)}.{eis['metadata']['namespace']}.svc"
    return {"http": f"http://{host}:{HTTP_PORT}", "grpc": f"{host}:{GRPC_PORT}"}


def _store_env(settings: OperatorSettings) -> list[dict]:
    def secret(key: str) -> dict:
        return {"secretKeyRef": {"name": settings.store_secret, "key": key}}
    return [
        {"name": "MEDMEC_STORE_ENDPOINT", "value": settings.store_endpoint},
        {"name": "MEDMEC_STORE_ACCESS_KEY", "valueFrom": secret("access-key")},
        {"name": "MEDMEC_STORE_SECRET_KEY", "valueFrom": secret("secret-key")},
        {"name": "MEDMEC_STORE_SECURE", "value": "true" if settings.store_secure else "false"},
    ]


def _fetch(settings: OperatorSettings, model: str, version: str, sha256: str, name: str) -> dict:
    return {
        "name": name,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["medmec", "models", "pull", model, version, f"{MODEL_DIR}/{model}/{version}",
                    "--sha256", sha256],
        "env": _store_env(settings),
        "volumeMounts": [{"name": "models", "mountPath": MODEL_DIR}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
    }


def server_args(spec: dict) -> list[str]:
    model, batching = spec["model"], spec.get("batching", {})
    args = ["medmec", "serve", "inference", "--model-dir", MODEL_DIR,
            "--model", model["name"], "--version", model["version"]]
    if spec.get("canary"):
        args += ["--canary-version", spec["canary"]["version"],
                 "--canary-percent", str(spec["canary"]["trafficPercent"])]
    args += ["--http-port", str(HTTP_PORT), "--grpc-port", str(GRPC_PORT),
             "--metrics-port", str(METRICS_PORT),
             "--max-batch-size", str(batching.get("maxBatchSize", 8)),
             "--max-queue-delay-us", str(batching.get("maxQueueDelayMicroseconds", 100))]
    if spec.get("escalation"):
        esc = spec["escalation"]
        args += ["--escalation-threshold", str(esc["confidenceThreshold"]),
                 "--escalation-url", esc["url"],
                 "--escalation-model", esc.get("model") or model["name"]]
    return args


def _affinity(spec: dict, zones: list[str]) -> dict:
    affinity = zone_affinity(zones)
    product = spec.get("gpu", {}).get("product")
    if product:
        affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = [{
            "weight": 100, "preference": {"matchExpressions": [
                {"key": meta.GPU_PRODUCT_LABEL, "operator": "In", "values": [product]}]}}]
    return affinity


def deployment(eis: dict, ms: dict, zones: list[str], settings: OperatorSettings) -> dict:
    """The serving pods: placed in the slice's zones, GPUs requested, model fetched and
    checked before the server starts. Replicas are left to the HorizontalPodAutoscaler."""
    spec = eis["spec"]
    model = spec["model"]
    gpus = spec.get("gpu", {}).get("count", 1)
    res = spec.get("resources", {})
    requests = {"cpu": str(res.get("cpu", "2")), "memory": str(res.get("memory", "8Gi"))}
    limits = {"memory": requests["memory"]}
    if gpus:
        requests[meta.GPU_RESOURCE] = limits[meta.GPU_RESOURCE] = str(gpus)
    labels = pod_labels(eis)
    init = [_fetch(settings, model["name"], model["version"], model["sha256"], "fetch-model")]
    if spec.get("canary"):
        init.append(_fetch(settings, model["name"], spec["canary"]["version"],
                           spec["canary"]["sha256"], "fetch-canary-model"))
    pod_spec: dict = {
        "priorityClassName": meta.priority_class_name(ms["spec"].get("priority", "standard")),
        "affinity": _affinity(spec, zones),
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": selector(eis)}}
            for key in (meta.ZONE_LABEL, "kubernetes.io/hostname")],
        "initContainers": init,
        "containers": [{
            "name": "server",
            "image": settings.image,
            "imagePullPolicy": settings.image_pull_policy,
            "command": server_args(spec),
            "ports": [{"name": "http", "containerPort": HTTP_PORT},
                      {"name": "grpc", "containerPort": GRPC_PORT},
                      {"name": "metrics", "containerPort": METRICS_PORT}],
            "resources": {"requests": requests, "limits": limits},
            "volumeMounts": [{"name": "models", "mountPath": MODEL_DIR, "readOnly": True}],
            # model loading can take minutes; liveness only counts once the server is up
            "startupProbe": http_probe("/v2/health/ready", "http", failures=60),
            "readinessProbe": http_probe("/v2/health/ready", "http"),
            "livenessProbe": http_probe("/v2/health/live", "http", period=10),
        }],
        "volumes": [{"name": "models", "emptyDir": {}}],
    }
    if spec.get("escalation"):  # the escalated cases are kept as hard examples in the store
        pod_spec["containers"][0]["env"] = _store_env(settings)
    if gpus:
        pod_spec["tolerations"] = [{"key": meta.GPU_RESOURCE, "operator": "Exists",
                                    "effect": "NoSchedule"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta.child_metadata(eis, child_name(eis), labels),
        "spec": {
            "selector": {"matchLabels": selector(eis)},
            "strategy": pods.ROLLING,
            "template": {"metadata": {"labels": labels,
                                      "annotations": {f"{meta.GROUP}/model-sha256": model["sha256"]}},
                         "spec": pods.restricted(pod_spec)},
        },
    }


def service(eis: dict) -> dict:
    return pods.service(eis, child_name(eis), pod_labels(eis), selector(eis), [
        ("http", HTTP_PORT, None), ("grpc", GRPC_PORT, "grpc"), ("metrics", METRICS_PORT, None)])


def autoscaler(eis: dict) -> dict:
    scaling = eis["spec"].get("scaling", {})
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta.child_metadata(eis, child_name(eis), pod_labels(eis)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": child_name(eis)},
            "minReplicas": scaling.get("minReplicas", 1),
            "maxReplicas": scaling.get("maxReplicas", 1),
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": scaling.get("targetCPUUtilization", 70)}}}],
        },
    }


def disruption_budget(eis: dict) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta.child_metadata(eis, child_name(eis), pod_labels(eis)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(eis)}},
    }


def children(eis: dict, ms: dict, zones: list[str], settings: OperatorSettings) -> list[dict]:
    return [deployment(eis, ms, zones, settings), service(eis), autoscaler(eis),
            disruption_budget(eis)]
