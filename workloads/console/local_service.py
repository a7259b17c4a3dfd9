"""`medmec serve console` as a local process on a free loopback port (medmec.local_server),
for the console's browser tests and the e2e tests that show a cluster in it."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from medmec.local_server import HOST, LocalServer, serve_argv
from medmec.netutil import free_port


class LocalConsole(LocalServer):
    def __init__(self, workdir: Path, token: str, env: Mapping[str, str] | None = None,
                 extra_args: Sequence[str] = ()):
        """One login `token`; `env` added to this process's environment (KUBECONFIG: the
        cluster it shows); more `medmec serve console` flags."""
        self.workdir = Path(workdir)
        super().__init__("console", self.workdir / "console.log", env={**os.environ, **(env or {})})
        self.tokens = self.workdir / "console-tokens"
        self.tokens.write_text(token + "\n")
        self.extra_args = list(extra_args)
        self.http_port = free_port()

    def argv(self) -> list[str]:
        return serve_argv("console", "--host", HOST, "--http-port", str(self.http_port),
                          "--tokens-file", str(self.tokens), "--refresh", "1s", *self.extra_args)

    def ready(self) -> bool:
        """Serving its first snapshot of the cluster, not only listening."""
        return bool(httpx.get(f"{self.url}{self.health_path}", timeout=2).json()["snapshot"])
