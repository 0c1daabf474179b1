"""A run's inputs, read from Kubernetes: the credentials Secret that picks the ARM identity, and
the ConfigMaps and Secrets whose keys become the command's files. The result is an ARM client
plus a context, or an error saying what is missing; the core decides what the reads mean.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from controller.arm import (
    ArmClient,
    ContextFile,
    CredentialConfig,
    add_to_context,
    build_context,
    check_context,
)
from controller.config import OperatorConfig
from controller.core import RunSpec
from controller.core.fence import WRAPPER_COMMAND, Fence
from controller.core.input_rules import (
    InputFailure,
    SecretIdentity,
    check_cloud,
    check_secret_mode,
    choose_identity,
    credentials_secret,
)
from controller.core.policy import (
    IDENTITY_MODES,
    IdentityMode,
    RunCommandPolicy,
    check_operator_identity,
    check_policies,
)
from controller.identities import ArmClients
from controller.kube import Found, KubeApi
from controller.vocabulary import Reason


class InputReader:
    def __init__(self, config: OperatorConfig, kube: KubeApi, clients: ArmClients) -> None:
        self._config, self._kube, self._clients = config, kube, clients
        self._reuse_seconds = config.inputs.secret_reuse_seconds
        # (namespace, name) -> (monotonic time read, what was found)
        self._secrets: dict[tuple[str, str], tuple[float, Found | None]] = {}

    async def _credentials_secret(self, namespace: str, name: str, *, fresh: bool) -> Found | None:
        """The credentials Secret. A poll of a command already sent may reuse a read at most
        5 s old (InputSettings.secret_reuse_seconds): polls of many runs in a namespace share
        one Secret, and reading it for each poll was a fifth of the operator's API calls at a
        thousand commands. A rotated Secret is seen within those 5 s; the old client stays
        open a minute (identities.py)."""
        key, now = (namespace, name), time.monotonic()
        if not fresh:
            seen = self._secrets.get(key)
            if seen is not None and now - seen[0] < self._reuse_seconds:
                return seen[1]
        found = await self._kube.read_secret(namespace, name)
        if len(self._secrets) > 4096:  # many namespaces: keep only reads still reusable
            self._secrets = {
                k: v for k, v in self._secrets.items() if now - v[0] < self._reuse_seconds
            }
        self._secrets[key] = (now, found)
        return found

    async def arm_client(self, namespace: str, spec: RunSpec, *, authorize: bool) -> ArmClient:
        """The client for the identity this run may use. Raises InputFailure or CredentialError.
        With ``authorize`` (before a submission), the operator-identity allowance and every
        RunCommandPolicy are checked first: a refused run builds no credential, fetches no
        token. Polls of a command already sent are not re-authorized."""
        check_cloud(spec, self._config.arm.cloud.name)
        name = credentials_secret(spec, self._config.identity.default_credentials_secret)
        found = await self._credentials_secret(namespace, name, fresh=authorize)
        identity = choose_identity(
            spec, namespace, self._config.identity.default_credentials_secret, found is not None
        )
        if not isinstance(identity, SecretIdentity) or found is None:
            if authorize:
                await self._authorize(namespace, spec, "OperatorIdentity", name)
            return self._clients.get(("operator",), "", self._config.identity.credential)
        try:
            config = CredentialConfig.from_secret_data(found.data)
        except ValueError as error:
            raise InputFailure(
                Reason.INVALID_CREDENTIALS, f"credentials Secret {namespace}/{name}: {error}"
            ) from error
        check_secret_mode(
            config.mode,
            identity,
            workload_identity_from_secrets=self._config.identity.workload_identity_from_secrets,
        )
        if authorize:
            await self._authorize(namespace, spec, IDENTITY_MODES[config.mode], name)
        key = ("secret", namespace, name)
        return self._clients.get(key, found.resource_version, config)

    async def discovery_client(self, namespace: str, spec: RunSpec) -> ArmClient:
        """The client a RunCommandSet lists clusters with: the same identity rules, and the
        operator's own identity only where it is allowed. Each child's target is checked by
        the policies when the child is submitted."""
        name = credentials_secret(spec, self._config.identity.default_credentials_secret)
        if not spec.credentials_secret and await self._kube.read_secret(namespace, name) is None:
            labels = await self._kube.namespace_labels(namespace)
            check_operator_identity(
                self._config.identity.operator_identity, namespace, labels, name
            )
        return await self.arm_client(namespace, spec, authorize=False)

    async def _authorize(
        self, namespace: str, spec: RunSpec, identity: IdentityMode, secret: str
    ) -> None:
        labels = await self._kube.namespace_labels(namespace)
        if identity == "OperatorIdentity":
            check_operator_identity(
                self._config.identity.operator_identity, namespace, labels, secret
            )
        try:
            policies = [RunCommandPolicy.from_object(p) for p in await self._kube.list_policies()]
        except (KeyError, TypeError, ValueError) as error:
            raise InputFailure(
                Reason.POLICY_DENIED, f"a RunCommandPolicy cannot be read: {error}"
            ) from error
        check_policies(policies, namespace, labels, spec, identity)

    async def context(self, namespace: str, spec: RunSpec) -> str | None:
        """The base64 zip to send: the spec's ready-made one, checked, or one built from
        spec.files and spec.filesFrom. Duplicate or conflicting paths are refused."""
        limit = self._config.inputs.max_context_bytes
        if spec.context is not None:
            check_context(spec.context, limit)
            return spec.context
        files = [
            ContextFile(path, content.encode(), f"spec.files[{path}]")
            for path, content in spec.files.items()
        ]
        for source in spec.files_from:
            read: Callable[[str, str], Awaitable[Found | None]] = (
                self._kube.read_configmap if source.kind == "ConfigMap" else self._kube.read_secret
            )
            found = await read(namespace, source.name)
            where = f"{source.kind} {namespace}/{source.name}"
            if found is None:
                raise InputFailure(
                    Reason.FILES_NOT_FOUND,
                    f"{where} named in spec.filesFrom not found",
                    retryable=True,
                )
            keys = source.keys or tuple(sorted(found.data))
            missing = [key for key in keys if key not in found.data]
            if missing:
                raise InputFailure(
                    Reason.FILES_NOT_FOUND,
                    f"{where} has no key {', '.join(missing)}",
                    retryable=True,
                )
            prefix = source.path_prefix.strip("/")
            files.extend(
                ContextFile(
                    f"{prefix}/{key}" if prefix else key, found.data[key], f"{where} key {key}"
                )
                for key in keys
            )
        return build_context(files, limit) if files else None

    def fenced(self, fence: Fence, command: str, context: str | None) -> tuple[str, str]:
        """submitPolicy ExactlyOnce: the command and context to send instead, the wrapper's
        files added next to the run's own (spec.command becomes one of them). Raises
        InvalidContextPathError when the run's files use the wrapper's directory."""
        files = [
            ContextFile(path, data, "the ExactlyOnce fence's wrapper")
            for path, data in fence.files(command)
        ]
        return WRAPPER_COMMAND, add_to_context(
            context, files, self._config.inputs.max_context_bytes
        )
