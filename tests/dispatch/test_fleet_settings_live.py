"""The dispatcher reads the operator's fleet.json and picks up a change without a restart."""
import json
import os

import httpx
import pytest

from medmec.processes import ProcessError
from medmec.waiting import wait_for
from medmec.workloads.dispatch.local_service import LocalDispatcher


def _fleet_json(timeout_s: int) -> str:
    return json.dumps({"robots": [{"id": "amr-01", "home": "f0-park-00a", "payloadKg": 20}],
                       "dispatchPolicy": {"heartbeatTimeoutSeconds": timeout_s}})


def test_a_changed_heartbeat_timeout_reaches_the_running_dispatcher(tmp_path):
    settings = tmp_path / "fleet" / "fleet.json"
    settings.parent.mkdir()
    settings.write_text(_fleet_json(12))
    with LocalDispatcher(tmp_path, heartbeat_timeout_s=30,
                         extra_args=["--fleet-settings", str(settings)]).start() as dispatcher:
        health = f"{dispatcher.url}/healthz"
        # the file wins over the flag
        assert httpx.get(health).json()["heartbeat_timeout_s"] == 12
        aside = settings.with_name("fleet.json.new")  # replaced atomically, as the kubelet does
        aside.write_text(_fleet_json(40))
        os.replace(aside, settings)
        wait_for(lambda: httpx.get(health).json()["heartbeat_timeout_s"] == 40, 15,
                 "the dispatcher to take the new heartbeat timeout")


def test_an_invalid_fleet_json_stops_the_start_with_its_name(tmp_path):
    settings = tmp_path / "fleet.json"
    settings.write_text(json.dumps({"robots": "none"}))
    dispatcher = LocalDispatcher(tmp_path, extra_args=["--fleet-settings", str(settings)])
    with pytest.raises(ProcessError, match="exited before it was ready"):
        dispatcher.start()
    assert f"error: {settings}: robots" in dispatcher.log()
