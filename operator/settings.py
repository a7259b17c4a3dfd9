"""Operator settings: one pydantic model, read from MEDMEC_OPERATOR_* variables and flags."""
from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, field_validator

ENV_PREFIX = "MEDMEC_OPERATOR_"


class OperatorSettings(BaseModel):
    image: str = Field("ghcr.io/medmec/medmec:0.1.0", description="image of every workload container")
    image_pull_policy: str = Field("IfNotPresent", pattern="^(Always|IfNotPresent|Never)$")
    namespaces: list[str] = Field(default_factory=list, description="namespaces to serve; empty = all")
    store_endpoint: str = Field("minio.medmec-system.svc:9000", description="model store host:port")
    store_secret: str = Field("medmec-model-store",
                              description="Secret (in each service's namespace) with access-key and secret-key")
    store_secure: bool = False
    peering: str = Field("medmec", description="kopf peering name; '' runs standalone")
    priority: int = Field(0, description="peering priority: of several replicas, the highest "
                          "reconciles and the others stand by (give each replica its own)")
    liveness_port: int = Field(8080, ge=0, le=65535, description="0 disables the liveness endpoint")
    liveness_host: str = "0.0.0.0"
    recheck_seconds: float = Field(5.0, gt=0, description="how often waiting resources are re-checked")
    status_delay_seconds: float = Field(0.5, ge=0, description="pod events are gathered this long "
                                        "before a workload's status is rewritten")
    workers: int = Field(16, ge=1, le=256, description="threads running reconciles")
    fleet_url_template: str = Field(
        "http://{service}.{namespace}.svc:{port}/v1/fleet",
        description="where a robot fleet's dispatcher view is read; placeholders {name}, "
        "{namespace}, {service}, {port}")
    fleet_timeout_seconds: float = Field(2.0, gt=0, description="timeout of that read")
    transport_url_template: str = Field(
        "http://{service}.{namespace}.svc:{port}/v1/transports/{vehicle}",
        description="where an emergency transport's mobility view is read; placeholders {name}, "
        "{namespace}, {service}, {port}, {vehicle}")

    @field_validator("fleet_url_template", "transport_url_template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        try:
            template.format(name="n", namespace="ns", service="s", port=1, vehicle="v")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"unknown placeholder or bad braces in {template!r}: {err}") from None
        return template

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "OperatorSettings":
        """Settings from MEDMEC_OPERATOR_<FIELD> variables, then explicit overrides (flags)."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for name in cls.model_fields:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            values[name] = [n for n in raw.split(",") if n] if name == "namespaces" else raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
