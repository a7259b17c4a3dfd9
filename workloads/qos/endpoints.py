"""Where the workloads' own endpoints are: the operator's Service DNS names by default,
overridable per object (for a console or prober outside the cluster, and for tests)."""
from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from medmec.operator import render_fleet, render_inference, render_nursing

# the ports the operator's Services expose (see the workload contracts)
INFERENCE_METRICS_PORT = 8002
DISPATCH_HTTP_PORT = 8080
NURSING_HTTP_PORT = 8080


def parse_override(text: str) -> tuple[str, str]:
    """`KIND/NAMESPACE/NAME=URL` (KIND: inference, dispatch or nursing) -> (key, url)."""
    key, sep, url = text.partition("=")
    parts = key.split("/")
    if not sep or len(parts) != 3 or parts[0] not in ("inference", "dispatch", "nursing") \
            or not all(parts) or urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"expected KIND/NAMESPACE/NAME=http://HOST:PORT with KIND inference, "
                         f"dispatch or nursing, got {text!r}")
    return key, url.rstrip("/")


@dataclasses.dataclass(frozen=True)
class Endpoints:
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_args(cls, items: list[str] | None) -> "Endpoints":
        return cls(dict(parse_override(i) for i in items or []))

    def inference_metrics(self, eis: dict) -> str:
        """The metrics URL of an EdgeInferenceService; an override names its base URL."""
        ns, name = eis["metadata"]["namespace"], eis["metadata"]["name"]
        base = self.overrides.get(f"inference/{ns}/{name}")
        if base:
            return base + "/metrics"
        http = ((eis.get("status") or {}).get("endpoints") or {}).get("http")
        service = render_inference.child_name(eis)
        host = urlsplit(http).hostname if http else f"{service}.{ns}.svc"
        return f"http://{host}:{INFERENCE_METRICS_PORT}/metrics"

    def dispatch(self, crf: dict) -> str:
        ns, name = crf["metadata"]["namespace"], crf["metadata"]["name"]
        return self.overrides.get(f"dispatch/{ns}/{name}") or \
            f"http://{render_fleet.child_name(crf)}.{ns}.svc:{DISPATCH_HTTP_PORT}"

    def nursing(self, cns: dict) -> str:
        ns, name = cns["metadata"]["namespace"], cns["metadata"]["name"]
        return self.overrides.get(f"nursing/{ns}/{name}") or \
            f"http://{render_nursing.child_name(cns)}.{ns}.svc:{NURSING_HTTP_PORT}"
