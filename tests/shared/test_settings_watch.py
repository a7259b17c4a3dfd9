"""Workload settings from a mounted ConfigMap file: loaded, and picked up again on a change
without a restart; a bad file changes nothing."""
import json
import os

import pytest

from medmec.waiting import wait_for
from medmec.workloads.dispatch import fleet_settings
from medmec.workloads.nursing import settings_file as nursing_settings
from medmec.workloads.settings_watch import SettingsWatch

FLEET = {"robots": [{"id": "amr-01", "home": "f0-park-00a", "payloadKg": 20},
                    {"id": "amr-02", "home": "f0-park-00b", "payloadKg": 20, "speedMps": 1.5,
                     "capabilities": ["medicine"]}],
         "dispatchPolicy": {"emergencyPreemption": False, "heartbeatTimeoutSeconds": 12}}


def swap(path, text):
    """Replace the file atomically, as the kubelet does (write aside, then rename)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_fleet_settings_parse_the_operators_fleet_json():
    settings = fleet_settings.parse(json.dumps(FLEET))
    assert settings.dispatch_policy.heartbeat_timeout_s == 12
    assert settings.dispatch_policy.emergency_preemption is False
    assert [r.id for r in settings.robots] == ["amr-01", "amr-02"]
    assert settings.robots[1].speed_mps == 1.5 and settings.robots[0].speed_mps == 1.0
    defaults = fleet_settings.parse(json.dumps({"robots": FLEET["robots"]}))
    assert defaults.dispatch_policy.heartbeat_timeout_s == 10  # the CRD's default


@pytest.mark.parametrize("text, says", [
    ("{not json", "not JSON"),
    (json.dumps({"dispatchPolicy": {}}), "robots"),
    (json.dumps({**FLEET, "dispatchPolicy": {"heartbeatTimeoutSeconds": 0}}),
     "dispatchPolicy.heartbeatTimeoutSeconds"),
])
def test_fleet_settings_refuse_what_the_operator_never_writes(text, says):
    with pytest.raises(ValueError, match=says):
        fleet_settings.parse(text)


def test_nursing_thresholds_and_their_order():
    settings = nursing_settings.parse(json.dumps({"wards": [{"id": "4a"}],
                                                  "earlyWarning": {"mediumScore": 4, "highScore": 6}}))
    assert (settings.early_warning.medium_score, settings.early_warning.high_score) == (4, 6)
    assert nursing_settings.parse("{}").early_warning.high_score == 7
    with pytest.raises(ValueError, match="highScore"):
        nursing_settings.parse(json.dumps({"earlyWarning": {"mediumScore": 6, "highScore": 6}}))


class FakeFleet:
    timeout = 30.0


def test_a_change_reaches_the_running_dispatcher_and_a_bad_file_changes_nothing(tmp_path):
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(FLEET))
    fleet = FakeFleet()
    watch = SettingsWatch(path, fleet_settings.parse, lambda s: fleet_settings.apply(fleet, s),
                          interval_s=0.05)
    watch.load()
    assert fleet.timeout == 12
    watch.start()
    try:
        changed = {**FLEET, "dispatchPolicy": {"heartbeatTimeoutSeconds": 45}}
        swap(path, json.dumps(changed))
        wait_for(lambda: fleet.timeout == 45, 5, "the new heartbeat timeout")
        swap(path, "{broken")
        # the watcher read the bad text (and remembered it) without applying anything
        wait_for(lambda: watch.text == "{broken", 5, "the bad file to be read")
        assert fleet.timeout == 45
        swap(path, json.dumps(FLEET))
        wait_for(lambda: fleet.timeout == 12, 5, "the fixed file")
    finally:
        watch.stop()


def test_a_bad_file_at_start_is_an_error_naming_it(tmp_path):
    path = tmp_path / "nursing.json"
    path.write_text(json.dumps({"earlyWarning": {"mediumScore": "five"}}))
    with pytest.raises(ValueError, match=f"{path}: earlyWarning.mediumScore"):
        SettingsWatch(path, nursing_settings.parse, lambda s: None).load()


def test_thresholds_in_force_decide_the_risk():
    from medmec.workloads.nursing.news2 import score
    vitals = {"respiration_rate": 22, "spo2": 95, "spo2_scale": 1, "on_oxygen": False,
              "systolic_bp": 105, "pulse": 95, "consciousness": "A", "temperature_c": 37.0}
    result = score(vitals)
    assert result.score == 5 and result.risk == "medium"
    assert score(vitals, medium_score=6, high_score=8).risk == "low"
    assert score(vitals, medium_score=3, high_score=5).risk == "high"
