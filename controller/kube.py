"""The Kubernetes calls the operator makes besides kopf's own: read the files and credential
Secrets a RunCommand names, patch its status, post events, delete it after its TTL.

The calls are asynchronous, over one aiohttp session (aiohttp is kopf's own HTTP client), with
JSON bodies as plain dicts. The `kubernetes` package only loads the configuration — in-cluster
or kubeconfig, with its token refresh — so the operator reaches the API server exactly as
`kubectl` would. Its synchronous client is not used: it needs a thread per call and builds a
model object per answer, which cost most of the operator's CPU at a thousand commands
(see `make bench`, BENCH_PROFILE).
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import aiohttp
import certifi

from controller.failure import Classification, Failure, is_transient_status
from controller.kubeconfig import load_configuration
from controller.vocabulary import (
    API_VERSION,
    GROUP,
    OUTPUT_LABEL,
    POLICY_PLURAL,
    REPORTING_COMPONENT,
    RUNCOMMAND_KIND,
    RUNCOMMAND_PLURAL,
    VERSION,
)

_MERGE_PATCH = "application/merge-patch+json"
_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)


class ApiError(Failure):
    """The API server answered with an error status; `status` is the HTTP code, `code` the
    Status body's reason (`Forbidden`, `TooManyRequests`, ...) or `Http<status>`, and the message
    is the Status body's. A timeout, throttling or a server failure is classified as a retry."""

    def __init__(self, status: int, message: str, *, reason: str | None = None) -> None:
        super().__init__(
            message,
            code=reason or f"Http{status}",
            classification=Classification.RETRY
            if is_transient_status(status)
            else Classification.FINAL,
        )
        self.status = status
        self.args = (f"({status}) {message}",)  # repr and str name the status, as before

    def __str__(self) -> str:
        return str(self.args[0])


class Conflict(Exception):
    """A write lost a race: the object changed since it was read (resourceVersion), or it was
    deleted and recreated under the same name (uid). Re-read and decide again."""


def transient(error: BaseException) -> bool:
    """An API server hiccup (unreachable, restarting, overloaded) that a retry outlives: worth a
    one-line warning, never a traceback."""
    if isinstance(error, ApiError):
        return error.transient
    return isinstance(error, aiohttp.ClientError | ConnectionError | TimeoutError)


@dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Found:
    data: dict[str, bytes]
    resource_version: str


def _custom(namespace: str | None, plural: str, name: str = "", subresource: str = "") -> str:
    path = f"/apis/{GROUP}/{VERSION}"
    if namespace is not None:
        path += f"/namespaces/{quote(namespace)}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(name)}"
    if subresource:
        path += f"/{subresource}"
    return path


