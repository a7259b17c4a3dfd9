"""`medmec serve console`."""
from __future__ import annotations

import os
from pathlib import Path


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
        nursing_token = (Path(args.nursing_token_file).read_text().strip()
                         if args.nursing_token_file else os.environ.get("MEDMEC_NURSING_TOKEN"))
    except (OSError, ValueError) as err:
        print(f"medmec serve console: {err}", file=sys.stderr)
        return 2
    telemetry.setup("medmec-console")
    sources = Sources(_api_client(), endpoints, nursing_token)
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
    p.add_argument("--nursing-token-file",
                   help="a read token of the nursing service, for the alert feed "
                        "(or MEDMEC_NURSING_TOKEN)")
    p.add_argument("--endpoint", action="append", default=[], metavar="KIND/NS/NAME=URL",
                   help="base URL of a workload outside the cluster DNS (repeatable)")
    p.add_argument("--refresh", type=duration, default=5.0, help="how often to re-read everything")
    p.set_defaults(func=serve)
