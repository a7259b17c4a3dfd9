"""`medmec qos accept|run` and `medmec serve qos-reflector`."""
from __future__ import annotations

import argparse
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def duration(text: str) -> float:
    """'60s', '100ms', '5m', '1.5' (seconds) -> seconds."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|)\s*", text)
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration such as 60s, 500ms or "
                                         f"5m, got {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def link(text: str) -> tuple[str, tuple[str, int]]:
    """'gnb-north=127.0.0.1:7001' -> ('gnb-north', ('127.0.0.1', 7001))."""
    name, sep, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not (sep and name and host and colon and port.isdigit() and 0 < int(port) < 65536):
        raise argparse.ArgumentTypeError(f"expected BASE_STATION=HOST:PORT, got {text!r}")
    return name, (host, int(port))


def _api_client():
    from kubernetes import config
    try:
        return config.new_client_from_config()
    except config.ConfigException:
        config.load_incluster_config()
        from kubernetes import client
        return client.ApiClient()


def _links(args) -> dict[str, tuple[str, int]]:
    return dict(args.link)


def accept(args) -> int:
    import asyncio
    import sys

    from medmec.operator.profiles import PROFILES, resolve_qos

    from . import acceptance
    from .link import DSCP

    links = _links(args)
    inference_p99 = None
    if args.profile:
        qos, slice_type, title = PROFILES[args.profile], None, f"profile {args.profile}"
    else:
        from kubernetes.client.rest import ApiException

        from .assurance import Assurance
        from .endpoints import Endpoints
        from .kube import SliceApi
        api = SliceApi(_api_client())
        try:
            ms = asyncio.run(api.get_slice(args.namespace, args.slice))
        except ApiException as err:
            print(f"medmec qos accept: cannot read MedicalSlice {args.namespace}/{args.slice}: "
                  f"{err.status} {err.reason}", file=sys.stderr)
            return 2
        try:
            qos = resolve_qos(ms["spec"])
        except ValueError as err:
            print(f"medmec qos accept: {err}", file=sys.stderr)
            return 2
        missing = [bs for bs in ms["spec"]["baseStations"] if bs not in links]
        if missing:
            print(f"medmec qos accept: no --link for covered base station(s) "
                  f"{', '.join(missing)}", file=sys.stderr)
            return 2
        links = {bs: links[bs] for bs in ms["spec"]["baseStations"]}
        slice_type = ms["spec"]["sliceType"]
        title = f"MedicalSlice {args.namespace}/{args.slice} ({ms['spec'].get('profile', 'explicit qos')})"

        async def p99():
            watcher = Assurance(api, {}, endpoints=Endpoints.from_args(args.endpoint))
            try:
                return await watcher.inference_p99_ms(args.namespace, args.slice)
            finally:
                await watcher.close()
        inference_p99 = asyncio.run(p99())
    if not links:
        print("medmec qos accept: give at least one --link BASE_STATION=HOST:PORT", file=sys.stderr)
        return 2
    report = asyncio.run(acceptance.run(qos, links, args.duration, interval_s=args.interval,
                                        inference_p99_ms=inference_p99,
                                        dscp=DSCP.get(slice_type) if slice_type else None))
    print(acceptance.render(report, f"Acceptance test of {title} over {args.duration:g} s"))
    return 0 if acceptance.passed(report) else 1


def run(args) -> int:
    import asyncio
    import logging

    from medmec import telemetry

    from .alerts import AlertSink
    from .assurance import Assurance, ProbeSettings
    from .budget import Policy
    from .endpoints import Endpoints
    from .kube import SliceApi

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    telemetry.setup("medmec-qos")
    watcher = Assurance(
        SliceApi(_api_client()), _links(args),
        policy=Policy(window_s=args.window, min_samples=args.min_samples,
                      breach_ratio=args.breach_ratio),
        probe=ProbeSettings(interval_s=args.interval, timeout_s=args.timeout,
                            burst_every_s=args.burst_every),
        hold_down_s=args.hold_down, evaluate_every_s=args.evaluate_every,
        endpoints=Endpoints.from_args(args.endpoint), alerts=AlertSink(args.alertmanager_url),
        namespace=args.namespace)
    asyncio.run(watcher.run())
    return 0


def reflector(args) -> int:
    import asyncio
    import logging

    from . import reflector as server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def main():
        srv = await server.serve(args.host, args.port)
        logging.info("QoS reflector on %s:%d", args.host, args.port)
        async with srv:
            await srv.serve_forever()
    asyncio.run(main())
    return 0


def emulate(args) -> int:
    """Emulated 5G links for a demo: a reflector behind one Toxiproxy proxy per base station,
    until interrupted."""
    import signal
    import tempfile
    import threading
    from pathlib import Path

    from . import emulation

    state = Path(args.state_dir or tempfile.mkdtemp(prefix="medmec-links-"))
    links = emulation.start(args.base_stations, state)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print(f"Toxiproxy API: {links.toxiproxy.api_url} (logs in {state})")
        print("medmec qos run " + " ".join(links.link_args()), flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        links.stop()
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--link", action="append", type=link, default=[], metavar="BS=HOST:PORT",
                   help="where to reach the reflector of a base station's MEC site (repeatable)")
    p.add_argument("--endpoint", action="append", default=[], metavar="KIND/NS/NAME=URL",
                   help="base URL of a workload outside the cluster DNS, e.g. "
                        "inference/surgery/tumour-seg=http://127.0.0.1:8002")
    p.add_argument("--interval", type=duration, help="time between pings")


def register(commands, serve) -> None:
    qos = commands.add_parser("qos", help="measure medical slices against their QoS budget")
    sub = qos.add_subparsers(dest="qos_command", required=True, metavar="COMMAND")

    p = sub.add_parser("accept", help="acceptance-test a slice's links against table 5-1")
    p.add_argument("slice", help="MedicalSlice name (or any label with --profile)")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--profile", help="judge against this table 5-1 profile instead of reading "
                                     "the slice from the cluster")
    p.add_argument("--duration", type=duration, default=60.0)
    _common(p)
    p.set_defaults(func=accept, interval=0.1)

    p = sub.add_parser("run", help="probe every slice continuously and act on breaches")
    p.add_argument("-n", "--namespace", help="only slices in this namespace")
    p.add_argument("--window", type=duration, default=10.0)
    p.add_argument("--timeout", type=duration, default=1.0, help="a ping lost after this long")
    p.add_argument("--min-samples", type=int, default=5)
    p.add_argument("--breach-ratio", type=float, default=0.1,
                   help="fraction of a window's pings that may be lost or over budget")
    p.add_argument("--evaluate-every", type=duration, default=5.0)
    p.add_argument("--burst-every", type=duration, default=60.0)
    p.add_argument("--hold-down", type=duration, default=300.0,
                   help="how long a link must meet its budget before services move back")
    p.add_argument("--alertmanager-url", help="post alerts to this Alertmanager")
    _common(p)
    p.set_defaults(func=run, interval=1.0)

    p = sub.add_parser("emulate", help="emulated 5G links on loopback (Toxiproxy) for a demo")
    p.add_argument("base_stations", nargs="+", metavar="BASE_STATION")
    p.add_argument("--state-dir", help="where the reflector and Toxiproxy write their logs")
    p.set_defaults(func=emulate)

    p = serve.add_parser("qos-reflector", help="the MEC-side end of the QoS probes")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=7070)
    p.set_defaults(func=reflector)
