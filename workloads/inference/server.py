"""`medmec serve inference`: a Triton server (pytriton) answering KServe v2 over HTTP and gRPC,
with ONNX Runtime running inside the bound inference callable.

Per request: bad values are refused on their own (HTTP 400 / gRPC INVALID_ARGUMENT), the
canary split picks the version, and per case the answer carries the class probabilities,
the confidence, which model decided and why (escalated or not), and the serving version.
"""
from __future__ import annotations

import logging
import os
import random
import signal
import sys
import sysconfig
import urllib.request

import numpy as np
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from medmec import netutil, telemetry
from medmec.workloads.inference import request_errors, routing, runtime
from medmec.workloads.inference.escalation import EscalationClient, HardExampleRecorder
from medmec.workloads.inference.settings import ServerSettings
from medmec.workloads.modelstore.store import ModelStore, StoreError, StoreSettings

log = logging.getLogger("medmec.inference")
tracer = trace.get_tracer("medmec.inference")

OUTPUTS = ("probabilities", "confidence", "label", "decided_by", "model_version", "reason")
PROVIDER_METRIC = "medmec_inference_execution_provider"


class Metrics:
    """medmec's own counters, next to Triton's (scraped from its metrics port) on one endpoint."""

    def __init__(self, triton_metrics_url: str | None):
        self.registry = CollectorRegistry()
        self.cases = Counter("medmec_inference_cases", "Cases answered, by serving version",
                             ["model", "version"], registry=self.registry)
        self.rejected = Counter("medmec_inference_rejected_requests",
                                "Requests refused for bad input values", ["model"],
                                registry=self.registry)
        self.escalations = Counter("medmec_inference_escalations",
                                   "Low-confidence cases sent to the escalation model, by outcome",
                                   ["model", "outcome"], registry=self.registry)
        self.hard_examples_dropped = Counter("medmec_inference_hard_examples_dropped",
                                             "Escalated cases not kept (queue full)",
                                             ["model"], registry=self.registry)
        # read by the operator into EdgeInferenceService status.executionProvider
        self.provider = Gauge(PROVIDER_METRIC, "1 for the ONNX Runtime execution provider "
                              "that serves each loaded model version",
                              ["model", "version", "provider"], registry=self.registry)
        if triton_metrics_url:
            self.registry.register(_TritonMetrics(triton_metrics_url))


class _TritonMetrics:
    """A collector that re-exports Triton's nv_inference_* metrics."""

    def __init__(self, url: str):
        self.url = url

    def collect(self):
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return []
        return list(text_string_to_metric_families(text))


