"""The dispatcher reads the operator's fleet.json and picks up a change without a restart."""
import json
import os
import sys

import httpx

from medmec import processes
from medmec.netutil import free_port
from medmec.waiting import wait_for
from medmec.workloads.dispatch.local_service import SAMPLE_MAP


def _fleet_json(timeout_s: int) -> str:
    return json.dumps({"robots": [{"id": "amr-01", "home": "f0-park-00a", "payloadKg": 20}],
                       "dispatchPolicy": {"heartbeatTimeoutSeconds": timeout_s}})


def test_a_changed_heartbeat_timeout_reaches_the_running_dispatcher(tmp_path):
    settings = tmp_path / "fleet" / "fleet.json"
    settings.parent.mkdir()
    settings.write_text(_fleet_json(12))
    http_port = free_port()
    proc = processes.start("dispatch", [
        sys.executable, "-m", "medmec", "serve", "dispatch", "--host", "127.0.0.1",
        "--grpc-port", str(free_port()), "--http-port", str(http_port), "--map", str(SAMPLE_MAP),
        "--state-dir", str(tmp_path / "state"), "--heartbeat-timeout-s", "30",
        "--fleet-settings", str(settings)], tmp_path / "dispatch.log")
    health = f"http://127.0.0.1:{http_port}/healthz"
    try:
        processes.wait_ready(proc, lambda: httpx.get(health, timeout=2).is_success, timeout=60)
        # the file wins over the flag
        assert httpx.get(health).json()["heartbeat_timeout_s"] == 12
        aside = settings.with_name("fleet.json.new")  # replaced atomically, as the kubelet does
        aside.write_text(_fleet_json(40))
        os.replace(aside, settings)
        wait_for(lambda: httpx.get(health).json()["heartbeat_timeout_s"] == 40, 15,
                 "the dispatcher to take the new heartbeat timeout")
    finally:
        proc.stop()


def test_an_invalid_fleet_json_stops_the_start_with_its_name(tmp_path):
    settings = tmp_path / "fleet.json"
    settings.write_text(json.dumps({"robots": "none"}))
    proc = processes.start("dispatch", [
        sys.executable, "-m", "medmec", "serve", "dispatch", "--host", "127.0.0.1",
        "--grpc-port", str(free_port()), "--http-port", str(free_port()), "--map", str(SAMPLE_MAP),
        "--state-dir", str(tmp_path / "state"), "--fleet-settings", str(settings)],
        tmp_path / "dispatch.log")
    try:
        wait_for(lambda: not proc.alive(), 60, "the dispatcher to refuse its settings")
    finally:
        proc.stop()
    assert f"error: {settings}: robots" in (tmp_path / "dispatch.log").read_text()
