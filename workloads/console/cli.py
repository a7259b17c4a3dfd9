"""`medmec serve console`."""
from __future__ import annotations

import os
from pathlib import Path


def load_nursing_tokens(text: str) -> dict[str, str]:
    """Lines of `WARD TOKEN` (a token that may read that ward's alerts) or a bare `TOKEN` for
    every ward; '#' starts a comment."""
    tokens = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if len(fields) == 1:
            tokens["*"] = fields[0]
        elif len(fields) == 2:
            tokens[fields[0]] = fields[1]
        elif fields:
            raise ValueError(f"nursing tokens line {number}: expected 'WARD TOKEN' or 'TOKEN'")
    return tokens


def serve(args) -> int:
    import logging
    import sys

    import uvicorn

    from medmec import telemetry
    from medmec.workloads.qos.cli import _api_client
    from medmec.workloads.qos.endpoints import Endpoints

    from .server import app, load_tokens
    from .sources import Sources

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        tokens = load_tokens(Path(args.tokens_file))
        endpoints = Endpoints.from_args(args.endpoint)
        nursing_tokens = load_nursing_tokens(
            Path(args.nursing_tokens_file).read_text() if args.nursing_tokens_file
            else os.environ.get("MEDMEC_NURSING_TOKEN", ""))
    except (OSError, ValueError) as err:
        print(f"medmec serve console: {err}", file=sys.stderr)
        return 2
    telemetry.setup("medmec-console")
    sources = Sources(_api_client(), endpoints, nursing_tokens)
    uvicorn.run(app(sources, tokens, args.refresh), host=args.host, port=args.http_port,
                log_level="warning")
    return 0


def register(commands, serve_parsers) -> None:
    from medmec.workloads.qos.cli import duration

    p = serve_parsers.add_parser("console", help="the read-only hospital console (web page)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--tokens-file", required=True,
                   help="console login tokens, one per line (at least 16 characters each)")
    p.add_argument("--nursing-tokens-file",
                   help="nursing-service tokens that may read ward alerts, one 'WARD TOKEN' per "
                        "line or one TOKEN for all wards (or MEDMEC_NURSING_TOKEN)")
    p.add_argument("--endpoint", action="append", default=[], metavar="KIND/NS/NAME=URL",
                   help="base URL of a workload outside the cluster DNS (repeatable)")
    p.add_argument("--refresh", type=duration, default=5.0, help="how often to re-read everything")
    p.set_defaults(func=serve)
