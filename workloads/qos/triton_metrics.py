"""Inference latency from a Triton metrics endpoint (Prometheus text format).

Triton publishes per-model latency quantiles as the summary
`nv_inference_request_summary_us{model, version, quantile}` when the server runs with
`--metrics-config summary_latencies=true`; without it there is no p99 to read and the
end-to-end figure is left unmeasured rather than guessed from a mean."""
from __future__ import annotations

import math

import httpx
from prometheus_client.parser import text_string_to_metric_families

SUMMARY = "nv_inference_request_summary_us"


def p99_ms(text: str, model: str | None = None) -> float | None:
    """The highest p99 request latency (ms) over the models (or the one `model`) in `text`."""
    values = []
    for family in text_string_to_metric_families(text):
        if family.name != SUMMARY:
            continue
        for sample in family.samples:
            labels = sample.labels
            if (labels.get("quantile") == "0.99" and (model is None or labels.get("model") == model)
                    and not math.isnan(sample.value)):
                values.append(sample.value / 1000.0)
    return max(values) if values else None


async def fetch_p99_ms(client: httpx.AsyncClient, url: str, model: str | None = None
                       ) -> float | None:
    """p99 from a live endpoint; None when it is unreachable or publishes no quantiles."""
    try:
        response = await client.get(url, timeout=2.0)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return p99_ms(response.text, model)
