"""Names, labels and owner references shared by every rendered child object."""
from __future__ import annotations

GROUP = "medmec.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FIELD_MANAGER = "medmec-operator"

SLICE_LABEL = f"{GROUP}/slice"
# Pods with this label (the operator, QoS prober, console, metrics scrapers) reach every
# slice's pods: the one platform selector of the slices' NetworkPolicies.
PLATFORM_LABEL = f"{GROUP}/platform"
PLATFORM_SELECTOR = {PLATFORM_LABEL: "true"}


def pod_security_labels(level: str = "restricted") -> dict[str, str]:
    """Pod Security Admission labels: the API server enforces `level` in the namespace."""
    return {**{f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "audit", "warn")},
            "pod-security.kubernetes.io/enforce-version": "latest"}
PRIORITIES = {"critical": 1_000_000, "high": 100_000, "standard": 10_000}
ZONE_LABEL = "topology.kubernetes.io/zone"
BASE_STATION_LABEL = f"{GROUP}/base-station"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def priority_class_name(priority: str) -> str:
    return f"medmec-{priority}"


def labels(component: str, instance: str, slice_name: str | None = None,
           extra: dict[str, str] | None = None) -> dict[str, str]:
    """The recommended app.kubernetes.io labels plus the slice the object belongs to."""
    result = {
        "app.kubernetes.io/name": f"medmec-{component}",
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "medmec",
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
    }
    if slice_name:
        result[SLICE_LABEL] = slice_name
    result.update(extra or {})
    return result


def owner_reference(owner: dict) -> dict:
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(owner: dict, name: str, child_labels: dict[str, str]) -> dict:
    return {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": child_labels,
        "ownerReferences": [owner_reference(owner)],
    }
