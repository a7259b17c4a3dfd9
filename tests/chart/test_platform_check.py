"""`medmec chart check` (what `helm test` runs): endpoints that answer, resources that are Ready."""
import http.server
import socket
import threading

from medmec.netutil import free_port
from medmec.workloads.gitops.platform_check import check, http_problem, not_ready, tcp_problem


def _item(kind, name, namespace=None, ready=None):
    md = {"name": name, **({"namespace": namespace} if namespace else {})}
    conds = [] if ready is None else [{"type": "Ready", "status": "True" if ready else "False",
                                       "reason": "NodesNotReady", "message": "no node is Ready"}]
    return {"kind": kind, "metadata": md, "status": {"conditions": conds}}


def test_not_ready_names_each_resource_and_why():
    items = [_item("BaseStation", "gnb-north", ready=True),
             _item("BaseStation", "gnb-east", ready=False),
             _item("EdgeInferenceService", "triage", "imaging")]
    assert not_ready(items) == ["BaseStation gnb-east: NodesNotReady: no node is Ready",
                                "EdgeInferenceService imaging/triage: no Ready condition yet"]


def test_endpoints_that_answer_and_those_that_do_not():
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert http_problem(f"http://127.0.0.1:{port}/healthz") is None
        assert "HTTP Error 503" in http_problem(f"http://127.0.0.1:{port}/other")
        assert tcp_problem(f"127.0.0.1:{port}") is None
        closed = free_port()
        assert tcp_problem(f"127.0.0.1:{closed}").startswith(f"127.0.0.1:{closed}: ")
        # waits, then reports what is still wrong
        assert check([f"http://127.0.0.1:{port}/healthz"], [f"127.0.0.1:{port}"], False, 2) == []
        left = check([f"http://127.0.0.1:{closed}/"], [], False, 1)
        assert len(left) == 1 and str(closed) in left[0]
    finally:
        server.shutdown()


def test_the_command_exits_non_zero_naming_what_is_not_ready(capsys):
    from medmec import cli
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        assert cli.main(["chart", "check", "--tcp", f"127.0.0.1:{port}", "--timeout", "1"]) == 0
        assert "platform ready (1 check(s) passed)" in capsys.readouterr().out
    finally:
        listener.close()
    assert cli.main(["chart", "check", "--tcp", f"127.0.0.1:{port}", "--timeout", "1"]) == 1
    assert f"not ready: 127.0.0.1:{port}" in capsys.readouterr().err
