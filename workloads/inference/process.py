"""Start `medmec serve inference` as a local process on free loopback ports (tests, demo,
benchmark), and stop it.

    with InferenceServer.start(tmp_path, model_dir, "breast-cancer", "1") as server:
        client = tritonclient.http.InferenceServerClient(server.http_address)
"""
from __future__ import annotations

import dataclasses
import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from medmec import netutil, processes


@dataclasses.dataclass
class InferenceServer:
    proc: processes.Proc
    model: str
    http_port: int
    grpc_port: int
    metrics_port: int

    @property
    def http_address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def url(self) -> str:
        return f"http://{self.http_address}"

    @classmethod
    def start(cls, state_dir: Path, model_dir: Path, model: str, version: str,
              extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
              timeout: float = 120.0, name: str | None = None) -> "InferenceServer":
        """Start the server and wait until /v2/health/ready answers 200.

        `extra_args` are more `medmec serve inference` flags (canary, batching, escalation);
        `env` is added to this process's environment (MEDMEC_STORE_* for a store).
        """
        http, grpc, metrics = netutil.free_port(), netutil.free_port(), netutil.free_port()
        name = name or f"inference-{model}"
        argv = [sys.executable, "-m", "medmec", "serve", "inference",
                "--model-dir", str(model_dir), "--model", model, "--version", version,
                "--address", "127.0.0.1", "--http-port", str(http), "--grpc-port", str(grpc),
                "--metrics-port", str(metrics), *extra_args]
        proc = processes.start(name, argv, log=Path(state_dir) / f"{name}.log",
                               env={**os.environ, **(env or {})})
        server = cls(proc=proc, model=model, http_port=http, grpc_port=grpc, metrics_port=metrics)
        try:
            processes.wait_ready(proc, server.ready, timeout)
        except processes.ProcessError:
            proc.stop()
            raise
        return server

    def ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as response:
            return response.status == 200

    def stop(self) -> None:
        self.proc.stop()

    def __enter__(self) -> "InferenceServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
