"""`medmec serve nursing` as a local process on free loopback ports (tests, benchmark)."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from medmec.local_server import HOST, LocalServer, serve_argv
from medmec.netutil import free_port


class LocalNursingService(LocalServer):
    def __init__(self, workdir: Path, database: str, principals: dict[str, dict],
                 wards: list[str], env: dict[str, str] | None = None,
                 extra_args: Sequence[str] = ()):
        """A database URL, {subject: {token, role, ward}}, the wards it serves, variables added
        to this process's environment and more `medmec serve nursing` flags."""
        self.workdir = Path(workdir)
        super().__init__("nursing", self.workdir / "nursing.log", env={**os.environ, **(env or {})})
        self.database, self.wards, self.extra_args = database, wards, list(extra_args)
        self.tokens = self.workdir / "tokens.json"
        self.tokens.write_text(json.dumps({"tokens": {
            p["token"]: {"role": p["role"], "ward": p["ward"], "subject": subject}
            for subject, p in principals.items()}}))
        self.http_port, self.grpc_port = free_port(), free_port()

    def argv(self) -> list[str]:
        wards = [arg for ward in self.wards for arg in ("--ward", ward)]
        return serve_argv(
            "nursing", "--host", HOST, "--http-port", str(self.http_port),
            "--grpc-port", str(self.grpc_port), "--database", self.database,
            "--tokens-file", str(self.tokens), *wards, *self.extra_args)