def _core(namespace: str, kind: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/{kind}" + (f"/{quote(name)}" if name else "")


class KubeApi:
    def __init__(self, configuration: Any) -> None:
        """`configuration`: a loaded `kubernetes.client.Configuration` (host, TLS, token)."""
        self._configuration = configuration
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_environment(cls) -> KubeApi:
        return cls(load_configuration())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl_context(self) -> ssl.SSLContext | bool:
        c = self._configuration
        if not c.host.startswith("https"):
            return False
        # Without a CA of its own, certifi's, as the `kubernetes` client does.
        context = ssl.create_default_context(cafile=c.ssl_ca_cert or certifi.where())
        if c.cert_file:
            context.load_cert_chain(c.cert_file, c.key_file)
        if not c.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl_context(), limit=32)
            self._session = aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT)
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        """One call; the answer's JSON, or None for 404 (absent objects are data here)."""
        headers = {"Accept": "application/json"}
        # The `kubernetes` client's own way to the bearer token (filed under "BearerToken" or
        # "authorization"); it runs the refresh hook, so rotated in-cluster tokens are read.
        for setting in self._configuration.auth_settings().values():
            if setting["in"] == "header" and setting["value"]:
                headers[setting["key"]] = setting["value"]
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        session = self._open()
        async with session.request(
            method,
            # The server may sit under a path (an API proxy): joined, not resolved.
            self._configuration.host.rstrip("/") + path,
            data=data,
            params=params,
            headers=headers,
            proxy=self._configuration.proxy or None,
            server_hostname=self._configuration.tls_server_name or None,
        ) as response:
            payload = await response.read()
            if response.status == 404:
                return None
            if response.status >= 400:
                message, reason = _status_message(payload, response.reason)
                raise ApiError(response.status, message, reason=reason)
            return cast(dict[str, Any], json.loads(payload)) if payload else {}

    async def read_configmap(self, namespace: str, name: str) -> Found | None:
        cm = await self._request("GET", _core(namespace, "configmaps", name))
        if cm is None:
            return None
        data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
        return Found(data, _resource_version(cm))

    async def read_secret(self, namespace: str, name: str) -> Found | None:
        secret = await self._request("GET", _core(namespace, "secrets", name))
        if secret is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        return Found(data, _resource_version(secret))

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The namespace's labels; none when it cannot be found (it is being deleted)."""
        found = await self._request("GET", f"/api/v1/namespaces/{quote(namespace)}")
        return dict(((found or {}).get("metadata") or {}).get("labels") or {})

    async def namespace_exists(self, namespace: str) -> bool:
        return await self._request("GET", f"/api/v1/namespaces/{quote(namespace)}") is not None

    async def runcommands_served(self, namespace: str | None) -> bool:
        """One page of one RunCommand, in `namespace` (None: all), as a watch lists them: the API
        server answers, the operator may read RunCommands, and their CRD is served (else
        False)."""
        listed = await self._request(
            "GET", _custom(namespace, RUNCOMMAND_PLURAL), params={"limit": "1"}
        )
        return listed is not None

    async def list_policies(self) -> list[dict[str, Any]]:
        """Every RunCommandPolicy; none when the CRD is not installed (404)."""
        listed = await self._request("GET", _custom(None, POLICY_PLURAL))
        return list((listed or {}).get("items") or [])

    async def read_runcommand(
        self, ref: ObjectRef, plural: str = RUNCOMMAND_PLURAL
    ) -> dict[str, Any] | None:
        body = await self._request("GET", _custom(ref.namespace, plural, ref.name))
        if body is None or body["metadata"]["uid"] != ref.uid:
            return None  # gone, or deleted and recreated: not the object we were following
        return body

    async def patch_status(
        self,
        ref: ObjectRef,
        status: dict[str, Any],
        resource_version: str,
        plural: str = RUNCOMMAND_PLURAL,
    ) -> dict[str, Any] | None:
        """JSON merge patch of status, conditional on the object being exactly the version that
        was read (optimistic concurrency, as the Job controller claims pods). None values delete
        fields. Returns the new object; None when it is gone; raises Conflict on a lost race."""
        # uid and resourceVersion in the patch body are preconditions: 409 when they differ.
        metadata = {"uid": ref.uid, "resourceVersion": resource_version}
        path = _custom(ref.namespace, plural, ref.name, "status")
        try:
            return await self._request(
                "PATCH", path, {"metadata": metadata, "status": status}, content_type=_MERGE_PATCH
            )
        except ApiError as error:
            if error.status == 409:
                raise Conflict(f"{ref.namespace}/{ref.name} changed since it was read") from None
            raise

    async def list_runcommands(
        self, namespace: str, label_selector: str, plural: str = RUNCOMMAND_PLURAL
    ) -> list[dict[str, Any]]:
        """The RunCommands (or sets) of a namespace that carry these labels (children)."""
        listed = await self._request(
            "GET", _custom(namespace, plural), params={"labelSelector": label_selector}
        )
        return list((listed or {}).get("items") or [])

    async def create_runcommand(
        self, namespace: str, body: dict[str, Any], plural: str = RUNCOMMAND_PLURAL
    ) -> dict[str, Any] | None:
        """Create a RunCommand (or set) and return it; None when one of that name exists
        already (names are derived, so it is the same child: creating is idempotent)."""
        try:
            return await self._request("POST", _custom(namespace, plural), body)
        except ApiError as error:
            if error.status == 409:
                return None
            raise

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
            written = await self._request(
                "PATCH",
                _custom(namespace, RUNCOMMAND_PLURAL, name),
                body,
                content_type=_MERGE_PATCH,
            )
        except ApiError as error:
            if error.status == 409:
                raise Conflict(f"{namespace}/{name} changed since it was read") from None
            raise
        if written is None:
            raise Conflict(f"{namespace}/{name} is gone")

    async def delete_runcommand(self, ref: ObjectRef, plural: str = RUNCOMMAND_PLURAL) -> None:
        """Delete it, and in the background what it owns (its output objects, a set's
        children); only this very object (uid), never a newer one of the same name."""
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": ref.uid},
            "propagationPolicy": "Background",
        }
        try:
            await self._request("DELETE", _custom(ref.namespace, plural, ref.name), options)
        except ApiError as error:
            if error.status != 409:  # 409: a new object of that name, not ours
                raise

    async def write_output(
        self, ref: ObjectRef, kind: str, name: str, text: str | None, raw: bytes | None
    ) -> None:
        """Create or replace the ConfigMap or Secret holding a run's output, owned by the
        RunCommand (garbage-collected with it). Replacing makes a second write after a crash
        write the same object; the key is `output`, in data or binaryData."""
        owner = {"apiVersion": API_VERSION, "kind": RUNCOMMAND_KIND, "name": ref.name,
                 "uid": ref.uid, "controller": True}  # fmt: skip
        metadata = {
            "name": name,
            "namespace": ref.namespace,
            "ownerReferences": [owner],
            "labels": {OUTPUT_LABEL: ref.name[:63].rstrip("-_.")},
        }
        body: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
        if kind == "Secret":
            payload = raw if raw is not None else (text or "").encode()
            body.update(type="Opaque", data={"output": base64.b64encode(payload).decode()})
            plural = "secrets"
        else:
            if text is not None:
                body["data"] = {"output": text}
            if raw is not None:
                body["binaryData"] = {"output": base64.b64encode(raw).decode()}
            plural = "configmaps"
        try:
            await self._request("POST", _core(ref.namespace, plural), body)
        except ApiError as error:
            if error.status != 409:
                raise
            await self._request("PUT", _core(ref.namespace, plural, name), body)

    async def delete_output(self, namespace: str, kind: str, name: str) -> None:
        plural = "secrets" if kind == "Secret" else "configmaps"
        await self._request("DELETE", _core(namespace, plural, name))  # 404: gone already

    async def post_event(
        self, ref: ObjectRef, type_: str, reason: str, message: str, kind: str = RUNCOMMAND_KIND
    ) -> None:
        """An Event about ``ref``, a RunCommand or (``kind``) one of its parents."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {"apiVersion": API_VERSION, "kind": kind,
                               "name": ref.name, "namespace": ref.namespace, "uid": ref.uid},
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "aks-runcommand-operator"},
            "reportingComponent": REPORTING_COMPONENT,
            "reportingInstance": "aks-runcommand-operator",
        }  # fmt: skip
        await self._request("POST", _core(ref.namespace, "events"), event)


def _resource_version(body: dict[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


def _status_message(payload: bytes, reason: str | None) -> tuple[str, str | None]:
    """The message of the API server's Status body, else the HTTP reason; and the Status
    body's own reason (a PascalCase word), if any."""
    try:
        status = json.loads(payload)
        return str(status.get("message") or reason or ""), _optional_str(status.get("reason"))
    except (ValueError, AttributeError):
        return payload[:200].decode(errors="replace") or str(reason or ""), None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