class InferenceHandler:
    """The callable bound to Triton: a list of requests in, one result per request out."""

    def __init__(self, stable: runtime.LoadedModel, canary: runtime.LoadedModel | None,
                 canary_percent: float, metrics: Metrics,
                 escalation: EscalationClient | None = None,
                 escalation_threshold: float | None = None,
                 recorder: HardExampleRecorder | None = None, seed: int | None = None):
        self.stable, self.canary, self.canary_percent = stable, canary, canary_percent
        self.escalation, self.threshold = escalation, escalation_threshold
        self.recorder, self.metrics = recorder, metrics
        self.input_name = stable.input["name"]
        self._random = random.Random(seed)

    def __call__(self, requests):
        with tracer.start_as_current_span(f"infer {self.stable.name}") as span:
            span.set_attribute("medmec.model.name", self.stable.name)
            span.set_attribute("medmec.inference.requests", len(requests))
            return self._answer(requests, span)

    def _answer(self, requests, span):
        results: list[dict | None] = [None] * len(requests)
        groups: dict[str, tuple[runtime.LoadedModel, list[int]]] = {}  # by serving version
        for i, request in enumerate(requests):
            batch = request[self.input_name]
            problem = routing.check_values(self.input_name, batch)
            if problem:
                self.metrics.rejected.labels(self.stable.name).inc()
                results[i] = request_errors.error_response(problem)
                continue
            model = self._pick()
            groups.setdefault(model.version, (model, []))[1].append(i)

        accepted = sum(len(indices) for _, indices in groups.values())
        span.set_attribute("medmec.inference.rejected", len(requests) - accepted)
        for model, indices in groups.values():
            batches = [requests[i][self.input_name] for i in indices]
            cases = np.concatenate(batches)
            with tracer.start_as_current_span(f"run {model.tag}") as run_span:
                run_span.set_attribute("medmec.model.version", model.version)
                run_span.set_attribute("medmec.inference.cases", len(cases))
                probabilities = model.probabilities(cases)
                self.metrics.cases.labels(model.name, model.version).inc(len(cases))
                answers = self._decide(model, cases, probabilities, run_span)
            start = 0
            for i, b in zip(indices, batches):
                results[i] = {k: v[start:start + len(b)] for k, v in answers.items()}
                start += len(b)
        return results

    def _pick(self) -> runtime.LoadedModel:
        if self.canary and routing.use_canary(self.canary_percent, self._random.random()):
            return self.canary
        return self.stable

    def _decide(self, model, cases: np.ndarray, probabilities: np.ndarray, span) -> dict:
        """Escalate the low-confidence cases; build the per-case outputs."""
        n = len(cases)
        edge_probabilities = probabilities.copy()
        conf = routing.confidence(probabilities)
        decided = [model.tag] * n
        reasons = [routing.reason_kept(float(c), self.threshold) for c in conf]
        hard = np.flatnonzero(routing.to_escalate(conf, self.threshold))
        if len(hard) and self.escalation is not None:
            span.set_attribute("medmec.inference.escalated", len(hard))
            try:
                second, tags = self.escalation.classify(self.input_name, cases[hard])
            except Exception as err:  # the edge answer stands when the second opinion is away
                self.metrics.escalations.labels(model.name, "failed").inc(len(hard))
                log.warning("escalation to %s failed: %s", self.escalation.model, err)
                for j in hard:
                    reasons[j] = routing.reason_escalation_failed(float(conf[j]), self.threshold,
                                                                  type(err).__name__)
            else:
                self.metrics.escalations.labels(model.name, "escalated").inc(len(hard))
                for k, j in enumerate(hard):
                    probabilities[j] = second[k]
                    decided[j] = tags[k]
                    reasons[j] = routing.reason_escalated(float(conf[j]), self.threshold, tags[k])
                    self._keep(model, cases[j], edge_probabilities[j], second[k], tags[k])
        final_conf = routing.confidence(probabilities)
        return {
            "probabilities": probabilities.astype(np.float32),
            "confidence": final_conf.astype(np.float32).reshape(n, 1),
            "label": probabilities.argmax(axis=1).astype(np.int64).reshape(n, 1),
            "decided_by": _bytes(decided),
            "model_version": _bytes([model.version] * n),
            "reason": _bytes(reasons),
        }

    def _keep(self, model, case, edge_probabilities, second, decided_by) -> None:
        if self.recorder is None:
            return
        record = {"model": model.name, "version": model.version,
                  "input": {"name": self.input_name, "shape": list(case.shape),
                            "data": case.reshape(-1).tolist()},
                  "edge_probabilities": edge_probabilities.tolist(),
                  "escalated_probabilities": np.asarray(second).tolist(),
                  "decided_by": decided_by, "classes": model.classes}
        if not self.recorder.record(model.name, model.version, record):
            self.metrics.hard_examples_dropped.labels(model.name).inc()


def _bytes(values: list[str]) -> np.ndarray:
    return np.array([[v.encode()] for v in values], dtype=np.object_)


def tensors(model: runtime.LoadedModel):
    from pytriton.model_config import Tensor
    inputs = [Tensor(name=model.input["name"], dtype=np.float32, shape=model.row_shape)]
    outputs = [Tensor(name="probabilities", dtype=np.float32, shape=(len(model.classes),)),
               Tensor(name="confidence", dtype=np.float32, shape=(1,)),
               Tensor(name="label", dtype=np.int64, shape=(1,))]
    outputs += [Tensor(name=name, dtype=bytes, shape=(1,))
                for name in ("decided_by", "model_version", "reason")]
    return inputs, outputs


