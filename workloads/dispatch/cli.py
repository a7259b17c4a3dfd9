"""`medmec dispatch plan --scenario FILE` and `medmec serve dispatch ...`."""
from __future__ import annotations

import json
import sys


def register(commands, serve) -> None:
    dispatch = commands.add_parser("dispatch", help="care-robot dispatch: offline planning")
    sub = dispatch.add_subparsers(dest="action", required=True, metavar="ACTION")
    plan = sub.add_parser("plan", help="plan a scenario JSON (map, robots, tasks); JSON on stdout")
    plan.add_argument("--scenario", required=True, help="scenario JSON file ('-' for stdin)")
    plan.set_defaults(func=_plan)

    srv = serve.add_parser("dispatch", help="the fleet dispatcher: gRPC API and REST fleet view")
    srv.add_argument("--grpc-port", type=int, default=50051)
    srv.add_argument("--http-port", type=int, default=8080)
    srv.add_argument("--host", default="0.0.0.0", help="address to bind (default: all)")
    srv.add_argument("--map", required=True, help="hospital map JSON (the scenario's `map`)")
    srv.add_argument("--state-dir", required=True, help="where robots and tasks are persisted")
    srv.add_argument("--heartbeat-timeout-s", type=float, default=15.0,
                     help="a robot silent this long is taken offline and its tasks re-planned")
    srv.add_argument("--min-battery-pct", type=float, default=20.0,
                     help="below this a robot takes no new task and goes home to charge")
    srv.add_argument("--fleet-settings", help="the operator's fleet.json (robots, dispatch policy): "
                     "read at start and again on each change; its heartbeat timeout wins")
    srv.set_defaults(func=_serve)


def _plan(args) -> int:
    from medmec.workloads.dispatch.planner import plan_scenario
    from medmec.workloads.dispatch.scenario import ScenarioError, load_scenario
    try:
        text = sys.stdin.read() if args.scenario == "-" else open(args.scenario).read()
    except OSError as err:
        print(f"error: cannot read scenario: {err}", file=sys.stderr)
        return 2
    try:
        scenario = load_scenario(text)
    except ScenarioError as err:
        print(f"error: invalid scenario: {err}", file=sys.stderr)
        return 2
    json.dump(plan_scenario(scenario).to_json(), sys.stdout, indent=1)
    print()
    return 0


def _serve(args) -> int:
    from medmec.workloads.dispatch import server
    return server.main(args)
