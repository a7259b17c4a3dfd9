"""Versioned, checksummed model bundles in MinIO / S3.

Layout: bucket `models`, objects `<name>/<version>/{model.onnx, card.md, metadata.json}`;
metadata.json carries the sha256 of the other two. A version exists once its metadata.json
does: push writes it last, with `If-None-Match: *`, so a version once pushed is never
overwritten (a second push, even a concurrent one, is refused by the server). Pull verifies
every file's sha256 before anything appears at the destination.
"""
from __future__ import annotations

import functools
import io
import json
import os
import re
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from medmec.workloads.modelstore.modelcard import (CARD_FILE, METADATA_FILE, MODEL_FILE,
                                                   sha256_file)

BUCKET = "models"
HARD_EXAMPLES_BUCKET = "hard-examples"
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
# Triton model versions are positive integers (the folder names of a model repository)
VERSION_RE = re.compile(r"^[1-9][0-9]{0,8}$")
BUNDLE_FILES = (MODEL_FILE, CARD_FILE)


class StoreError(RuntimeError):
    """A store operation failed for a reason the user can act on; the message says which."""


class VersionExists(StoreError):
    pass


class NotFound(StoreError):
    pass


class ChecksumMismatch(StoreError):
    pass


class Unreachable(StoreError):
    pass


class StoreSettings(BaseModel):
    """Where the store is: MEDMEC_STORE_ENDPOINT (host:port), _ACCESS_KEY, _SECRET_KEY, _SECURE."""

    endpoint: str = Field(min_length=1)
    access_key: str = Field(min_length=1)
    secret_key: str = Field(min_length=1)
    secure: bool = False

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if "://" in value or "/" in value:
            raise ValueError("must be host:port, without a scheme or path")
        return value

    @classmethod
    def from_env(cls, env: dict | None = None) -> "StoreSettings":
        env = os.environ if env is None else env
        missing = [f"MEDMEC_STORE_{k}" for k in ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY")
                   if not env.get(f"MEDMEC_STORE_{k}")]
        if missing:
            raise StoreError(f"set {', '.join(missing)} to reach the model store")
        secure = env.get("MEDMEC_STORE_SECURE", "false").strip().lower()
        if secure not in ("true", "false"):
            raise StoreError(f"MEDMEC_STORE_SECURE must be true or false, not {secure!r}")
        return cls(endpoint=env["MEDMEC_STORE_ENDPOINT"], access_key=env["MEDMEC_STORE_ACCESS_KEY"],
                   secret_key=env["MEDMEC_STORE_SECRET_KEY"], secure=secure == "true")

    def client(self):
        from minio import Minio
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=self.secure)


def check_name_version(name: str, version: str) -> None:
    if not NAME_RE.match(name):
        raise StoreError(f"model name {name!r} must be lower-case letters, digits, '.' or '-' "
                         "(at most 63, starting and ending with a letter or digit)")
    if not VERSION_RE.match(version):
        raise StoreError(f"model version {version!r} must be a positive integer "
                         "(Triton's model versions are)")


def prefix(name: str, version: str) -> str:
    return f"{name}/{version}/"


def _reports_unreachable(method):
    """A connection failure (after the SDK's retries) becomes a StoreError naming the store."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        import urllib3
        try:
            return method(self, *args, **kwargs)
        except urllib3.exceptions.HTTPError as err:
            reason = getattr(err, "reason", None) or err
            raise Unreachable(f"model store {self.settings.endpoint} unreachable: "
                              f"{reason}") from None
    return wrapper


def _is_missing(err) -> bool:
    return getattr(err, "code", None) in ("NoSuchKey", "NoSuchBucket", "NoSuchObject")


def put_if_absent(client, bucket: str, key: str, body: bytes) -> None:
    """PutObject with `If-None-Match: *`: the server refuses (PreconditionFailed) if `key` exists.

    The SDK's put_object turns unknown headers into user metadata, so this goes through its
    single-request PutObject call (minio is pinned).
    """
    client._put_object(bucket, key, body, headers={"If-None-Match": "*",
                                                    "Content-Type": "application/json"})


def verify_bundle(folder: Path, metadata: dict) -> None:
    """Raise ChecksumMismatch unless each bundle file matches metadata's sha256."""
    expected = metadata.get("sha256") or {}
    for file in BUNDLE_FILES:
        if file not in expected:
            raise StoreError(f"{METADATA_FILE} has no sha256 for {file}")
        actual = sha256_file(folder / file)
        if actual != expected[file]:
            raise ChecksumMismatch(f"{file} of {metadata.get('name')}:{metadata.get('version')} "
                                   f"has sha256 {actual}, but its metadata says {expected[file]}")


