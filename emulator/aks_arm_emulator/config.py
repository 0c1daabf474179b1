"""Emulator configuration: dataclasses plus a validating YAML loader.

The YAML schema mirrors the dataclasses with camelCase keys (see ``EXAMPLE_YAML``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

Mode = Literal["execute", "scripted"]

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# From the REST spec: managedClusters/{resourceName}.
CLUSTER_NAME_RE = re.compile(r"^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$")
API_VERSION_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(-preview)?$")

DEFAULT_MAX_LOG_BYTES = 512 * 1024
# ARM refuses request bodies above 4 MiB; the runCommand-specific limit is unknown.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024

EXAMPLE_YAML = """\
clusters:
  - subscriptionId: 00000000-0000-0000-0000-000000000001
    resourceGroup: rg-demo
    name: aks-demo
    location: westeurope
    kubeconfig: /path/to/kubeconfig
    aadManaged: false
    disableRunCommand: false
    powerState: Running
    tags: {env: demo}
listPageSize: 100
mode: execute
scripted: {exitCode: 0, logs: "", durationSeconds: 0}
"""


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    subscription_id: str
    resource_group: str
    name: str
    kubeconfig: Path | None = None
    location: str = "westeurope"
    aad_managed: bool = False
    disable_run_command: bool = False
    power_state: Literal["Running", "Stopped"] = "Running"
    # ARM resource tags, served by the cluster GET and the managedClusters lists.
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourcegroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.name}"
        )


@dataclasses.dataclass(frozen=True)
class ScriptedConfig:
    exit_code: int = 0
    logs: str = ""
    duration_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class BucketConfig:
    capacity: int
    refill_per_second: float


@dataclasses.dataclass(frozen=True)
class ProviderLimits:
    """The AKS resource provider's documented limits, applied on top of ARM's under the `aks`
    profile (per region; the emulator is one region)."""

    list_per_subscription: BucketConfig = BucketConfig(capacity=500, refill_per_second=1.0)
    list_per_resource_group: BucketConfig = BucketConfig(capacity=60, refill_per_second=1.0)
    get_cluster: BucketConfig = BucketConfig(capacity=60, refill_per_second=1.0)
    # "All other APIs": runCommand POSTs and commandResults GETs together, per subscription.
    other: BucketConfig = BucketConfig(capacity=60, refill_per_second=1.0)


THROTTLE_PROFILES = ("arm", "aks")


@dataclasses.dataclass(frozen=True)
class ThrottleConfig:
    # ARM's documented per-subscription limits.
    reads: BucketConfig = BucketConfig(capacity=250, refill_per_second=25.0)
    writes: BucketConfig = BucketConfig(capacity=200, refill_per_second=10.0)
    # The AKS resource provider's own limit on managedClusters LISTs: a burst of 500, then 1/s.
    lists: BucketConfig = BucketConfig(capacity=500, refill_per_second=1.0)
    # `arm`: ARM's buckets only. `aks`: the resource provider's limits on top.
    profile: str = "arm"
    provider: ProviderLimits = ProviderLimits()


def validate_faults(faults: FaultsConfig) -> None:
    for field in dataclasses.fields(faults):
        value = getattr(faults, field.name)
        key = f"faults.{camel_case(field.name)}"
        if field.name.endswith("_rate") and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key} must be between 0 and 1")
        if field.name.endswith("_seconds") and value < 0:
            raise ConfigError(f"{key} must be >= 0")


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclasses.dataclass(frozen=True)
class FaultsConfig:
    """Every field is a knob of the `faults:` section (camelCase of the field name) and of
    `POST /_emulator/faults`; the field's default decides its YAML type (bool, int, float)."""

    seed: int = 0
    server_error_rate: float = 0.0
    throttle_rate: float = 0.0
    latency_seconds: float = 0.0
    # Held before a runCommand POST is accepted (validation done, command not started yet).
    submit_latency_seconds: float = 0.0
    # Held before a commandResults GET is answered.
    poll_latency_seconds: float = 0.0
    drop_connection_after_submit_rate: float = 0.0
    # A submit whose client went away before acceptance still runs, as a request that has
    # reached the resource provider would; false: it is abandoned before the command starts.
    run_abandoned_submits: bool = True
    pod_never_starts: bool = False
    # The live service gives the command pod 30 s to start.
    pod_start_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        validate_faults(self)


@dataclasses.dataclass(frozen=True)
class SigninConfig:
    """App registrations, as far as sign-in can refuse. Empty (the default): any tenant, any
    client and any non-empty secret or well-formed assertion is accepted."""

    # When not empty, a tenant outside this list is unknown (AADSTS90002).
    known_tenants: tuple[str, ...] = ()
    # client id -> accepted secrets (several: a rotation in progress).
    client_secrets: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # client id -> PEM text of one or more certificates whose keys may sign its assertions.
    client_certificates: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_signin(self)


