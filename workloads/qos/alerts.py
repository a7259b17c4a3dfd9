"""Breach alerts in the Alertmanager v2 API format (POST /api/v2/alerts): a firing alert is
re-sent on every evaluation while the breach lasts, and sent once with endsAt on recovery."""
from __future__ import annotations

import logging

import httpx

log = logging.getLogger(__name__)


def alert(namespace: str, slice_name: str, critical: bool, condition: dict, starts_at: str,
          ends_at: str | None = None) -> dict:
    # the labels identify the alert, so they stay the same while the breach changes its
    # reason and when it is resolved; the reason goes into the annotations
    body = {
        "labels": {"alertname": "MedicalSliceQoSBreach", "namespace": namespace,
                   "medicalslice": slice_name, "severity": "critical" if critical else "warning"},
        "annotations": {"summary": f"MedicalSlice {namespace}/{slice_name} is not meeting "
                                   f"its QoS budget", "reason": condition["reason"],
                        "description": condition["message"]},
        "startsAt": starts_at,
    }
    if ends_at:
        body["endsAt"] = ends_at
    return body


class AlertSink:
    """Posts alerts to Alertmanager when a URL is given (the controller logs transitions)."""

    def __init__(self, url: str | None):
        self.url = url.rstrip("/") + "/api/v2/alerts" if url else None
        self._client = httpx.AsyncClient(timeout=5.0) if url else None

    async def send(self, alerts: list[dict]) -> None:
        if self._client is None or not alerts:
            return
        try:
            response = await self._client.post(self.url, json=alerts)
            response.raise_for_status()
        except httpx.HTTPError as err:  # the Event on the slice still records the breach
            log.error("could not post %d alert(s) to %s: %s", len(alerts), self.url, err)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
