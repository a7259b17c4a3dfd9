"""`medmec serve nursing` (the bedside service) and `medmec nursing news2` (scoring filter)."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def register(commands, serve) -> None:
    nursing = commands.add_parser("nursing", help="cloud nursing tools")
    sub = nursing.add_subparsers(dest="action", required=True, metavar="ACTION")
    news2 = sub.add_parser(
        "news2", help="score NEWS2 for JSON-lines observation sets read from stdin",
        description='One JSON object per line: {"respiration_rate", "spo2", "spo2_scale": 1|2, '
                    '"on_oxygen", "systolic_bp", "pulse", "consciousness": "A|C|V|P|U", '
                    '"temperature_c"}. One JSON line out per line in: {"score", "risk", '
                    '"parameters"} or {"error"}.')
    news2.set_defaults(func=_news2)

    p = serve.add_parser("nursing", help="the cloud nursing service (REST + gRPC)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--grpc-port", type=int, default=50051)
    db = p.add_mutually_exclusive_group()
    db.add_argument("--database", help="sqlite:////PATH (default "
                    "sqlite:////var/lib/medmec/nursing/nursing.db) or a postgresql:// DSN")
    db.add_argument("--database-env", metavar="VAR",
                    help="read the database URL (e.g. a PostgreSQL DSN) from this variable")
    p.add_argument("--ward", action="append", required=True, dest="wards", metavar="ID",
                   help="a ward this service serves (repeatable)")
    p.add_argument("--tokens-file", type=Path, default=Path("/etc/medmec/tokens/tokens.json"),
                   help="bearer tokens with their role and ward (JSON; format in the "
                        "nursing README)")
    p.add_argument("--dose-window-minutes", type=float, default=30,
                   help="a dose may be given this long before or after its time (default 30)")
    p.add_argument("--vitals-max-age-minutes", type=float, default=60,
                   help="a parameter older than this no longer completes a NEWS2 set (default 60)")
    p.add_argument("--settings", type=Path, help="the operator's nursing.json (early-warning "
                   "thresholds): read at start and again on each change")
    p.set_defaults(func=_serve)


def _news2(args) -> int:
    from pydantic import ValidationError

    from medmec.workloads.nursing.news2 import VitalSigns, score

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            out = score(VitalSigns.model_validate_json(line)).to_json()
        except ValidationError as err:
            out = {"error": "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in err.errors())}
        print(json.dumps(out), flush=True)
    return 0


def _serve(args) -> int:
    import asyncio
    import logging

    from medmec.workloads.nursing.server import database_url, serve
    from medmec.workloads.nursing.tokens import TokensError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.dose_window_minutes <= 0 or args.vitals_max_age_minutes <= 0:
        print("error: --dose-window-minutes and --vitals-max-age-minutes must be positive",
              file=sys.stderr)
        return 2
    try:
        url = database_url(args.database, args.database_env)
        asyncio.run(serve(host=args.host, http_port=args.http_port, grpc_port=args.grpc_port,
                          database=url, wards=args.wards, tokens_file=args.tokens_file,
                          dose_window_s=args.dose_window_minutes * 60,
                          vitals_max_age_s=args.vitals_max_age_minutes * 60,
                          settings_file=args.settings))
    except (TokensError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