class ModelStore:
    def __init__(self, settings: StoreSettings):
        self.settings = settings
        self.client = settings.client()

    def ensure_bucket(self, bucket: str) -> None:
        """Make `bucket` unless it is there (one made meanwhile by another client is fine)."""
        from minio.error import S3Error
        if not self.client.bucket_exists(bucket):
            try:
                self.client.make_bucket(bucket)
            except S3Error as err:  # created meanwhile by a concurrent push
                if err.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    @_reports_unreachable
    def metadata(self, name: str, version: str) -> dict:
        from minio.error import S3Error
        check_name_version(name, version)
        try:
            response = self.client.get_object(BUCKET, prefix(name, version) + METADATA_FILE)
            try:
                return json.loads(response.read())
            finally:
                response.close()
                response.release_conn()
        except S3Error as err:
            if _is_missing(err):
                raise NotFound(f"model {name} version {version} is not in the store "
                               f"({self.settings.endpoint}, bucket {BUCKET})") from None
            raise

    @_reports_unreachable
    def versions(self, name: str) -> list[str]:
        """The pushed (complete) versions of `name`, in numeric order."""
        found = []
        for obj in self.client.list_objects(BUCKET, prefix=f"{name}/", recursive=True):
            parts = obj.object_name.split("/")
            if len(parts) == 3 and parts[2] == METADATA_FILE:
                found.append(parts[1])
        return sorted(found, key=int)

    @_reports_unreachable
    def push(self, folder: Path) -> dict:
        """Upload the version folder (model.onnx, card.md, metadata.json); returns metadata."""
        from minio.error import S3Error
        folder = Path(folder)
        try:
            metadata = json.loads((folder / METADATA_FILE).read_text())
        except (OSError, ValueError) as err:
            raise StoreError(f"{folder}: cannot read {METADATA_FILE}: {err}") from None
        name, version = str(metadata.get("name", "")), str(metadata.get("version", ""))
        check_name_version(name, version)
        verify_bundle(folder, metadata)
        self.ensure_bucket(BUCKET)
        try:
            self.metadata(name, version)
        except NotFound:
            pass
        else:
            raise VersionExists(f"model {name} version {version} is already in the store; "
                                "versions are immutable: push a new version")
        # files of a version whose push died before its metadata.json are overwritten here:
        # that version never existed for a reader
        for file in BUNDLE_FILES:
            self.client.fput_object(BUCKET, prefix(name, version) + file, str(folder / file))
        body = (json.dumps(metadata, indent=2) + "\n").encode()
        try:
            put_if_absent(self.client, BUCKET, prefix(name, version) + METADATA_FILE, body)
        except S3Error as err:
            if err.code == "PreconditionFailed":
                raise VersionExists(f"model {name} version {version} was pushed concurrently; "
                                    "versions are immutable") from None
            raise
        return metadata

    @_reports_unreachable
    def pull(self, name: str, version: str, dest: Path, sha256: str | None = None) -> dict:
        """Download a version into `dest`, verified; `sha256` pins the model file's digest.

        Files appear in `dest` only after all of them matched their checksums. A `dest` that
        already holds the verified version is left as it is (an init container's restart).
        """
        from minio.error import S3Error
        dest = Path(dest)
        metadata = self.metadata(name, version)
        model_sha = (metadata.get("sha256") or {}).get(MODEL_FILE)
        if sha256 is not None and sha256.lower() != model_sha:
            raise ChecksumMismatch(f"model {name} version {version}: the store's metadata gives "
                                   f"sha256 {model_sha}, but {sha256.lower()} was required")
        if (dest / METADATA_FILE).is_file():
            try:
                verify_bundle(dest, metadata)
                return metadata
            except (StoreError, OSError):
                pass  # stale or partial: download afresh
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest, prefix=".pull-") as tmp:
            staging = Path(tmp)
            for file in BUNDLE_FILES:
                try:
                    self.client.fget_object(BUCKET, prefix(name, version) + file,
                                            str(staging / file))
                except S3Error as err:
                    if _is_missing(err):
                        raise NotFound(f"model {name} version {version}: {file} is missing "
                                       "from the store") from None
                    raise
            verify_bundle(staging, metadata)
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
            for file in (*BUNDLE_FILES, METADATA_FILE):  # metadata last: it marks completeness
                os.replace(staging / file, dest / file)
        return metadata

    @_reports_unreachable
    def put_hard_example(self, key: str, record: dict) -> None:
        """Keep an escalated case (features and outputs only) for retraining. A put alone:
        the inference pods' key may neither list nor make buckets (access.py); the bucket
        is made only where it is missing (a store set up by hand, with a key that may)."""
        from minio.error import S3Error
        body = json.dumps(record, separators=(",", ":")).encode()

        def put():
            self.client.put_object(HARD_EXAMPLES_BUCKET, key, io.BytesIO(body), len(body),
                                   content_type="application/json")
        try:
            put()
        except S3Error as err:
            if err.code != "NoSuchBucket":
                raise
            self.ensure_bucket(HARD_EXAMPLES_BUCKET)
            put()

