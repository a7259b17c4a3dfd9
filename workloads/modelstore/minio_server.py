"""A real MinIO server (built from its Go module) as a local process on a free loopback port.

Used by the tests, the benchmark and `medmec gitops validate --local`:

    with MinioServer(tmp_path).start() as minio:
        store = ModelStore(minio.settings)
"""
from __future__ import annotations

import secrets
from pathlib import Path

from medmec.local_server import HOST, LocalServer
from medmec.netutil import free_port
from medmec.workloads.modelstore.store import StoreSettings


class MinioServer(LocalServer):
    health_path = "/minio/health/ready"

    def __init__(self, state_dir: Path, timeout: float = 60.0):
        """Its data under `state_dir`/data; builds the binary if needed."""
        from medmec.localcluster import binaries
        binaries.ensure(["minio"])
        self.binary = binaries.binary("minio")
        state_dir = Path(state_dir)
        self.data_dir = state_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.http_port, self.console_port = free_port(), free_port()
        self.settings = StoreSettings(endpoint=f"{HOST}:{self.http_port}",
                                      access_key="medmec-admin", secret_key=secrets.token_hex(16))
        super().__init__("minio", state_dir / "minio.log", timeout=timeout, env={
            "PATH": "/usr/bin:/bin", "HOME": str(state_dir),
            "MINIO_ROOT_USER": self.settings.access_key,
            "MINIO_ROOT_PASSWORD": self.settings.secret_key,
            "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"})

    def argv(self) -> list[str]:
        return [str(self.binary), "server", str(self.data_dir), "--address", self.endpoint,
                "--console-address", f"{HOST}:{self.console_port}", "--quiet"]

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    def env(self) -> dict[str, str]:
        """The MEDMEC_STORE_* variables that point `medmec models ...` at this server."""
        return {"MEDMEC_STORE_ENDPOINT": self.settings.endpoint,
                "MEDMEC_STORE_ACCESS_KEY": self.settings.access_key,
                "MEDMEC_STORE_SECRET_KEY": self.settings.secret_key,
                "MEDMEC_STORE_SECURE": "false"}