def validate_signin(signin: SigninConfig) -> None:
    for index, tenant in enumerate(signin.known_tenants):
        if not isinstance(tenant, str) or not UUID_RE.match(tenant):
            raise ConfigError(f"signin.knownTenants[{index}] must be a tenant id (UUID)")
    for client, secrets in signin.client_secrets.items():
        if not client or not secrets or not all(isinstance(x, str) and x for x in secrets):
            raise ConfigError(
                f"signin.clientSecrets.{client} must be a non-empty secret or list of secrets"
            )
    for client, pem in signin.client_certificates.items():
        if not client:
            raise ConfigError("signin.clientCertificates needs client ids as keys")
        try:
            keys = [c.public_key() for c in x509.load_pem_x509_certificates(pem.encode("ascii"))]
        except (ValueError, UnicodeEncodeError, AttributeError) as exc:
            raise ConfigError(
                f"signin.clientCertificates.{client} must hold PEM certificates: {exc}"
            ) from exc
        if not all(isinstance(k, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) for k in keys):
            raise ConfigError(f"signin.clientCertificates.{client}: only RSA or EC keys sign")


@dataclasses.dataclass(frozen=True)
class ApiVersionRange:
    # runCommand first appeared in 2021-05-01; newest known: 2026-08-01 (SDK 41.8.0).
    oldest: str = "2021-05-01"
    newest: str = "2026-12-31"


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    clusters: tuple[ClusterConfig, ...] = ()
    mode: Mode = "execute"
    scripted: ScriptedConfig = ScriptedConfig()
    lowercase_states: bool = False
    retry_after_seconds: int | None = None
    command_timeout_seconds: float = 300.0
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    throttle: ThrottleConfig = ThrottleConfig()
    faults: FaultsConfig = FaultsConfig()
    api_versions: ApiVersionRange = ApiVersionRange()
    tool_path: tuple[Path, ...] = ()
    token_lifetime_seconds: int = 3600
    # Extra accepted ARM token audiences; the emulator's own base URL is always accepted.
    arm_audiences: tuple[str, ...] = ()
    signin: SigninConfig = SigninConfig()
    # Clusters per page of a managedClusters list; more follow through nextLink.
    list_page_size: int = 100

    def __post_init__(self) -> None:
        validate(self)


def validate(config: EmulatorConfig) -> None:
    """Raise ConfigError for values the emulator cannot work with."""
    seen: set[tuple[str, str, str]] = set()
    for index, cluster in enumerate(config.clusters):
        where = f"clusters[{index}]"
        if not UUID_RE.match(cluster.subscription_id):
            raise ConfigError(f"{where}.subscriptionId must be a UUID: {cluster.subscription_id!r}")
        if not cluster.resource_group or len(cluster.resource_group) > 90:
            raise ConfigError(f"{where}.resourceGroup must be 1..90 characters")
        if not CLUSTER_NAME_RE.match(cluster.name):
            raise ConfigError(f"{where}.name is not a valid managed cluster name: {cluster.name!r}")
        if cluster.power_state not in ("Running", "Stopped"):
            raise ConfigError(f"{where}.powerState must be Running or Stopped")
        key = (
            cluster.subscription_id.lower(),
            cluster.resource_group.lower(),
            cluster.name.lower(),
        )
        if key in seen:
            raise ConfigError(f"{where} duplicates another cluster")
        seen.add(key)
        if config.mode == "execute" and cluster.kubeconfig is None:
            raise ConfigError(f"{where}.kubeconfig is required in execute mode")
    if config.mode not in ("execute", "scripted"):
        raise ConfigError(f"mode must be execute or scripted, not {config.mode!r}")
    if config.scripted.duration_seconds < 0:
        raise ConfigError("scripted.durationSeconds must be >= 0")
    if config.retry_after_seconds is not None and config.retry_after_seconds < 0:
        raise ConfigError("retryAfterSeconds must be >= 0")
    if config.command_timeout_seconds <= 0:
        raise ConfigError("commandTimeoutSeconds must be > 0")
    if config.max_log_bytes <= 0:
        raise ConfigError("maxLogBytes must be > 0")
    if config.max_request_bytes <= 0:
        raise ConfigError("maxRequestBytes must be > 0")
    throttle = config.throttle
    for kind, bucket in (
        ("reads", throttle.reads),
        ("writes", throttle.writes),
        ("lists", throttle.lists),
    ):
        if bucket.capacity < 1 or bucket.refill_per_second <= 0:
            raise ConfigError(f"throttle.{kind} needs capacity >= 1 and refillPerSecond > 0")
    if config.throttle.profile not in THROTTLE_PROFILES:
        raise ConfigError(f"throttle.profile must be arm or aks, not {config.throttle.profile!r}")
    for name, version in (
        ("oldest", config.api_versions.oldest),
        ("newest", config.api_versions.newest),
    ):
        if not API_VERSION_RE.match(version):
            raise ConfigError(f"apiVersions.{name} must look like YYYY-MM-DD: {version!r}")
    if config.list_page_size < 1:
        raise ConfigError("listPageSize must be >= 1")
    if config.token_lifetime_seconds < 60:
        raise ConfigError("tokenLifetimeSeconds must be >= 60")


