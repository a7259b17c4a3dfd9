"""`medmec operator run`: the kopf operator, in one namespace, several, or all."""
from __future__ import annotations

import argparse


def register(commands, serve) -> None:
    operator = commands.add_parser("operator", help="the medmec Kubernetes operator")
    sub = operator.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="reconcile medmec resources until stopped")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", dest="namespaces", default=None,
                       help="serve this namespace (repeatable; globs allowed)")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="serve every namespace (the default without --namespace)")
    run.add_argument("--peering", help="kopf peering name for several replicas "
                     "(default medmec; '' = standalone)")
    run.add_argument("--priority", type=int, help="peering priority of this replica: the highest "
                     "of the running replicas reconciles (default 0)")
    run.add_argument("--liveness-port", type=int,
                     help="port of the /healthz liveness endpoint (0 = off; default 8080)")
    run.add_argument("--liveness-host", help="address the liveness endpoint binds (default 0.0.0.0)")
    run.add_argument("--image", help="image of the workload containers")
    run.add_argument("--store-endpoint", help="model store host:port for the model fetch step")
    run.add_argument("--store-secret", help="Secret with the model store's access-key/secret-key")
    run.add_argument("--fleet-url-template", help="where a robot fleet's dispatcher view is read "
                     "(default http://{service}.{namespace}.svc:{port}/v1/fleet)")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import kopf

    from medmec import telemetry
    from medmec.operator import handlers
    from medmec.operator.settings import OperatorSettings

    settings = OperatorSettings.from_env(
        namespaces=None if args.all_namespaces else args.namespaces, peering=args.peering,
        priority=args.priority,
        liveness_port=args.liveness_port, liveness_host=args.liveness_host, image=args.image,
        store_endpoint=args.store_endpoint, store_secret=args.store_secret,
        fleet_url_template=args.fleet_url_template)
    telemetry.setup("medmec-operator")
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    registry, _ = handlers.register(settings)
    liveness = (f"http://{settings.liveness_host}:{settings.liveness_port}/healthz"
                if settings.liveness_port else None)
    kopf.run(registry=registry, clusterwide=not settings.namespaces,
             namespaces=settings.namespaces, peering_name=settings.peering or None,
             standalone=not settings.peering, priority=settings.peering_priority,
             liveness_endpoint=liveness)
    return 0
