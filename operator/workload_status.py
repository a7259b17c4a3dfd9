"""Status of a slice-bound workload (inference, dispatch, nursing) from its slice and the
pods that serve it (pure)."""
from __future__ import annotations

import dataclasses
import datetime
import re

from medmec.operator.conditions import condition

# container waiting reasons that do not clear by waiting: the user has something to fix
FAILING_WAITING = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull",
                   "CreateContainerConfigError", "CreateContainerError", "InvalidImageName",
                   "RunContainerError")
# `medmec models pull --sha256` refusing a model (medmec.workloads.modelstore.store.pull)
DIGEST_MISMATCH = re.compile(r"model (?P<model>\S+) version (?P<version>\S+): the store's metadata "
                             r"gives sha256 (?P<found>[0-9a-f]*|None), but (?P<expected>[0-9a-f]+) "
                             r"was required")
# a started container not ready for this long fails its readiness probe (the rendered
# probes give up after 3 x 5 s; the rest is the kubelet's and our own delay)
READINESS_GRACE_SECONDS = 30.0
POD_PROBLEMS = (*FAILING_WAITING, "OOMKilled", "ModelDigestMismatch", "InitContainerFailed",
                "ReadinessProbeFailed")


@dataclasses.dataclass(frozen=True)
class PodProblem:
    """Why a pod does not serve: a Kubernetes-style reason and what the container said."""
    reason: str
    container: str
    message: str


@dataclasses.dataclass(frozen=True)
class PodView:
    name: str
    node: str | None
    ready: bool
    unschedulable: str | None  # the scheduler's message while the pod cannot be placed
    terminating: bool = False
    problem: PodProblem | None = None  # a container that fails to start or keeps failing
    unready_since: str | None = None  # a started container not ready since then (RFC 3339)
    unready_container: str | None = None


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


def _seconds_since(timestamp: str, now: datetime.datetime) -> float:
    then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (now - then).total_seconds()


def failing_readiness(pod: PodView, now: datetime.datetime) -> bool:
    """Whether a started container of the pod has been not ready for longer than the grace."""
    return bool(pod.unready_since and not pod.problem
                and _seconds_since(pod.unready_since, now) > READINESS_GRACE_SECONDS)


def pod_problem(pod: PodView, now: datetime.datetime, probe_message: str | None = None
                ) -> PodProblem | None:
    """The pod's container problem, readiness failures included once they outlast the grace."""
    if pod.problem:
        return pod.problem
    if failing_readiness(pod, now):
        return PodProblem("ReadinessProbeFailed", pod.unready_container or "",
                          probe_message or "running but its readiness probe does not pass")
    return None


def problem_message(pod: str, problem: PodProblem) -> str:
    if problem.reason == "ModelDigestMismatch":
        return problem.message
    return f"pod {pod} container {problem.container}: {problem.reason}: {problem.message}"


