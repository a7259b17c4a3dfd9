"""`medmec serve mobilecare-edge` (one edge site's session service) and `medmec serve
mobility` (the handover API that moves sessions between sites)."""
from __future__ import annotations

import sys
from pathlib import Path


def register(commands, serve) -> None:
    edge = serve.add_parser("mobilecare-edge", help="an edge site's ambulance session service (gRPC)")
    edge.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    edge.add_argument("--port", type=int, default=50061)
    edge.add_argument("--site", required=True, help="the base station whose edge site this is")
    edge.add_argument("--database", type=Path, default=Path("/var/lib/medmec/mobilecare/sessions.db"),
                      help="the site's SQLite session store")
    edge.add_argument("--context-key-file", type=Path, required=True,
                      help="AES-256 key (32 bytes, raw or base64) sealing contexts between sites")
    edge.add_argument("--max-sessions", type=int, default=500,
                      help="sessions this site may hold at once (its share of the slice)")
    edge.add_argument("--nursing-token-file", type=Path,
                      help="bearer token (role device, destination ward) for forwarding vitals")
    edge.set_defaults(func=_edge)

    mob = serve.add_parser("mobility", help="the handover API: moves sessions between edge sites")
    mob.add_argument("--host", default="0.0.0.0")
    mob.add_argument("--port", type=int, default=8090)
    mob.add_argument("--config", type=Path, required=True,
                     help="JSON: {sites: [{baseStation, target}], transports: [...]} (README)")
    mob.add_argument("--admit-token-file", type=Path,
                     help="bearer token (role doctor or admin) for the pre-arrival admission")
    mob.set_defaults(func=_mobility)


def _logging() -> None:
    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _edge(args) -> int:
    import asyncio

    from .edge import serve
    _logging()
    if args.max_sessions < 1:
        print("error: --max-sessions must be at least 1", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(host=args.host, port=args.port, site=args.site, database=args.database,
                          key_file=args.context_key_file, max_sessions=args.max_sessions,
                          nursing_token_file=args.nursing_token_file))
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _mobility(args) -> int:
    import asyncio

    from pydantic import ValidationError

    from .mobility import Config, serve
    _logging()
    try:
        config = Config.model_validate_json(args.config.read_text())
        token = args.admit_token_file.read_text().strip() if args.admit_token_file else None
        asyncio.run(serve(host=args.host, port=args.port, config=config, admit_token=token))
    except ValidationError as err:
        print(f"error: {args.config}: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()), file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
