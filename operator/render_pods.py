"""Pod-level pieces shared by the workload renderers (pure)."""
from __future__ import annotations

from medmec.operator import meta


def zone_affinity(zones: list[str]) -> dict:
    """Required node affinity to the zones of the slice's base stations."""
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": meta.ZONE_LABEL, "operator": "In", "values": sorted(zones)}]}]}}}


def http_probe(path: str, port: str, period: int = 5, failures: int = 3) -> dict:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period,
            "failureThreshold": failures}


def volume_claim(owner: dict, name: str, labels: dict[str, str], size: str,
                 storage_class: str | None) -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": meta.child_metadata(owner, name, labels), "spec": spec}


# Pods that write a local volume are replaced rather than rolled, so two never write it at once.
RECREATE = {"type": "Recreate"}
ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def deployment(owner: dict, name: str, labels: dict[str, str], selector: dict[str, str],
               pod_spec: dict, replicas: int = 1, strategy: dict = RECREATE) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta.child_metadata(owner, name, labels),
        "spec": {"replicas": replicas, "selector": {"matchLabels": selector},
                 "strategy": strategy,
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
    }


def service(owner: dict, name: str, labels: dict[str, str], selector: dict[str, str],
            ports: list[tuple[str, int, str | None]]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.child_metadata(owner, name, labels),
        "spec": {"selector": selector, "ports": [
            {"name": n, "port": p, "targetPort": n, "protocol": "TCP",
             **({"appProtocol": proto} if proto else {})} for n, p, proto in ports]},
    }
