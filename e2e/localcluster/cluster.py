"""`medmec cluster up | down | status`: a real Kubernetes cluster as local processes.

etcd, kube-apiserver (RBAC, service-account tokens, TLS), kube-controller-manager,
kube-scheduler and KWOK run from the cached binaries; KWOK plays the kubelets of the
topology's simulated nodes. The topology's real nodes each get a kubelet and a containerd
(realnodes.py) in the cluster's own network namespace (network.py), linked to the host by
one veth: the API server listens on the host end of that link, so pods reach it.

Everything lives in one state folder: certificates, kubeconfigs, etcd data, node state,
logs, state.json (pids, ports, slot) and the ledger of every change made to the host.
`down` stops the recorded processes, undoes the ledger and removes the folder.
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


from medmec import processes
from medmec.localcluster import addressing, binaries, ledger, network, pki, realnodes, slots, topology
from medmec.netutil import free_port

START_TIMEOUT = 90.0
NODES_READY_TIMEOUT = 180.0
BINARIES = ["kubernetes", "etcd", "kwok"]
REAL_NODE_BINARIES = ["containerd", "coredns"]
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
    slot: int
    # where the API server listens: loopback, or with real nodes the host end of the
    # cluster's link (pods reach it there)
    host: str = "127.0.0.1"
    # processes started on top of the cluster (operator, MinIO, workloads of the demo):
    # not part of its health, but stopped by `down` with it
    addons: list[processes.Proc] = dataclasses.field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.ports['apiserver']}"

    @property
    def ledger(self) -> ledger.Ledger:
        return ledger.Ledger(self.folder / "host-changes.jsonl")

    def topology(self) -> topology.Topology:
        return topology.load(self.topology_file)

    def plan(self) -> addressing.Plan:
        return addressing.plan(self.topology().network.range, self.slot)

    def save(self) -> None:
        data = {"ports": self.ports, "procs": [p.to_json() for p in self.procs],
                "addons": [p.to_json() for p in self.addons], "topology": self.topology_file,
                "slot": self.slot, "host": self.host}
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
                   topology_file=data["topology"], slot=data["slot"], host=data["host"])


def state_dir(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    if os.environ.get("MEDMEC_CLUSTER_DIR"):
        return Path(os.environ["MEDMEC_CLUSTER_DIR"]).expanduser().resolve()
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "medmec" / "cluster"


# --- kubeconfigs and HTTP checks -------------------------------------------------------

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

def _apiserver_real_node_args(folder: Path, state_host: str) -> list[str]:
    """What the API server needs once real kubelets join: it is advertised on the cluster's
    link (the `kubernetes` Service's endpoint), verifies the kubelets and calls them with
    its own client certificate, and limits each kubelet to its own node."""
    pki_dir = folder / "pki"
    return [
        f"--advertise-address={state_host}", "--endpoint-reconciler-type=lease",
        f"--kubelet-client-certificate={pki_dir / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki_dir / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki_dir / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        "--enable-admission-plugins=NodeRestriction",
    ]


def _component_args(state: "State") -> dict[str, list[str]]:
    """The command line of each component, in start order."""
    folder, ports, plan = state.folder, state.ports, state.plan()
    real = bool(state.topology().real_nodes())
    pki_dir = folder / "pki"
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    apiserver_site = (_apiserver_real_node_args(folder, state.host) if real else
                      ["--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none"])
    return {
        "etcd": [
            str(binaries.binary("etcd")), "--name=medmec", f"--data-dir={folder / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=medmec={peer_url}", "--log-level=warn",
        ],
        "kube-apiserver": [
            str(binaries.binary("kube-apiserver")),
            f"--etcd-servers={etcd_url}", f"--bind-address={state.host}",
            f"--secure-port={ports['apiserver']}", *apiserver_site,
            f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
            f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
            f"--client-ca-file={pki_dir / 'ca.crt'}",
            "--authorization-mode=Node,RBAC", "--anonymous-auth=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
            f"--service-cluster-ip-range={plan.service_cidr}", "--allow-privileged=true",
            "--profiling=false", "--v=1",
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
            # each real node's pod range is in its CNI config: no CIDR allocation, and no
            # cloud routes to manage
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
            "--node-lease-duration-seconds=40",
            f"--cidr={plan.kwok_pod_cidr.network_address + 1}/{plan.kwok_pod_cidr.prefixlen}",
        ],
    }


def _ready_check(name: str, state: "State") -> Callable[[], bool]:
    folder, ports = state.folder, state.ports
    return {
        "etcd": lambda: _http_ok(f"http://127.0.0.1:{ports['etcd']}/health"),
        "kube-apiserver": lambda: _https_ok(f"{state.server}/readyz", folder),
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
                load_images(state, log)
                return state
            log(f"found a stale cluster in {folder} (from a killed run); cleaning it up")
        _stop_and_remove(folder)
        real = topo.real_nodes()
        if real:
            missing = realnodes.missing_host_tools()
            if missing:
                raise ClusterError(f"real nodes need the Debian packages {', '.join(missing)}: "
                                   "run `bash e2e/system-deps.sh` (as root), or use a topology "
                                   "without real pools (e2e/localcluster/topology-kwok.yaml)")
        try:
            binaries.ensure(BINARIES + (REAL_NODE_BINARIES if real else []), log=log)
        except binaries.BuildError as err:
            raise ClusterError(str(err)) from err
        return _start(folder, topo, topo_path, log)


def _in_use(folder: Path) -> bool:
    """Whether the cluster in `folder` holds its slot: it runs, or it is being started."""
    if not folder.exists():
        return False
    state = State.load(folder)
    return state is None or any(p.alive() for p in state.procs)


def _clean_slot(folder: Path, slot: int) -> None:
    """Free a slot whose cluster died: its processes, its ledger, its state, and what is
    named after the slot (all that is left when its folder was removed with its ledger)."""
    _stop_and_remove(folder, release=False)  # the caller holds the slots' lock
    ledger.undo_entries(slots.sweep(slot))


def _start(folder: Path, topo: topology.Topology, topo_path: str,
           log: Callable[[str], None]) -> State:
    t0 = time.monotonic()
    folder.mkdir(parents=True)
    try:
        slot = slots.take(folder, topo.network.slots(), _in_use, _clean_slot,
                          lambda n: addressing.sweep(addressing.plan(topo.network.range, n)))
    except slots.NoSlot as err:
        shutil.rmtree(folder, ignore_errors=True)
        raise ClusterError(str(err)) from err
    plan = addressing.plan(topo.network.range, slot)
    # the slot is ours now: anything still named after it (a run killed before it could
    # record it anywhere) goes before it is made again
    ledger.undo_entries(addressing.sweep(plan))
    real = topo.real_nodes()
    ports = {key: free_port() for keys in PORTS.values() for key in keys}
    state = State(folder=folder, ports=ports, procs=[], topology_file=topo_path, slot=slot,
                  host=plan.host_ip if real else "127.0.0.1")
    state.save()  # from here on a crash leaves a state that `down` (or the next `up`) cleans
    clients = {**pki.CLIENTS, **(pki.REAL_NODE_CLIENTS if real else {})}
    pki.generate(folder / "pki", plan.kubernetes_service_ip, [plan.host_ip] if real else [],
                 clients)
    _write_kubeconfigs(state)
    (folder / "kwok.yaml").write_text("")  # no stages: KWOK's built-in node and pod lifecycle
    try:
        network.guard(plan, state.ledger)
        if real:
            network.create(plan, state.ledger, len(real))
            log(f"network namespace {plan.netns} on {plan.block} ({time.monotonic() - t0:.1f} s)")
        for name in PORTS:
            _start_component(state, name, log)
            log(f"{name} ready ({time.monotonic() - t0:.1f} s)")
        _create_nodes(state, topo)
        log(f"{len(topo.nodes())} simulated nodes Ready ({time.monotonic() - t0:.1f} s)")
        if real:
            _start_real_nodes(state, topo, plan, log)
            log(f"{len(real)} real nodes Ready ({time.monotonic() - t0:.1f} s)")
    except BaseException as err:  # whatever failed (or Ctrl-C), leave nothing behind
        _stop_processes(state)
        ledger.undo(state.ledger.path, log)
        slots.release(folder)
        (folder / "state.json").unlink(missing_ok=True)
        if not isinstance(err, Exception):
            raise
        raise ClusterError(f"{err}\n(all started processes were stopped and the host's "
                           f"changes undone; logs in {folder / 'logs'})") from err
    return state


def _start_real_nodes(state: State, topo: topology.Topology, plan: addressing.Plan,
                      log: Callable[[str], None]) -> None:
    from kubernetes import config, utils
    from medmec.localcluster import images
    realnodes.prepare_host(state.folder, plan, state.ledger)
    api = config.new_client_from_config(str(state.kubeconfig))
    for obj in realnodes.cluster_objects(state.folder, topo):
        try:
            utils.create_from_dict(api, obj)
        except utils.FailToCreateError as err:
            if not all(getattr(e, "status", None) == 409 for e in err.api_exceptions):
                raise
    # the pause image (every pod's sandbox) and the images the platform runs
    built = images.ensure_all(log)
    for node in topo.real_nodes():
        realnodes.start_node(state, plan, node, state.server, built["pause"].ref,
                             list(built.values()), log)
    realnodes.start_services(state, plan, topo, state.server)
    _wait_nodes_ready(state, {n.name for n in topo.real_nodes()}, NODES_READY_TIMEOUT,
                      gpus={n.name: n.gpus for n in topo.real_nodes()})


def load_images(state: State, log: Callable[[str], None] = lambda m: None) -> dict:
    """The images of this checkout (built if their inputs changed), imported into the real
    nodes that lack them: a running cluster gets the ones built since it started. Returns
    them by name (images.Image)."""
    from medmec.localcluster import images
    built = images.ensure_all(log)
    for node in state.topology().real_nodes():
        realnodes.import_images(state.folder, state.plan(), node, list(built.values()), log)
    return built


def _write_kubeconfigs(state: State) -> None:
    for identity in pki.CLIENTS:
        pki.write_kubeconfig(state.folder, state.server, identity)


def _start_component(state: State, name: str, log: Callable[[str], None], attempts: int = 3) -> None:
    """Start one component and wait until it is ready.

    A port chosen free can still be taken before the component binds it; then the
    component is started again on fresh ports (the ones it listens on), up to `attempts`.
    """
    for attempt in range(1, attempts + 1):
        argv = _component_args(state)[name]
        proc = processes.start(name, argv, state.folder / "logs" / f"{name}.log")
        state.procs.append(proc)
        state.save()  # a crash from here on leaves a state that `down` can clean
        try:
            processes.wait_ready(proc, _ready_check(name, state), START_TIMEOUT)
            return
        except processes.ProcessError as err:
            if attempt == attempts or "address already in use" not in str(err):
                raise
            proc.stop()
            state.procs.remove(proc)
            for key in PORTS[name]:
                state.ports[key] = free_port()
            if name == "kube-apiserver":
                _write_kubeconfigs(state)
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
    _wait_nodes_ready(state, {n["metadata"]["name"] for n in wanted}, timeout)


def _wait_nodes_ready(state: State, names: set[str], timeout: float,
                      gpus: dict[str, int] | None = None) -> None:
    """Wait until every node in `names` is Ready (and advertises its `gpus`)."""
    from kubernetes import client, config
    api = client.CoreV1Api(config.new_client_from_config(str(state.kubeconfig)))
    deadline = time.monotonic() + timeout
    ready: set[str] = set()
    while time.monotonic() < deadline:
        ready = {n.metadata.name for n in api.list_node().items
                 if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                 and int((n.status.allocatable or {}).get(topology.GPU_RESOURCE, 0))
                 >= (gpus or {}).get(n.metadata.name, 0)}
        if names <= ready:
            return
        dead = [p for p in state.procs if not p.alive()]
        if dead:
            raise ClusterError(f"{dead[0].name} exited; its log ends:\n{dead[0].log_tail()}")
        time.sleep(0.5)
    logs = "\n".join(f"-- {p.name}:\n{p.log_tail(8)}" for p in state.procs
                     if p.name == "kwok" or p.name.startswith("kubelet-"))
    raise ClusterError(f"nodes not Ready after {timeout:.0f} s: {sorted(names - ready)}; "
                       f"the node logs end:\n{logs}")


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


def _stop_processes(state: State) -> list[str]:
    stopped = []
    # what runs on top of the cluster first, then the nodes and the control plane in
    # reverse start order
    for proc in [*reversed(state.addons), *reversed(state.procs)]:
        if proc.alive():
            proc.stop()
            stopped.append(proc.name)
    return stopped


def _stop_and_remove(folder: Path, log: Callable[[str], None] = lambda m: None,
                     release: bool = True) -> list[str]:
    """Stop the cluster's processes, undo its host changes, free its slot, remove it."""
    state = State.load(folder)
    stopped = _stop_processes(state) if state else []
    ledger.undo(folder / "host-changes.jsonl", log)
    if release:
        slots.release(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return stopped


def down(folder: Path, log: Callable[[str], None] = lambda m: None) -> list[str]:
    """Stop every process the cluster in `folder` started, undo its host changes and remove
    the folder; `log` hears of any change that could not be undone."""
    with _lock(folder):
        return _stop_and_remove(folder, log)


def describe(state: State) -> str:
    """Components, and the nodes grouped by base station with their GPUs."""
    from kubernetes import client, config
    plan = state.plan()
    lines = [f"medmec local cluster  {state.server}  (state: {state.folder})",
             f"addresses: {plan.block} (slot {plan.slot}); Services {plan.service_cidr}",
             "components:"]
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
            labels = n.metadata.labels or {}
            ready = any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            gpu = alloc.get(topology.GPU_RESOURCE)
            product = labels.get(topology.GPU_PRODUCT_LABEL, "")
            what = f"{gpu} x {product}" if gpu else "no GPU"
            if gpu and labels.get(topology.SIMULATED_GPU_LABEL) == "true":
                what += " (simulated)"
            kind = "real" if labels.get(topology.NODE_KIND_LABEL) == "real" else "simulated"
            address = next((a.address for a in n.status.addresses or [] if a.type == "InternalIP"), "")
            where = f" {address}" if kind == "real" else ""
            lines.append(f"    {n.metadata.name:<20} {kind:<9} {'Ready' if ready else 'NotReady':<9} "
                         f"cpu {alloc.get('cpu', '?'):<5} mem {_mem(alloc.get('memory', '?')):<7} "
                         f"{what}{where}")
    return "\n".join(lines)


def _mem(quantity: str) -> str:
    """A kubelet's memory in Ki, as Gi; a KWOK node's as written in the topology."""
    if quantity.endswith("Ki") and quantity[:-2].isdigit():
        return f"{int(quantity[:-2]) / 2**20:.0f}Gi"
    return quantity
