"""`medmec models push | pull | list | promote | rollback` and `medmec serve inference`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(commands, serve) -> None:
    models = commands.add_parser(
        "models", help="push and pull model versions (MinIO store from MEDMEC_STORE_* env), "
                       "promote and roll back versions in the GitOps overlays")
    sub = models.add_subparsers(dest="action", required=True, metavar="ACTION")

    push = sub.add_parser("push", help="upload a version folder (model.onnx, card.md, "
                                       "metadata.json); a pushed version is never overwritten")
    push.add_argument("dir", type=Path)
    push.set_defaults(func=_push)

    pull = sub.add_parser("pull", help="download a version and verify its sha256")
    pull.add_argument("name")
    pull.add_argument("version")
    pull.add_argument("dest", type=Path)
    pull.add_argument("--sha256", help="required sha256 of model.onnx (hex)")
    pull.set_defaults(func=_pull)

    listing = sub.add_parser("list", help="the versions of a model in the store")
    listing.add_argument("name")
    listing.set_defaults(func=_list)

    grant = sub.add_parser(
        "grant-inference-key",
        help="make the inference pods' key (MEDMEC_INFERENCE_ACCESS_KEY, _SECRET_KEY) a store "
             "user that reads the models and adds hard examples, nothing else (with the "
             "store's root key in MEDMEC_STORE_*)")
    grant.add_argument("--timeout", type=float, default=120.0,
                       help="seconds to wait for the store to answer")
    grant.set_defaults(func=_grant_inference_key)

    # promote / rollback edit the GitOps overlays; also offered as `medmec gitops ...`
    from medmec.workloads.gitops.cli import add_promotion_commands
    add_promotion_commands(sub)

    inference = serve.add_parser(
        "inference", help="serve an ONNX diagnosis model with Triton (KServe v2, HTTP + gRPC)")
    from medmec.workloads.inference.settings import add_arguments
    add_arguments(inference)
    inference.set_defaults(func=_serve_inference)


def _store():
    from medmec.workloads.modelstore.store import ModelStore, StoreSettings
    return ModelStore(StoreSettings.from_env())


def _run_store(action) -> int:
    from minio.error import MinioException
    from medmec.workloads.modelstore.store import StoreError
    try:
        action()
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (MinioException, OSError) as err:
        print(f"error: model store: {err}", file=sys.stderr)
        return 2
    return 0


def _push(args) -> int:
    def action():
        m = _store().push(args.dir)
        print(f"pushed {m['name']}:{m['version']} (model.onnx sha256 {m['sha256']['model.onnx']})")
    return _run_store(action)


def _pull(args) -> int:
    def action():
        m = _store().pull(args.name, args.version, args.dest, sha256=args.sha256)
        print(f"pulled {m['name']}:{m['version']} into {args.dest} (sha256 verified)")
    return _run_store(action)


def _list(args) -> int:
    return _run_store(lambda: print(json.dumps(_store().versions(args.name))))


def _grant_inference_key(args) -> int:
    import os
    from medmec.workloads.modelstore.access import grant_inference_key
    from medmec.workloads.modelstore.store import StoreError, StoreSettings

    def action():
        keys = [os.environ.get(f"MEDMEC_INFERENCE_{k}_KEY", "") for k in ("ACCESS", "SECRET")]
        if not all(keys):
            raise StoreError("set MEDMEC_INFERENCE_ACCESS_KEY and MEDMEC_INFERENCE_SECRET_KEY")
        grant_inference_key(StoreSettings.from_env(), *keys, timeout_s=args.timeout)
        print(f"store user {keys[0]} reads the models and adds hard examples")
    return _run_store(action)


def _serve_inference(args) -> int:
    from pydantic import ValidationError
    from medmec.workloads.inference.settings import ServerSettings
    try:
        settings = ServerSettings.from_args(args)
    except ValidationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from medmec.workloads.inference.server import serve
    return serve(settings)
