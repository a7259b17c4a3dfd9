"""The edge sites and the mobility service as local processes on free loopback ports (tests,
the benchmark, the demo): one `medmec serve mobilecare-edge` per base station and one
`medmec serve mobility`."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import grpc
import httpx

from medmec import processes
from medmec.netutil import free_port

from . import context


class LocalEdgeSite:
    def __init__(self, workdir: Path, site: str, key_file: Path, max_sessions: int = 500,
                 nursing_token_file: Path | None = None):
        self.workdir, self.site, self.key_file = Path(workdir), site, key_file
        self.max_sessions, self.nursing_token_file = max_sessions, nursing_token_file
        self.database = self.workdir / f"{site}.db"
        self.port = free_port()  # kept across restarts: a restarted site is the same site
        self.proc: processes.Proc | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "LocalEdgeSite":
        argv = [sys.executable, "-m", "medmec", "serve", "mobilecare-edge", "--host", "127.0.0.1",
                "--port", str(self.port), "--site", self.site, "--database", str(self.database),
                "--context-key-file", str(self.key_file), "--max-sessions", str(self.max_sessions)]
        if self.nursing_token_file:
            argv += ["--nursing-token-file", str(self.nursing_token_file)]
        self.proc = processes.start(f"edge-{self.site}", argv, self.workdir / f"{self.site}.log")
        processes.wait_ready(self.proc, self._ready, timeout=60)
        return self

    def _ready(self) -> bool:
        with grpc.insecure_channel(self.target) as ch:
            grpc.channel_ready_future(ch).result(timeout=1)
        return True

    def samples(self, session_id: str) -> list[int]:
        """The seqs this site's store holds for a session (read-only, beside the service)."""
        if not self.database.exists():
            return []
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            return [r[0] for r in db.execute("SELECT seq FROM samples WHERE session_id = ? "
                                             "ORDER BY seq", (session_id,))]

    def log(self) -> str:
        return Path(self.workdir / f"{self.site}.log").read_text() if self.proc else ""

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.stop(timeout=5)
            self.proc = None

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


class LocalMobility:
    def __init__(self, workdir: Path, config: dict, admit_token: str | None = None):
        self.workdir, self.config = Path(workdir), config
        self.config_file = self.workdir / "mobility.json"
        self.config_file.write_text(json.dumps(config))
        self.token_file = None
        if admit_token:
            self.token_file = self.workdir / "admit-token"
            self.token_file.write_text(admit_token)
        self.port = free_port()
        self.proc: processes.Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LocalMobility":
        argv = [sys.executable, "-m", "medmec", "serve", "mobility", "--host", "127.0.0.1",
                "--port", str(self.port), "--config", str(self.config_file)]
        if self.token_file:
            argv += ["--admit-token-file", str(self.token_file)]
        self.proc = processes.start("mobility", argv, self.workdir / "mobility.log")
        processes.wait_ready(self.proc, lambda: httpx.get(f"{self.url}/healthz", timeout=2)
                             .status_code == 200, timeout=60)
        return self

    def log(self) -> str:
        return (self.workdir / "mobility.log").read_text() if self.proc else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


def write_key(path: Path) -> Path:
    path.write_bytes(context.new_key())
    path.chmod(0o600)
    return path
