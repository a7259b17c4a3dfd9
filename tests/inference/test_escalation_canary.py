"""Joint inference and canary: an edge server (breast-cancer 1, canary 2 at 30 %) escalating
cases under confidence 0.9 to breast-cancer-large on a second real server."""
from __future__ import annotations

import json
import time
import urllib.request

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient

from medmec import netutil
from medmec.workloads.inference.process import InferenceServer
from medmec.workloads.modelstore.store import HARD_EXAMPLES_BUCKET

from .conftest import MODELS, held_out, metadata

THRESHOLD = 0.9
CANARY_PERCENT = 30


def reference(name: str, version: str, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(MODELS / name / version / "model.onnx"))
    return session.run(["probabilities"], {"features": x})[0]


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory, minio_server, pushed_models, large_server):
    state = tmp_path_factory.mktemp("edge")
    server = InferenceServer(
        state, state / "models", "breast-cancer", "1",
        ["--canary-version", "2", "--canary-percent", str(CANARY_PERCENT),
         "--max-batch-size", "8", "--max-queue-delay-us", "1000",
         "--escalation-threshold", str(THRESHOLD), "--escalation-url", large_server.url,
         "--escalation-model", "breast-cancer-large"],
        env=minio_server.env(), name="inference-edge").start()
    yield server
    server.stop()


def ask(server, rows: np.ndarray):
    infer_input = httpclient.InferInput("features", list(rows.shape), "FP32")
    infer_input.set_data_from_numpy(rows)
    result = httpclient.InferenceServerClient(server.http_address).infer(
        "breast-cancer", [infer_input])
    return {name: result.as_numpy(name) for name in
            ("probabilities", "confidence", "decided_by", "model_version", "reason")}


def test_canary_takes_its_share_of_requests_and_answers_with_its_own_model(edge_server):
    x_test, _ = held_out(metadata("breast-cancer", "1"))
    edge = {v: reference("breast-cancer", v, x_test) for v in ("1", "2")}
    rng = np.random.default_rng(7)
    versions = []
    for i in rng.integers(0, len(x_test), 400):
        answer = ask(edge_server, x_test[i:i + 1])
        version = answer["model_version"][0, 0].decode()
        versions.append(version)
        if answer["decided_by"][0, 0] == f"breast-cancer:{version}".encode():
            assert np.allclose(answer["probabilities"][0], edge[version][i], atol=1e-5)
    share = versions.count("2") / len(versions)
    tolerance = 4 * np.sqrt(0.3 * 0.7 / len(versions))  # four binomial standard deviations
    assert set(versions) == {"1", "2"}
    assert abs(share - CANARY_PERCENT / 100) < tolerance, share


def test_low_confidence_cases_are_decided_by_the_larger_model_and_kept(edge_server,
                                                                         model_store):
    x_test, _ = held_out(metadata("breast-cancer", "1"))
    edge = {v: reference("breast-cancer", v, x_test) for v in ("1", "2")}
    large = reference("breast-cancer-large", "1", x_test)
    before = _hard_examples(model_store)
    escalated_rows = []
    for start in range(0, len(x_test), 8):
        answer = ask(edge_server, x_test[start:start + 8])
        for k in range(len(answer["probabilities"])):
            i = start + k
            version = answer["model_version"][k, 0].decode()
            edge_conf = edge[version][i].max()
            decided, reason = answer["decided_by"][k, 0].decode(), answer["reason"][k, 0].decode()
            if edge_conf < THRESHOLD:
                assert decided == "breast-cancer-large:1", reason
                assert reason.startswith(f"confidence {edge_conf:.3f} < threshold 0.9: "
                                         "escalated to breast-cancer-large:1")
                assert np.allclose(answer["probabilities"][k], large[i], atol=1e-5)
                escalated_rows.append(i)
            else:
                assert decided == f"breast-cancer:{version}"
                assert reason.endswith("answered at the edge")
                assert np.allclose(answer["probabilities"][k], edge[version][i], atol=1e-5)
            assert np.isclose(answer["confidence"][k, 0], answer["probabilities"][k].max())
    assert 10 <= len(escalated_rows) < len(x_test)

    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{edge_server.metrics_port}/metrics", timeout=5).read().decode()
    counted = [line for line in metrics.splitlines() if line.startswith(
        'medmec_inference_escalations_total{model="breast-cancer",outcome="escalated"}')]
    assert counted and float(counted[0].split()[-1]) >= len(escalated_rows)

    deadline = time.monotonic() + 15
    while len(_hard_examples(model_store)) - len(before) < len(escalated_rows):
        assert time.monotonic() < deadline, "escalated cases were not all kept"
        time.sleep(0.2)
    kept = [r for key, r in _hard_examples(model_store).items() if key not in before]
    assert len(kept) == len(escalated_rows)
    sent = {tuple(np.round(x_test[i], 3)) for i in escalated_rows}
    for record in kept:
        assert set(record) == {"model", "version", "input", "edge_probabilities",
                               "escalated_probabilities", "decided_by", "classes",
                               "recorded_at"}
        assert tuple(np.round(np.array(record["input"]["data"], np.float32), 3)) in sent
        assert record["decided_by"] == "breast-cancer-large:1"
        assert max(record["edge_probabilities"]) < THRESHOLD


def _hard_examples(store) -> dict[str, dict]:
    if not store.client.bucket_exists(HARD_EXAMPLES_BUCKET):
        return {}
    found = {}
    for obj in store.client.list_objects(HARD_EXAMPLES_BUCKET, prefix="breast-cancer/",
                                         recursive=True):
        response = store.client.get_object(HARD_EXAMPLES_BUCKET, obj.object_name)
        found[obj.object_name] = json.loads(response.read())
        response.close()
        response.release_conn()
    return found


def test_when_the_escalation_server_is_away_the_edge_answer_stands_and_says_so(
        tmp_path, minio_server, pushed_models):
    closed_port = netutil.free_port()
    with InferenceServer(
            tmp_path, tmp_path / "models", "breast-cancer", "1",
            ["--escalation-threshold", str(THRESHOLD),
             "--escalation-url", f"http://127.0.0.1:{closed_port}",
             "--escalation-model", "breast-cancer-large", "--escalation-timeout-s", "1"],
            env=minio_server.env(), name="inference-orphan").start() as server:
        x_test, _ = held_out(metadata("breast-cancer", "1"))
        edge = reference("breast-cancer", "1", x_test)
        low = int(np.flatnonzero(edge.max(axis=1) < THRESHOLD)[0])
        answer = ask(server, x_test[low:low + 1])
        assert answer["decided_by"][0, 0] == b"breast-cancer:1"
        assert "escalation failed" in answer["reason"][0, 0].decode()
        assert np.allclose(answer["probabilities"][0], edge[low], atol=1e-5)
        assert ask(server, x_test[:2])["probabilities"].shape == (2, 2)
