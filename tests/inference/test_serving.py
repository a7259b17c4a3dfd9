"""The inference server with real clients: tritonclient HTTP and gRPC against the real Triton."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from medmec.workloads.modelstore.store import BUCKET

from .conftest import MODELS, held_out, metadata

CLIENTS = {"http": httpclient, "grpc": grpcclient}


def client(server, protocol):
    address = server.http_address if protocol == "http" else server.target
    return CLIENTS[protocol].InferenceServerClient(address)


def infer(server, protocol, batch, model="breast-cancer", version="", datatype="FP32",
          name="features"):
    module = CLIENTS[protocol]
    infer_input = module.InferInput(name, list(batch.shape), datatype)
    infer_input.set_data_from_numpy(batch)
    return client(server, protocol).infer(model, [infer_input], model_version=version)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_model_reproduces_the_cards_held_out_quality(plain_server, protocol):
    meta = metadata("breast-cancer", "1")
    x_test, y_test = held_out(meta)
    predicted = []
    for start in range(0, len(x_test), 8):
        result = infer(plain_server, protocol, x_test[start:start + 8])
        probabilities = result.as_numpy("probabilities")
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert np.array_equal(result.as_numpy("label").reshape(-1), probabilities.argmax(axis=1))
        predicted += probabilities.argmax(axis=1).tolist()
    predicted = np.array(predicted)
    card = meta["metrics"]
    assert round(float((predicted == y_test).mean()), 4) == card["accuracy"]
    positives = y_test == 1
    assert round(float((predicted[positives] == 1).mean()), 4) == card["sensitivity"]
    assert round(float((predicted[~positives] == 0).mean()), 4) == card["specificity"]
    assert f"| {card['accuracy']:.4f} |" in (MODELS / "breast-cancer/1/card.md").read_text()


def test_answers_say_which_model_and_version_decided_and_how_confident(plain_server):
    x_test, _ = held_out(metadata("breast-cancer", "1"))
    result = infer(plain_server, "http", x_test[:3])
    probabilities = result.as_numpy("probabilities")
    assert np.allclose(result.as_numpy("confidence").reshape(-1), probabilities.max(axis=1))
    assert result.as_numpy("decided_by").reshape(-1).tolist() == [b"breast-cancer:1"] * 3
    assert result.as_numpy("model_version").reshape(-1).tolist() == [b"1"] * 3
    assert all(b"no escalation configured" in r for r in result.as_numpy("reason").reshape(-1))


def test_health_metadata_and_metrics(plain_server):
    http = client(plain_server, "http")
    assert http.is_server_live() and http.is_server_ready()
    assert http.is_model_ready("breast-cancer")
    meta = client(plain_server, "grpc").get_model_metadata("breast-cancer", as_json=True)
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": ["-1", "30"]}]
    assert [o["name"] for o in meta["outputs"]] == [
        "probabilities", "confidence", "label", "decided_by", "model_version", "reason"]

    x_test, _ = held_out(metadata("breast-cancer", "1"))
    infer(plain_server, "http", x_test[:5])
    url = f"http://127.0.0.1:{plain_server.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    cases = [line for line in text.splitlines()
             if line.startswith('medmec_inference_cases_total{model="breast-cancer",version="1"}')]
    assert cases and float(cases[0].split()[-1]) >= 5
    assert 'nv_inference_request_success_total{model="breast-cancer",version="1"}' in text
    # the latency quantiles the QoS prober reads for a slice's end-to-end budget
    assert any(line.startswith("nv_inference_request_summary_us{") and 'quantile="0.99"' in line
               for line in text.splitlines())
    # the provider that serves (this machine has no GPU: the CPU one), for the operator
    assert 'medmec_inference_execution_provider{model="breast-cancer",provider="CPUExecutionProvider",version="1"} 1.0' in text


def test_each_batch_is_traced_without_the_case_data(plain_server):
    x_test, _ = held_out(metadata("breast-cancer", "1"))
    infer(plain_server, "grpc", x_test[:3])
    log = Path(plain_server.proc.log)
    deadline = time.monotonic() + 15  # the batch span processor exports every 5 s
    while '"name": "infer breast-cancer"' not in log.read_text():
        assert time.monotonic() < deadline, "no inference span was exported"
        time.sleep(0.5)
    deadline = time.monotonic() + 15
    while '"name": "run breast-cancer:1"' not in log.read_text():
        assert time.monotonic() < deadline, "no span for the model run was exported"
        time.sleep(0.5)
    text = log.read_text()
    assert '"medmec.model.name": "breast-cancer"' in text
    assert '"medmec.model.version": "1"' in text


def _bad(batch_rows=1):
    return np.ones((batch_rows, 30), np.float32)


BAD_REQUESTS = {
    "wrong shape": (dict(batch=np.ones((1, 29), np.float32)), "400", "unexpected shape"),
    "wrong dtype": (dict(batch=np.ones((1, 30), np.float64), datatype="FP64"), "400",
                    "expects 'FP32'"),
    "NaN": (dict(batch=np.where(np.arange(30) == 3, np.nan, 1.0).astype(np.float32)[None]),
            "400", "1 value(s) are NaN or infinite (first at row 0, element 3)"),
    "infinity": (dict(batch=np.full((2, 30), np.inf, np.float32)), "400", "NaN or infinite"),
    "batch over the limit": (dict(batch=_bad(9)), "400", "batch-size must be <= 8"),
    "unknown model": (dict(batch=_bad(), model="no-such-model"), "404", "unknown model"),
    "unknown version": (dict(batch=_bad(), version="7"), "404", "version 7 is not found"),
    "unknown input": (dict(batch=_bad(), name="pixels"), "400", "pixels"),
}
GRPC_STATUS = {"400": "StatusCode.INVALID_ARGUMENT", "404": "StatusCode.NOT_FOUND"}


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_a_kserve_error_naming_it_and_the_server_keeps_serving(
        plain_server, protocol, case):
    kwargs, status, message = BAD_REQUESTS[case]
    with pytest.raises(InferenceServerException) as err:
        infer(plain_server, protocol, **kwargs)
    expected = status if protocol == "http" else GRPC_STATUS[status]
    assert err.value.status() == expected, err.value.message()
    assert message in err.value.message()
    assert "Traceback" not in err.value.message()
    good = infer(plain_server, protocol, _bad(2))
    assert good.as_numpy("probabilities").shape == (2, 2)


def test_http_error_bodies_are_kserve_json(plain_server):
    body = b'{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP32","data":[1,2]}]}'
    request = urllib.request.Request(f"{plain_server.url}/v2/models/breast-cancer/infer", body,
                                     {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 400
    assert "unexpected shape" in json.loads(err.value.read())["error"]


def test_a_bad_request_fails_alone_when_batched_with_good_ones(plain_server):
    """Dynamic batching groups concurrent requests; only the bad one gets the error."""
    x_test, _ = held_out(metadata("breast-cancer", "1"))
    bad = x_test[:1].copy()
    bad[0, 0] = np.nan

    def send(i):
        try:
            return infer(plain_server, "grpc", bad if i % 4 == 0 else x_test[i:i + 1])
        except InferenceServerException as err:
            return err

    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, range(16)))
        for i, result in enumerate(results):
            if i % 4 == 0:
                assert isinstance(result, InferenceServerException)
                assert result.status() == "StatusCode.INVALID_ARGUMENT"
            else:
                assert not isinstance(result, Exception), result
                assert result.as_numpy("probabilities").shape == (1, 2)


def _serve_once(tmp_path, env, model_dir):
    return subprocess.run(
        [sys.executable, "-m", "medmec", "serve", "inference", "--model-dir", str(model_dir),
         "--model", "tampered", "--version", "1", "--address", "127.0.0.1"],
        env=env, capture_output=True, text=True, timeout=60)


def test_a_corrupted_model_in_the_store_is_refused_by_the_server(minio_server, model_store,
                                                                  tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(MODELS / "breast-cancer/1", bundle)
    meta = json.loads((bundle / "metadata.json").read_text())
    (bundle / "metadata.json").write_text(json.dumps({**meta, "name": "tampered"}))
    model_store.push(bundle)
    bad = b"an attacker's model"
    model_store.client.put_object(BUCKET, "tampered/1/model.onnx", io.BytesIO(bad), len(bad))

    result = _serve_once(tmp_path, {**os.environ, **minio_server.env()}, tmp_path / "models")
    assert result.returncode == 1
    assert "model.onnx of tampered:1 has sha256" in result.stderr
    assert not (tmp_path / "models" / "tampered" / "1" / "model.onnx").exists()


def test_a_tampered_local_model_folder_is_refused(tmp_path):
    folder = tmp_path / "models" / "tampered" / "1"
    shutil.copytree(MODELS / "breast-cancer/1", folder)
    meta = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps({**meta, "name": "tampered"}))
    (folder / "model.onnx").write_bytes((MODELS / "breast-cancer/2/model.onnx").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMEC_STORE_")}
    result = _serve_once(tmp_path, env, tmp_path / "models")
    assert result.returncode == 1
    assert "model.onnx of tampered:1 has sha256" in result.stderr
