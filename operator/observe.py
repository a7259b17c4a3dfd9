"""OpenTelemetry for the operator: a span per reconcile and reconcile/admission metrics.

Span and metric attributes name the Kubernetes object (k8s.namespace.name and the kind and
name of a medmec resource); medmec resources carry no patient data."""
from __future__ import annotations

import contextlib
import time

from opentelemetry import metrics, trace

_tracer = trace.get_tracer("medmec.operator")
_meter = metrics.get_meter("medmec.operator")
_reconciles = _meter.create_counter(
    "medmec.operator.reconciles", unit="{reconcile}", description="Reconciles by kind and outcome")
_duration = _meter.create_histogram(
    "medmec.operator.reconcile.duration", unit="s", description="Time one reconcile took")
_admitted = _meter.create_up_down_counter(
    "medmec.operator.slices.admitted", unit="{slice}", description="Medical slices admitted now")


class Outcome:
    """Set `.value` inside the block to report how the reconcile ended."""

    def __init__(self) -> None:
        self.value = "success"


@contextlib.contextmanager
def reconcile(kind: str, namespace: str | None, name: str):
    attrs = {"medmec.resource.kind": kind, "medmec.resource.name": name}
    if namespace:
        attrs["k8s.namespace.name"] = namespace
    outcome = Outcome()
    start = time.perf_counter()
    with _tracer.start_as_current_span(f"reconcile {kind}", attributes=attrs) as span:
        try:
            yield outcome
        except Exception as err:
            outcome.value = "error"
            span.record_exception(err)
            span.set_status(trace.StatusCode.ERROR, str(err))
            raise
        finally:
            span.set_attribute("medmec.reconcile.outcome", outcome.value)
            labels = {"medmec.resource.kind": kind, "medmec.reconcile.outcome": outcome.value}
            _reconciles.add(1, labels)
            _duration.record(time.perf_counter() - start, {"medmec.resource.kind": kind})


def admitted_changed(delta: int) -> None:
    if delta:
        _admitted.add(delta)
