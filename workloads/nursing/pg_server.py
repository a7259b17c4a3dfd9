"""A throw-away local PostgreSQL server, for the tests and the benchmark.

It runs the real `postgres` from PATH or Debian's /usr/lib/postgresql/*/bin, in a
temporary data folder, listening on 127.0.0.1 and a free port only. PostgreSQL refuses to
run as root, so when we are root it runs as the `postgres` user.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from medmec import processes
from medmec.netutil import free_port


class PostgresMissing(RuntimeError):
    pass


def _bindir() -> Path:
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresMissing("PostgreSQL server binaries (initdb, postgres) not found: "
                          "apt-get install postgresql")


class LocalPostgres:
    """`with LocalPostgres() as pg: pg.dsn` — a fresh server, removed on exit."""

    def __init__(self):
        self.port = 0
        self.dsn = ""
        self._dir: Path | None = None
        self._proc: processes.Proc | None = None

    def _as_server_user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        user = pwd.getpwnam("postgres")
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def start(self) -> "LocalPostgres":
        bindir = _bindir()
        self._dir = Path(tempfile.mkdtemp(prefix="medmec-pg-"))
        data = self._dir / "data"
        data.mkdir()
        run_as = self._as_server_user()
        if run_as:
            for path in (self._dir, data):
                os.chown(path, run_as["user"], run_as["group"])
        init = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "medmec",
                               "--auth=trust", "-E", "UTF8", "--no-sync"],
                              capture_output=True, text=True, **run_as)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        self.port = free_port()
        argv = [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                "-p", str(self.port), "-k", str(self._dir)]
        if run_as:
            # processes.start runs argv as is; drop to the server user with runuser
            argv = ["runuser", "-u", "postgres", "--"] + argv
        self._proc = processes.start("postgres", argv, self._dir / "postgres.log")
        self.dsn = f"postgresql://medmec@127.0.0.1:{self.port}/postgres"
        processes.wait_ready(self._proc, self._ready, timeout=60, what="accepting connections")
        return self

    def _ready(self) -> bool:
        import psycopg
        with psycopg.connect(self.dsn, connect_timeout=2):
            return True

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
