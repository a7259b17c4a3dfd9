"""The inference pods' own key to the model store: read the models, add hard examples.

The store's root key stays with the platform (MinIO itself, the AI team's pushes); every
slice namespace holds only this key, so an inference pod can neither change nor delete a
model version nor read the hard examples other services kept. `grant_inference_key` makes
it a MinIO user with that policy (idempotent: an upgrade runs it again).
"""
from __future__ import annotations

import time

from .store import BUCKET, HARD_EXAMPLES_BUCKET, ModelStore, StoreError, StoreSettings

POLICY = "medmec-inference"


def inference_policy(models: str = BUCKET, hard_examples: str = HARD_EXAMPLES_BUCKET) -> dict:
    """IAM policy: list and read `models`; only put objects into `hard_examples`."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::{models}"]},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{models}/*"]},
        # the S3 client asks a bucket's location before its first put
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation"],
         "Resource": [f"arn:aws:s3:::{hard_examples}"]},
        {"Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": [f"arn:aws:s3:::{hard_examples}/*"]}]}


def grant_inference_key(root: StoreSettings, access_key: str, secret_key: str,
                        timeout_s: float = 120.0) -> None:
    """Make (or update) the MinIO user `access_key` with the inference policy, and the
    buckets it uses; retried until the store answers or `timeout_s` has passed."""
    from minio import MinioAdmin
    from minio.credentials import StaticProvider
    from minio.error import MinioAdminException, S3Error
    from urllib3.exceptions import HTTPError

    if access_key == root.access_key:
        raise StoreError("the inference key must not be the store's root key")
    admin = MinioAdmin(endpoint=root.endpoint, secure=root.secure,
                       credentials=StaticProvider(root.access_key, root.secret_key))
    store = ModelStore(root)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            for bucket in (BUCKET, HARD_EXAMPLES_BUCKET):
                store.ensure_bucket(bucket)
            admin.policy_add(POLICY, policy=inference_policy())
            admin.user_add(access_key, secret_key)  # sets the secret of an existing user
            admin.policy_set(POLICY, user=access_key)
            return
        except (HTTPError, OSError) as err:  # the store not up yet
            if time.monotonic() > deadline:
                raise StoreError(f"model store {root.endpoint} unreachable: {err}") from err
            time.sleep(2)
        except (MinioAdminException, S3Error) as err:
            raise StoreError(f"model store {root.endpoint}: {err}") from err
