"""Fixtures of the dispatch tests: the sample hospital, scenarios on it, and the independent
plan validator of plan_validator.py (fixture `plan_problems`).
"""
from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

import medmec.workloads.dispatch

SAMPLE_MAP = Path(medmec.workloads.dispatch.__file__).parent / "maps" / "sample-hospital.json"
KINDS = ["medicine", "specimen", "linen", "meals"]


def _load_validator():
    spec = importlib.util.spec_from_file_location(
        "dispatch_plan_validator", Path(__file__).parent / "plan_validator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


problems = _load_validator().problems


@pytest.fixture
def plan_problems():
    return problems


@pytest.fixture
def hospital() -> dict:
    return json.loads(SAMPLE_MAP.read_text())


@pytest.fixture
def busy_scenario(hospital) -> dict:
    """12 robots parked on three floors, 60 tasks between rooms and services of all floors."""
    rng = random.Random(7)
    ids = [n["id"] for n in hospital["nodes"]]
    places = [i for i in ids if "-room-" in i] + ["pharmacy", "laboratory", "kitchen", "laundry"]
    parks = [i for i in ids if "-park-" in i]
    robots = [{"id": f"robot-{i}", "start": p, "speed_mps": rng.choice([0.8, 1.0, 1.2]),
               "payload_kg": rng.choice([15, 40]), "capabilities": rng.sample(KINDS, 3)}
              for i, p in enumerate(rng.sample(parks, 12))]
    tasks = []
    for j in range(60):
        pickup, dropoff = rng.sample(places, 2)
        release = rng.uniform(0, 600)
        tasks.append({"id": f"task-{j}", "pickup": pickup, "dropoff": dropoff,
                      "weight_kg": rng.choice([2, 10, 25]), "kind": rng.choice(KINDS),
                      "priority": rng.choice(["normal"] * 6 + ["high", "emergency"]),
                      "release_s": release, "deadline_s": release + 900})
    return {"map": hospital, "robots": robots, "tasks": tasks}

class DispatchServer:
    """`medmec serve dispatch` as a real process on free loopback ports."""

    def __init__(self, tmp_path: Path, map_path: Path, heartbeat_timeout_s: float):
        self.tmp_path, self.map_path, self.timeout = tmp_path, map_path, heartbeat_timeout_s
        self.state_dir = tmp_path / "state"

    def start(self) -> DispatchServer:
        import grpc

        from medmec.workloads.dispatch.local_service import LocalDispatcher
        from medmec.workloads.dispatch.protos import dispatch_pb2_grpc

        self.local = LocalDispatcher(self.tmp_path, self.map_path, self.timeout,
                                     state_dir=self.state_dir).start()
        self.http = self.local.url
        self.channel = grpc.insecure_channel(self.local.target)
        self.stub = dispatch_pb2_grpc.DispatchStub(self.channel)
        return self

    def stop(self, kill: bool = False) -> None:
        self.channel.close()
        if kill:  # a crash: no chance to flush or close anything
            self.local.kill()
        else:
            self.local.stop()

    def fleet(self) -> dict:
        return self.local.fleet()


@pytest.fixture
def dispatch_server(tmp_path):
    servers = []

    def start(map_path: Path = SAMPLE_MAP, heartbeat_timeout_s: float = 30.0) -> DispatchServer:
        server = DispatchServer(tmp_path, map_path, heartbeat_timeout_s).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.local.proc is not None:  # not stopped by the test
            server.stop()