def _store_from_env() -> ModelStore | None:
    if not os.environ.get("MEDMEC_STORE_ENDPOINT"):
        return None
    return ModelStore(StoreSettings.from_env())


def _python_library_path() -> str:
    """Triton's Python-backend stub must link this interpreter's libpython, not the system's."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    return ":".join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH", "")) if p)


def _terminate(signum, frame):
    raise KeyboardInterrupt  # pytriton's serve() stops Triton cleanly on it


def serve(settings: ServerSettings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    telemetry.setup("medmec-inference")
    try:
        store = _store_from_env()
        stable = runtime.load(settings.model_dir, settings.model, settings.version, store,
                              settings.intra_op_threads)
        canary = (runtime.load(settings.model_dir, settings.model, settings.canary_version, store,
                               settings.intra_op_threads)
                  if settings.canary_version else None)
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if canary is not None and canary.input["shape"] != stable.input["shape"]:
        print(f"error: canary {canary.tag} takes {canary.input['shape']}, "
              f"but {stable.tag} takes {stable.input['shape']}", file=sys.stderr)
        return 1

    escalation = recorder = None
    if settings.escalation:
        escalation = EscalationClient(settings.escalation_url, settings.escalation_model,
                                      settings.escalation_timeout_s)
        if store is None:
            log.warning("no model store configured: escalated cases will not be kept")
        else:
            recorder = HardExampleRecorder(store)

    from pytriton.model_config import DynamicBatcher, ModelConfig
    from pytriton.triton import Triton, TritonConfig, TritonLifecyclePolicy

    request_errors.install()
    os.environ["LD_LIBRARY_PATH"] = _python_library_path()
    triton_metrics_port = netutil.free_port()
    metrics = Metrics(f"http://127.0.0.1:{triton_metrics_port}/metrics")
    handler = InferenceHandler(stable, canary, settings.canary_percent, metrics, escalation,
                               settings.escalation_threshold, recorder)
    for model in filter(None, (stable, canary)):
        metrics.provider.labels(model.name, model.version, model.provider).set(1)
    config = TritonConfig(http_address=settings.address, http_port=settings.http_port,
                          grpc_address=settings.address, grpc_port=settings.grpc_port,
                          metrics_address="127.0.0.1", metrics_port=triton_metrics_port,
                          # latency summaries give the p99 the QoS prober adds to the
                          # network latency for a slice's end-to-end budget
                          metrics_config=["summary_latencies=true"], exit_timeout_secs=5)
    batcher = (DynamicBatcher(max_queue_delay_microseconds=settings.max_queue_delay_us)
               if settings.dynamic_batching else None)
    inputs, outputs = tensors(stable)
    signal.signal(signal.SIGTERM, _terminate)
    # Models are written into the repository before Triton starts, so Triton loads them at
    # start-up and /v2/health/ready only answers 200 once the model can serve.
    policy = TritonLifecyclePolicy(launch_triton_on_startup=False, local_model_store=True)
    with Triton(config=config, triton_lifecycle_policy=policy) as triton:
        triton.bind(model_name=settings.model, model_version=int(settings.version),
                    infer_func=handler, inputs=inputs, outputs=outputs,
                    config=ModelConfig(max_batch_size=settings.max_batch_size, batcher=batcher),
                    strict=False)
        start_http_server(settings.metrics_port, settings.address, registry=metrics.registry)
        log.info("serving %s (canary %s at %g%%) with %s on HTTP %d, gRPC %d, metrics %d",
                 stable.tag, canary.tag if canary else "none", settings.canary_percent,
                 stable.provider, settings.http_port, settings.grpc_port, settings.metrics_port)
        triton.serve()
    if recorder is not None:
        recorder.close()
    return 0
