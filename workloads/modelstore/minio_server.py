"""Start and stop a real MinIO server (built from its Go module) on a free loopback port.

Used by the tests, the benchmark, `make demo` and the operator's end-to-end tests:

    with MinioServer.start(tmp_path) as minio:
        store = ModelStore(minio.settings)
"""
from __future__ import annotations

import dataclasses
import secrets
import urllib.request
from pathlib import Path

from medmec import netutil, processes
from medmec.workloads.modelstore.store import StoreSettings


@dataclasses.dataclass
class MinioServer:
    proc: processes.Proc
    port: int
    data_dir: Path
    settings: StoreSettings

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    def env(self) -> dict[str, str]:
        """The MEDMEC_STORE_* variables that point `medmec models ...` at this server."""
        return {"MEDMEC_STORE_ENDPOINT": self.settings.endpoint,
                "MEDMEC_STORE_ACCESS_KEY": self.settings.access_key,
                "MEDMEC_STORE_SECRET_KEY": self.settings.secret_key,
                "MEDMEC_STORE_SECURE": "false"}

    @classmethod
    def start(cls, state_dir: Path, timeout: float = 60.0) -> "MinioServer":
        """Start MinIO with its data under `state_dir`/data (building the binary if needed)."""
        from medmec.localcluster import binaries
        binaries.ensure(["minio"])
        state_dir = Path(state_dir)
        data_dir = state_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        port, console_port = netutil.free_port(), netutil.free_port()
        settings = StoreSettings(endpoint=f"127.0.0.1:{port}", access_key="medmec-admin",
                                 secret_key=secrets.token_hex(16))
        env = {"PATH": "/usr/bin:/bin", "HOME": str(state_dir),
               "MINIO_ROOT_USER": settings.access_key, "MINIO_ROOT_PASSWORD": settings.secret_key,
               "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"}
        proc = processes.start(
            "minio", [str(binaries.binary("minio")), "server", str(data_dir),
                      "--address", f"127.0.0.1:{port}",
                      "--console-address", f"127.0.0.1:{console_port}", "--quiet"],
            log=state_dir / "minio.log", env=env)
        server = cls(proc=proc, port=port, data_dir=data_dir, settings=settings)
        try:
            processes.wait_ready(proc, server.ready, timeout)
        except processes.ProcessError:
            proc.stop()
            raise
        return server

    def ready(self) -> bool:
        url = f"http://{self.settings.endpoint}/minio/health/ready"
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200

    def stop(self) -> None:
        self.proc.stop()

    def __enter__(self) -> "MinioServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
