"""What an admitted MedicalSlice becomes: budget quota, network isolation, priority class
and the QoS contract ConfigMap (pure)."""
from __future__ import annotations

import json

from medmec.operator import meta
from medmec.operator.profiles import QoS, snssai


def priority_class(priority: str) -> dict:
    """One PriorityClass per clinical priority, shared by all slices of that priority."""
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": meta.priority_class_name(priority),
                     "labels": {"app.kubernetes.io/part-of": "medmec",
                                "app.kubernetes.io/managed-by": meta.FIELD_MANAGER}},
        "value": meta.PRIORITIES[priority],
        "globalDefault": False,
        "preemptionPolicy": "PreemptLowerPriority",
        "description": f"medmec {priority} clinical priority: preempts pods of lower medmec priorities",
    }


def _slice_labels(ms: dict) -> dict[str, str]:
    return meta.labels("slice", ms["metadata"]["name"], ms["metadata"]["name"])


def resource_quota(ms: dict) -> dict:
    budget = ms["spec"]["resources"]
    gpus = str(budget.get("gpus", 0))
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": meta.child_metadata(ms, f"{ms['metadata']['name']}-budget", _slice_labels(ms)),
        "spec": {"hard": {
            "requests.cpu": str(budget["cpu"]),
            "requests.memory": str(budget["memory"]),
            f"requests.{meta.GPU_RESOURCE}": gpus,
        }},
    }


def _peer(entry: dict) -> dict:
    if "cidr" in entry:
        return {"ipBlock": {"cidr": entry["cidr"]}}
    peer = {}
    for key in ("namespaceSelector", "podSelector"):
        if key in entry:
            peer[key] = {"matchLabels": dict(entry[key].get("matchLabels") or {})}
    return peer


def network_policy(ms: dict) -> dict:
    """Ingress to the slice's pods: from the same slice (strict) or the same namespace
    (shared), from the platform's own components (meta.PLATFORM_SELECTOR, any namespace),
    plus the declared allowedIngress (robots, handhelds, PACS)."""
    name = ms["metadata"]["name"]
    spec = ms["spec"]
    same = ({"podSelector": {"matchLabels": {meta.SLICE_LABEL: name}}}
            if spec.get("isolation", "strict") == "strict" else {"podSelector": {}})
    platform = {"namespaceSelector": {}, "podSelector": {"matchLabels": dict(meta.PLATFORM_SELECTOR)}}
    rules = [{"from": [same]}, {"from": [platform]}]
    for entry in spec.get("allowedIngress") or []:
        rule: dict = {"from": [_peer(entry)]}
        if entry.get("ports"):
            rule["ports"] = [{"protocol": "TCP", "port": p} for p in entry["ports"]]
        rules.append(rule)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta.child_metadata(ms, f"{name}-isolation", _slice_labels(ms)),
        "spec": {
            "podSelector": {"matchLabels": {meta.SLICE_LABEL: name}},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def qos_contract(ms: dict, qos: QoS, zones: list[str]) -> dict:
    """The slice's contract for workloads and probes (what the network promised it)."""
    spec = ms["spec"]
    return {
        "sliceName": ms["metadata"]["name"],
        "snssai": snssai(spec),
        "sliceType": spec["sliceType"],
        "profile": spec.get("profile"),
        "priority": spec.get("priority", "standard"),
        "baseStations": list(spec["baseStations"]),
        "zones": zones,
        **qos.model_dump(),
    }


def qos_configmap(ms: dict, qos: QoS, zones: list[str]) -> dict:
    contract = qos_contract(ms, qos, zones)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.child_metadata(ms, f"{ms['metadata']['name']}-qos", _slice_labels(ms)),
        "data": {"qos.json": json.dumps(contract, indent=2, sort_keys=True) + "\n"},
    }


def namespace_security(ms: dict, level: str = "restricted") -> dict:
    """The slice's namespace enforces a Pod Security Standard (restricted: the API server
    refuses a pod that runs as root, escalates privileges or keeps capabilities there).
    Applied (labels only) whoever created the namespace."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ms["metadata"]["namespace"],
                         "labels": meta.pod_security_labels(level)}}


def children(ms: dict, qos: QoS, zones: list[str]) -> list[dict]:
    """The namespaced objects an admitted slice owns."""
    return [resource_quota(ms), network_policy(ms), qos_configmap(ms, qos, zones)]
