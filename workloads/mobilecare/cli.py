"""`medmec serve mobilecare-edge` (one edge site's session service), `medmec serve
mobility` (the handover API that moves sessions between sites) and `medmec mobilecare drive`
(an emulated ambulance: its monitor streams while it drives the route)."""
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

    tools = commands.add_parser("mobilecare", help="mobile care tools")
    sub = tools.add_subparsers(dest="action", required=True, metavar="ACTION")
    drive = sub.add_parser("drive", help="an emulated ambulance: stream vitals and report a "
                           "handover at each base station of the route")
    drive.add_argument("--mobility", required=True, help="the mobility service's URL")
    drive.add_argument("--vehicle", required=True)
    drive.add_argument("--session", required=True, help="the session's pseudonymous id")
    drive.add_argument("--route", required=True, help="base stations, comma-separated, in order")
    drive.add_argument("--dwell", type=float, default=5.0, help="seconds on each base station")
    drive.add_argument("--laps", type=int, default=1, help="drive there, back, there, ...")
    drive.set_defaults(func=_drive)


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


def _drive(args) -> int:
    import asyncio
    import json

    import httpx

    from .ambulance import Monitor, drive, eta_countdown, resolver
    route = [bs for bs in args.route.split(",") if bs]
    if len(route) < 2 or args.dwell <= 0 or args.laps < 1:
        print("error: --route needs two base stations or more; --dwell and --laps must be positive",
              file=sys.stderr)
        return 2
    legs = (len(route) - 1) * args.laps
    duration = args.dwell * (legs + 1)

    async def run() -> dict:
        async with httpx.AsyncClient() as client:
            monitor = Monitor(args.session, resolver(args.mobility, args.session, client),
                              eta=eta_countdown(duration))
            done = asyncio.Event()
            runner = asyncio.create_task(monitor.run(done))
            producer = asyncio.create_task(monitor.produce(duration))
            for answer in await drive(args.mobility, args.vehicle, route, args.dwell, client, args.laps):
                print(json.dumps(answer), flush=True)
            await producer
            done.set()
            await runner
            return {"samples": monitor.produced, "acknowledged": monitor.acked,
                    "rejected": len(monitor.rejected),
                    "switchoverMs": [round(1000 * s, 1) for s in monitor.switchovers()]}
    print(json.dumps(asyncio.run(run())))
    return 0