# --- YAML mapping -----------------------------------------------------------------------------


class _Section:
    """Reads typed values out of one mapping and rejects unknown keys."""

    def __init__(self, data: Any, where: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where or 'the document'} must be a mapping")
        self._data: Mapping[str, Any] = data
        self._where = where
        self._used: set[str] = set()

    def _path(self, key: str) -> str:
        return f"{self._where}.{key}" if self._where else key

    def raw(self, key: str) -> Any:
        self._used.add(key)
        return self._data.get(key)

    def has(self, key: str) -> bool:
        return key in self._data

    def names(self) -> list[str]:
        """The keys present, for sections whose keys are data (client ids), not a schema."""
        return [str(key) for key in self._data]

    def string(self, key: str, default: str | None = None) -> str:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise ConfigError(f"{self._path(key)} is required")
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{self._path(key)} must be a string")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self._path(key)} must be true or false")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{self._path(key)} must be a number")
        return float(value)

    def integer(self, key: str, default: int | None) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._path(key)} must be an integer")
        return value

    def required_integer(self, key: str, default: int) -> int:
        value = self.integer(key, default)
        assert value is not None  # a default was given
        return value

    def section(self, key: str) -> _Section:
        return _Section(self.raw(key), self._path(key))

    def finish(self) -> None:
        unknown = sorted(str(key) for key in self._data if key not in self._used)
        if unknown:
            raise ConfigError(
                f"unknown key(s) in {self._where or 'the document'}: {', '.join(unknown)}"
            )


def _cluster(data: Any, where: str, base_dir: Path) -> ClusterConfig:
    section = _Section(data, where)
    kubeconfig_raw = section.raw("kubeconfig")
    kubeconfig: Path | None = None
    if kubeconfig_raw is not None:
        if not isinstance(kubeconfig_raw, str) or not kubeconfig_raw:
            raise ConfigError(f"{where}.kubeconfig must be a path")
        kubeconfig = (base_dir / kubeconfig_raw).resolve()
    power_state = section.string("powerState", "Running")
    if power_state not in ("Running", "Stopped"):
        raise ConfigError(f"{where}.powerState must be Running or Stopped")
    cluster = ClusterConfig(
        subscription_id=section.string("subscriptionId"),
        resource_group=section.string("resourceGroup"),
        name=section.string("name"),
        kubeconfig=kubeconfig,
        location=section.string("location", "westeurope"),
        aad_managed=section.boolean("aadManaged", False),
        disable_run_command=section.boolean("disableRunCommand", False),
        power_state="Running" if power_state == "Running" else "Stopped",
        tags=_tags(section.raw("tags"), f"{where}.tags"),
    )
    section.finish()
    return cluster


def cluster_from_mapping(data: Any, mode: Mode, base_dir: Path | None = None) -> ClusterConfig:
    """One cluster entry in the YAML schema, checked as the config file's clusters are."""
    cluster = _cluster(data, "cluster", base_dir or Path.cwd())
    validate(dataclasses.replace(EmulatorConfig(mode="scripted"), clusters=(cluster,), mode=mode))
    return cluster


