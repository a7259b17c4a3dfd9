"""The real worker nodes: per node a containerd and a kubelet, and for all of them one
kube-proxy, one CoreDNS and the node agent, all inside the cluster's network namespace.

Configs come from nodeconfig (pure); every process starts through medmec.processes like
the control plane's, and every host change goes through the cluster's ledger.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from medmec import processes
from medmec.localcluster import binaries, network, nodeconfig, pki
from medmec.localcluster.addressing import Plan
from medmec.localcluster.ledger import Ledger, run_checked
from medmec.localcluster.topology import RealNode, Topology

START_TIMEOUT = 120.0
STORAGE_CLASS = "local"
VOLUMES_PER_NODE = 6
VOLUME_SIZE = "5Gi"


def missing_host_tools() -> list[str]:
    """Debian packages the real nodes need that are not installed (e2e/system-deps.sh)."""
    wanted = {"runc": Path(nodeconfig.RUNC),
              "containernetworking-plugins": Path(nodeconfig.CNI_BIN_DIR) / "bridge",
              "nftables": Path(shutil.which("nft") or "/usr/sbin/nft"),
              "util-linux": Path(shutil.which("nsenter") or "/usr/bin/nsenter"),
              "iproute2": Path(shutil.which("ip") or "/usr/sbin/ip")}
    return [pkg for pkg, path in wanted.items() if not path.exists()]


def prepare_host(folder: Path, plan: Plan, ledger: Ledger) -> None:
    """What the real nodes change on the host beyond the network, recorded before it is
    made and in the order that undoes it right (the newest first): survivors killed,
    containers' cgroups emptied, mounts unmounted, folders removed, kernel settings last."""
    ledger.keep_sysctls(nodeconfig.KUBELET_SYSCTLS, Path(plan.run_dir).parent / "host-sysctls.json",
                        owner=str(folder))
    ledger.make_dir(Path(plan.run_dir))
    # the CNI plugins keep a result cache in /var/lib/cni whatever the config says
    ledger.make_dir(Path("/var/lib/cni"))
    ledger.record("mounts", path=str(folder / "nodes"))
    ledger.record("mounts", path=plan.run_dir)
    ledger.make_cgroup(plan.cgroup_root)
    ledger.record("processes", marker=plan.run_dir + "/")  # a killed run's shims


def start_node(state, plan: Plan, node: RealNode, server: str, pause_image: str,
               images: list, log: Callable[[str], None]) -> None:
    """containerd, the node's images, then its kubelet."""
    folder = state.folder
    paths = nodeconfig.NodePaths.of(folder, plan, node)
    for sub in ("containerd", "kubelet", "pod-logs", "cni/net.d", "volumes"):
        (paths.data / sub).mkdir(parents=True, exist_ok=True)
    paths.kubelet_root.mkdir(parents=True, exist_ok=True)
    # the "mounts" entry of the run folder in the ledger unmounts it
    run_checked(["mount", "--bind", str(paths.data / "kubelet"), str(paths.kubelet_root)])
    for i in range(VOLUMES_PER_NODE):
        (paths.data / "volumes" / f"vol-{i}").mkdir(parents=True, exist_ok=True)
    state.ledger.make_cgroup(f"{plan.cgroup_root}/{node.index}")
    state.ledger.make_cgroup(nodeconfig.shim_cgroup(plan, paths))
    pki.issue_node(folder / "pki", node.name, plan.node_ip(node.index))
    kcfg = pki.write_kubeconfig(folder, server, f"node-{node.name}")
    (paths.cni_conf_dir / "10-medmec.conflist").write_text(
        json.dumps(nodeconfig.cni_conflist(plan, node, paths), indent=2))
    paths.containerd_config.write_text(nodeconfig.containerd_toml(plan, paths, pause_image))
    (paths.data / "resolv.conf").write_text(nodeconfig.resolv_conf())
    paths.kubelet_config.write_text(yaml.safe_dump(
        nodeconfig.kubelet_config(plan, node, paths, folder / "pki"), sort_keys=False))

    ctr = _ctr(paths)
    containerd = processes.start(
        f"containerd-{node.name}",
        [*network.nsenter(plan), str(binaries.binary("containerd")), "--config",
         str(paths.containerd_config)],
        folder / "logs" / f"containerd-{node.name}.log",
        env=_path_env())
    state.procs.append(containerd)
    state.save()
    processes.wait_ready(containerd, lambda: _ok([*ctr, "version"]), START_TIMEOUT)
    import_images(folder, plan, node, images, log)

    kubelet = processes.start(
        f"kubelet-{node.name}",
        [*network.nsenter(plan), str(binaries.binary("kubelet")),
         *nodeconfig.kubelet_args(plan, node, paths, kcfg)],
        folder / "logs" / f"kubelet-{node.name}.log", env=_path_env())
    state.procs.append(kubelet)
    state.save()


