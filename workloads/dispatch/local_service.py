"""`medmec serve dispatch` as a local process on free loopback ports (tests, demo), and stop it.

    dispatcher = LocalDispatcher.start(workdir)            # the sample hospital's map
    channel = grpc.insecure_channel(dispatcher.target)
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
from importlib import resources
from pathlib import Path

import httpx

from medmec import processes
from medmec.netutil import free_port

SAMPLE_MAP = Path(str(resources.files("medmec.workloads.dispatch")
                      .joinpath("maps/sample-hospital.json")))


@dataclasses.dataclass
class LocalDispatcher:
    proc: processes.Proc
    grpc_port: int
    http_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @classmethod
    def start(cls, workdir: Path, map_path: Path = SAMPLE_MAP, heartbeat_timeout_s: float = 30.0,
              state_dir: Path | None = None) -> "LocalDispatcher":
        """Start it with its state in `state_dir` (default workdir/dispatch); returns once
        GET /healthz answers."""
        workdir = Path(workdir)
        grpc_port, http_port = free_port(), free_port()
        proc = processes.start("dispatch", [
            sys.executable, "-m", "medmec", "serve", "dispatch", "--host", "127.0.0.1",
            "--grpc-port", str(grpc_port), "--http-port", str(http_port),
            "--map", str(map_path), "--state-dir", str(state_dir or workdir / "dispatch"),
            "--heartbeat-timeout-s", str(heartbeat_timeout_s)], workdir / "dispatch.log")
        dispatcher = cls(proc=proc, grpc_port=grpc_port, http_port=http_port)
        try:
            processes.wait_ready(proc, dispatcher.ready, timeout=60)
        except processes.ProcessError:
            proc.stop()
            raise
        return dispatcher

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/healthz", timeout=2).is_success

    def fleet(self) -> dict:
        return httpx.get(f"{self.url}/v1/fleet", timeout=5).raise_for_status().json()

    def stop(self, kill: bool = False) -> None:
        if kill:  # a crash: no chance to flush or close anything
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.stop()
