"""The Dispatch gRPC service: a thin layer that maps protobuf messages onto the Fleet."""
from __future__ import annotations

import asyncio

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace

from .fleet import Fleet, FleetError, RobotRecord, TaskRecord
from .protos import dispatch_pb2 as pb
from .protos import dispatch_pb2_grpc

tracer = trace.get_tracer("medmec.dispatch")

_CODES = {"invalid": grpc.StatusCode.INVALID_ARGUMENT, "not_found": grpc.StatusCode.NOT_FOUND,
          "exists": grpc.StatusCode.ALREADY_EXISTS,
          "precondition": grpc.StatusCode.FAILED_PRECONDITION,
          "exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED}
_PRIORITY = {pb.PRIORITY_UNSPECIFIED: "normal", pb.PRIORITY_NORMAL: "normal",
             pb.PRIORITY_HIGH: "high", pb.PRIORITY_EMERGENCY: "emergency"}
_PRIORITY_PB = {"normal": pb.PRIORITY_NORMAL, "high": pb.PRIORITY_HIGH,
                "emergency": pb.PRIORITY_EMERGENCY}
_STATUS_PB = {"pending": pb.TASK_STATUS_PENDING, "assigned": pb.TASK_STATUS_ASSIGNED,
              "picked_up": pb.TASK_STATUS_PICKED_UP, "delivered": pb.TASK_STATUS_DELIVERED,
              "cancelled": pb.TASK_STATUS_CANCELLED, "failed": pb.TASK_STATUS_FAILED}
_STATUS = {v: k for k, v in _STATUS_PB.items()}
_ROBOT_STATE_PB = {"available": pb.ROBOT_STATE_AVAILABLE, "fault": pb.ROBOT_STATE_FAULT,
                   "offline": pb.ROBOT_STATE_OFFLINE}
_EVENT = {pb.TASK_EVENT_PICKED_UP: "picked_up", pb.TASK_EVENT_DELIVERED: "delivered"}


def _ts(t: float | None) -> Timestamp | None:
    if t is None:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(t * 1e9))
    return stamp


def _seconds(stamp: Timestamp, present: bool) -> float | None:
    return stamp.ToNanoseconds() / 1e9 if present else None


def robot_pb(robot: RobotRecord, queue: list[str]) -> pb.Robot:
    return pb.Robot(robot_id=robot.id, node=robot.node, home=robot.home,
                    speed_mps=robot.speed_mps, payload_kg=robot.payload_kg,
                    capabilities=robot.capabilities, battery_pct=robot.battery_pct,
                    state=_ROBOT_STATE_PB[robot.state], fault_message=robot.fault_message,
                    last_heartbeat=_ts(robot.last_heartbeat), task_ids=queue)


def task_pb(task: TaskRecord) -> pb.Task:
    return pb.Task(task_id=task.id, pickup=task.pickup, dropoff=task.dropoff,
                   weight_kg=task.weight_kg, kind=task.kind,
                   priority=_PRIORITY_PB[task.priority], earliest_start=_ts(task.earliest_start),
                   deadline=_ts(task.deadline), status=_STATUS_PB[task.status],
                   robot_id=task.robot_id, reason=task.reason,
                   planned_pickup=_ts(task.planned_pickup),
                   planned_dropoff=_ts(task.planned_dropoff))


def route_pb(fleet: Fleet, robot_id: str) -> pb.Route:
    return pb.Route(robot_id=robot_id, plan_version=fleet.version,
                    waypoints=[pb.Waypoint(node=n, at=_ts(t))
                               for n, t in fleet.routes.get(robot_id, [])],
                    task_ids=fleet.queues.get(robot_id, []))