def workload_status(slice_st: SliceState, pods: list[PodView], node_zones: dict[str, str],
                    want_ready: int, problem: tuple[str, str] | None = None,
                    applied: bool = True, now: datetime.datetime | None = None,
                    probe_messages: dict[str, str] | None = None) -> dict:
    """phase, replica counts, placement and the SliceReady / Scheduled / Ready conditions.

    `problem` is a (reason, message) for a spec the operator cannot deploy; `applied` says
    whether this generation's children have all been written (pods of an older one can be
    ready before that). A pod whose container fails (CrashLoopBackOff, an image it cannot
    pull, OOMKilled, a wrong model digest, a readiness probe failing past the grace; the
    reason and the container's last message) makes Ready False even while other pods serve.
    `probe_messages` maps pod names to their last readiness-probe failure (from Events)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    live = [p for p in pods if not p.terminating]
    ready = sum(p.ready for p in live)
    placed = sorted({p.node for p in live if p.node})
    stuck = [p for p in live if p.unschedulable]
    failing = [(p.name, pr) for p in sorted(live, key=lambda p: p.name)
               if (pr := pod_problem(p, now, (probe_messages or {}).get(p.name)))]
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
        counts = f"{ready} of {want_ready} replica(s) ready"
        ok = ready >= want_ready and applied and not failing
        if not applied:
            conds.append(condition("Ready", False, "Reconciling",
                                   "the operator is writing this generation's objects"))
        elif failing:
            pod, first = failing[0]
            serving = "; the ready pods keep serving" if ready else ""
            conds.append(condition("Ready", False, first.reason,
                                   f"{problem_message(pod, first)} ({counts}{serving})"))
        else:
            conds.append(condition("Ready", ok, "ReplicasReady" if ok else "WaitingForReplicas",
                                   counts))
        phase = "Ready" if ok else ("Failed" if failing and applied else "Deploying")
    return {
        "phase": phase,
        "replicas": len(live),
        "readyReplicas": ready,
        "placement": {"zones": sorted({node_zones[n] for n in placed if n in node_zones}),
                      "nodes": placed},
        "conditions": conds,
    }


def _digest_problem(name: str, message: str) -> PodProblem | None:
    match = DIGEST_MISMATCH.search(message or "")
    if not match:
        return None
    return PodProblem("ModelDigestMismatch", name,
                      f"model {match['model']} version {match['version']}: expected sha256 "
                      f"{match['expected']}, found {match['found']} in the model store; "
                      "the new pods do not start")


def _last_words(status: dict) -> tuple[str, dict]:
    """The container's last termination (current or previous) and its message."""
    state = status.get("state") or {}
    terminated = state.get("terminated") or (status.get("lastState") or {}).get("terminated") or {}
    message = (terminated.get("message") or "").strip()
    if terminated and not message:
        message = f"exited with code {terminated.get('exitCode')}"
    return message, terminated


def container_problem(status: dict, init: bool = False) -> PodProblem | None:
    """Why one container (from a pod's container statuses) fails, or None."""
    name = status.get("name", "")
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    last_message, terminated = _last_words(status)
    failed_init = init and state.get("terminated") and terminated.get("exitCode", 0) != 0
    if not init and state.get("terminated") and status.get("restartCount", 0) >= 1:
        # ended again after a restart: the kubelet backs off before the next start, and it
        # may not report the waiting state at all before that start (seen on kubelet 1.36)
        waiting = {"reason": "CrashLoopBackOff"}
    if waiting.get("reason") in FAILING_WAITING or failed_init:
        if init and (digest := _digest_problem(name, last_message)):
            return digest
        if terminated.get("reason") == "OOMKilled":
            return PodProblem("OOMKilled", name, last_message
                              if last_message != "exited with code 137"
                              else "killed for using more memory than its limit")
        reason = waiting.get("reason") or "InitContainerFailed"
        message = last_message if reason in ("CrashLoopBackOff", "InitContainerFailed") else ""
        return PodProblem(reason, name, message or waiting.get("message") or reason)
    if (state.get("terminated") or {}).get("reason") == "OOMKilled":
        return PodProblem("OOMKilled", name, "killed for using more memory than its limit")
    return None


def pod_view(pod: dict) -> PodView:
    status = pod.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    sched = conds.get("PodScheduled", {})
    unschedulable = (sched.get("message") or "unschedulable"
                     if sched.get("status") == "False" and sched.get("reason") == "Unschedulable"
                     else None)
    problem = next((p for s in status.get("initContainerStatuses") or []
                    if (p := container_problem(s, init=True))), None) or \
        next((p for s in status.get("containerStatuses") or [] if (p := container_problem(s))), None)
    unready = next((s for s in status.get("containerStatuses") or []
                    if s.get("started") and not s.get("ready")
                    and (s.get("state") or {}).get("running")), None)
    since = None
    if unready is not None:
        # since the later of its start and the pod's last Ready transition
        since = max(filter(None, [unready["state"]["running"].get("startedAt"),
                                  conds.get("Ready", {}).get("lastTransitionTime")]), default=None)
    return PodView(name=pod["metadata"]["name"], node=(pod.get("spec") or {}).get("nodeName"),
                   ready=conds.get("Ready", {}).get("status") == "True"
                   and status.get("phase") == "Running",
                   unschedulable=unschedulable,
                   terminating=bool(pod["metadata"].get("deletionTimestamp"))
                   or status.get("phase") in ("Failed", "Succeeded"),
                   problem=problem, unready_since=since,
                   unready_container=unready.get("name") if unready else None)
