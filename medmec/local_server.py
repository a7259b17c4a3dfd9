"""A server as a local process on free loopback ports, for the tests, the benchmarks and the
demos that run a workload without a cluster.

Constructing one chooses its ports and writes the files it reads; `start()` starts the process
and returns once it answers its readiness probe; `stop()` ends it, `kill()` ends it as a crash
would, `freeze()` and `thaw()` hang and resume it. It can be started again on the same ports and
files, as a restarted pod keeps its Service and its volume. Each workload's runner is a subclass
that chooses the ports it serves (`http_port`, `grpc_port`) and gives the command line (`argv`).

    with LocalDispatcher(workdir).start() as dispatcher:
        channel = grpc.insecure_channel(dispatcher.target)
"""
from __future__ import annotations

import os
import signal
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import grpc

from medmec import processes

HOST = "127.0.0.1"


def serve_argv(workload: str, *flags: str) -> list[str]:
    """`medmec serve WORKLOAD FLAGS...` run by this interpreter."""
    return [sys.executable, "-m", "medmec", "serve", workload, *flags]


class LocalServer:
    health_path = "/healthz"  # on the HTTP port; 200 when ready
    http_port: int | None = None
    grpc_port: int | None = None

    def __init__(self, name: str, log: Path, env: Mapping[str, str] | None = None,
                 timeout: float = 60.0):
        """`env` is the whole environment of the process (None: this one's); `timeout` is how
        long `start()` waits for it to be ready."""
        self.name, self.log_path, self.timeout = name, Path(log), timeout
        self.process_env = env
        self.proc: processes.Proc | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def target(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    def ready(self) -> bool:
        """The health path answers 200; on a server without HTTP, a gRPC channel connects."""
        if self.http_port is None:
            with grpc.insecure_channel(self.target) as channel:
                grpc.channel_ready_future(channel).result(timeout=1)
            return True
        with urllib.request.urlopen(f"{self.url}{self.health_path}", timeout=2) as response:
            return response.status == 200

    def start(self) -> Self:
        """Start the process; return self once it is ready, or stop it and raise
        processes.ProcessError with its log tail."""
        self.proc = processes.start(self.name, self.argv(), self.log_path, env=self.process_env)
        try:
            processes.wait_ready(self.proc, self.ready, self.timeout)
        except processes.ProcessError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown code runs."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.stop()  # reaps it

    def freeze(self) -> None:
        """SIGSTOP, as a hang: connections stay open, nothing answers."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def log(self) -> str:
        """Everything the process (and earlier starts of it) wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
