"""Settings of `medmec serve inference` (flags named by the operator contract)."""
from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

from medmec.workloads.modelstore.store import NAME_RE, VERSION_RE

Port = Field(ge=1, le=65535)


class ServerSettings(BaseModel):
    model_dir: Path
    model: str
    version: str
    canary_version: str | None = None
    canary_percent: float = Field(0.0, ge=0.0, le=100.0)
    address: str = "0.0.0.0"
    http_port: int = Port
    grpc_port: int = Port
    metrics_port: int = Port
    max_batch_size: int = Field(8, ge=1, le=1024)
    max_queue_delay_us: int = Field(0, ge=0, le=10_000_000)
    dynamic_batching: bool = True
    intra_op_threads: int = Field(0, ge=0, le=256)
    escalation_threshold: float | None = Field(None, gt=0.0, le=1.0)
    escalation_url: str | None = None
    escalation_model: str | None = None
    escalation_timeout_s: float = Field(2.0, gt=0.0)

    @field_validator("model", "escalation_model")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a model name (lower-case letters, digits, '.', '-')")
        return value

    @field_validator("version", "canary_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not VERSION_RE.match(value):
            raise ValueError(f"{value!r} is not a model version (a positive integer)")
        return value

    @field_validator("escalation_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
                raise ValueError(f"{value!r} must be http(s)://host:port of a KServe v2 server")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ServerSettings":
        if self.canary_percent > 0 and self.canary_version is None:
            raise ValueError("--canary-percent needs --canary-version")
        if self.canary_version is not None and self.canary_version == self.version:
            raise ValueError("--canary-version must differ from --version")
        escalation = (self.escalation_threshold, self.escalation_url, self.escalation_model)
        if any(v is not None for v in escalation) and not all(v is not None for v in escalation):
            raise ValueError("escalation needs all of --escalation-threshold, --escalation-url "
                             "and --escalation-model")
        if len({self.http_port, self.grpc_port, self.metrics_port}) != 3:
            raise ValueError("the HTTP, gRPC and metrics ports must differ")
        return self

    @property
    def escalation(self) -> bool:
        return self.escalation_url is not None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ServerSettings":
        return cls(**{name: getattr(args, name) for name in cls.model_fields
                      if getattr(args, name, None) is not None})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, type=Path,
                        help="folder of <model>/<version>/ bundles; a missing version is pulled "
                             "from the store (MEDMEC_STORE_* env) first")
    parser.add_argument("--model", required=True, help="model name")
    parser.add_argument("--version", required=True, help="stable version (positive integer)")
    parser.add_argument("--canary-version", help="second version served side by side")
    parser.add_argument("--canary-percent", type=float,
                        help="share of requests (0-100) that the canary version answers")
    parser.add_argument("--address", help="address to bind (default 0.0.0.0)")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--max-batch-size", type=int, help="largest batch (default 8)")
    parser.add_argument("--max-queue-delay-us", type=int,
                        help="how long the dynamic batcher may hold a request (default 0)")
    parser.add_argument("--no-dynamic-batching", dest="dynamic_batching", action="store_false",
                        default=None, help="run each request as it comes (for comparisons)")
    parser.add_argument("--intra-op-threads", type=int,
                        help="ONNX Runtime threads per run (default 0: one per core)")
    parser.add_argument("--escalation-threshold", type=float,
                        help="confidence under which a case goes to the escalation model")
    parser.add_argument("--escalation-url", help="http(s)://host:port of the second server")
    parser.add_argument("--escalation-model", help="model name on the second server")
    parser.add_argument("--escalation-timeout-s", type=float)
