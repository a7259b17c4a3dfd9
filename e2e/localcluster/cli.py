"""`medmec cluster build | up | down | status | kubeconfig | env`: the local cluster."""
from __future__ import annotations

import argparse
import sys


def register(commands, serve) -> None:
    cluster = commands.add_parser("cluster", help="manage the local Kubernetes control plane")
    sub = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")

    build = sub.add_parser("build", help="build (first time) or reuse the Go binaries")
    build.add_argument("names", nargs="*", help="entries of binaries.toml (default: all)")
    build.set_defaults(func=_build)

    up = sub.add_parser("up", help="start the control plane, the real and the simulated nodes "
                        "(reuses a running one)")
    up.add_argument("--topology", help="topology YAML (default: the one shipped in e2e/)")
    _state_dir_arg(up)
    up.set_defaults(func=_up)

    down = sub.add_parser("down", help="stop every process the cluster started and remove its state")
    _state_dir_arg(down)
    down.set_defaults(func=_down)

    status = sub.add_parser("status", help="components, and nodes by base station with their GPUs")
    _state_dir_arg(status)
    status.set_defaults(func=_status)

    kubeconfig = sub.add_parser("kubeconfig", help="print the path of the admin kubeconfig")
    _state_dir_arg(kubeconfig)
    kubeconfig.set_defaults(func=_kubeconfig)

    env = sub.add_parser("env", help='shell lines for eval "$(medmec cluster env)": KUBECONFIG, '
                         "and the built kubectl and helm on PATH")
    _state_dir_arg(env)
    env.set_defaults(func=_env)


def _state_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", help="the cluster's state folder (default: "
                        "$MEDMEC_CLUSTER_DIR or ${XDG_STATE_HOME:-~/.local/state}/medmec/cluster)")


def _fail(err: Exception) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 1


def _build(args) -> int:
    from medmec.localcluster import binaries
    return binaries.main(args.names)


def _up(args) -> int:
    from medmec.localcluster import cluster
    try:
        state = cluster.up(cluster.state_dir(args.state_dir), args.topology,
                           log=lambda m: print(m, file=sys.stderr, flush=True))
    except cluster.ClusterError as err:
        return _fail(err)
    print(cluster.describe(state))
    print(f'\nfor kubectl and helm on this cluster: eval "$(medmec cluster env'
          f'{" --state-dir " + args.state_dir if args.state_dir else ""})"')
    return 0


def _down(args) -> int:
    from medmec.localcluster import cluster
    stopped = cluster.down(cluster.state_dir(args.state_dir))
    print(f"stopped {len(stopped)} processes" + (f": {', '.join(stopped)}" if stopped else ""))
    return 0


def _status(args) -> int:
    from medmec.localcluster import cluster
    try:
        state = cluster.running(cluster.state_dir(args.state_dir))
    except cluster.ClusterError as err:
        return _fail(err)
    print(cluster.describe(state))
    return 0


def _kubeconfig(args) -> int:
    from medmec.localcluster import cluster
    try:
        state = cluster.running(cluster.state_dir(args.state_dir))
    except cluster.ClusterError as err:
        return _fail(err)
    print(state.kubeconfig)
    return 0


def _env(args) -> int:
    import shlex

    from medmec.localcluster import binaries, cluster
    try:
        state = cluster.running(cluster.state_dir(args.state_dir))
    except cluster.ClusterError as err:
        return _fail(err)
    folders = dict.fromkeys(str(binaries.binary(b).parent) for b in ("kubectl", "helm"))
    print(f"export KUBECONFIG={shlex.quote(str(state.kubeconfig))}")
    print(f'export PATH={":".join(shlex.quote(f) for f in folders)}:"$PATH"')
    return 0
