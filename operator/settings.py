"""Operator settings: one pydantic model, read from MEDMEC_OPERATOR_* variables and flags."""
from __future__ import annotations

import os
import zlib
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
    priority: int | None = Field(None, description="peering priority: of several replicas, the "
                                 "highest reconciles and the others stand by (each its own); "
                                 "default: derived from pod_name, else 0")
    pod_name: str = Field("", description="this replica's pod name (downward API), from which "
                          "its peering priority is derived")
    peering_lifetime_seconds: int = Field(15, ge=2, le=600, description="a replica that stops "
                                          "without saying so is replaced after this long")
    liveness_port: int = Field(8080, ge=0, le=65535, description="0 disables the liveness endpoint")
    liveness_host: str = "0.0.0.0"
    recheck_seconds: float = Field(5.0, gt=0, description="how often waiting resources are re-checked")
    status_delay_seconds: float = Field(0.5, ge=0, description="pod events are gathered this long "
                                        "before a workload's status is rewritten")
    workers: int = Field(16, ge=1, le=256, description="threads running reconciles")
    pod_security_level: str = Field("restricted", pattern="^(restricted|baseline|privileged)$",
                                    description="Pod Security Standard enforced on slice namespaces")
    fleet_url_template: str = Field(
        "http://{service}.{namespace}.svc:{port}/v1/fleet",
        description="where a robot fleet's dispatcher view is read; placeholders {name}, "
        "{namespace}, {service}, {port}")
    fleet_timeout_seconds: float = Field(2.0, gt=0, description="timeout of that read")
    inference_metrics_url_template: str = Field(
        "http://{service}.{namespace}.svc:{port}/metrics",
        description="where an inference service's metrics (its execution provider) are read; "
        "placeholders as fleet_url_template; '' = not read")
    transport_url_template: str = Field(
        "http://{service}.{namespace}.svc:{port}/v1/transports/{vehicle}",
        description="where an emergency transport's mobility view is read; placeholders {name}, "
        "{namespace}, {service}, {port}, {vehicle}")

    @field_validator("fleet_url_template", "inference_metrics_url_template",
                     "transport_url_template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        try:
            template.format(name="n", namespace="ns", service="s", port=1, vehicle="v")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"unknown placeholder or bad braces in {template!r}: {err}") from None
        return template

    @property
    def peering_priority(self) -> int:
        if self.priority is not None:
            return self.priority
        return pod_name_priority(self.pod_name) if self.pod_name else 0

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


# the alphabet of the random suffix Kubernetes gives a ReplicaSet's pods (k8s.io/apimachinery
# util/rand): five of these characters end every pod name of a Deployment
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def pod_name_priority(pod_name: str) -> int:
    """A peering priority from a Deployment pod's name, distinct for distinct pods.

    Peers of equal priority all pause (kopf), so replicas must never share one. The pods of
    one ReplicaSet differ only in their random suffix, and the operator Deployment's
    Recreate strategy never runs two ReplicaSets together: reading the suffix as a base-27
    number gives every live replica its own priority (1 .. 27**5). A name without such a
    suffix falls back to a CRC of the whole name."""
    suffix = pod_name.rpartition("-")[2]
    if len(suffix) == 5 and all(c in _SUFFIX_ALPHABET for c in suffix):
        value = 0
        for char in suffix:
            value = value * len(_SUFFIX_ALPHABET) + _SUFFIX_ALPHABET.index(char)
        return 1 + value
    return 1 + zlib.crc32(pod_name.encode()) % (2**31 - 2)
