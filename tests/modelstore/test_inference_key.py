"""The inference pods' key on a real MinIO: reads the models and adds hard examples; cannot
change or delete a model, list or read the hard examples, or make buckets."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from minio.error import S3Error

from medmec.workloads.modelstore.access import grant_inference_key
from medmec.workloads.modelstore.store import BUCKET, HARD_EXAMPLES_BUCKET, ModelStore, StoreError

KEY, SECRET = "medmec-inference-test", "inference-secret-0123456789"


def grant(minio_server, secret: str = SECRET) -> subprocess.CompletedProcess:
    env = {**os.environ, **minio_server.env(), "MEDMEC_INFERENCE_ACCESS_KEY": KEY,
           "MEDMEC_INFERENCE_SECRET_KEY": secret}
    return subprocess.run([sys.executable, "-m", "medmec", "models", "grant-inference-key"],
                          env=env, capture_output=True, text=True, timeout=60)


def as_inference(minio_server, secret: str = SECRET) -> ModelStore:
    return ModelStore(minio_server.settings.model_copy(update={"access_key": KEY, "secret_key": secret}))


def denied(call) -> str:
    with pytest.raises(S3Error) as err:
        call()
    return err.value.code


def test_the_inference_key_reads_models_and_adds_hard_examples_only(minio_server, model_store):
    done = grant(minio_server)
    assert done.returncode == 0, done.stderr
    assert grant(minio_server).returncode == 0  # again, as on every helm upgrade

    store = as_inference(minio_server)
    model_store.client.put_object(BUCKET, "probe/1/model.onnx", io.BytesIO(b"x"), 1)
    assert store.client.get_object(BUCKET, "probe/1/model.onnx").read() == b"x"
    assert [o.object_name for o in store.client.list_objects(BUCKET, prefix="probe/", recursive=True)] \
        == ["probe/1/model.onnx"]
    store.put_hard_example("case-1.json", {"features": [1.0], "top": 0.6})

    assert denied(lambda: store.client.put_object(BUCKET, "probe/1/model.onnx", io.BytesIO(b"y"), 1)) == "AccessDenied"
    assert denied(lambda: store.client.remove_object(BUCKET, "probe/1/model.onnx")) == "AccessDenied"
    assert denied(lambda: store.client.get_object(HARD_EXAMPLES_BUCKET, "case-1.json")) == "AccessDenied"
    assert denied(lambda: list(store.client.list_objects(HARD_EXAMPLES_BUCKET))) == "AccessDenied"
    assert denied(lambda: store.client.make_bucket("other")) == "AccessDenied"
    assert model_store.client.get_object(BUCKET, "probe/1/model.onnx").read() == b"x"


def test_a_new_secret_replaces_the_old_one(minio_server):
    assert grant(minio_server, "a-rotated-secret-0123456789").returncode == 0
    assert denied(lambda: as_inference(minio_server).client.get_object(BUCKET, "probe/1/model.onnx")) \
        in ("InvalidAccessKeyId", "SignatureDoesNotMatch")
    assert grant(minio_server).returncode == 0


def test_the_root_key_or_missing_keys_are_refused_clearly(minio_server):
    with pytest.raises(StoreError, match="must not be the store's root key"):
        grant_inference_key(minio_server.settings, minio_server.settings.access_key, "whatever-secret")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMEC_INFERENCE_")}
    missing = subprocess.run([sys.executable, "-m", "medmec", "models", "grant-inference-key"],
                             env={**env, **minio_server.env()}, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "MEDMEC_INFERENCE_ACCESS_KEY" in missing.stderr
