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


# The medmec image's user; fsGroup makes mounted volumes (the dispatcher's and nursing's
# PersistentVolumeClaims) writable by it on storage that does not honour the image's owner.
IMAGE_UID = 10001
TMP_DIR = "/tmp"  # the one writable path of the read-only root filesystem (HOME is /tmp)


def restricted(pod_spec: dict) -> dict:
    """`pod_spec` under the restricted Pod Security Standard: non-root, RuntimeDefault
    seccomp, no privilege escalation, no capabilities, read-only root filesystem with an
    emptyDir /tmp; no API token (workloads never call the API). Containers that fail leave
    their last log lines as the termination message, which the operator reports."""
    def harden(container: dict) -> dict:
        return {**container,
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [*container.get("volumeMounts", []),
                                 {"name": "tmp", "mountPath": TMP_DIR}]}
    return {**pod_spec,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": IMAGE_UID,
                                "runAsGroup": IMAGE_UID, "fsGroup": IMAGE_UID,
                                "fsGroupChangePolicy": "OnRootMismatch",
                                "seccompProfile": {"type": "RuntimeDefault"}},
            **({"initContainers": [harden(c) for c in pod_spec["initContainers"]]}
               if pod_spec.get("initContainers") else {}),
            "containers": [harden(c) for c in pod_spec["containers"]],
            "volumes": [*pod_spec.get("volumes", []),
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]}


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
                 "template": {"metadata": {"labels": labels}, "spec": restricted(pod_spec)}},
    }


def service(owner: dict, name: str, labels: dict[str, str], selector: dict[str, str],
            ports: list[tuple[str, int, str | None]]) -> dict:
    """The workload's Service, exposed as the owner's spec.service says: ClusterIP by default;
    NodePort or LoadBalancer for clients outside the cluster, keeping their address
    (externalTrafficPolicy Local) for the slice's allowedIngress to judge."""
    exposure = owner["spec"].get("service") or {}
    kind = exposure.get("type", "ClusterIP")
    metadata = meta.child_metadata(owner, name, labels)
    if exposure.get("annotations"):
        metadata["annotations"] = dict(exposure["annotations"])
    spec: dict = {"type": kind, "selector": selector, "ports": [
        {"name": n, "port": p, "targetPort": n, "protocol": "TCP",
         **({"appProtocol": proto} if proto else {})} for n, p, proto in ports]}
    if kind != "ClusterIP":
        spec["externalTrafficPolicy"] = "Local"
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}
