"""A span per reconcile, named for the kind, carrying the object and the outcome."""
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from medmec import telemetry
from medmec.operator import observe


@pytest.fixture
def spans():
    telemetry.setup("medmec-operator-test")  # no-op when another test set it up first
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.clear()


def _mine(exporter, name):
    return [s for s in exporter.get_finished_spans()
            if s.attributes.get("medmec.resource.name") == name]


def test_reconcile_span_names_object_and_outcome(spans):
    with observe.reconcile("MedicalSlice", "surgery", "span-ok") as outcome:
        outcome.value = "refused"
    (span,) = _mine(spans, "span-ok")
    assert span.name == "reconcile MedicalSlice"
    assert span.attributes["k8s.namespace.name"] == "surgery"
    assert span.attributes["medmec.reconcile.outcome"] == "refused"


def test_failed_reconcile_is_an_error_span(spans):
    with pytest.raises(RuntimeError):
        with observe.reconcile("EdgeInferenceService", "imaging", "span-fail"):
            raise RuntimeError("api down")
    (span,) = _mine(spans, "span-fail")
    assert span.attributes["medmec.reconcile.outcome"] == "error"
    assert span.status.status_code == trace.StatusCode.ERROR
