"""The Kubernetes calls of the QoS controller: read slices and inference services, patch
slice status, record Events. Synchronous client calls, run off the event loop."""
from __future__ import annotations

import asyncio
import datetime
import socket

from kubernetes import client
from kubernetes.client.rest import ApiException

from medmec.operator.meta import GROUP, VERSION

COMPONENT = "medmec-qos"


class Conflict(Exception):
    """The slice changed since it was read; read it again and rebuild the patch."""


class SliceApi:
    def __init__(self, api_client: client.ApiClient):
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.instance = socket.gethostname()

    async def slices(self, namespace: str | None = None) -> list[dict]:
        def call():
            if namespace:
                return self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                 "medicalslices")
            return self.custom.list_cluster_custom_object(GROUP, VERSION, "medicalslices")
        return (await asyncio.to_thread(call))["items"]

    async def get_slice(self, namespace: str, name: str) -> dict:
        return await asyncio.to_thread(self.custom.get_namespaced_custom_object, GROUP, VERSION,
                                       namespace, "medicalslices", name)

    async def inference_services(self, namespace: str, slice_name: str) -> list[dict]:
        items = (await asyncio.to_thread(self.custom.list_namespaced_custom_object, GROUP,
                                         VERSION, namespace, "edgeinferenceservices"))["items"]
        return [e for e in items if e["spec"]["sliceRef"]["name"] == slice_name]

    async def patch_status(self, namespace: str, name: str, body: dict) -> dict:
        try:
            return await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace,
                "medicalslices", name, body, _content_type="application/merge-patch+json")
        except ApiException as err:
            if err.status == 409:
                raise Conflict(name) from err
            raise

    async def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        now = datetime.datetime.now(datetime.timezone.utc)
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                               "name": meta["name"], "namespace": meta["namespace"],
                               "uid": meta["uid"]},
            "type": type_, "reason": reason, "message": message[:1024],
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "source": {"component": COMPONENT},
            "reportingComponent": f"{GROUP}/qos", "reportingInstance": self.instance,
        }
        await asyncio.to_thread(self.core.create_namespaced_event, meta["namespace"], body)
