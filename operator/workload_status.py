"""Status of a slice-bound workload (inference, dispatch, nursing) from its slice and the
pods that serve it (pure)."""
from __future__ import annotations

import dataclasses

from medmec.operator.conditions import condition


@dataclasses.dataclass(frozen=True)
class PodView:
    name: str
    node: str | None
    ready: bool
    unschedulable: str | None  # the scheduler's message while the pod cannot be placed
    terminating: bool = False


@dataclasses.dataclass(frozen=True)
class SliceState:
    ok: bool
    reason: str
    message: str
    priority: str = "standard"
    zones: tuple[str, ...] = ()


def slice_state(ms: dict | None, slice_name: str, zones: list[str]) -> SliceState:
    """Whether a workload may run on its slice: the slice exists and is admitted."""
    if ms is None:
        return SliceState(False, "SliceNotFound", f"MedicalSlice {slice_name} does not exist")
    admitted = next((c for c in ms.get("status", {}).get("conditions") or []
                     if c.get("type") == "Admitted"), None)
    if not admitted or admitted.get("status") != "True":
        detail = f": {admitted.get('message')}" if admitted and admitted.get("message") else ""
        return SliceState(False, "SliceNotAdmitted", f"MedicalSlice {slice_name} is not admitted{detail}")
    if not zones:
        return SliceState(False, "NoZones", f"no BaseStation of MedicalSlice {slice_name} exists")
    return SliceState(True, "SliceAdmitted", f"MedicalSlice {slice_name} is admitted",
                      ms["spec"].get("priority", "standard"), tuple(sorted(zones)))


def workload_status(slice_st: SliceState, pods: list[PodView], node_zones: dict[str, str],
                    want_ready: int, problem: tuple[str, str] | None = None,
                    applied: bool = True) -> dict:
    """phase, replica counts, placement and the SliceReady / Scheduled / Ready conditions.

    `problem` is a (reason, message) for a spec the operator cannot deploy; `applied` says
    whether this generation's children have all been written (pods of an older one can be
    ready before that)."""
    live = [p for p in pods if not p.terminating]
    ready = sum(p.ready for p in live)
    placed = sorted({p.node for p in live if p.node})
    stuck = [p for p in live if p.unschedulable]
    conds = [condition("SliceReady", slice_st.ok, slice_st.reason, slice_st.message)]
    if problem:
        conds += [condition("Scheduled", False, problem[0], problem[1]),
                  condition("Ready", False, problem[0], problem[1])]
        phase = "Failed"
    elif not slice_st.ok:
        conds += [condition("Scheduled", False, "SliceNotReady", "no pods while the slice is not ready"),
                  condition("Ready", False, slice_st.reason, slice_st.message)]
        phase = "Pending"
    else:
        if stuck:
            conds.append(condition("Scheduled", False, "Unschedulable",
                                   f"{len(stuck)} pod(s) cannot be placed: {stuck[0].unschedulable}"))
        elif not live:
            conds.append(condition("Scheduled", False, "NoPods", "waiting for pods to be created"))
        else:
            conds.append(condition("Scheduled", True, "Scheduled",
                                   f"{len(live)} pod(s) placed on {len(placed)} node(s)"))
        ok = ready >= want_ready and applied
        if not applied:
            conds.append(condition("Ready", False, "Reconciling",
                                   "the operator is writing this generation's objects"))
        else:
            conds.append(condition("Ready", ok, "ReplicasReady" if ok else "WaitingForReplicas",
                                   f"{ready} of {want_ready} replica(s) ready"))
        phase = "Ready" if ok else "Deploying"
    return {
        "phase": phase,
        "replicas": len(live),
        "readyReplicas": ready,
        "placement": {"zones": sorted({node_zones[n] for n in placed if n in node_zones}),
                      "nodes": placed},
        "conditions": conds,
    }


def pod_view(pod: dict) -> PodView:
    status = pod.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    sched = conds.get("PodScheduled", {})
    unschedulable = (sched.get("message") or "unschedulable"
                     if sched.get("status") == "False" and sched.get("reason") == "Unschedulable"
                     else None)
    return PodView(name=pod["metadata"]["name"], node=(pod.get("spec") or {}).get("nodeName"),
                   ready=conds.get("Ready", {}).get("status") == "True"
                   and status.get("phase") == "Running",
                   unschedulable=unschedulable,
                   terminating=bool(pod["metadata"].get("deletionTimestamp"))
                   or status.get("phase") in ("Failed", "Succeeded"))
