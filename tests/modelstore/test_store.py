"""The model store against a real MinIO server (MinIO Python SDK as client)."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from minio.error import S3Error

from medmec.workloads.modelstore import modelcard, store
from medmec.workloads.modelstore.store import (BUCKET, ChecksumMismatch, NotFound, StoreError,
                                               StoreSettings, VersionExists)

MODELS = Path(__file__).resolve().parents[2] / "models"


def bundle(tmp_path: Path, name: str, version: str, src: str = "breast-cancer/1") -> Path:
    """A copy of a committed model version, renamed so each test owns its store objects."""
    folder = tmp_path / f"{name}-{version}"
    shutil.copytree(MODELS / src, folder)
    metadata = modelcard.read_metadata(folder)
    metadata.update(name=name, version=version)
    (folder / modelcard.METADATA_FILE).write_text(json.dumps(metadata))
    return folder


def test_push_then_pull_gives_identical_verified_files(model_store, tmp_path):
    src = bundle(tmp_path, "roundtrip", "1")
    pushed = model_store.push(src)
    assert model_store.versions("roundtrip") == ["1"]

    dest = tmp_path / "pulled"
    pulled = model_store.pull("roundtrip", "1", dest, sha256=pushed["sha256"]["model.onnx"])
    for file in ("model.onnx", "card.md"):
        assert (dest / file).read_bytes() == (src / file).read_bytes()
    assert pulled["sha256"] == modelcard.read_metadata(src)["sha256"]
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no staging left over


def test_a_pushed_version_cannot_be_overwritten(model_store, tmp_path):
    model_store.push(bundle(tmp_path, "immutable", "1"))
    other = bundle(tmp_path / "other", "immutable", "1", src="breast-cancer/2")
    with pytest.raises(VersionExists, match="immutable"):
        model_store.push(other)
    stored = model_store.client.get_object(BUCKET, "immutable/1/model.onnx").read()
    assert stored == (MODELS / "breast-cancer/1/model.onnx").read_bytes()
    model_store.push(bundle(tmp_path / "v2", "immutable", "2", src="breast-cancer/2"))
    assert model_store.versions("immutable") == ["1", "2"]


def test_the_metadata_commit_is_refused_by_the_server_when_the_version_appeared(model_store,
                                                                              tmp_path):
    """The If-None-Match guard itself: a racing push that passed the existence check."""
    model_store.push(bundle(tmp_path, "racing", "1"))
    with pytest.raises(S3Error) as err:
        store.put_if_absent(model_store.client, BUCKET, "racing/1/metadata.json", b"{}")
    assert err.value.code == "PreconditionFailed"
    assert model_store.metadata("racing", "1")["name"] == "racing"


def test_a_corrupted_model_in_the_store_is_refused(model_store, tmp_path):
    model_store.push(bundle(tmp_path, "corrupted", "1"))
    bad = b"not the model that was pushed"
    model_store.client.put_object(BUCKET, "corrupted/1/model.onnx", io.BytesIO(bad), len(bad))
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumMismatch, match="model.onnx"):
        model_store.pull("corrupted", "1", dest)
    assert not (dest / "model.onnx").exists()
    assert not (dest / "metadata.json").exists()


def test_pull_refuses_a_pinned_sha256_that_differs(model_store, tmp_path):
    model_store.push(bundle(tmp_path, "pinned", "1"))
    with pytest.raises(ChecksumMismatch, match="0" * 64):
        model_store.pull("pinned", "1", tmp_path / "dest", sha256="0" * 64)
    assert not (tmp_path / "dest" / "model.onnx").exists()


def test_pull_repairs_a_damaged_local_copy(model_store, tmp_path):
    model_store.push(bundle(tmp_path, "repair", "1"))
    dest = tmp_path / "dest"
    model_store.pull("repair", "1", dest)
    (dest / "model.onnx").write_bytes(b"damaged on disk")
    model_store.pull("repair", "1", dest)
    store.verify_bundle(dest, modelcard.read_metadata(dest))


def test_pull_of_an_unknown_version_says_so(model_store, tmp_path):
    with pytest.raises(NotFound, match="model nothing-here version 7 is not in the store"):
        model_store.pull("nothing-here", "7", tmp_path / "dest")


def test_push_refuses_a_folder_whose_files_do_not_match_its_metadata(model_store, tmp_path):
    src = bundle(tmp_path, "tampered", "1")
    (src / "card.md").write_text("edited after training")
    with pytest.raises(ChecksumMismatch, match="card.md"):
        model_store.push(src)
    assert model_store.versions("tampered") == []


@pytest.mark.parametrize("name,version,message", [
    ("Breast_Cancer", "1", "model name"),
    ("breast-cancer", "v1", "positive integer"),
    ("breast-cancer", "../2", "positive integer"),
])
def test_names_and_versions_are_checked(model_store, tmp_path, name, version, message):
    with pytest.raises(StoreError, match=message):
        model_store.push(bundle(tmp_path, name, version))


def test_settings_from_env_name_what_is_missing():
    with pytest.raises(StoreError, match="MEDMEC_STORE_ACCESS_KEY, MEDMEC_STORE_SECRET_KEY"):
        StoreSettings.from_env({"MEDMEC_STORE_ENDPOINT": "127.0.0.1:9000"})
    with pytest.raises(StoreError, match="MEDMEC_STORE_SECURE"):
        StoreSettings.from_env({"MEDMEC_STORE_ENDPOINT": "h:1", "MEDMEC_STORE_ACCESS_KEY": "a",
                                "MEDMEC_STORE_SECRET_KEY": "s", "MEDMEC_STORE_SECURE": "yes"})
    s = StoreSettings.from_env({"MEDMEC_STORE_ENDPOINT": "h:1", "MEDMEC_STORE_ACCESS_KEY": "a",
                                "MEDMEC_STORE_SECRET_KEY": "s", "MEDMEC_STORE_SECURE": "TRUE"})
    assert s.secure is True


def test_an_unreachable_store_is_named_in_the_error(tmp_path):
    from medmec.netutil import free_port
    from medmec.workloads.modelstore.store import ModelStore, Unreachable
    endpoint = f"127.0.0.1:{free_port()}"
    settings = StoreSettings(endpoint=endpoint, access_key="a", secret_key="b")
    with pytest.raises(Unreachable, match=f"model store {endpoint} unreachable"):
        ModelStore(settings).pull("breast-cancer", "1", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
