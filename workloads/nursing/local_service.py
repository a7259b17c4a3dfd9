"""`medmec serve nursing` as a local process on free loopback ports (tests, benchmark)."""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import httpx

from medmec import processes
from medmec.netutil import free_port


class LocalNursingService:
    """Start with a database URL, {subject: {token, role, ward}} and extra environment
    variables; stop() or kill() it."""

    def __init__(self, workdir: Path, database: str, principals: dict[str, dict],
                 wards: list[str], env: dict[str, str] | None = None):
        self.workdir, self.database, self.wards = Path(workdir), database, wards
        self.env = {**os.environ, **(env or {})}
        self.tokens = self.workdir / "tokens.json"
        self.tokens.write_text(json.dumps({"tokens": {
            p["token"]: {"role": p["role"], "ward": p["ward"], "subject": subject}
            for subject, p in principals.items()}}))
        self.proc: processes.Proc | None = None
        self.http_port = self.grpc_port = 0

    def start(self) -> "LocalNursingService":
        self.http_port, self.grpc_port = free_port(), free_port()
        argv = [sys.executable, "-m", "medmec", "serve", "nursing", "--host", "127.0.0.1",
                "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
                "--database", self.database, "--tokens-file", str(self.tokens)]
        for ward in self.wards:
            argv += ["--ward", ward]
        self.proc = processes.start("nursing", argv, self.workdir / "nursing.log", env=self.env)
        processes.wait_ready(self.proc, self._ready, timeout=60)
        return self

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return Path(self.proc.log).read_text() if self.proc else ""

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown code runs."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.stop(timeout=5)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
