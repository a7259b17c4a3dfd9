"""The edge sites and the mobility service as local processes on free loopback ports (tests,
the benchmark, the demo): one `medmec serve mobilecare-edge` per base station and one
`medmec serve mobility`."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from medmec.local_server import HOST, LocalServer, serve_argv
from medmec.netutil import free_port

from . import context


class LocalEdgeSite(LocalServer):
    def __init__(self, workdir: Path, site: str, key_file: Path, max_sessions: int = 500,
                 nursing_token_file: Path | None = None):
        self.workdir, self.site, self.key_file = Path(workdir), site, key_file
        super().__init__(f"edge-{site}", self.workdir / f"{site}.log")
        self.max_sessions, self.nursing_token_file = max_sessions, nursing_token_file
        self.database = self.workdir / f"{site}.db"
        self.grpc_port = free_port()

    def argv(self) -> list[str]:
        nursing = ["--nursing-token-file", str(self.nursing_token_file)] \
            if self.nursing_token_file else []
        return serve_argv(
            "mobilecare-edge", "--host", HOST, "--port", str(self.grpc_port), "--site", self.site,
            "--database", str(self.database), "--context-key-file", str(self.key_file),
            "--max-sessions", str(self.max_sessions), *nursing)

    def samples(self, session_id: str) -> list[int]:
        """The seqs this site's store holds for a session (read-only, beside the service)."""
        if not self.database.exists():
            return []
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            return [r[0] for r in db.execute("SELECT seq FROM samples WHERE session_id = ? "
                                             "ORDER BY seq", (session_id,))]


class LocalMobility(LocalServer):
    def __init__(self, workdir: Path, config: dict, admit_token: str | None = None):
        self.workdir, self.config = Path(workdir), config
        super().__init__("mobility", self.workdir / "mobility.log")
        self.config_file = self.workdir / "mobility.json"
        self.config_file.write_text(json.dumps(config))
        self.token_file = None
        if admit_token:
            self.token_file = self.workdir / "admit-token"
            self.token_file.write_text(admit_token)
        self.http_port = free_port()

    def argv(self) -> list[str]:
        admit = ["--admit-token-file", str(self.token_file)] if self.token_file else []
        return serve_argv("mobility", "--host", HOST, "--port", str(self.http_port),
                          "--config", str(self.config_file), *admit)


def write_key(path: Path) -> Path:
    path.write_bytes(context.new_key())
    path.chmod(0o600)
    return path
