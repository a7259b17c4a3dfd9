"""The kopf handlers: thin glue between watch events, the pure decisions and Kubernetes I/O.

Every handler is level-based: it looks at the whole current state (kopf indexes of slices,
base stations, nodes, workloads and pods), decides with the pure functions and applies the
result with server-side apply, so running it twice, or again after a crash, converges to
the same objects. Statuses are written only when they change, and Events only when a
condition changes, so a resource that waits (over capacity, slice missing) causes no storm.
"""
from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable

import kopf

from medmec.operator import (admission, fleet_status, inference_status, kube, meta, observe,
                             peering, placement, render_fleet, render_inference, render_nursing,
                             render_slice, render_transport, station_status, transport_status)
from medmec.operator.conditions import condition, is_true, merge, without_times
from medmec.operator.profiles import resolve_qos, snssai
from medmec.operator.settings import OperatorSettings
from medmec.operator.workload_status import (POD_PROBLEMS, PodView, failing_readiness, pod_view,
                                             slice_state, workload_status)

log = logging.getLogger(__name__)
MANAGED = {"app.kubernetes.io/managed-by": meta.FIELD_MANAGER}
RETRY_SECONDS = 5.0
# condition reasons that mean the user has something to fix: each change posts an Event
USER_PROBLEMS = {"SliceNotFound", "SliceNotAdmitted", "NoZones", "Unschedulable", "ModelNotInStore",
                 "MapNotFound", "InvalidMap", "RobotHomeNotOnMap", "RouteOffSlice", *POD_PROBLEMS}


@dataclasses.dataclass(frozen=True)
class WorkloadKind:
    """How one slice-bound kind (inference, dispatch, nursing) is rendered and reported."""
    kind: str
    plural: str
    component: str  # app.kubernetes.io/component of its pods
    children: Callable  # (body, slice, zones, settings) -> [objects]
    child_kinds: tuple[tuple[str, Callable[[dict], str]], ...]  # (kind, name of body) to delete
    want_ready: Callable[[dict], int]
    extra_status: Callable[[dict], dict]
    # why the spec cannot be deployed, as (reason, message); may read the cluster
    problem: Callable[[dict], tuple[str, str] | None] = lambda body: None
    # placed off the base stations the QoS controller marks to avoid (critical slices)
    follows_qos: bool = False
    # status read from the running workload: (body, settings, deployed) -> fields + conditions
    live_status: Callable[[dict, OperatorSettings, bool], dict] | None = None


def _eis_problem(body: dict) -> tuple[str, str] | None:
    message = render_inference.storage_uri_problem(body["spec"])
    return ("ModelNotInStore", message) if message else None


def _fleet_problem(body: dict) -> tuple[str, str] | None:
    ref = body["spec"]["mapRef"]
    return render_fleet.map_problem(body["spec"], kube.configmap_value(
        body["metadata"]["namespace"], ref["name"], ref.get("key", "map.json")))


def _transport_problem(body: dict) -> tuple[str, str] | None:
    try:
        ms = _stored_slice(body["metadata"]["namespace"], body["spec"]["sliceRef"]["name"])
    except Exception:  # unreadable now: the slice's own state is reported, the check reruns
        return None
    return render_transport.route_problem(body, ms)


