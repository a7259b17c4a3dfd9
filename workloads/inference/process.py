"""`medmec serve inference` as a local process on free loopback ports (tests, demo, benchmark).

    with InferenceServer(tmp_path, model_dir, "breast-cancer", "1").start() as server:
        client = tritonclient.http.InferenceServerClient(server.http_address)
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from medmec.local_server import HOST, LocalServer, serve_argv
from medmec.netutil import free_port


class InferenceServer(LocalServer):
    health_path = "/v2/health/ready"

    def __init__(self, state_dir: Path, model_dir: Path, model: str, version: str,
                 extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 timeout: float = 120.0, name: str | None = None):
        """`extra_args` are more `medmec serve inference` flags (canary, batching, escalation);
        `env` is added to this process's environment (MEDMEC_STORE_* for a store)."""
        name = name or f"inference-{model}"
        super().__init__(name, Path(state_dir) / f"{name}.log",
                         env={**os.environ, **(env or {})}, timeout=timeout)
        self.model_dir, self.model, self.version = model_dir, model, version
        self.extra_args = list(extra_args)
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()

    def argv(self) -> list[str]:
        return serve_argv(
            "inference", "--model-dir", str(self.model_dir), "--model", self.model,
            "--version", self.version, "--address", HOST, "--http-port", str(self.http_port),
            "--grpc-port", str(self.grpc_port), "--metrics-port", str(self.metrics_port),
            *self.extra_args)

    @property
    def http_address(self) -> str:
        """host:port, as tritonclient.http takes it"""
        return f"{HOST}:{self.http_port}"

