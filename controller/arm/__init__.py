"""Async client for the AKS runCommand ARM API. Knows nothing about Kubernetes.

The value types of ARM's answers (:mod:`.models`) are loaded at once; everything that needs
httpx or azure-identity is loaded on first use (PEP 562). So the pure core can use ARM's
vocabulary without loading an HTTP stack: ``import controller.core`` loads no httpx and no
azure (``tests/test_layering.py`` checks it in a fresh interpreter).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .models import (
    ArmCode,
    BudgetRoom,
    ClusterRef,
    ClusterTokenMode,
    CommandHandle,
    CommandResult,
    CommandRunning,
    CommandStatus,
    DiscoveredCluster,
    ManagedCluster,
    PreparedSubmission,
    ProvisioningState,
)

if TYPE_CHECKING:
    from .client import DEFAULT_API_VERSION, ArmClient
    from .clouds import (
        AKS_AAD_SCOPE,
        AKS_AAD_SERVER_APP_ID,
        AZURE_CHINA_CLOUD,
        AZURE_PUBLIC_CLOUD,
        AZURE_US_GOVERNMENT,
        Cloud,
    )
    from .context import (
        ContextFile,
        ContextFiles,
        add_to_context,
        build_context,
        check_context,
    )
    from .credentials import CredentialConfig, CredentialMode, build_credential
    from .errors import (
        ArmError,
        ArmResponseError,
        ArmTransportError,
        ContextTooLargeError,
        CredentialError,
        ErrorDetail,
        InvalidContextError,
        InvalidContextPathError,
        MalformedLocationError,
        RequestTooLargeError,
        ResourceNotFoundError,
        SubmissionOutcomeUnknown,
        ThrottledError,
    )
    from .observe import NO_OBSERVER, ArmObserver
    from .retry import RetryPolicy
    from .throttle import ArmThrottle, BucketConfig, ThrottleConfig
    from .tokens import CredentialFactory
    from .transport import DEFAULT_TIMEOUT, LONGEST_REQUEST_SECONDS, new_http_client

# Name -> the submodule that defines it, for everything not loaded eagerly.
_LAZY: dict[str, str] = {
    "AKS_AAD_SCOPE": "clouds",
    "AKS_AAD_SERVER_APP_ID": "clouds",
    "AZURE_CHINA_CLOUD": "clouds",
    "AZURE_PUBLIC_CLOUD": "clouds",
    "AZURE_US_GOVERNMENT": "clouds",
    "ArmClient": "client",
    "ArmError": "errors",
    "ArmObserver": "observe",
    "ArmResponseError": "errors",
    "ArmThrottle": "throttle",
    "ArmTransportError": "errors",
    "BucketConfig": "throttle",
    "Cloud": "clouds",
    "ContextFile": "context",
    "ContextFiles": "context",
    "ContextTooLargeError": "errors",
    "CredentialConfig": "credentials",
    "CredentialError": "errors",
    "CredentialFactory": "tokens",
    "CredentialMode": "credentials",
    "DEFAULT_API_VERSION": "client",
    "DEFAULT_TIMEOUT": "transport",
    "LONGEST_REQUEST_SECONDS": "transport",
    "ErrorDetail": "errors",
    "InvalidContextError": "errors",
    "InvalidContextPathError": "errors",
    "MalformedLocationError": "errors",
    "NO_OBSERVER": "observe",
    "RequestTooLargeError": "errors",
    "ResourceNotFoundError": "errors",
    "RetryPolicy": "retry",
    "SubmissionOutcomeUnknown": "errors",
    "ThrottleConfig": "throttle",
    "ThrottledError": "errors",
    "add_to_context": "context",
    "build_context": "context",
    "build_credential": "credentials",
    "check_context": "context",
    "new_http_client": "transport",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


__all__ = [
    "AKS_AAD_SCOPE",
    "AKS_AAD_SERVER_APP_ID",
    "AZURE_CHINA_CLOUD",
    "AZURE_PUBLIC_CLOUD",
    "AZURE_US_GOVERNMENT",
    "DEFAULT_API_VERSION",
    "DEFAULT_TIMEOUT",
    "LONGEST_REQUEST_SECONDS",
    "NO_OBSERVER",
    "ArmClient",
    "ArmCode",
    "ArmError",
    "ArmObserver",
    "ArmResponseError",
    "ArmThrottle",
    "ArmTransportError",
    "BucketConfig",
    "BudgetRoom",
    "Cloud",
    "ClusterRef",
    "ClusterTokenMode",
    "CommandHandle",
    "CommandResult",
    "CommandRunning",
    "CommandStatus",
    "ContextFile",
    "ContextFiles",
    "ContextTooLargeError",
    "CredentialConfig",
    "CredentialError",
    "CredentialFactory",
    "CredentialMode",
    "DiscoveredCluster",
    "ErrorDetail",
    "InvalidContextError",
    "InvalidContextPathError",
    "MalformedLocationError",
    "ManagedCluster",
    "PreparedSubmission",
    "ProvisioningState",
    "RequestTooLargeError",
    "ResourceNotFoundError",
    "RetryPolicy",
    "SubmissionOutcomeUnknown",
    "ThrottleConfig",
    "ThrottledError",
    "add_to_context",
    "build_context",
    "build_credential",
    "check_context",
    "new_http_client",
]
