"""The Kubernetes calls the operator makes besides kopf's own: read the files and credential
Secrets a RunCommand names, patch its status, post events, delete it after its TTL.

The `kubernetes` client is synchronous, so every call runs in a worker thread: the event loop
never blocks on the API server.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "aks.gitops.dev", "v1alpha1", "runcommands"
POLICY_PLURAL = "runcommandpolicies"
SET_PLURAL, SET_KIND = "runcommandsets", "RunCommandSet"
T = TypeVar("T")


class Conflict(Exception):
    """A write lost a race: the object changed since it was read (resourceVersion), or it was
    deleted and recreated under the same name (uid). Re-read and decide again."""


def transient(error: BaseException) -> bool:
    """An API server hiccup (unreachable, restarting, overloaded) that a retry outlives: worth a
    one-line warning, never a traceback."""
    if isinstance(error, ApiException):
        return error.status in (429, 500, 502, 503, 504) or error.status == 0
    return isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


@dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Found:
    data: dict[str, bytes]
    resource_version: str


def _resource_version(metadata: Any) -> str:
    return str(getattr(metadata, "resource_version", "") or "")


class KubeApi:
    def __init__(self, api_client: Any) -> None:
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._custom = kubernetes.client.CustomObjectsApi(api_client)

    @classmethod
    def from_environment(cls) -> KubeApi:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        return cls(kubernetes.client.ApiClient())

    @staticmethod
    async def _call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(function, *args, **kwargs)

    async def _read(self, function: Callable[..., T], *args: Any) -> T | None:
        """A GET that answers None for 404: absent objects are data here, not errors."""
        try:
            return await self._call(function, *args)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def read_configmap(self, namespace: str, name: str) -> Found | None:
        cm = await self._read(self._core.read_namespaced_config_map, name, namespace)
        if cm is None:
            return None
        data = {k: v.encode() for k, v in (cm.data or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (cm.binary_data or {}).items()})
        return Found(data, _resource_version(cm.metadata))

    async def read_secret(self, namespace: str, name: str) -> Found | None:
        secret = await self._read(self._core.read_namespaced_secret, name, namespace)
        if secret is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        return Found(data, _resource_version(secret.metadata))

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The namespace's labels; none when it cannot be found (it is being deleted)."""
        found = await self._read(self._core.read_namespace, namespace)
        metadata = found.metadata if found is not None else None
        return dict((metadata.labels if metadata is not None else None) or {})

    async def list_policies(self) -> list[dict[str, Any]]:
        """Every RunCommandPolicy; none when the CRD is not installed (404)."""
        body = await self._read(
            self._custom.list_cluster_custom_object, GROUP, VERSION, POLICY_PLURAL
        )
        return list(cast(dict[str, Any], body or {}).get("items") or [])

    async def read_runcommand(self, ref: ObjectRef, plural: str = PLURAL) -> dict[str, Any] | None:
        body = await self._read(
            self._custom.get_namespaced_custom_object,
            GROUP, VERSION, ref.namespace, plural, ref.name,
        )  # fmt: skip
        if not isinstance(body, dict) or body["metadata"]["uid"] != ref.uid:
            return None  # gone, or deleted and recreated: not the object we were following
        return cast(dict[str, Any], body)

    async def patch_status(
        self, ref: ObjectRef, status: dict[str, Any], resource_version: str, plural: str = PLURAL
    ) -> dict[str, Any] | None:
        """JSON merge patch of status, conditional on the object being exactly the version that
        was read (optimistic concurrency, as the Job controller claims pods). None values delete
        fields. Returns the new object; None when it is gone; raises Conflict on a lost race."""
        # uid and resourceVersion in the patch body are preconditions: 409 when they differ.
        metadata = {"uid": ref.uid, "resourceVersion": resource_version}
        try:
            body = await self._call(
                self._custom.patch_namespaced_custom_object_status,
                GROUP, VERSION, ref.namespace, plural, ref.name,
                {"metadata": metadata, "status": status},
                _content_type="application/merge-patch+json",  # None values delete fields
            )  # fmt: skip
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status == 409:
                raise Conflict(f"{ref.namespace}/{ref.name} changed since it was read") from None
            raise
        return cast(dict[str, Any], body)

    async def list_runcommands(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """The RunCommands of a namespace that carry these labels (a set's children)."""
        listed = await self._call(
            self._custom.list_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL, label_selector=label_selector,
        )  # fmt: skip
        return list(cast(dict[str, Any], listed).get("items") or [])

    async def create_runcommand(self, namespace: str, body: dict[str, Any]) -> bool:
        """Create a RunCommand; False when one of that name exists already (names are
        derived, so it is the same child: creating is idempotent)."""
        try:
            await self._call(
                self._custom.create_namespaced_custom_object,
                GROUP, VERSION, namespace, PLURAL, body,
            )  # fmt: skip
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def patch_runcommand(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str
    ) -> None:
        """A merge patch of a RunCommand's metadata and spec, conditional on the version read:
        raises Conflict on a lost race (re-read, decide again)."""
        body = {
            **patch,
            "metadata": {**patch.get("metadata", {}), "resourceVersion": resource_version},
        }
        try:
            await self._call(
                self._custom.patch_namespaced_custom_object,
                GROUP, VERSION, namespace, PLURAL, name, body,
                _content_type="application/merge-patch+json",
            )  # fmt: skip
        except ApiException as error:
            if error.status in (404, 409):
                raise Conflict(f"{namespace}/{name} changed since it was read") from None
            raise

    async def delete_runcommand(self, ref: ObjectRef) -> None:
        try:
            await self._call(
                self._custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                ref.namespace,
                PLURAL,
                ref.name,
                body=kubernetes.client.V1DeleteOptions(
                    preconditions=kubernetes.client.V1Preconditions(uid=ref.uid)
                ),
            )
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    async def write_output(
        self, ref: ObjectRef, kind: str, name: str, text: str | None, raw: bytes | None
    ) -> None:
        """Create or replace the ConfigMap or Secret holding a run's output, owned by the
        RunCommand (garbage-collected with it). Replacing makes a second write after a crash
        write the same object; the key is `output`, in data or binaryData."""
        owner = kubernetes.client.V1OwnerReference(
            api_version=f"{GROUP}/{VERSION}", kind="RunCommand", name=ref.name, uid=ref.uid,
            controller=True,
        )  # fmt: skip
        metadata = kubernetes.client.V1ObjectMeta(
            name=name,
            namespace=ref.namespace,
            owner_references=[owner],
            labels={"aks.gitops.dev/runcommand": ref.name[:63].rstrip("-_.")},
        )
        body: Any
        create: Callable[..., Any]
        replace: Callable[..., Any]
        if kind == "Secret":
            payload = raw if raw is not None else (text or "").encode()
            body = kubernetes.client.V1Secret(
                metadata=metadata, type="Opaque",
                data={"output": base64.b64encode(payload).decode()},
            )  # fmt: skip
            create, replace = (
                self._core.create_namespaced_secret, self._core.replace_namespaced_secret,
            )  # fmt: skip
        else:
            body = kubernetes.client.V1ConfigMap(
                metadata=metadata,
                data={"output": text} if text is not None else None,
                binary_data=(
                    {"output": base64.b64encode(raw).decode()} if raw is not None else None
                ),
            )
            create, replace = (
                self._core.create_namespaced_config_map,
                self._core.replace_namespaced_config_map,
            )
        try:
            await self._call(create, ref.namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            await self._call(replace, name, ref.namespace, body)

    async def delete_output(self, namespace: str, kind: str, name: str) -> None:
        delete = (
            self._core.delete_namespaced_secret
            if kind == "Secret"
            else self._core.delete_namespaced_config_map
        )
        try:
            await self._call(delete, name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise

    async def post_event(
        self, ref: ObjectRef, type_: str, reason: str, message: str, kind: str = "RunCommand"
    ) -> None:
        now = datetime.datetime.now(datetime.UTC)
        event = kubernetes.client.CoreV1Event(
            metadata=kubernetes.client.V1ObjectMeta(
                generate_name=f"{ref.name}.", namespace=ref.namespace
            ),
            involved_object=kubernetes.client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind=kind,
                name=ref.name,
                namespace=ref.namespace,
                uid=ref.uid,
            ),
            type=type_,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=kubernetes.client.V1EventSource(component="aks-runcommand-operator"),
            reporting_component="aks.gitops.dev/runcommand-operator",
            reporting_instance="aks-runcommand-operator",
        )
        await self._call(self._core.create_namespaced_event, ref.namespace, event)
