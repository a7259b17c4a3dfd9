"""A robot fleet's live figures from its dispatcher's fleet view."""
from __future__ import annotations

import http.server
import threading

import pytest

from medmec.netutil import free_port
from medmec.operator.fleet_status import counts, fleet_url, live_status
from medmec.operator.settings import OperatorSettings

CRF = {"metadata": {"name": "porters", "namespace": "ward-3"}}


def view(robot_states, task_statuses):
    return {"plan_version": 3, "blocked_corridors": [],
            "robots": [{"id": f"r{i}", "state": s, "queue": []} for i, s in enumerate(robot_states)],
            "tasks": [{"id": f"t{i}", "status": s} for i, s in enumerate(task_statuses)]}


def test_counts_online_queued_and_active():
    got = counts(view(["available", "fault", "offline", "available"],
                      ["pending", "assigned", "assigned", "picked_up", "delivered", "cancelled",
                       "failed"]))
    assert got == {"robotsOnline": 3, "tasksQueued": 3, "tasksActive": 1}


def test_counts_of_an_empty_fleet_are_zero_not_missing():
    assert counts(view([], [])) == {"robotsOnline": 0, "tasksQueued": 0, "tasksActive": 0}


@pytest.mark.parametrize("bad", [{}, {"robots": [], "tasks": "x"}, [1, 2],
                                 view(["sleeping"], [])])
def test_counts_refuse_what_is_not_a_fleet_view(bad):
    with pytest.raises(ValueError, match="not a fleet view"):
        counts(bad)


def test_url_defaults_to_the_fleets_service_and_takes_a_template():
    assert fleet_url(OperatorSettings().fleet_url_template, CRF) == \
        "http://porters-dispatch.ward-3.svc:8080/v1/fleet"
    assert fleet_url("http://127.0.0.1:9/{namespace}/{name}", CRF) == "http://127.0.0.1:9/ward-3/porters"


def test_template_from_the_environment():
    settings = OperatorSettings.from_env({"MEDMEC_OPERATOR_FLEET_URL_TEMPLATE": "http://h/{service}"})
    assert fleet_url(settings.fleet_url_template, CRF) == "http://h/porters-dispatch"


@pytest.mark.parametrize("template", ["http://{host}/v1/fleet", "http://{service/v1/fleet"])
def test_a_bad_template_is_refused_at_start(template):
    with pytest.raises(ValueError, match="fleet_url_template"):
        OperatorSettings.from_env({"MEDMEC_OPERATOR_FLEET_URL_TEMPLATE": template})


def test_unreachable_dispatcher_leaves_figures_unset_with_a_reason():
    settings = OperatorSettings(fleet_url_template=f"http://127.0.0.1:{free_port()}/v1/fleet",
                                fleet_timeout_seconds=1)
    got = live_status(CRF, settings, deployed=True)
    assert {k: got[k] for k in ("robotsOnline", "tasksQueued", "tasksActive")} == \
        {"robotsOnline": None, "tasksQueued": None, "tasksActive": None}
    [cond] = got["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == \
        ("DispatcherReachable", "False", "DispatcherUnreachable")
    assert settings.fleet_url_template in cond["message"]


def test_not_deployed_fleet_is_not_asked():
    got = live_status(CRF, OperatorSettings(), deployed=False)
    assert got["robotsOnline"] is None and got["conditions"][0]["reason"] == "NotDeployed"


@pytest.fixture
def http_answer():
    """A real HTTP server on loopback that answers every GET with the body it is given."""
    answer = {"status": 200, "body": b""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer["body"])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    answer["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1/fleet"
    yield answer
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status,body", [(200, b"<html>proxy</html>"), (200, b'{"robots": 3}'),
                                         (503, b'{"message": "starting"}')])
def test_a_bad_answer_leaves_figures_unset(http_answer, status, body):
    http_answer.update(status=status, body=body)
    got = live_status(CRF, OperatorSettings(fleet_url_template=http_answer["url"]), deployed=True)
    assert got["robotsOnline"] is None
    assert got["conditions"][0]["reason"] == "BadFleetView"


def test_a_fleet_view_is_counted(http_answer):
    import json
    http_answer["body"] = json.dumps(view(["available", "offline"], ["assigned"])).encode()
    got = live_status(CRF, OperatorSettings(fleet_url_template=http_answer["url"]), deployed=True)
    assert got["robotsOnline"] == 1 and got["tasksQueued"] == 1 and got["tasksActive"] == 0
    assert got["conditions"][0]["status"] == "True"
