"""Reach a cluster's Services from the hospital network, as its clients do.

On the local cluster the host has a route to the Service range, so a ClusterIP answers
from here; what the host lacks is the cluster's DNS. `ServiceAddresses` resolves a Service
(by namespace and name, or by the in-cluster name `name.namespace.svc[.cluster.local]:port`
a workload hands out, such as the edge site an ambulance is redirected to) to `ip:port`
through the API server.
"""
from __future__ import annotations

import json
import re

# name.namespace.svc[.cluster.local]:port
_IN_CLUSTER = re.compile(r"^(?P<name>[a-z0-9-]+)\.(?P<ns>[a-z0-9-]+)\.svc(\.[a-z0-9.-]+)?:(?P<port>\d+)$")


class ServiceError(LookupError):
    """No such Service, or it has no cluster IP."""


class ServiceAddresses:
    def __init__(self, kubeconfig: str):
        self.kubeconfig = kubeconfig
        self._ips: dict[tuple[str, str], str] = {}

    def cluster_ip(self, namespace: str, name: str) -> str:
        key = (namespace, name)
        if key not in self._ips:
            from medmec.operator import devtools
            got = devtools.kubectl(self.kubeconfig, "get", "service", name, "-n", namespace,
                                   "-o", "json", check=False)
            if got.returncode != 0:
                raise ServiceError(f"service {namespace}/{name}: {got.stderr.strip()}")
            ip = json.loads(got.stdout)["spec"].get("clusterIP")
            if not ip or ip == "None":
                raise ServiceError(f"service {namespace}/{name} has no cluster IP")
            self._ips[key] = ip
        return self._ips[key]

    def address(self, namespace: str, name: str, port: int) -> str:
        return f"{self.cluster_ip(namespace, name)}:{port}"

    def url(self, namespace: str, name: str, port: int) -> str:
        return f"http://{self.address(namespace, name, port)}"

    def dial(self, target: str) -> str:
        """`ip:port` for an in-cluster Service name; any other target unchanged."""
        found = _IN_CLUSTER.match(target)
        if not found:
            return target
        return self.address(found["ns"], found["name"], int(found["port"]))
