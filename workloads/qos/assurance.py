"""The continuous QoS controller: one LinkProbe per slice and probed base station, an
evaluation of every slice each `evaluate_every_s`, and the actions a verdict calls for
(status, Events, alerts, the avoid list that moves critical services, OpenTelemetry)."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging

import httpx
from opentelemetry import metrics

from medmec.operator.placement import required_base_stations
from medmec.operator.profiles import resolve_qos

from . import placement, slice_status
from .alerts import AlertSink, alert
from .budget import Policy, Verdict, judge, slice_condition
from .endpoints import Endpoints
from .kube import Conflict, SliceApi
from .link import DSCP, LinkProbe, burst_size
from .triton_metrics import fetch_p99_ms

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ProbeSettings:
    interval_s: float = 1.0
    timeout_s: float = 1.0
    burst_every_s: float = 60.0
    burst_seconds_of_contract: float = 0.2  # a burst carries this long of the contract rate
    burst_max_s: float = 2.0


Key = tuple[str, str, str]  # namespace, slice, base station


class Assurance:
    def __init__(self, api: SliceApi, links: dict[str, tuple[str, int]], *,
                 policy: Policy = Policy(), probe: ProbeSettings = ProbeSettings(),
                 hold_down_s: float = 300.0, evaluate_every_s: float = 5.0,
                 endpoints: Endpoints = Endpoints(), alerts: AlertSink | None = None,
                 namespace: str | None = None):
        self.api, self.links, self.policy, self.probe = api, links, policy, probe
        self.hold_down_s, self.evaluate_every_s = hold_down_s, evaluate_every_s
        self.endpoints, self.alerts, self.namespace = endpoints, alerts or AlertSink(None), namespace
        self.probes: dict[Key, tuple[LinkProbe, asyncio.Task]] = {}
        self.burst_locks: dict[str, asyncio.Lock] = {}
        self.latest: dict[Key, Verdict] = {}
        self._http = httpx.AsyncClient()
        self._instruments()

    def _instruments(self) -> None:
        meter = metrics.get_meter("medmec.qos")

        def gauge(name: str, unit: str, description: str, value):
            def observe(_options):
                for (ns, sl, bs), v in list(self.latest.items()):
                    x = value(v)
                    if x is not None:
                        yield metrics.Observation(x, {"k8s.namespace.name": ns,
                                                      "medmec.slice.name": sl,
                                                      "medmec.base_station.name": bs})
            meter.create_observable_gauge(name, [observe], unit=unit, description=description)

        ms = 1e-3
        gauge("medmec.qos.link.rtt.p50", "s", "Round-trip time, window median",
              lambda v: v.figures.rtt_p50_ms and v.figures.rtt_p50_ms * ms)
        gauge("medmec.qos.link.rtt.p99", "s", "Round-trip time, window 99th percentile",
              lambda v: v.figures.rtt_p99_ms and v.figures.rtt_p99_ms * ms)
        gauge("medmec.qos.link.jitter", "s", "RFC 3550 interarrival jitter estimate",
              lambda v: v.figures.jitter_ms and v.figures.jitter_ms * ms)
        gauge("medmec.qos.link.loss", "1", "Fraction of probes lost in the window",
              lambda v: v.figures.loss_ratio)
        gauge("medmec.qos.link.uplink", "bit/s", "Achieved uplink burst throughput",
              lambda v: v.figures.uplink_mbps and v.figures.uplink_mbps * 1e6)
        gauge("medmec.qos.link.downlink", "bit/s", "Achieved downlink burst throughput",
              lambda v: v.figures.downlink_mbps and v.figures.downlink_mbps * 1e6)
        gauge("medmec.qos.end_to_end", "s", "Network p99 plus inference p99",
              lambda v: v.end_to_end_ms and v.end_to_end_ms * ms)
        gauge("medmec.qos.link.met", "1", "1 while the link meets the slice's budget",
              lambda v: None if v.ok is None else int(v.ok))

    # -- probes -------------------------------------------------------------------------
    def _start_probe(self, key: Key, medical_slice: dict) -> None:
        host, port = self.links[key[2]]
        qos = resolve_qos(medical_slice["spec"])
        burst = burst_size(max(qos.uplinkMbps, qos.downlinkMbps),
                           self.probe.burst_seconds_of_contract)
        probe = LinkProbe(host, port, interval_s=self.probe.interval_s,
                          timeout_s=self.probe.timeout_s, window_s=self.policy.window_s,
                          burst_bytes=burst, burst_every_s=self.probe.burst_every_s,
                          burst_max_s=self.probe.burst_max_s,
                          dscp=DSCP.get(medical_slice["spec"]["sliceType"]),
                          burst_lock=self.burst_locks.setdefault(key[2], asyncio.Lock()))
        self.probes[key] = (probe, asyncio.create_task(probe.run(), name=f"probe {key}"))

    async def _stop_probe(self, key: Key) -> None:
        _, task = self.probes.pop(key)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self.latest.pop(key, None)

    async def sync(self) -> list[dict]:
        """Probe exactly the (slice, base station) pairs that exist and have a link."""
        slices = await self.api.slices(self.namespace)
        wanted = {}
        for ms in slices:
            for bs in ms["spec"]["baseStations"]:
                if bs in self.links:
                    wanted[(ms["metadata"]["namespace"], ms["metadata"]["name"], bs)] = ms
        for key in [k for k in self.probes if k not in wanted]:
            await self._stop_probe(key)
        for key, ms in wanted.items():
            if key not in self.probes:
                self._start_probe(key, ms)
        return slices

    # -- evaluation ---------------------------------------------------------------------
    async def inference_p99_ms(self, namespace: str, slice_name: str) -> float | None:
        services = await self.api.inference_services(namespace, slice_name)
        values = await asyncio.gather(*(
            fetch_p99_ms(self._http, self.endpoints.inference_metrics(e), e["spec"]["model"]["name"])
            for e in services))
        values = [v for v in values if v is not None]
        return max(values) if values else None

    async def evaluate(self, medical_slice: dict) -> None:
        ns, name = medical_slice["metadata"]["namespace"], medical_slice["metadata"]["name"]
        probed = [bs for bs in medical_slice["spec"]["baseStations"] if (ns, name, bs) in self.probes]
        if not probed:
            return
        qos = resolve_qos(medical_slice["spec"])
        p99 = await self.inference_p99_ms(ns, name)
        verdicts = []
        for bs in probed:
            samples, uplink, downlink = self.probes[(ns, name, bs)][0].window()
            verdicts.append(judge(bs, samples, qos, self.policy, uplink, downlink, p99))
            self.latest[(ns, name, bs)] = verdicts[-1]
        for _ in range(3):
            try:
                await self._write(medical_slice, verdicts)
                return
            except Conflict:
                medical_slice = await self.api.get_slice(ns, name)
        log.warning("slice %s/%s kept changing; its QoS status waits for the next round", ns, name)

    async def _write(self, medical_slice: dict, verdicts: list[Verdict]) -> None:
        ns, name = medical_slice["metadata"]["namespace"], medical_slice["metadata"]["name"]
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        old_avoid, old_since, old_condition = slice_status.previous(medical_slice)
        old_met = (old_condition or {}).get("status", "Unknown")
        since = {v.base_station: placement.healthy_since(old_since.get(v.base_station), v.ok, now)
                 for v in verdicts}
        critical = medical_slice["spec"].get("priority") == "critical"
        avoid = placement.next_avoid(old_avoid, medical_slice["spec"]["baseStations"],
                                     {v.base_station: v.ok for v in verdicts}, since, now,
                                     self.hold_down_s, critical)
        condition = slice_status.carried_over(slice_condition(verdicts, avoid), old_condition)
        body = slice_status.patch(medical_slice, verdicts, since, avoid, condition, now)
        await self.api.patch_status(ns, name, body)

        started = next(c["lastTransitionTime"] for c in body["status"]["conditions"]
                       if c["type"] == "QoSMet")
        if condition["status"] == "False":
            if old_met != "False":
                log.warning("QoS breach on slice %s/%s: %s", ns, name, condition["message"])
                await self.api.event(medical_slice, "Warning", "QoSBreach", condition["message"])
            await self.alerts.send([alert(ns, name, critical, condition, started)])
        elif old_met == "False" and condition["status"] == "True":
            log.info("slice %s/%s meets its QoS budget again", ns, name)
            await self.api.event(medical_slice, "Normal", "QoSRecovered", condition["message"])
            await self.alerts.send([alert(ns, name, critical, old_condition,
                                          old_condition.get("lastTransitionTime", started),
                                          ends_at=slice_status.timestamp(now))])
        if sorted(avoid) != sorted(old_avoid):
            allowed = required_base_stations(medical_slice["spec"]["baseStations"], avoid)
            await self.api.event(medical_slice, "Warning" if avoid else "Normal",
                                 "PlacementShifted" if avoid else "PlacementRestored",
                                 f"critical inference services now placed on {', '.join(allowed)}"
                                 + (f" (avoiding {', '.join(avoid)})" if avoid else ""))

    async def run(self, resync_s: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        next_sync = 0.0
        try:
            while True:
                if loop.time() >= next_sync:
                    await self.sync()
                    next_sync = loop.time() + resync_s
                await asyncio.sleep(self.evaluate_every_s)
                # evaluate what the API holds now (another writer may have changed the slice)
                for ms in await self.api.slices(self.namespace):
                    try:
                        await self.evaluate(ms)
                    except Exception:  # one bad slice must not stop the watch over the others
                        log.exception("evaluating slice %s/%s failed",
                                      ms["metadata"]["namespace"], ms["metadata"]["name"])
        finally:
            await self.close()

    async def close(self) -> None:
        for key in list(self.probes):
            await self._stop_probe(key)
        await self._http.aclose()
        await self.alerts.close()
