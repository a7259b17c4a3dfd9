"""Whether a base station's MEC site can run workloads: its zone's nodes (pure)."""
from __future__ import annotations

import dataclasses

from medmec.operator import meta
from medmec.operator.conditions import condition


@dataclasses.dataclass(frozen=True)
class NodeView:
    name: str
    zone: str
    gpus: int
    ready: bool
    why_not: str = ""  # the Ready condition's reason and message when not ready
    schedulable: bool = True


def node_view(node: dict) -> NodeView:
    """A node as the Kubernetes API gives it (a dict of metadata, spec and status)."""
    md, status = node.get("metadata") or {}, node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    why = "" if ready.get("status") == "True" else (
        f"{ready.get('reason') or 'no Ready condition'}"
        + (f": {ready['message']}" if ready.get("message") else ""))
    gpus = str((status.get("allocatable") or {}).get(meta.GPU_RESOURCE, "0")) or "0"
    return NodeView(md["name"], (md.get("labels") or {}).get(meta.ZONE_LABEL, ""), int(gpus),
                    ready.get("status") == "True", why,
                    not (node.get("spec") or {}).get("unschedulable", False))


def ready_condition(zone: str, nodes: list[NodeView]) -> dict:
    """Ready when the site has a Ready node that takes pods; otherwise which nodes and why."""
    site = sorted((n for n in nodes if n.zone == zone), key=lambda n: n.name)
    if not site:
        return condition("Ready", False, "NoNodes",
                         f"no node carries {meta.ZONE_LABEL}={zone}: the MEC site has no nodes")
    usable = [n for n in site if n.ready and n.schedulable]
    if usable:
        return condition("Ready", True, "NodesReady",
                         f"{len(usable)} of {len(site)} node(s) in zone {zone} Ready")
    details = "; ".join(f"{n.name}: {n.why_not}" if not n.ready else f"{n.name}: cordoned"
                        for n in site[:5])
    more = f" (and {len(site) - 5} more)" if len(site) > 5 else ""
    return condition("Ready", False, "NodesNotReady",
                     f"none of the {len(site)} node(s) in zone {zone} is Ready and schedulable: "
                     f"{details}{more}")
