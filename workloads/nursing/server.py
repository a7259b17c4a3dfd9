"""`medmec serve nursing`: the REST API and the gRPC service in one process and event loop."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import grpc
import uvicorn

from medmec import telemetry
from medmec.workloads.settings_watch import SettingsWatch

from . import settings_file as nursing_settings
from .api import create_app
from .context import Context
from .grpc_api import CloudNursingServicer
from .protos import nursing_pb2_grpc
from .store import open_repository
from .tokens import Credentials
from .vitals import AlertHub, VitalsPipeline

log = logging.getLogger("medmec.nursing")


class _HTTPServer(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM once it has shut down, which would end the
    process before the gRPC server drains and the database closes; `serve` owns signals."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def database_url(database: str | None, database_env: str | None) -> str:
    if database_env:
        url = os.environ.get(database_env)
        if not url:
            raise ValueError(f"--database-env {database_env}: the variable is not set")
        return url
    return database or "sqlite:////var/lib/medmec/nursing/nursing.db"


async def serve(*, host: str, http_port: int, grpc_port: int, database: str,
                wards: list[str], tokens_file: Path, dose_window_s: float,
                vitals_max_age_s: float, settings_file: Path | None = None) -> None:
    telemetry.setup("medmec-nursing")
    credentials = Credentials.load(tokens_file)
    repo = await asyncio.to_thread(open_repository, database)
    hub = AlertHub()
    pipeline = VitalsPipeline(repo, hub, max_age_s=vitals_max_age_s)
    watch = None
    if settings_file is not None:  # the operator's nursing.json: read now, and on each change
        watch = SettingsWatch(settings_file, nursing_settings.parse,
                              lambda s: setattr(pipeline, "early_warning", s.early_warning))
        watch.load()
        watch.start()
    ctx = Context(repo=repo, credentials=credentials, wards=frozenset(wards),
                  dose_window_s=dose_window_s, pipeline=pipeline, hub=hub)
    writer = asyncio.create_task(pipeline.run())
    grpc_server = grpc.aio.server()
    nursing_pb2_grpc.add_CloudNursingServicer_to_server(CloudNursingServicer(ctx), grpc_server)
    if grpc_server.add_insecure_port(f"{host}:{grpc_port}") == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{grpc_port}")
    await grpc_server.start()
    http = _HTTPServer(uvicorn.Config(create_app(ctx), host=host, port=http_port,
                                         access_log=False, log_config=None, lifespan="off"))
    log.info("nursing service for wards %s: HTTP %s:%d, gRPC %s:%d, %s database", ",".join(wards),
             host, http_port, host, grpc_port, repo.dialect.name)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, setattr, http, "should_exit", True)
    try:
        await http.serve()  # returns once a signal has set should_exit
    finally:
        log.info("shutting down: draining gRPC streams, closing the database")
        await grpc_server.stop(grace=5)  # the writer still commits what they wait for
        writer.cancel()
        repo.close()
        if watch is not None:
            watch.stop()
