"""`medmec gitops promote | rollback | validate | sync`: ship model versions through git.

promote and rollback are also offered as `medmec models promote | rollback` (the model
store's command group adds them with `add_promotion_commands`).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path


def register(commands, serve) -> None:
    gitops = commands.add_parser(
        "gitops", help="promote, roll back and validate model versions in the kustomize overlays")
    sub = gitops.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_promotion_commands(sub)
    validate = sub.add_parser(
        "validate", help="server-side dry-run of every overlay and a check of its model "
                         "versions against the store (the CI check behind `make validate`)")
    validate.add_argument("--hospital", action="append", dest="hospitals",
                          help="only this hospital's overlay (repeatable; default all)")
    validate.add_argument("--local", action="store_true",
                          help="without KUBECONFIG / MEDMEC_STORE_*: use the local control plane "
                               "(started if needed) and a temporary MinIO holding models/")
    _deploy_dir_arg(validate)
    validate.set_defaults(func=_validate)

    sync = sub.add_parser("sync", help="apply a hospital's overlay to the cluster in KUBECONFIG "
                                        "(server-side apply, as Argo CD or Flux would)")
    sync.add_argument("--hospital", required=True)
    _deploy_dir_arg(sync)
    sync.set_defaults(func=_sync)

    chart = commands.add_parser("chart", help="install, upgrade or uninstall medmec for a hospital "
                                              "with Helm (cluster in KUBECONFIG)")
    chart_sub = chart.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = chart_sub.add_parser("install", help="the CRD chart, then the medmec chart with "
                                                   "charts/medmec/hospitals/HOSPITAL.yaml (or upgrade)")
    install.add_argument("--hospital", required=True)
    install.set_defaults(func=_chart_install)
    uninstall = chart_sub.add_parser("uninstall", help="remove the operator, its RBAC and priority "
                                                       "classes; CRDs and hospital resources stay")
    uninstall.set_defaults(func=_chart_uninstall)
    check = chart_sub.add_parser("check", help="what `helm test` runs: the given endpoints "
                                               "answer and every medmec resource is Ready")
    check.add_argument("--http", action="append", default=[], metavar="URL",
                       help="must answer HTTP 200 (repeatable)")
    check.add_argument("--tcp", action="append", default=[], metavar="HOST:PORT",
                       help="must accept a connection (repeatable)")
    check.add_argument("--resources-ready", action="store_true",
                       help="every medmec resource, base stations included, must be Ready")
    check.add_argument("--timeout", type=float, default=300.0,
                       help="seconds to wait for all of it (default 300)")
    check.set_defaults(func=_chart_check)



def add_promotion_commands(sub) -> None:
    """`promote` and `rollback` under a sub-command group (`gitops`, and `models`)."""
    _add_promote(sub)
    _add_rollback(sub)


def _deploy_dir_arg(parser: argparse.ArgumentParser) -> None:
    from medmec.workloads.gitops.overlays import DEPLOY
    parser.add_argument("--deploy-dir", type=Path, default=DEPLOY,
                        help=f"the GitOps layout with base/ and overlays/ (default {DEPLOY})")


def _chart_check(args) -> int:
    from medmec.workloads.gitops.platform_check import check
    found = check(args.http, args.tcp, args.resources_ready, args.timeout)
    for problem in found:
        print(f"not ready: {problem}", file=sys.stderr)
    if not found:
        checked = len(args.http) + len(args.tcp) + (1 if args.resources_ready else 0)
        print(f"platform ready ({checked} check(s) passed)")
    return 1 if found else 0


def _add_promote(sub) -> None:
    promote = sub.add_parser(
        "promote", help="make a model version a hospital's canary (--canary PERCENT) or, after "
                        "that, its live version; edits deploy/overlays/HOSPITAL/models/")
    promote.add_argument("model", help="model name (as in the store and spec.model.name)")
    promote.add_argument("version")
    promote.add_argument("--hospital", required=True)
    promote.add_argument("--canary", type=int, metavar="PERCENT",
                         help="send this share of requests (1-99) to the new version")
    promote.add_argument("--sha256", help="sha256 of model.onnx (default: read from the model "
                                          "store named by MEDMEC_STORE_*)")
    promote.add_argument("--skip-canary", action="store_true",
                         help="promote fully without a canary first")
    _deploy_dir_arg(promote)
    promote.set_defaults(func=_promote)


def _add_rollback(sub) -> None:
    rollback = sub.add_parser(
        "rollback", help="undo the last promotion step: stop the canary, else restore the "
                         "version the last full promotion replaced")
    rollback.add_argument("model")
    rollback.add_argument("--hospital", required=True)
    _deploy_dir_arg(rollback)
    rollback.set_defaults(func=_rollback)


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _store_sha256(model: str, version: str) -> str:
    from medmec.workloads.modelstore.store import ModelStore, StoreSettings
    metadata = ModelStore(StoreSettings.from_env()).metadata(model, version)
    return metadata["sha256"]["model.onnx"]


def _promote(args) -> int:
    from minio.error import MinioException

    from medmec.workloads.gitops import overlays
    from medmec.workloads.gitops.promotion import PromotionError
    from medmec.workloads.modelstore.store import StoreError
    try:
        sha256 = args.sha256 or _store_sha256(args.model, args.version)
        diffs = overlays.promote(args.deploy_dir, args.hospital, args.model, args.version, sha256,
                                 args.canary, args.skip_canary)
    except (PromotionError, StoreError) as err:
        return _fail(str(err))
    except (MinioException, OSError) as err:
        return _fail(f"model store: {err}", 2)
    step = f"canary at {args.canary}%" if args.canary is not None else "live version"
    print(f"{args.hospital}: {args.model} version {args.version} is now the {step} "
          f"(sha256 {sha256}); commit this change for review:\n")
    print("".join(diffs), end="")
    return 0


def _rollback(args) -> int:
    from medmec.workloads.gitops import overlays
    from medmec.workloads.gitops.promotion import PromotionError
    try:
        results = overlays.rollback(args.deploy_dir, args.hospital, args.model)
    except PromotionError as err:
        return _fail(str(err))
    for message, diff in results:
        print(message + "\n")
        print(diff, end="")
    return 0


def _chart(action) -> int:
    from medmec.workloads.gitops.helmchart import HelmError
    if not os.environ.get("KUBECONFIG"):
        return _fail("set KUBECONFIG to the cluster to install into", 2)
    try:
        print(action(os.environ["KUBECONFIG"]))
    except HelmError as err:
        return _fail(str(err))
    return 0


def _chart_install(args) -> int:
    from medmec.workloads.gitops import helmchart
    return _chart(lambda kc: helmchart.install_hospital(kc, args.hospital))


def _chart_uninstall(args) -> int:
    from medmec.workloads.gitops import helmchart
    return _chart(helmchart.uninstall)


def _sync(args) -> int:
    from medmec.workloads.gitops import overlays
    from medmec.workloads.gitops.promotion import PromotionError
    if not os.environ.get("KUBECONFIG"):
        return _fail("set KUBECONFIG to the cluster to apply the overlay to", 2)
    try:
        print(overlays.sync(os.environ["KUBECONFIG"], args.hospital, args.deploy_dir), end="")
    except PromotionError as err:
        return _fail(str(err))
    return 0


@contextlib.contextmanager
def _local_environment(deploy_dir: Path, hospitals: list[str]):
    """KUBECONFIG and a store for the check: the given ones, or local stand-ins (--local)."""
    import tempfile

    from medmec.localcluster import cluster, topology
    from medmec.workloads.gitops import helmchart, validate
    from medmec.workloads.modelstore.minio_server import MinioServer
    from medmec.workloads.modelstore.store import ModelStore, StoreSettings

    created: list[str] = []
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        # a dry-run needs the control plane only: simulated nodes, unless one already runs
        state = cluster.up(cluster.state_dir(), str(topology.KWOK_ONLY),
                           log=lambda m: print(m, file=sys.stderr))
        kubeconfig = str(state.kubeconfig)
        if validate.kubectl(["get", "crd", "edgeinferenceservices.medmec.io"], kubeconfig).returncode:
            helmchart.install_crds(kubeconfig)
        # the dry-run needs the target namespaces; those made here are removed afterwards, so
        # a later `helm install` of the hospital can still create them
        for ns in sorted(validate.namespaces(deploy_dir, hospitals)):
            if validate.kubectl(["get", "namespace", ns], kubeconfig).returncode:
                validate.kubectl(["create", "namespace", ns], kubeconfig)
                created.append(ns)
    try:
        if os.environ.get("MEDMEC_STORE_ENDPOINT"):
            yield kubeconfig, ModelStore(StoreSettings.from_env()), "the model store at " + \
                os.environ["MEDMEC_STORE_ENDPOINT"]
            return
        models_dir = deploy_dir.parent / "models"
        with tempfile.TemporaryDirectory(prefix="medmec-validate-") as tmp, \
                MinioServer(Path(tmp)).start() as minio:
            store = ModelStore(minio.settings)
            for metadata in sorted(models_dir.glob("*/*/metadata.json")):
                store.push(metadata.parent)
            yield kubeconfig, store, f"a temporary MinIO holding {models_dir}"
    finally:
        if created:
            validate.kubectl(["delete", "namespace", "--wait=false", *created], kubeconfig)


def _validate(args) -> int:
    from medmec.workloads.gitops import overlays, validate
    hospitals = args.hospitals or overlays.hospitals(args.deploy_dir)
    unknown = sorted(set(hospitals) - set(overlays.hospitals(args.deploy_dir)))
    if unknown:
        return _fail(f"no overlay for {', '.join(unknown)} in {args.deploy_dir / 'overlays'}")
    if not args.local and not os.environ.get("KUBECONFIG"):
        return _fail("set KUBECONFIG (and MEDMEC_STORE_*) for the cluster and store to check "
                     "against, or pass --local", 2)
    if not args.local and not os.environ.get("MEDMEC_STORE_ENDPOINT"):
        return _fail("set MEDMEC_STORE_ENDPOINT, _ACCESS_KEY and _SECRET_KEY for the model store, "
                     "or pass --local", 2)
    with _local_environment(args.deploy_dir, hospitals) as (kubeconfig, store, where):
        print(f"checking {len(hospitals)} overlays against {kubeconfig} and {where}")
        reports = [validate.validate_overlay(args.deploy_dir / "overlays" / h, kubeconfig, store)
                   for h in hospitals]
    for report in reports:
        status = "ok" if report.ok else f"{len(report.problems)} problems"
        print(f"{report.hospital}: {len(report.services)} services "
              f"({', '.join(report.services)}): {status}")
        for problem in report.problems:
            print(f"  - {problem}")
    return 0 if all(r.ok for r in reports) else 1