class RouteFeed:
    """Wakes the route streams after every re-plan; `notify` may be called from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._changed = asyncio.Condition()

    def notify(self, _fleet: Fleet) -> None:
        asyncio.run_coroutine_threadsafe(self._notify(), self._loop)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate) -> None:
        async with self._changed:
            await self._changed.wait_for(predicate)


class DispatchServicer(dispatch_pb2_grpc.DispatchServicer):
    """Fleet calls run one at a time (`lock`) in a worker thread, so that a long re-plan
    does not stall the event loop: route streams and the readiness probe stay answered."""

    def __init__(self, fleet: Fleet, feed: RouteFeed, lock: asyncio.Lock):
        self.fleet = fleet
        self.feed = feed
        self.lock = lock

    async def _call(self, context, name: str, fn, *args):
        with tracer.start_as_current_span(f"dispatch.{name}") as span:
            try:
                async with self.lock:
                    return await asyncio.to_thread(fn, *args)
            except FleetError as err:
                span.set_attribute("error.type", err.code)
                await context.abort(_CODES[err.code], str(err))

    def _queue(self, robot_id: str) -> list[str]:
        return self.fleet.queues.get(robot_id, [])

    async def RegisterRobot(self, request, context):
        robot = await self._call(context, "RegisterRobot", self.fleet.register, request.robot_id,
                                 request.node, request.home, request.speed_mps,
                                 request.payload_kg, list(request.capabilities),
                                 request.battery_pct)
        return robot_pb(robot, self._queue(robot.id))

    async def Heartbeat(self, request, context):
        robot = await self._call(context, "Heartbeat", self.fleet.heartbeat, request.robot_id,
                                 request.node, request.battery_pct, request.fault,
                                 request.fault_message)
        return robot_pb(robot, self._queue(robot.id))

    async def ReportBlockedCorridor(self, request, context):
        return await self._corridor(request, context, True)

    async def ClearBlockedCorridor(self, request, context):
        return await self._corridor(request, context, False)

    async def _corridor(self, request, context, blocked: bool):
        corridors = await self._call(context, "SetBlocked", self.fleet.set_blocked,
                                     request.from_node, request.to_node, blocked)
        return pb.BlockedCorridorResponse(
            blocked=[pb.Corridor(from_node=a, to_node=b) for a, b in corridors])

    async def ReportLiftOutOfService(self, request, context):
        return await self._lift(request, context, False)

    async def ReturnLiftToService(self, request, context):
        return await self._lift(request, context, True)

    async def _lift(self, request, context, in_service: bool):
        down, replanned = await self._call(context, "SetLiftService", self.fleet.set_lift,
                                           request.lift_id, in_service)
        return pb.LiftServiceResponse(out_of_service=down, replanned=replanned)

    async def ReportTaskEvent(self, request, context):
        if request.event not in _EVENT:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "event must be PICKED_UP or DELIVERED")
        task = await self._call(context, "ReportTaskEvent", self.fleet.task_event,
                                request.robot_id, request.task_id, _EVENT[request.event])
        return task_pb(task)

    async def SubmitTask(self, request, context):
        task = await self._call(
            context, "SubmitTask", self.fleet.submit, request.task_id, request.pickup,
            request.dropoff, request.weight_kg, request.kind, _PRIORITY[request.priority],
            _seconds(request.earliest_start, request.HasField("earliest_start")),
            _seconds(request.deadline, request.HasField("deadline")))
        return task_pb(task)

    async def CancelTask(self, request, context):
        return task_pb(await self._call(context, "CancelTask", self.fleet.cancel,
                                        request.task_id))

    async def GetTask(self, request, context):
        return task_pb(await self._call(context, "GetTask", self.fleet.task, request.task_id))

    async def ListTasks(self, request, context):
        wanted = _STATUS.get(request.status)
        async with self.lock:
            return pb.ListTasksResponse(tasks=[task_pb(t) for t in self.fleet.tasks.values()
                                               if wanted is None or t.status == wanted])

    async def StreamRoute(self, request, context):
        if request.robot_id not in self.fleet.robots:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no robot {request.robot_id!r}")
        sent = None
        while True:
            version = self.fleet.version
            route = route_pb(self.fleet, request.robot_id)
            key = (list(route.waypoints), list(route.task_ids))
            if key != sent:
                yield route
                sent = key
            await self.feed.wait_for(lambda: self.fleet.version != version)
