"""Pods of the medmec image on the real nodes: a namespace per module, and pod helpers."""
from __future__ import annotations

import json
import os
import uuid

import pytest

from medmec.waiting import wait_for

# what the restricted Pod Security Standard asks of every container
RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
              "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.fixture(scope="session")
def image(real_cluster) -> str:
    """The medmec image: the one `cluster up` loaded into the nodes, or MEDMEC_IMAGE."""
    if os.environ.get("MEDMEC_IMAGE"):
        return os.environ["MEDMEC_IMAGE"]
    from medmec.localcluster import images
    return images.ensure("medmec").ref


@pytest.fixture(scope="module")
def ns(real_cluster):
    name = f"realnodes-{uuid.uuid4().hex[:6]}"
    real_cluster.kubectl("create", "namespace", name)
    real_cluster.kubectl("label", "namespace", name,
                         "pod-security.kubernetes.io/enforce=restricted")
    yield name
    real_cluster.kubectl("delete", "namespace", name, "--wait=false")


def container(image: str, name: str, command: list[str], **extra) -> dict:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "command": command, "securityContext": RESTRICTED,
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                          "limits": {"memory": "256Mi"}}, **extra}


def pod(name: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": containers, "terminationGracePeriodSeconds": 1,
                     "securityContext": {"runAsUser": 10001, "runAsGroup": 10001}, **spec}}


def apply(cluster, ns: str, *objects: dict) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-",
                    input="\n---\n".join(json.dumps(o) for o in objects))


def get(cluster, ns: str, kind: str, name: str) -> dict:
    return json.loads(cluster.kubectl("get", "-n", ns, kind, name, "-o", "json").stdout)


def wait_phase(cluster, ns: str, name: str, phases: set[str], timeout: float = 180) -> dict:
    seen = {}

    def phase():
        seen["pod"] = get(cluster, ns, "pod", name)
        return seen["pod"] if seen["pod"].get("status", {}).get("phase") in phases else None
    # a timeout says why: unschedulable, pulling, crash-looping
    return wait_for(phase, timeout, f"pod {name} in {sorted(phases)}",
                    explain=lambda: f"status: {seen['pod'].get('status')}")


def ready(obj: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in obj.get("status", {}).get("conditions", []))
