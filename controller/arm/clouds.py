"""Azure clouds: where ARM and Microsoft Entra ID live, and which token scopes to ask for."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

__all__ = [
    "AKS_AAD_SCOPE",
    "AKS_AAD_SERVER_APP_ID",
    "AZURE_CHINA_CLOUD",
    "AZURE_PUBLIC_CLOUD",
    "AZURE_US_GOVERNMENT",
    "Cloud",
]

# The AKS AAD server application; the same id in every cloud. A clusterToken is a token for it.
AKS_AAD_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
AKS_AAD_SCOPE = f"{AKS_AAD_SERVER_APP_ID}/.default"


@dataclass(frozen=True)
class Cloud:
    """An Azure cloud. ``arm_endpoint`` has no trailing slash.

    ``authority_host`` is None to let azure-identity use its default (public cloud).
    ``instance_discovery`` is False for custom clouds (an emulator) that do not serve
    Microsoft Entra instance discovery.
    """

    name: str
    arm_endpoint: str
    authority_host: str | None
    instance_discovery: bool = True

    def __post_init__(self) -> None:
        url = httpx.URL(self.arm_endpoint)
        if url.scheme not in ("https", "http") or not url.host:
            raise ValueError(
                f"ARM endpoint must be an absolute http(s) URL, got {self.arm_endpoint!r}"
            )
        object.__setattr__(self, "arm_endpoint", self.arm_endpoint.rstrip("/"))

    @property
    def arm_scope(self) -> str:
        return f"{self.arm_endpoint}/.default"

    @classmethod
    def custom(cls, arm_endpoint: str, authority_host: str | None = None) -> Cloud:
        """A non-Azure endpoint, such as the local emulator."""
        return cls("Custom", arm_endpoint, authority_host, instance_discovery=False)

    @classmethod
    def by_name(cls, name: str) -> Cloud:
        """AzurePublicCloud, AzureUSGovernment or AzureChinaCloud (case-insensitive)."""
        for cloud in _KNOWN_CLOUDS:
            if cloud.name.casefold() == name.casefold():
                return cloud
        known = ", ".join(cloud.name for cloud in _KNOWN_CLOUDS)
        raise ValueError(f"unknown Azure cloud {name!r}; known clouds: {known}")


AZURE_PUBLIC_CLOUD = Cloud(
    "AzurePublicCloud", "https://management.azure.com/", "https://login.microsoftonline.com/"
)
AZURE_US_GOVERNMENT = Cloud(
    "AzureUSGovernment",
    "https://management.usgovcloudapi.net/",
    "https://login.microsoftonline.us/",
)
AZURE_CHINA_CLOUD = Cloud(
    "AzureChinaCloud", "https://management.chinacloudapi.cn/", "https://login.chinacloudapi.cn/"
)
_KNOWN_CLOUDS = (AZURE_PUBLIC_CLOUD, AZURE_US_GOVERNMENT, AZURE_CHINA_CLOUD)
