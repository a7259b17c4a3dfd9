"""The `medmec` command. Each area of the project adds its own sub-commands.

An area module exposes `register(commands, serve)`: `commands` is the top-level
sub-parser set (`medmec cluster ...`), `serve` the one under `medmec serve ...`. Each
parser sets `func` to a callable taking the parsed args and returning an exit code.
Area modules import their heavy dependencies inside those callables, so that
`medmec --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

AREAS = [
    "medmec.localcluster.cli",
    "medmec.localcluster.images",
    "medmec.workloads.qos.cli",
    "medmec.workloads.console.cli",
    "medmec.operator.cli",
    "medmec.workloads.inference.cli",
    "medmec.workloads.nursing.cli",
    "medmec.workloads.dispatch.cli",
    "medmec.workloads.gitops.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medmec", description="5G smart-hospital edge computing: operator, workloads and tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="run one of the edge workloads")
    serve = serve_parser.add_subparsers(dest="workload", required=True, metavar="WORKLOAD")
    for area in AREAS:
        importlib.import_module(area).register(commands, serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
