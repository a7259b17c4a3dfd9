"""Which ONNX Runtime execution provider serves an EdgeInferenceService (CUDA or CPU), read
from its server's metrics (`medmec_inference_execution_provider`) through its Service.

Parsing is pure (`serving_provider`); `live_status` is the thin I/O layer the operator
calls on each status refresh. A provider does not change while a pod lives, so a read is
reused for `REREAD_SECONDS` per service and generation; unreadable means unset."""
from __future__ import annotations

import threading
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from medmec.operator import render_inference
from medmec.operator.settings import OperatorSettings

METRIC = "medmec_inference_execution_provider"
REREAD_SECONDS = 30.0
_read: dict[tuple, tuple[float, str | None]] = {}
_lock = threading.Lock()


def serving_provider(metrics_text: str, model: str, version: str) -> str | None:
    """The provider the server reports for `model` `version`, or None."""
    try:
        families = list(text_string_to_metric_families(metrics_text))
    except ValueError:
        return None
    for family in families:
        if family.name != METRIC:
            continue
        for sample in family.samples:
            labels = sample.labels
            if (labels.get("model"), labels.get("version")) == (model, version) and sample.value == 1:
                return labels.get("provider")
    return None


def metrics_url(template: str, eis: dict) -> str:
    md = eis["metadata"]
    return template.format(name=md["name"], namespace=md["namespace"],
                           service=render_inference.child_name(eis),
                           port=render_inference.METRICS_PORT)


def live_status(eis: dict, settings: OperatorSettings, deployed: bool) -> dict:
    """status.executionProvider of the stable model version (None: unknown)."""
    if not deployed or not settings.inference_metrics_url_template:
        return {"executionProvider": None}
    md, model = eis["metadata"], eis["spec"]["model"]
    key = (md["namespace"], md["name"], md.get("generation"))
    with _lock:
        at, provider = _read.get(key, (0.0, None))
    if time.monotonic() - at < REREAD_SECONDS:
        return {"executionProvider": provider}
    url = metrics_url(settings.inference_metrics_url_template, eis)
    try:
        rsp = httpx.get(url, timeout=settings.fleet_timeout_seconds)
        provider = (serving_provider(rsp.text, model["name"], str(model["version"]))
                    if rsp.is_success else None)
    except (httpx.HTTPError, httpx.InvalidURL):
        provider = None
    with _lock:
        _read[key] = (time.monotonic(), provider)
    return {"executionProvider": provider}