def _tags(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ConfigError(f"{where} must map tag names to string values")
    return tuple(sorted(raw.items()))


def _bucket(section: _Section, default: BucketConfig) -> BucketConfig:
    bucket = BucketConfig(
        capacity=section.required_integer("capacity", default.capacity),
        refill_per_second=section.number("refillPerSecond", default.refill_per_second),
    )
    section.finish()
    return bucket


def faults_from_mapping(data: Any, base: FaultsConfig | None = None) -> FaultsConfig:
    """The `faults:` section (or a `POST /_emulator/faults` body) laid over `base`: keys not
    given keep base's value. Raises ConfigError naming the key, like the YAML loader."""
    start = base or FaultsConfig()
    section = _Section(data, "faults")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(FaultsConfig):
        key, current = camel_case(field.name), getattr(start, field.name)
        # bool before int: a bool is an int in Python.
        if isinstance(current, bool):
            values[field.name] = section.boolean(key, current)
        elif isinstance(current, int):
            values[field.name] = section.required_integer(key, current)
        else:
            values[field.name] = section.number(key, current)
    section.finish()
    return FaultsConfig(**values)


def _signin(section: _Section) -> SigninConfig:
    tenants = section.raw("knownTenants") or []
    if not isinstance(tenants, list):
        raise ConfigError("signin.knownTenants must be a list of tenant ids")
    secrets_raw = _Section(section.raw("clientSecrets"), "signin.clientSecrets")
    secrets: dict[str, tuple[str, ...]] = {}
    for client in secrets_raw.names():
        value = secrets_raw.raw(client)
        secrets[str(client)] = tuple(value) if isinstance(value, list) else (value,)
    secrets_raw.finish()
    certificates_raw = _Section(section.raw("clientCertificates"), "signin.clientCertificates")
    certificates: dict[str, str] = {}
    for client in certificates_raw.names():
        certificates[str(client)] = certificates_raw.string(client)
    certificates_raw.finish()
    section.finish()
    return SigninConfig(
        known_tenants=tuple(tenants), client_secrets=secrets, client_certificates=certificates
    )


def faults_to_mapping(faults: FaultsConfig) -> dict[str, Any]:
    return {camel_case(f.name): getattr(faults, f.name) for f in dataclasses.fields(faults)}


def config_from_mapping(data: Any, base_dir: Path | None = None) -> EmulatorConfig:
    """Build a validated EmulatorConfig from parsed YAML; relative paths resolve from base_dir."""
    base = base_dir or Path.cwd()
    top = _Section(data, "")
    clusters_raw = top.raw("clusters")
    if clusters_raw is None:
        clusters_raw = []
    if not isinstance(clusters_raw, list):
        raise ConfigError("clusters must be a list")
    clusters = tuple(_cluster(item, f"clusters[{i}]", base) for i, item in enumerate(clusters_raw))

    mode = top.string("mode", "execute")
    if mode not in ("execute", "scripted"):
        raise ConfigError(f"mode must be execute or scripted, not {mode!r}")

    scripted_section = top.section("scripted")
    scripted = ScriptedConfig(
        exit_code=scripted_section.required_integer("exitCode", 0),
        logs=scripted_section.string("logs", ""),
        duration_seconds=scripted_section.number("durationSeconds", 0.0),
    )
    scripted_section.finish()

    throttle_section = top.section("throttle")
    defaults = ThrottleConfig()
    throttle = ThrottleConfig(
        reads=_bucket(throttle_section.section("reads"), defaults.reads),
        writes=_bucket(throttle_section.section("writes"), defaults.writes),
        lists=_bucket(throttle_section.section("lists"), defaults.lists),
        profile=throttle_section.string("profile", defaults.profile),
    )
    throttle_section.finish()

    faults = faults_from_mapping(top.raw("faults"))

    versions_section = top.section("apiVersions")
    version_defaults = ApiVersionRange()
    api_versions = ApiVersionRange(
        oldest=versions_section.string("oldest", version_defaults.oldest),
        newest=versions_section.string("newest", version_defaults.newest),
    )
    versions_section.finish()

    tool_path_raw = top.raw("toolPath") or []
    if not isinstance(tool_path_raw, list) or not all(isinstance(p, str) for p in tool_path_raw):
        raise ConfigError("toolPath must be a list of directory paths")
    audiences_raw = top.raw("armAudiences") or []
    if not isinstance(audiences_raw, list) or not all(isinstance(a, str) for a in audiences_raw):
        raise ConfigError("armAudiences must be a list of strings")

    config = EmulatorConfig(
        clusters=clusters,
        mode="execute" if mode == "execute" else "scripted",
        scripted=scripted,
        lowercase_states=top.boolean("lowercaseStates", False),
        retry_after_seconds=top.integer("retryAfterSeconds", None),
        command_timeout_seconds=top.number("commandTimeoutSeconds", 300.0),
        max_log_bytes=top.required_integer("maxLogBytes", DEFAULT_MAX_LOG_BYTES),
        max_request_bytes=top.required_integer("maxRequestBytes", DEFAULT_MAX_REQUEST_BYTES),
        throttle=throttle,
        faults=faults,
        api_versions=api_versions,
        tool_path=tuple((base / p).resolve() for p in tool_path_raw),
        token_lifetime_seconds=top.required_integer("tokenLifetimeSeconds", 3600),
        arm_audiences=tuple(a.rstrip("/") for a in audiences_raw),
        signin=_signin(top.section("signin")),
        list_page_size=top.required_integer("listPageSize", 100),
    )
    top.finish()
    return config


def load_config(path: str | Path) -> EmulatorConfig:
    """Read and validate a YAML configuration file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {file}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}") from exc
    return config_from_mapping(data, base_dir=file.resolve().parent)
