"""OpenTelemetry set-up shared by the operator and every workload.

Exporters are chosen by the standard variables and are off by default:
OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER = none (default) | console | otlp, with the
usual OTEL_EXPORTER_OTLP_* variables for the OTLP endpoint. OTEL_SERVICE_NAME overrides
the service name. Callers get tracers and meters from the global providers, so tests can
install in-memory readers before calling `setup`.
"""
from __future__ import annotations

import os

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (ConsoleMetricExporter, MetricReader,
                                              PeriodicExportingMetricReader)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from importlib.metadata import PackageNotFoundError, version

_configured = False


def _version() -> str:
    try:
        return version("medmec")
    except PackageNotFoundError:
        return "0+unknown"


def _span_exporter(kind: str):
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter()
    return None


def _metric_exporter(kind: str):
    if kind == "console":
        return ConsoleMetricExporter()
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        return OTLPMetricExporter()
    return None


def setup(service_name: str, extra_readers: list[MetricReader] | None = None) -> None:
    """Install global tracer and meter providers for `service_name` (once per process)."""
    global _configured
    if _configured:
        return
    _configured = True
    resource = Resource.create({
        SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name),
        SERVICE_VERSION: _version(),
    })
    tracer_provider = TracerProvider(resource=resource)
    span_exporter = _span_exporter(os.environ.get("OTEL_TRACES_EXPORTER", "none"))
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(tracer_provider)

    readers = list(extra_readers or [])
    metric_exporter = _metric_exporter(os.environ.get("OTEL_METRICS_EXPORTER", "none"))
    if metric_exporter is not None:
        readers.append(PeriodicExportingMetricReader(metric_exporter))
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
