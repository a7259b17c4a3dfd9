"""Thin Kubernetes I/O for the operator: server-side apply, delete, status patch, node list.

Server-side apply with one field manager makes every write idempotent: a handler that runs
twice, or again after a crash, leaves the same objects and never a duplicate."""
from __future__ import annotations

import functools
import logging

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from medmec.operator import meta

log = logging.getLogger(__name__)

# kind -> (API path prefix, plural, namespaced) for every kind the operator and devtools write
KINDS = {
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Service": ("/api/v1", "services", True),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "Namespace": ("/api/v1", "namespaces", False),
    "PriorityClass": ("/apis/scheduling.k8s.io/v1", "priorityclasses", False),
    "PersistentVolume": ("/api/v1", "persistentvolumes", False),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "ClusterKopfPeering": ("/apis/kopf.dev/v1", "clusterkopfpeerings", False),
    "KopfPeering": ("/apis/kopf.dev/v1", "kopfpeerings", True),
}


_kubeconfig: str | None = None


def use(kubeconfig: str | None) -> None:
    """Talk to the cluster of this kubeconfig file from now on (None: in-cluster or default)."""
    global _kubeconfig
    _kubeconfig = kubeconfig
    api.cache_clear()


@functools.cache
def api() -> client.ApiClient:
    configuration = client.Configuration()
    if _kubeconfig:
        config.load_kube_config(config_file=_kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = 32  # one per handler thread, and then some
    return client.ApiClient(configuration)


def _path(kind: str, namespace: str | None, name: str) -> str:
    prefix, plural, namespaced = KINDS[kind]
    if namespaced:
        return f"{prefix}/namespaces/{namespace}/{plural}/{name}"
    return f"{prefix}/{plural}/{name}"


def _call(method: str, path: str, body: dict, content_type: str = "application/json",
          query: list[tuple[str, str]] | None = None) -> None:
    client_ = api()
    request = client_.param_serialize(
        method, path, query_params=query or [], body=body, auth_settings=["BearerToken"],
        header_params={"Content-Type": content_type, "Accept": "application/json"})
    response = client_.call_api(*request)
    response.read()
    client_.response_deserialize(response, {"2XX": "object"})  # raises ApiException otherwise


def apply(obj: dict) -> None:
    md = obj["metadata"]
    _call("PATCH", _path(obj["kind"], md.get("namespace"), md["name"]), obj,
          "application/apply-patch+yaml", [("fieldManager", meta.FIELD_MANAGER), ("force", "true")])


def delete(kind: str, namespace: str | None, name: str) -> bool:
    """Delete (dependents go in the background) and say whether it existed."""
    try:
        _call("DELETE", _path(kind, namespace, name), {"propagationPolicy": "Background"})
        return True
    except ApiException as err:
        if err.status == 404:
            return False
        raise


def apply_status(plural: str, obj: dict) -> None:
    """Server-side apply of a custom resource's status (field manager `medmec-operator`).

    Used where another controller writes the same status: `conditions` is a list map keyed
    by type, so the conditions and `status.qos` fields the operator does not apply (QoSMet,
    measured figures, the avoid list) stay with their writer instead of being replaced."""
    md = obj["metadata"]
    path = f"/apis/{obj['apiVersion']}/namespaces/{md['namespace']}/{plural}/{md['name']}/status"
    try:
        _call("PATCH", path, obj, "application/apply-patch+yaml",
              [("fieldManager", meta.FIELD_MANAGER), ("force", "true")])
    except ApiException as err:
        if err.status != 404:
            raise
        log.debug("%s %s/%s is gone; status not written", plural, md["namespace"], md["name"])


def patch_status(plural: str, namespace: str | None, name: str, status: dict) -> None:
    """Merge-patch the status subresource; a resource deleted meanwhile is no error."""
    custom = client.CustomObjectsApi(api())
    try:
        if namespace is None:
            custom.patch_cluster_custom_object_status(meta.GROUP, meta.VERSION, plural, name,
                                                      {"status": status})
        else:
            custom.patch_namespaced_custom_object_status(meta.GROUP, meta.VERSION, namespace,
                                                         plural, name, {"status": status})
    except ApiException as err:
        if err.status != 404:
            raise
        log.debug("%s %s/%s is gone; status not written", plural, namespace, name)


def list_nodes() -> list[dict]:
    """Every node (metadata, spec, status as the API serializes them), read in one call."""
    core = client.CoreV1Api(api())
    return [api().sanitize_for_serialization(n) for n in core.list_node().items]


def probe_failure(namespace: str, pod: str) -> str | None:
    """The message of the kubelet's latest Unhealthy Event (a failed probe) about a pod."""
    events = client.CoreV1Api(api()).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={pod},reason=Unhealthy").items
    latest = max(events, key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp,
                 default=None)
    return latest.message if latest is not None else None


def configmap_value(namespace: str, name: str, key: str) -> str | None:
    """One value of a ConfigMap; None when the ConfigMap or the key does not exist."""
    try:
        cm = client.CoreV1Api(api()).read_namespaced_config_map(name, namespace)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return (cm.data or {}).get(key)


def peering_status(name: str, namespace: str | None) -> dict:
    """The status (the peers' records) of kopf's peering object; {} when it does not exist."""
    custom = client.CustomObjectsApi(api())
    try:
        obj = (custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
               if namespace is None else
               custom.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", name))
    except ApiException as err:
        if err.status == 404:
            return {}
        raise
    return obj.get("status") or {}
