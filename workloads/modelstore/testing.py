"""pytest fixtures for a real MinIO model store. Import them into a conftest.py:
`from medmec.workloads.modelstore.testing import minio_server, model_store  # noqa: F401`

- `minio_server`: one MinIO server per test session (started on a free port, stopped after).
- `model_store`: a ModelStore client on it.
"""
from __future__ import annotations

import pytest

from medmec.workloads.modelstore.minio_server import MinioServer
from medmec.workloads.modelstore.store import ModelStore


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory):
    server = MinioServer(tmp_path_factory.mktemp("minio")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def model_store(minio_server) -> ModelStore:
    return ModelStore(minio_server.settings)
