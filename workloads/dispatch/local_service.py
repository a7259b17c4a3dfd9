"""`medmec serve dispatch` as a local process on free loopback ports (tests, demo).

    dispatcher = LocalDispatcher(workdir).start()            # the sample hospital's map
    channel = grpc.insecure_channel(dispatcher.target)
"""
from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import httpx

from medmec.local_server import HOST, LocalServer, serve_argv
from medmec.netutil import free_port

SAMPLE_MAP = Path(str(resources.files("medmec.workloads.dispatch")
                      .joinpath("maps/sample-hospital.json")))


class LocalDispatcher(LocalServer):
    def __init__(self, workdir: Path, map_path: Path = SAMPLE_MAP,
                 heartbeat_timeout_s: float = 30.0, state_dir: Path | None = None,
                 extra_args: Sequence[str] = ()):
        """Its state in `state_dir` (default workdir/dispatch); `extra_args` are more
        `medmec serve dispatch` flags."""
        workdir = Path(workdir)
        super().__init__("dispatch", workdir / "dispatch.log")
        self.map_path, self.heartbeat_timeout_s = map_path, heartbeat_timeout_s
        self.state_dir, self.extra_args = state_dir or workdir / "dispatch", list(extra_args)
        self.grpc_port, self.http_port = free_port(), free_port()

    def argv(self) -> list[str]:
        return serve_argv(
            "dispatch", "--host", HOST, "--grpc-port", str(self.grpc_port),
            "--http-port", str(self.http_port), "--map", str(self.map_path),
            "--state-dir", str(self.state_dir),
            "--heartbeat-timeout-s", str(self.heartbeat_timeout_s), *self.extra_args)

    def fleet(self) -> dict:
        return httpx.get(f"{self.url}/v1/fleet", timeout=5).raise_for_status().json()
