"""`medmec serve dispatch`: the gRPC API and the REST/JSON fleet view in one event loop.

REST (read-only, for people and dashboards): GET /healthz, GET /v1/fleet (robots, tasks,
blocked corridors, lifts out of service), GET /v1/robots/{id}/route, GET /v1/tasks/{id};
errors are JSON bodies with a message.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

import grpc
from aiohttp import web
from opentelemetry import metrics

from medmec import telemetry

from medmec.workloads.settings_watch import SettingsWatch

from . import fleet_settings as fleet_settings_file
from .fleet import Fleet, FleetError
from .grpc_api import DispatchServicer, RouteFeed
from .protos import dispatch_pb2_grpc
from .scenario import ScenarioError, load_map
from .store import Store

log = logging.getLogger("medmec.dispatch")


def fleet_view(fleet: Fleet) -> dict:
    return {
        "plan_version": fleet.version,
        "robots": [r.model_dump() | {"queue": fleet.queues.get(r.id, [])}
                   for r in fleet.robots.values()],
        "tasks": [t.model_dump() for t in fleet.tasks.values()],
        "blocked_corridors": [{"from": a, "to": b} for a, b in sorted(fleet.blocked)],
        "lifts_out_of_service": sorted(fleet.lifts_down),
    }


def rest_app(fleet: Fleet, lock: asyncio.Lock) -> web.Application:
    def error(status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    async def healthz(_request):
        return web.json_response({"status": "ok", "plan_version": fleet.version,
                                  "heartbeat_timeout_s": fleet.timeout})

    async def view(_request):
        async with lock:
            return web.json_response(fleet_view(fleet))

    async def route(request):
        robot_id = request.match_info["robot"]
        if robot_id not in fleet.robots:
            return error(404, f"no robot {robot_id!r}")
        async with lock:
            return web.json_response({
                "robot": robot_id, "plan_version": fleet.version,
                "tasks": fleet.queues.get(robot_id, []),
                "waypoints": [{"node": n, "t": t} for n, t in fleet.routes.get(robot_id, [])]})

    async def task(request):
        try:
            async with lock:
                return web.json_response(fleet.task(request.match_info["task"]).model_dump())
        except FleetError as err:
            return error(404, str(err))

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/fleet", view)
    app.router.add_get("/v1/robots/{robot}/route", route)
    app.router.add_get("/v1/tasks/{task}", task)
    return app


async def serve(*, host: str, grpc_port: int, http_port: int, map_path: Path,
                state_dir: Path, heartbeat_timeout_s: float, min_battery_pct: float,
                fleet_settings: Path | None = None) -> None:
    telemetry.setup("medmec-dispatch")
    meter = metrics.get_meter("medmec.dispatch")
    replans = meter.create_counter("dispatch.replans", description="fleet re-plans")
    plan_seconds = meter.create_histogram("dispatch.plan.duration", unit="s")
    feed = RouteFeed(asyncio.get_running_loop())
    lock = asyncio.Lock()  # one fleet change at a time; readers see a whole one
    store = Store(state_dir)

    def on_plan(fleet: Fleet) -> None:
        replans.add(1)
        feed.notify(fleet)

    started = time.perf_counter()
    fleet = Fleet(load_map(map_path.read_text()), store, heartbeat_timeout_s, min_battery_pct)
    plan_seconds.record(time.perf_counter() - started)
    fleet.on_plan = on_plan
    watch = None
    if fleet_settings is not None:  # the operator's fleet.json: read now, and on each change
        watch = SettingsWatch(fleet_settings, fleet_settings_file.parse,
                              lambda settings: fleet_settings_file.apply(fleet, settings))
        watch.load()
        watch.start()
    log.info("loaded %d robots and %d tasks from %s", len(fleet.robots), len(fleet.tasks),
             state_dir)

    grpc_server = grpc.aio.server()
    dispatch_pb2_grpc.add_DispatchServicer_to_server(DispatchServicer(fleet, feed, lock),
                                                     grpc_server)
    if grpc_server.add_insecure_port(f"{host}:{grpc_port}") == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{grpc_port}")
    await grpc_server.start()
    runner = web.AppRunner(rest_app(fleet, lock))
    await runner.setup()
    await web.TCPSite(runner, host, http_port).start()
    log.info("dispatch serving gRPC on %s:%d, REST on %s:%d", host, grpc_port, host, http_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def housekeeping():  # silent robots, tasks waiting for a route, a lift's failure
        while True:  # prepared for (the map's travel times without it, one lift at a time)
            await asyncio.sleep(min(1.0, fleet.timeout / 4))
            async with lock:
                silent = await asyncio.to_thread(fleet.expire)
                await asyncio.to_thread(fleet.retry_pending)
                await asyncio.to_thread(fleet.warm_up)
            for robot_id in silent:
                log.warning("robot %s stopped heart-beating; its tasks were re-planned", robot_id)

    watcher = asyncio.create_task(housekeeping())
    await stop.wait()
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    await grpc_server.stop(grace=2)
    await runner.cleanup()
    if watch is not None:
        watch.stop()
    store.close()


def main(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(serve(host=args.host, grpc_port=args.grpc_port, http_port=args.http_port,
                          map_path=Path(args.map), state_dir=Path(args.state_dir),
                          heartbeat_timeout_s=args.heartbeat_timeout_s,
                          min_battery_pct=args.min_battery_pct,
                          fleet_settings=Path(args.fleet_settings) if args.fleet_settings else None))
    except (OSError, ScenarioError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