def _stored_slice(namespace: str, name: str) -> dict | None:
    """The MedicalSlice as stored (its status holds the base stations' zones)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    try:
        return client.CustomObjectsApi(kube.api()).get_namespaced_custom_object(
            meta.GROUP, meta.VERSION, namespace, "medicalslices", name)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def _suffixed(child_name: Callable[[dict], str], suffix: str) -> Callable[[dict], str]:
    return lambda body: child_name(body) + suffix


WORKLOADS = {
    "EdgeInferenceService": WorkloadKind(
        "EdgeInferenceService", "edgeinferenceservices", "inference", render_inference.children,
        (("Deployment", render_inference.child_name), ("Service", render_inference.child_name),
         ("HorizontalPodAutoscaler", render_inference.child_name),
         ("PodDisruptionBudget", render_inference.child_name)),
        lambda b: b["spec"].get("scaling", {}).get("minReplicas", 1),
        lambda b: {"endpoints": render_inference.endpoints(b),
                   "servedVersions": render_inference.served_versions(b["spec"])},
        _eis_problem, follows_qos=True, live_status=inference_status.live_status),
    "CareRobotFleet": WorkloadKind(
        "CareRobotFleet", "carerobotfleets", "dispatch", render_fleet.children,
        (("Deployment", render_fleet.child_name), ("Service", render_fleet.child_name),
         ("ConfigMap", _suffixed(render_fleet.child_name, "-fleet"))),
        lambda b: 1,
        lambda b: {"endpoint": render_fleet.endpoint(b), "robotsDeclared": len(b["spec"]["robots"])},
        _fleet_problem, live_status=fleet_status.live_status),
    "CloudNursingService": WorkloadKind(
        "CloudNursingService", "cloudnursingservices", "nursing", render_nursing.children,
        (("Deployment", render_nursing.child_name), ("Service", render_nursing.child_name),
         ("ConfigMap", _suffixed(render_nursing.child_name, "-settings"))),
        lambda b: 1 if b["spec"].get("storage", {}).get("type", "embedded") == "embedded" else 2,
        lambda b: {"endpoint": render_nursing.endpoint(b)}),
    "EmergencyTransport": WorkloadKind(
        "EmergencyTransport", "emergencytransports", render_transport.COMPONENT,
        render_transport.children,
        (("Deployment", render_transport.mobility_name), ("Service", render_transport.mobility_name),
         ("ConfigMap", render_transport.mobility_name),
         *((kind, render_transport.nth_site_name(i)) for i in range(render_transport.MAX_SITES)
           for kind in ("Deployment", "Service"))),
        render_transport.want_ready,
        lambda b: {"endpoint": render_transport.endpoint(b), "sites": render_transport.sites(b)},
        _transport_problem, live_status=transport_status.live_status),
}
BY_COMPONENT = {w.component: w for w in WORKLOADS.values()}


def _plain(body) -> dict:
    """A detached copy of the parts of a kopf body the operator reads."""
    md = body["metadata"]
    return {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
            "metadata": {"name": md["name"], "namespace": md.get("namespace"), "uid": md["uid"],
                         "generation": md.get("generation"),
                         "creationTimestamp": md.get("creationTimestamp")},
            "spec": dict(body.get("spec") or {}), "status": dict(body.get("status") or {})}


def _one(index, key):
    """The single value an index holds under `key`, or None."""
    try:
        return next(iter(index[key]))
    except (KeyError, StopIteration):
        return None


class Operator:
    def __init__(self, settings: OperatorSettings):
        self.settings = settings
        self.lock = threading.RLock()
        self.admitted: dict[str, bool] = {}  # decisions not yet visible in the watched status
        self.decisions: dict[str, admission.Decision] = {}
        self.written: dict[tuple, dict] = {}  # last status written per (plural, ns, name)
        self.applied: dict[tuple, int] = {}  # generation whose children were all applied
        self.problems: dict[tuple, tuple[str, str]] = {}  # workloads whose spec cannot deploy
        self.status_locks: collections.defaultdict = collections.defaultdict(threading.Lock)
        # kopf indexes, bound by the first handler that runs
        self.slices = self.stations = self.workloads = self.pods = None
        self._nodes: tuple[float, dict[str, station_status.NodeView]] = (0.0, {})
        self.debounced: set[tuple] = set()
        self.placements: dict[tuple, list[str]] = {}  # QoS-driven base stations per slice seen
        self.background: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # kopf's, set at startup
        self.handler_context: contextvars.Context | None = None

    def bind(self, kwargs: dict) -> None:
        self.slices, self.stations = kwargs["slice_index"], kwargs["station_index"]
        self.workloads = kwargs["workload_index"]
        self.pods = kwargs["pod_index"]
        if self.handler_context is None:
            # kopf's context as handlers see it (its event queue included), for the re-checks:
            # they run from a task started before kopf set all of it
            self.handler_context = contextvars.copy_context()

    def nodes(self, max_age: float = 10.0) -> dict[str, station_status.NodeView]:
        """Node name -> zone, allocatable GPUs and readiness, listed at most every `max_age` s.

        Listed rather than watched: nodes change with every heartbeat, zones and GPUs seldom."""
        listed_at, nodes = self._nodes
        if time.monotonic() - listed_at > max_age:
            nodes = {v.name: v for v in map(station_status.node_view, kube.list_nodes())}
            self._nodes = (time.monotonic(), nodes)
        return nodes

    # ---- admission ---------------------------------------------------------------------

    def _station_map(self) -> dict[str, admission.Station]:
        return {name: st for name, store in self.stations.items() for st in store}

    def _claims(self) -> list[admission.Claim]:
        """Every slice with a valid QoS contract, as a claim on its base stations."""
        claims = []
        for (ns, name), store in list(self.slices.items()):
            for ms in store:
                try:
                    qos = resolve_qos(ms["spec"])
                except ValueError:
                    continue  # reported as InvalidSpec by its own reconcile
                previously = self.admitted.get(
                    f"{ns}/{name}", is_true(ms["status"].get("conditions"), "Admitted"))
                claims.append(admission.Claim(ns, name, ms["metadata"]["creationTimestamp"] or "",
                                              qos.uplinkMbps, qos.downlinkMbps,
                                              tuple(ms["spec"].get("baseStations") or ()),
                                              previously))
        return claims

    def decide(self) -> dict[str, admission.Decision]:
        """Admission decisions for all slices, from the index plus our own newer decisions."""
        with self.lock:
            claims = self._claims()
            decisions = admission.decide(self._station_map(), claims)
            before = sum(self.admitted.values())
            self.admitted = {k: d.admitted for k, d in decisions.items()}
            self.decisions = decisions
            observe.admitted_changed(sum(self.admitted.values()) - before)
            return decisions

    def zones_of(self, base_stations: list[str]) -> list[str]:
        return placement.zones({n: st.zone for n, st in self._station_map().items()}, base_stations)

    # ---- slices ------------------------------------------------------------------------

    def reconcile_slice(self, body) -> None:
        ms = _plain(body)
        ns, name = ms["metadata"]["namespace"], ms["metadata"]["name"]
        with observe.reconcile("MedicalSlice", ns, name) as outcome:
            old = ms["status"]
            try:
                qos = resolve_qos(ms["spec"])
            except ValueError as err:
                outcome.value = "invalid"
                self._write_slice(body, ms, {"phase": "Failed"}, [
                    condition("Admitted", False, "InvalidSpec", str(err)),
                    condition("Isolated", False, "NotAdmitted", "not admitted"),
                    condition("Ready", False, "InvalidSpec", str(err))])
                return
            decision = self.decide().get(f"{ns}/{name}")
            zones = self.zones_of(placement.covered_base_stations(ms))
            stations = self._station_map()
            status: dict = {"snssai": snssai(ms["spec"]), "qos": qos.model_dump()}
            if decision and decision.admitted:
                priority = ms["spec"].get("priority", "standard")
                kube.apply(render_slice.priority_class(priority))
                kube.apply(render_slice.namespace_security(ms, self.settings.pod_security_level))
                for obj in render_slice.children(ms, qos, zones):
                    kube.apply(obj)
                isolation = ms["spec"].get("isolation", "strict")
                status.update(
                    phase="Ready", priorityClassName=meta.priority_class_name(priority),
                    allocations=[{"baseStation": bs, "zone": stations[bs].zone,
                                  "uplinkMbps": qos.uplinkMbps, "downlinkMbps": qos.downlinkMbps}
                                 for bs in ms["spec"]["baseStations"]])
                conds = [condition("Admitted", True, decision.reason, decision.message),
                         condition("Isolated", True, f"{isolation.capitalize()}Isolation",
                                   f"NetworkPolicy {name}-isolation admits "
                                   + ("only this slice's pods" if isolation == "strict"
                                      else "pods of this namespace") + " and allowedIngress"),
                         condition("Ready", True, "ContractInPlace",
                                   f"quota {name}-budget, policy {name}-isolation and "
                                   f"contract {name}-qos are in place")]
            else:
                outcome.value = "refused"
                if is_true(old.get("conditions"), "Admitted"):
                    for kind, suffix in (("ResourceQuota", "-budget"), ("NetworkPolicy", "-isolation"),
                                         ("ConfigMap", "-qos")):
                        kube.delete(kind, ns, name + suffix)
                reason = decision.reason if decision else "Pending"
                message = decision.message if decision else "waiting for admission"
                status.update(phase="OverCapacity" if reason == "OverCapacity" else "Pending",
                              allocations=[])
                conds = [condition("Admitted", False, reason, message),
                         condition("Isolated", False, "NotAdmitted", "no isolation until admitted"),
                         condition("Ready", False, reason, message)]
            if self._write_slice(body, ms, status, conds):
                self.refresh_stations()
                self.refresh_workloads_of(ns, name)

    def _write_slice(self, body, ms: dict, status: dict, conds: list[dict]) -> bool:
        """Write the slice status if it changed; post an Event when admission changed."""
        md = ms["metadata"]
        key = ("medicalslices", md["namespace"], md["name"])
        old = self.written.get(key) or ms["status"]
        status = {**status, "observedGeneration": md["generation"],
                  "conditions": merge(old.get("conditions"), conds, md["generation"])}
        if _same(old, status):
            return False
        # applied, not merge-patched: the QoS controller writes QoSMet and status.qos.measured
        # / avoidBaseStations on the same status, and those stay its own
        kube.apply_status("medicalslices", {
            "apiVersion": ms["apiVersion"], "kind": ms["kind"],
            "metadata": {"name": md["name"], "namespace": md["namespace"]}, "status": status})
        self.written[key] = status
        before = next((c for c in old.get("conditions") or [] if c["type"] == "Admitted"), {})
        admitted = conds[0]
        if (before.get("status"), before.get("reason")) != (admitted["status"], admitted["reason"]):
            kopf.event(body, type="Normal" if admitted["status"] == "True" else "Warning",
                       reason=admitted["reason"], message=admitted["message"])
        return True

    def slice_gone(self, namespace: str, name: str) -> None:
        self.written.pop(("medicalslices", namespace, name), None)
        self.placements.pop((namespace, name), None)
        self.reconcile_waiting()  # the freed capacity goes to waiting slices now
        self.refresh_stations()
        self.refresh_workloads_of(namespace, name)

    async def recheck_forever(self) -> None:
        """Every recheck_seconds: waiting slices try admission again, base-station ledgers
        are recounted. A loop of our own rather than kopf timers, which would put a
        finalizer on every resource and block deletions while the operator is down."""
        while True:
            await asyncio.sleep(self.settings.recheck_seconds)
            if self.slices is None:
                continue  # no handler has run yet: the indexes are not bound
            try:
                if await asyncio.to_thread(self.standing_by):
                    continue  # kopf has paused this replica: the active one re-checks
                await asyncio.get_running_loop().run_in_executor(
                    None, self.handler_context.copy().run, self.recheck_once)
            except Exception:
                log.exception("periodic re-check failed; next one in %s s",
                              self.settings.recheck_seconds)

    def standing_by(self) -> bool:
        """Whether another replica is the active one (as kopf's peering decides)."""
        if not self.settings.peering:
            return False
        # with a list of namespaces every replica joins the peering object of each of them
        namespace = self.settings.namespaces[0] if self.settings.namespaces else None
        return peering.standing_by(kube.peering_status(self.settings.peering, namespace),
                                   self.settings.peering_priority)

    def recheck_once(self) -> None:
        self.reconcile_waiting()
        self.refresh_stations()
        for plural, ns, name in list(self.problems):  # e.g. a map ConfigMap created since
            body = _one(self.workloads, (plural, ns, name))
            if body is not None:
                self.reconcile_workload(_by_plural(plural), body)
        # a fleet's robots online, a readiness probe failing past its grace: things that
        # change without a watch event of ours (written only when something changed)
        for plural, ns, name in list(self.workloads.keys()):
            self.status_soon(_by_plural(plural), ns, name)

    def reconcile_waiting(self) -> None:
        """Reconcile the slices whose written status does not show them admitted."""
        for (ns, name), store in list(self.slices.items()):
            for ms in store:
                shown = self.written.get(("medicalslices", ns, name)) or ms["status"]
                if not is_true(shown.get("conditions"), "Admitted"):
                    self.reconcile_slice(ms)

    # ---- base stations -----------------------------------------------------------------

    def station_gone(self, name: str) -> None:
        """A base station was deleted: the slices covering it lose their reservation."""
        for memory in (self.written, self.status_locks):
            memory.pop(("basestations", None, name), None)
        for store in list(self.slices.values()):
            for ms in store:
                if name in (ms["spec"].get("baseStations") or []):
                    self.reconcile_slice(ms)

    def refresh_stations(self) -> None:
        for name in list(self.stations.keys()):
            self.refresh_station(name)

    def refresh_station(self, name: str) -> None:
        station = self._station_map().get(name)
        if station is None:
            return
        key = ("basestations", None, name)
        # one refresh of a station at a time (handlers and the re-check run in threads):
        # otherwise an older count can be written after a newer one while `written`
        # remembers the newer, and the ledger stays wrong
        with observe.reconcile("BaseStation", None, name), self.status_locks[key]:
            claims = self._claims()
            usage = admission.usage_by_station({name: station}, claims, self.decisions)[name]
            nodes = list(self.nodes().values())
            site = [n for n in nodes if n.zone == station.zone]
            ready = station_status.ready_condition(station.zone, nodes)
            old = self.written.get(key) or {"conditions": list(station.conditions)}
            status = {"allocatedUplinkMbps": usage.uplink_mbps,
                      "allocatedDownlinkMbps": usage.downlink_mbps,
                      "slices": usage.slices,
                      "gpuNodes": sorted(n.name for n in site if n.gpus),
                      "allocatableGPUs": sum(n.gpus for n in site),
                      "conditions": merge(old.get("conditions"), [ready], None)}
            if not _same(old, status):
                kube.patch_status("basestations", None, name, status)
                self.written[key] = status
                was = next((c for c in old.get("conditions") or [] if c["type"] == "Ready"), {})
                if (was.get("status"), was.get("reason")) != (ready["status"], ready["reason"]):
                    kopf.event({"apiVersion": meta.API_VERSION, "kind": "BaseStation",
                                "metadata": {"name": name, "uid": station.uid}},
                               type="Normal" if ready["status"] == "True" else "Warning",
                               reason=ready["reason"], message=ready["message"])

    # ---- workloads (inference, dispatch, nursing) --------------------------------------

    def placement_changed(self, namespace: str, name: str, ms: dict) -> bool:
        """Whether the base stations QoS-following workloads of this slice must run on
        differ from those seen in the slice's previous watch event (called on the loop)."""
        now = placement.slice_base_stations(ms, follows_qos=True)
        before = self.placements.get((namespace, name))
        self.placements[(namespace, name)] = now
        return before is not None and before != now

    def _slice_of(self, namespace: str, slice_name: str, wk: WorkloadKind
                  ) -> tuple[dict | None, list[str]]:
        """The slice as the workload sees it (admission as decided now, the rest as watched)
        and the zones the workload must run in."""
        ms = _one(self.slices, (namespace, slice_name))
        if ms is None:
            return None, []
        decision = self.decisions.get(f"{namespace}/{slice_name}")
        if decision is None:
            decision = self.decide().get(f"{namespace}/{slice_name}")
        admitted = condition("Admitted", bool(decision and decision.admitted),
                             decision.reason if decision else "Pending",
                             decision.message if decision else "waiting for admission")
        zones = self.zones_of(placement.slice_base_stations(ms, wk.follows_qos))
        stations = self._station_map()
        # per base station, for workloads placed site by site (EmergencyTransport)
        zone_of = {bs: stations[bs].zone for bs in ms["spec"].get("baseStations") or []
                   if bs in stations}
        return {**ms, "status": {**ms["status"], "conditions": [admitted],
                                 "baseStationZones": zone_of}}, zones

    def reconcile_workload(self, wk: WorkloadKind, body: dict) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        with observe.reconcile(wk.kind, ns, name) as outcome:
            slice_name = body["spec"]["sliceRef"]["name"]
            ms, zones = self._slice_of(ns, slice_name, wk)
            state = slice_state(ms, slice_name, zones)
            problem = wk.problem(body)
            key = (wk.plural, ns, name)
            if problem:
                self.problems[key] = problem
            else:
                self.problems.pop(key, None)
            if state.ok and not problem:
                for obj in wk.children(body, ms, zones, self.settings):
                    kube.apply(obj)
                self.applied[key] = body["metadata"]["generation"]
            else:
                self.applied.pop(key, None)
                outcome.value = "waiting" if not problem else "invalid"
                deployed = (is_true(body["status"].get("conditions"), "SliceReady")
                            or self._pods(wk, ns, name))
                if deployed:
                    for kind, child_name in wk.child_kinds:
                        kube.delete(kind, ns, child_name(body))
            # written after kopf has recorded this handling, else that write's watch event
            # would look like an unhandled creation and run this reconcile a second time
            self.status_soon(wk, ns, name)

    def _pods(self, wk: WorkloadKind, namespace: str, name: str) -> list[PodView]:
        try:
            return list(self.pods[(namespace, wk.component, name)])
        except KeyError:
            return []

    def refresh_status(self, wk: WorkloadKind, body: dict) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        key = (wk.plural, ns, name)
        with self.status_locks[key]:
            slice_name = body["spec"]["sliceRef"]["name"]
            ms, zones = self._slice_of(ns, slice_name, wk)
            state = slice_state(ms, slice_name, zones)
            node_zones = {n.name: n.zone for n in self.nodes().values()}
            generation = body["metadata"]["generation"]
            pods = self._pods(wk, ns, name)
            computed = workload_status(state, pods, node_zones,
                                       wk.want_ready(body), self.problems.get(key),
                                       applied=self.applied.get(key, 0) >= generation,
                                       probe_messages=_probe_messages(ns, pods))
            old = self.written.get(key) or body["status"]
            live = wk.live_status(body, self.settings, key in self.applied) if wk.live_status else {}
            status = {**computed, **wk.extra_status(body), **live, "observedGeneration": generation,
                      "conditions": merge(old.get("conditions"),
                                          computed["conditions"] + live.get("conditions", []),
                                          generation)}
            if _same(old, status):
                return
            kube.patch_status(wk.plural, ns, name, status)
            self.written[key] = status
            before = {c["type"]: c for c in old.get("conditions") or []}
            for cond in status["conditions"]:
                was = before.get(cond["type"], {})
                if cond["status"] == "False" and cond["reason"] in USER_PROBLEMS \
                        and was.get("reason") != cond["reason"]:
                    kopf.event(body, type="Warning", reason=cond["reason"], message=cond["message"])

    def refresh_workloads_of(self, namespace: str, slice_name: str) -> None:
        for (plural, ns, _), store in list(self.workloads.items()):
            if ns != namespace:
                continue
            for body in store:
                if body["spec"]["sliceRef"]["name"] == slice_name:
                    self.reconcile_workload(_by_plural(plural), body)

    def pod_changed(self, labels: dict, namespace: str) -> None:
        wk = BY_COMPONENT.get(labels.get("app.kubernetes.io/component", ""))
        name = labels.get("app.kubernetes.io/instance")
        if wk is not None and name:
            self.status_soon(wk, namespace, name)

    def status_soon(self, wk: WorkloadKind, namespace: str, name: str) -> None:
        """Refresh a workload's status shortly (from any thread): a pod's start is a burst
        of events, and one status write after the burst says what several would."""
        key = (wk.plural, namespace, name)

        def refresh() -> None:
            body = _one(self.workloads, key)
            if body is not None:
                self.refresh_status(wk, body)
        self.loop.call_soon_threadsafe(self.soon, key, refresh, self.settings.status_delay_seconds)

    def soon(self, key: tuple, fn: Callable[[], None], delay: float) -> None:
        """Run `fn` in a worker thread after `delay` s, once for all calls with `key` meanwhile
        (called from the event loop); a failure is logged and retried a little later."""
        if key in self.debounced:
            return
        self.debounced.add(key)
        loop = asyncio.get_running_loop()

        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("status refresh of %s failed; retrying", "/".join(map(str, key)))
                loop.call_soon_threadsafe(self.soon, key, fn, RETRY_SECONDS)

        def fire() -> None:
            self.debounced.discard(key)
            loop.run_in_executor(None, contextvars.copy_context().run, run)
        loop.call_later(delay, fire)

    def workload_gone(self, wk: WorkloadKind, namespace: str, name: str) -> None:
        for memory in (self.written, self.applied, self.problems, self.status_locks):
            memory.pop((wk.plural, namespace, name), None)


async def _in_thread(fn: Callable, *args) -> None:
    """Run blocking `fn` in a worker thread with kopf's context (kopf.event needs it)."""
    await asyncio.get_running_loop().run_in_executor(None, contextvars.copy_context().run, fn, *args)


def _probe_messages(namespace: str, pods: list[PodView]) -> dict[str, str]:
    """The last readiness-probe failure of each pod not ready past the grace (from Events)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    messages = {}
    for pod in pods:
        if failing_readiness(pod, now) and (message := kube.probe_failure(namespace, pod.name)):
            messages[pod.name] = message
    return messages


def _by_plural(plural: str) -> WorkloadKind:
    return next(w for w in WORKLOADS.values() if w.plural == plural)


def _same(old: dict, new: dict) -> bool:
    """Whether writing `new` would change nothing: only its own fields and condition types
    count (other writers' conditions, such as QoSMet, are theirs)."""
    types = {c["type"] for c in new.get("conditions") or []}
    strip = lambda s: {**s, "conditions": without_times(  # noqa: E731
        [c for c in s.get("conditions") or [] if c.get("type") in types])}
    return strip({k: old.get(k) for k in new}) == strip(new)


def register(settings: OperatorSettings, registry: kopf.OperatorRegistry | None = None
             ) -> tuple[kopf.OperatorRegistry, Operator]:
    """Register every handler on `registry` (a fresh one by default)."""
    registry = registry or kopf.OperatorRegistry()
    op = Operator(settings)
    group = meta.GROUP

    @kopf.on.login(registry=registry)
    def login(**kwargs):
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def start_rechecks(**_):
        op.loop = asyncio.get_running_loop()
        op.background = asyncio.create_task(op.recheck_forever())

    @kopf.on.cleanup(registry=registry)
    async def stop_rechecks(**_):
        op.background.cancel()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_):
        # progress and last-handled state in annotations: the CRD status schemas are ours
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=group)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=group, key="last-handled-configuration")
        settings.posting.level = logging.WARNING  # Events for problems, not for every success
        settings.execution.max_workers = op.settings.workers
        # a standby takes over this long after an active replica vanished without a word
        # (a graceful stop hands over at once: kopf removes its peering record on exit)
        settings.peering.lifetime = op.settings.peering_lifetime_seconds

    # ---- indexes: the whole picture every decision is made from -----------------------

    @kopf.index(group, "medicalslices", id="slice_index", registry=registry)
    def slice_index(namespace, name, body, **_):
        return {(namespace, name): _plain(body)}

    @kopf.index(group, "basestations", id="station_index", registry=registry)
    def station_index(name, spec, status, uid, **_):
        return {name: admission.Station(name, spec["zone"], spec["uplinkMbps"], spec["downlinkMbps"],
                                        uid, tuple(dict(c) for c in status.get("conditions") or []))}

    @kopf.index("pods", labels=MANAGED, id="pod_index", registry=registry)
    def pod_index(namespace, labels, body, **_):
        component = labels.get("app.kubernetes.io/component")
        if component not in BY_COMPONENT:
            return None
        return {(namespace, component, labels.get("app.kubernetes.io/instance")): pod_view(body)}

    def workload_index(namespace, name, body, **_):
        return {(WORKLOADS[body["kind"]].plural, namespace, name): _plain(body)}

    for wk in WORKLOADS.values():
        kopf.index(group, wk.plural, id="workload_index", registry=registry)(workload_index)

    # ---- slices ------------------------------------------------------------------------

    @kopf.on.resume(group, "medicalslices", id="reconcile", registry=registry)
    @kopf.on.create(group, "medicalslices", id="reconcile", registry=registry)
    @kopf.on.update(group, "medicalslices", id="reconcile", registry=registry)
    def slice_changed(body, **kwargs):
        op.bind(kwargs)
        op.reconcile_slice(body)

    @kopf.on.event(group, "medicalslices", id="release", registry=registry)
    async def slice_event(event, namespace, name, body, **kwargs):
        op.bind(kwargs)
        if event.get("type") == "DELETED":
            await _in_thread(op.slice_gone, namespace, name)
        # the QoS controller changes only the slice's status, which kopf's update handlers
        # do not see: its avoid list reaches the workloads from here
        elif op.placement_changed(namespace, name, body):
            await _in_thread(op.refresh_workloads_of, namespace, name)

    # ---- base stations -----------------------------------------------------------------

    @kopf.on.resume(group, "basestations", id="refresh", registry=registry)
    @kopf.on.create(group, "basestations", id="refresh", registry=registry)
    @kopf.on.update(group, "basestations", id="refresh", registry=registry)
    def station_changed(name, **kwargs):
        op.bind(kwargs)
        op.decide()
        op.refresh_station(name)

    @kopf.on.event(group, "basestations", id="release", registry=registry)
    async def station_event(event, name, **kwargs):
        if event.get("type") == "DELETED":
            op.bind(kwargs)
            await _in_thread(op.station_gone, name)

    # ---- workloads ---------------------------------------------------------------------

    def workload_changed(body, **kwargs):
        op.bind(kwargs)
        op.reconcile_workload(WORKLOADS[body["kind"]], _plain(body))

    async def workload_event(event, body, namespace, name, **kwargs):
        if event.get("type") == "DELETED":
            op.workload_gone(WORKLOADS[body["kind"]], namespace, name)

    for wk in WORKLOADS.values():
        for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
            on(group, wk.plural, id="reconcile", registry=registry)(workload_changed)
        kopf.on.event(group, wk.plural, id="forget", registry=registry)(workload_event)

    @kopf.on.event("pods", labels=MANAGED, id="pod", registry=registry)
    async def pod_event(labels, namespace, **kwargs):
        op.bind(kwargs)
        op.pod_changed(dict(labels), namespace)

    return registry, op