def start_services(state, plan: Plan, topo: Topology, server: str) -> None:
    """kube-proxy, CoreDNS and the node agent, once for all real nodes."""
    folder = state.folder
    nodes = topo.real_nodes()
    proxy_cfg = folder / "kube-proxy.yaml"
    proxy_cfg.write_text(yaml.safe_dump(nodeconfig.kube_proxy_config(
        plan, pki.write_kubeconfig(folder, server, "kube-proxy"), nodes[0].name), sort_keys=False))
    corefile = folder / "Corefile"
    corefile.write_text(nodeconfig.corefile(plan, pki.write_kubeconfig(folder, server, "coredns")))
    admin = folder / "admin.kubeconfig"
    commands = {
        "kube-proxy": [*network.nsenter(plan), str(binaries.binary("kube-proxy")),
                       f"--config={proxy_cfg}", "--v=1"],
        "coredns": [*network.nsenter(plan), str(binaries.binary("coredns")), "-conf", str(corefile)],
        "node-agent": [sys.executable, "-m", "medmec.localcluster.nodeagent",
                       "--kubeconfig", str(admin), "--topology", state.topology_file,
                       "--folder", str(folder)],
    }
    for name, argv in commands.items():
        proc = processes.start(name, argv, folder / "logs" / f"{name}.log", env=_path_env())
        state.procs.append(proc)
        state.save()
    coredns = next(p for p in state.procs if p.name == "coredns")
    processes.wait_ready(coredns, lambda: _http(f"http://{plan.dns_ip}:8181/ready"), START_TIMEOUT)


def _bind_user(name: str, cluster_role: str, user: str) -> dict:
    rbac = "rbac.authorization.k8s.io"
    return {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"apiGroup": rbac, "kind": "User", "name": user}]}


def cluster_objects(folder: Path, topo: Topology) -> list[dict]:
    """RBAC for the nodes' components, and local PersistentVolumes on each real node behind
    a default StorageClass, so that claims bind by themselves."""
    objects: list[dict] = [
        _bind_user("medmec:apiserver-kubelet-client", "system:kubelet-api-admin",
                   pki.REAL_NODE_CLIENTS["apiserver-kubelet-client"][0]),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "medmec:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["services", "pods", "namespaces", "endpoints"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                    "verbs": ["list", "watch"]}]},
        _bind_user("medmec:coredns", "medmec:coredns", pki.REAL_NODE_CLIENTS["coredns"][0]),
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": STORAGE_CLASS,
                      "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
         "provisioner": "kubernetes.io/no-provisioner",
         "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"},
    ]
    for node in topo.real_nodes():
        for i in range(VOLUMES_PER_NODE):
            objects.append(local_volume(folder, node.name, i))
    return objects


def local_volume(folder: Path, node: str, index: int) -> dict:
    """A local PersistentVolume on `node` (the node agent recreates it empty once released)."""
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"{node}-vol-{index}",
                     "labels": {"medmec.io/local-volume-of": node}},
        "spec": {"capacity": {"storage": VOLUME_SIZE}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": STORAGE_CLASS,
                 "volumeMode": "Filesystem",
                 "local": {"path": str(folder / "nodes" / node / "volumes" / f"vol-{index}")},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
    }


def import_images(folder: Path, plan: Plan, node: RealNode, images: list,
                  log: Callable[[str], None]) -> None:
    """Import into the node's containerd each image (images.Image) it does not hold yet:
    all of them at start, and on a reused cluster the images built since it started."""
    ctr = ctr_command(folder, plan, node)
    held = set(run_checked([*ctr, "-n", "k8s.io", "images", "ls", "-q"]).split())
    for image in images:
        if image.ref in held:
            continue
        t0 = time.monotonic()
        run_checked([*ctr, "-n", "k8s.io", "images", "import", "--no-unpack=false", str(image.archive)])
        log(f"{node.name}: image {image.ref} imported ({time.monotonic() - t0:.1f} s)")


def ctr_command(folder: Path, plan: Plan, node: RealNode) -> list[str]:
    """`ctr` speaking to the node's containerd (images, containers: what a node holds)."""
    return _ctr(nodeconfig.NodePaths.of(folder, plan, node))


def _ctr(paths: nodeconfig.NodePaths) -> list[str]:
    return [str(binaries.binary("ctr")), "--address", str(paths.containerd_socket)]


def _path_env() -> dict:
    # the kubelet and containerd find runc, the CNI plugins, mount and iptables on PATH
    path = os.environ.get("PATH", "")
    extra = [p for p in ("/usr/sbin", "/sbin", "/usr/bin", "/bin") if p not in path.split(":")]
    return {**os.environ, "PATH": ":".join([path, *extra]).strip(":")}


def _ok(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0


def _http(url: str) -> bool:
    import urllib.request
    with urllib.request.urlopen(url, timeout=2) as rsp:
        return rsp.status == 200
