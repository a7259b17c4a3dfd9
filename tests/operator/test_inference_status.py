"""An inference service's execution provider, as its server's metrics report it."""
import http.server
import threading

from medmec.netutil import free_port
from medmec.operator import inference_status
from medmec.operator.inference_status import live_status, metrics_url, serving_provider
from medmec.operator.settings import OperatorSettings

METRICS = """# HELP medmec_inference_execution_provider 1 for the provider
# TYPE medmec_inference_execution_provider gauge
medmec_inference_execution_provider{model="chest-xray",provider="CUDAExecutionProvider",version="2"} 1.0
medmec_inference_execution_provider{model="chest-xray",provider="CPUExecutionProvider",version="3"} 1.0
"""
EIS = {"metadata": {"name": "triage", "namespace": "imaging", "generation": 4},
       "spec": {"model": {"name": "chest-xray", "version": "2"}}}


def test_provider_of_the_stable_version():
    assert serving_provider(METRICS, "chest-xray", "2") == "CUDAExecutionProvider"
    assert serving_provider(METRICS, "chest-xray", "3") == "CPUExecutionProvider"
    assert serving_provider(METRICS, "chest-xray", "9") is None
    assert serving_provider("not { metrics", "chest-xray", "2") is None


def test_url_is_the_services_metrics_port():
    assert metrics_url(OperatorSettings().inference_metrics_url_template, EIS) == \
        "http://triage-predictor.imaging.svc:8002/metrics"


def test_read_from_a_real_http_server_and_unset_when_unreachable(monkeypatch):
    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = METRICS.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(inference_status, "_read", {})
    try:
        settings = OperatorSettings(inference_metrics_url_template=f"http://127.0.0.1:{port}/metrics")
        assert live_status(EIS, settings, True) == {"executionProvider": "CUDAExecutionProvider"}
        assert live_status(EIS, settings, False) == {"executionProvider": None}
    finally:
        server.shutdown()
    gone = OperatorSettings(inference_metrics_url_template=f"http://127.0.0.1:{free_port()}/metrics")
    other = {**EIS, "metadata": {**EIS["metadata"], "generation": 5}}
    assert live_status(other, gone, True) == {"executionProvider": None}
