"""`medmec cluster up | down | status`: a real Kubernetes control plane as local processes.

etcd, kube-apiserver (RBAC, service-account tokens, TLS), kube-controller-manager,
kube-scheduler and KWOK run from the cached binaries on free loopback ports; KWOK plays
the kubelets of the topology's nodes. Everything lives in one state folder: certificates,
kubeconfigs, etcd data, logs and state.json (pids and ports). `down` stops the recorded
processes by pid and removes the folder.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from medmec import processes
from medmec.localcluster import binaries, pki, topology
from medmec.netutil import free_port

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service's ClusterIP, first of SERVICE_CIDR
START_TIMEOUT = 90.0
BINARIES = ["kubernetes", "etcd", "kwok"]
# the components in start order, and the ports each listens on
PORTS = {
    "etcd": ("etcd", "etcd-peer"),
    "kube-apiserver": ("apiserver",),
    "kube-controller-manager": ("controller-manager",),
    "kube-scheduler": ("scheduler",),
    "kwok": ("kwok",),
}


class ClusterError(RuntimeError):
    """The cluster could not be started or found; the message names the cause."""


@dataclasses.dataclass
class State:
    folder: Path
    ports: dict[str, int]
    procs: list[processes.Proc]
    topology_file: str
    # processes started on top of the cluster (operator, MinIO, workloads of the demo):
    # not part of its health, but stopped by `down` with it
    addons: list[processes.Proc] = dataclasses.field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def save(self) -> None:
        data = {"ports": self.ports, "procs": [p.to_json() for p in self.procs],
                "addons": [p.to_json() for p in self.addons], "topology": self.topology_file}
        tmp = self.folder / "state.json.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.folder / "state.json")

    @classmethod
    def load(cls, folder: Path) -> "State | None":
        try:
            data = json.loads((folder / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(folder=folder, ports=data["ports"],
                   procs=[processes.Proc(**p) for p in data["procs"]],
                   addons=[processes.Proc(**p) for p in data.get("addons", [])],
                   topology_file=data["topology"])


def state_dir(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    if os.environ.get("MEDMEC_CLUSTER_DIR"):
        return Path(os.environ["MEDMEC_CLUSTER_DIR"]).expanduser().resolve()
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "medmec" / "cluster"


# --- kubeconfigs and HTTP checks -------------------------------------------------------

def _kubeconfig(folder: Path, server: str, identity: str) -> Path:
    pki_dir = folder / "pki"
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "medmec-local",
        "clusters": [{"name": "medmec-local", "cluster": {
            "server": server, "certificate-authority-data": _b64(pki_dir / "ca.crt")}}],
        "users": [{"name": identity, "user": {
            "client-certificate-data": _b64(pki_dir / f"{identity}.crt"),
            "client-key-data": _b64(pki_dir / f"{identity}.key")}}],
        "contexts": [{"name": "medmec-local",
                      "context": {"cluster": "medmec-local", "user": identity}}],
    }
    path = folder / ("admin.kubeconfig" if identity == "admin" else f"{identity}.kubeconfig")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def _b64(path: Path) -> str:
    import base64
    return base64.b64encode(path.read_bytes()).decode()


def _https_ok(url: str, folder: Path | None = None) -> bool:
    """True when `url` answers 200; with `folder`, verifies the server and sends the admin cert."""
    ctx = ssl.create_default_context()
    if folder is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(folder / "pki" / "ca.crt")
        ctx.load_cert_chain(folder / "pki" / "admin.crt", folder / "pki" / "admin.key")
    with urllib.request.urlopen(url, context=ctx, timeout=2) as resp:
        return resp.status == 200


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


# --- components --------------------------------------------------------------------------

def _component_args(folder: Path, ports: dict[str, int]) -> dict[str, list[str]]:
    """The command line of each component, in start order."""
    pki_dir = folder / "pki"
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    server = f"https://127.0.0.1:{ports['apiserver']}"
    return {
        "etcd": [
            str(binaries.binary("etcd")), "--name=medmec", f"--data-dir={folder / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=medmec={peer_url}", "--log-level=warn",
        ],
        "kube-apiserver": [
            str(binaries.binary("kube-apiserver")),
            f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
            f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
            f"--client-ca-file={pki_dir / 'ca.crt'}",
            "--authorization-mode=Node,RBAC", "--anonymous-auth=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true",
            "--endpoint-reconciler-type=none", "--profiling=false", "--v=1",
        ],
        "kube-controller-manager": [
            str(binaries.binary("kube-controller-manager")),
            f"--kubeconfig={folder / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={folder / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={folder / 'controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['controller-manager']}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki_dir / 'sa.key'}",
            f"--root-ca-file={pki_dir / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki_dir / 'ca.crt'}",
            f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
            # nodes are simulated: no CIDR allocation or cloud routes to manage
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
            "--horizontal-pod-autoscaler-sync-period=5s", "--v=1",
        ],
        "kube-scheduler": [
            str(binaries.binary("kube-scheduler")),
            f"--kubeconfig={folder / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={folder / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={folder / 'scheduler.kubeconfig'}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['scheduler']}",
            "--leader-elect=false", "--v=1",
        ],
        "kwok": [
            str(binaries.binary("kwok")), f"--kubeconfig={folder / 'kwok.kubeconfig'}",
            f"--config={folder / 'kwok.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={topology.KWOK_ANNOTATION}=fake",
            "--node-ip=127.0.0.1", f"--server-address=127.0.0.1:{ports['kwok']}",
            "--node-lease-duration-seconds=40", "--cidr=10.244.0.1/16",
        ],
    }


def _ready_check(name: str, folder: Path, ports: dict[str, int]) -> Callable[[], bool]:
    return {
        "etcd": lambda: _http_ok(f"http://127.0.0.1:{ports['etcd']}/health"),
        "kube-apiserver": lambda: _https_ok(f"https://127.0.0.1:{ports['apiserver']}/readyz", folder),
        "kube-controller-manager": lambda: _https_ok(
            f"https://127.0.0.1:{ports['controller-manager']}/healthz"),
        "kube-scheduler": lambda: _https_ok(f"https://127.0.0.1:{ports['scheduler']}/healthz"),
        "kwok": lambda: _http_ok(f"http://127.0.0.1:{ports['kwok']}/healthz"),
    }[name]


# --- up / down / status ------------------------------------------------------------------

def running(folder: Path) -> State:
    """The running cluster in `folder`, or ClusterError saying why there is none."""
    state = State.load(folder)
    if state is None:
        raise ClusterError(f"no local cluster in {folder}: start one with `medmec cluster up`")
    dead = [p.name for p in state.procs if not p.alive()]
    if dead:
        raise ClusterError(f"the cluster in {folder} is broken ({', '.join(dead)} not running); "
                           "`medmec cluster down` cleans it, `medmec cluster up` starts afresh")
    return state


def _lock(folder: Path):
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = open(folder.parent / f".{folder.name}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def up(folder: Path, topology_file: str | None = None,
       log: Callable[[str], None] = lambda m: None) -> State:
    """Start a cluster in `folder`, or return the one already running there."""
    topo_path = str(Path(topology_file).resolve()) if topology_file else str(topology.DEFAULT)
    try:
        topo = topology.load(topo_path)  # a broken file fails before anything starts
    except topology.TopologyError as err:
        raise ClusterError(str(err)) from err
    with _lock(folder):
        state = State.load(folder)
        if state is not None:
            if all(p.alive() for p in state.procs):
                log(f"a cluster is already running in {folder}; reusing it")
                return state
            log(f"found a stale cluster in {folder} (from a killed run); cleaning it up")
        _stop_and_remove(folder)
        try:
            binaries.ensure(BINARIES, log=log)
        except binaries.BuildError as err:
            raise ClusterError(str(err)) from err
        return _start(folder, topo, topo_path, log)


def _start(folder: Path, topo: topology.Topology, topo_path: str,
           log: Callable[[str], None]) -> State:
    t0 = time.monotonic()
    folder.mkdir(parents=True)
    pki.generate(folder / "pki", SERVICE_IP)
    ports = {key: free_port() for keys in PORTS.values() for key in keys}
    _write_kubeconfigs(folder, ports)
    (folder / "kwok.yaml").write_text("")  # no stages: KWOK's built-in node and pod lifecycle
    state = State(folder=folder, ports=ports, procs=[], topology_file=topo_path)
    try:
        for name in PORTS:
            _start_component(state, name, log)
            log(f"{name} ready ({time.monotonic() - t0:.1f} s)")
        _create_nodes(state, topo)
        log(f"{len(topo.nodes())} nodes Ready ({time.monotonic() - t0:.1f} s)")
    except BaseException as err:  # whatever failed (or Ctrl-C), leave no process behind
        for proc in reversed(state.procs):
            proc.stop()
        (folder / "state.json").unlink(missing_ok=True)
        if not isinstance(err, Exception):
            raise
        raise ClusterError(f"{err}\n(all started processes were stopped; logs in "
                           f"{folder / 'logs'})") from err
    return state


def _write_kubeconfigs(folder: Path, ports: dict[str, int]) -> None:
    for identity in pki.CLIENTS:
        _kubeconfig(folder, f"https://127.0.0.1:{ports['apiserver']}", identity)


def _start_component(state: State, name: str, log: Callable[[str], None], attempts: int = 3) -> None:
    """Start one component and wait until it is ready.

    A port chosen free can still be taken before the component binds it; then the
    component is started again on fresh ports (the ones it listens on), up to `attempts`.
    """
    for attempt in range(1, attempts + 1):
        argv = _component_args(state.folder, state.ports)[name]
        proc = processes.start(name, argv, state.folder / "logs" / f"{name}.log")
        state.procs.append(proc)
        state.save()  # a crash from here on leaves a state that `down` can clean
        try:
            processes.wait_ready(proc, _ready_check(name, state.folder, state.ports), START_TIMEOUT)
            return
        except processes.ProcessError as err:
            if attempt == attempts or "address already in use" not in str(err):
                raise
            proc.stop()
            state.procs.remove(proc)
            for key in PORTS[name]:
                state.ports[key] = free_port()
            if name == "kube-apiserver":
                _write_kubeconfigs(state.folder, state.ports)
            log(f"{name}: a port was taken before it could bind it; retrying on another")


def _create_nodes(state: State, topo: topology.Topology, timeout: float = 60.0) -> None:
    from kubernetes import client, config
    api = client.CoreV1Api(config.new_client_from_config(str(state.kubeconfig)))
    wanted = topo.nodes()
    for node in wanted:
        created = api.create_node(node)
        # the API server clears status on create; capacity is the kubelet's (KWOK's) to
        # report, so set it through the status subresource as a kubelet would
        api.patch_node_status(created.metadata.name, {"status": node["status"]})
    names = {n["metadata"]["name"] for n in wanted}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = {n.metadata.name for n in api.list_node().items
                 if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])}
        if names <= ready:
            return
        time.sleep(0.5)
    kwok = next(p for p in state.procs if p.name == "kwok")
    raise ClusterError(f"nodes not Ready after {timeout:.0f} s: {sorted(names - ready)}; "
                       f"KWOK's log ends:\n{kwok.log_tail()}")


def attach(folder: Path, proc: processes.Proc) -> None:
    """Record a process started on top of the cluster, so that `down` stops it too."""
    with _lock(folder):
        state = running(folder)
        state.addons = [p for p in state.addons if p.name != proc.name and p.alive()] + [proc]
        state.save()


def stop_addons(folder: Path) -> list[str]:
    """Stop the processes attached to the running cluster in `folder`; the cluster stays."""
    with _lock(folder):
        state = running(folder)
        stopped = [p.name for p in reversed(state.addons) if p.alive()]
        for proc in reversed(state.addons):
            proc.stop()
        state.addons = []
        state.save()
        return stopped


def _stop_and_remove(folder: Path) -> list[str]:
    state = State.load(folder)
    stopped = []
    # what runs on top of the cluster first, then the control plane in reverse start order
    for proc in [*reversed(state.addons), *reversed(state.procs)] if state else []:
        if proc.alive():
            proc.stop()
            stopped.append(proc.name)
    shutil.rmtree(folder, ignore_errors=True)
    return stopped


def down(folder: Path) -> list[str]:
    """Stop every process the cluster in `folder` started and remove the folder."""
    with _lock(folder):
        return _stop_and_remove(folder)


def describe(state: State) -> str:
    """Components, and the nodes grouped by base station with their GPUs."""
    from kubernetes import client, config
    lines = [f"medmec local cluster  {state.server}  (state: {state.folder})", "components:"]
    for proc in state.procs + state.addons:
        lines.append(f"  {proc.name:<24} pid {proc.pid:<8} {'running' if proc.alive() else 'STOPPED'}")
    api = client.CoreV1Api(config.new_client_from_config(str(state.kubeconfig)))
    by_site: dict[tuple[str, str], list] = {}
    for node in sorted(api.list_node().items, key=lambda n: n.metadata.name):
        labels = node.metadata.labels or {}
        site = (labels.get(topology.BASE_STATION_LABEL, "-"), labels.get(topology.ZONE_LABEL, "-"))
        by_site.setdefault(site, []).append(node)
    lines.append("nodes by base station:")
    for (bs, zone), nodes in sorted(by_site.items(), key=lambda kv: (kv[0][0] == "-", kv[0])):
        gpus = sum(int((n.status.allocatable or {}).get(topology.GPU_RESOURCE, 0)) for n in nodes)
        title = f"base station {bs}" if bs != "-" else "no base station"
        lines.append(f"  {title} (zone {zone}): {len(nodes)} nodes, {gpus} GPUs")
        for n in nodes:
            alloc = n.status.allocatable or {}
            ready = any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            gpu = alloc.get(topology.GPU_RESOURCE)
            product = (n.metadata.labels or {}).get(topology.GPU_PRODUCT_LABEL, "")
            what = f"{gpu} x {product}" if gpu else "no GPU"
            lines.append(f"    {n.metadata.name:<20} {'Ready' if ready else 'NotReady':<9} "
                         f"cpu {alloc.get('cpu', '?'):<4} mem {alloc.get('memory', '?'):<6} {what}")
    return "\n".join(lines)
