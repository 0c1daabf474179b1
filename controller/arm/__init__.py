"""Async client for the AKS runCommand ARM API. Knows nothing about Kubernetes."""

from .client import DEFAULT_API_VERSION, ArmClient
from .clouds import (
    AKS_AAD_SCOPE,
    AKS_AAD_SERVER_APP_ID,
    AZURE_CHINA_CLOUD,
    AZURE_PUBLIC_CLOUD,
    AZURE_US_GOVERNMENT,
    Cloud,
)
from .context import ContextFile, ContextFiles, build_context, check_context
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
from .models import (
    ClusterRef,
    ClusterTokenMode,
    CommandHandle,
    CommandResult,
    CommandRunning,
    CommandStatus,
    ManagedCluster,
    PreparedSubmission,
    ProvisioningState,
)
from .retry import RetryPolicy
from .throttle import ArmThrottle, BucketConfig, ThrottleConfig
from .tokens import CredentialFactory
from .transport import DEFAULT_TIMEOUT, new_http_client

__all__ = [
    "AKS_AAD_SCOPE",
    "AKS_AAD_SERVER_APP_ID",
    "AZURE_CHINA_CLOUD",
    "AZURE_PUBLIC_CLOUD",
    "AZURE_US_GOVERNMENT",
    "DEFAULT_API_VERSION",
    "DEFAULT_TIMEOUT",
    "ArmClient",
    "ArmError",
    "ArmResponseError",
    "ArmThrottle",
    "ArmTransportError",
    "BucketConfig",
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
    "build_context",
    "build_credential",
    "check_context",
    "new_http_client",
]
