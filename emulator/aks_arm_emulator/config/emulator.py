"""The whole configuration: the top-level keys, the sections' dataclasses put together, and
the loader of the YAML file. The YAML schema mirrors the dataclasses with camelCase keys (see
``EXAMPLE_YAML``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from .clusters import ClusterConfig, Mode, cluster_entry, clusters_from_mapping, validate_clusters
from .fault_knobs import FaultsConfig, faults_from_mapping
from .patterns import API_VERSION_RE
from .reader import ConfigError, Section
from .signin_rules import SigninConfig, signin_from_section
from .throttle_rules import ThrottleRules, throttle_from_section, validate_throttle

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


@dataclasses.dataclass(frozen=True)
class ScriptedConfig:
    exit_code: int = 0
    logs: str = ""
    duration_seconds: float = 0.0


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
    throttle: ThrottleRules = ThrottleRules()  # noqa: RUF009 (frozen: one shared default is safe)
    faults: FaultsConfig = FaultsConfig()  # noqa: RUF009 (frozen: one shared default is safe)
    api_versions: ApiVersionRange = ApiVersionRange()
    tool_path: tuple[Path, ...] = ()
    token_lifetime_seconds: int = 3600
    # Extra accepted ARM token audiences; the emulator's own base URL is always accepted.
    arm_audiences: tuple[str, ...] = ()
    signin: SigninConfig = SigninConfig()  # noqa: RUF009 (frozen: one shared default is safe)
    # Clusters per page of a managedClusters list; more follow through nextLink.
    list_page_size: int = 100

    def __post_init__(self) -> None:
        validate(self)


def validate(config: EmulatorConfig) -> None:
    """Raise ConfigError for values the emulator cannot work with."""
    validate_clusters(config.clusters, config.mode)
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
    validate_throttle(config.throttle)
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


def cluster_from_mapping(data: Any, mode: Mode, base_dir: Path | None = None) -> ClusterConfig:
    """One cluster entry in the YAML schema, checked as the config file's clusters are."""
    cluster = cluster_entry(data, "cluster", base_dir or Path.cwd())
    validate(dataclasses.replace(EmulatorConfig(mode="scripted"), clusters=(cluster,), mode=mode))
    return cluster


def config_from_mapping(data: Any, base_dir: Path | None = None) -> EmulatorConfig:
    """Build a validated EmulatorConfig from parsed YAML; relative paths resolve from base_dir."""
    base = base_dir or Path.cwd()
    top = Section(data, "")
    clusters = clusters_from_mapping(top.raw("clusters"), base)
    mode = top.string("mode", "execute")
    if mode not in ("execute", "scripted"):
        raise ConfigError(f"mode must be execute or scripted, not {mode!r}")
    scripted = _scripted(top.section("scripted"))
    throttle = throttle_from_section(top.section("throttle"))
    faults = faults_from_mapping(top.raw("faults"))
    api_versions = _api_versions(top.section("apiVersions"))
    tool_path = _strings(top, "toolPath", "toolPath must be a list of directory paths")
    audiences = _strings(top, "armAudiences", "armAudiences must be a list of strings")
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
        tool_path=tuple((base / p).resolve() for p in tool_path),
        token_lifetime_seconds=top.required_integer("tokenLifetimeSeconds", 3600),
        arm_audiences=tuple(a.rstrip("/") for a in audiences),
        signin=signin_from_section(top.section("signin")),
        list_page_size=top.required_integer("listPageSize", 100),
    )
    top.finish()
    return config


def _scripted(section: Section) -> ScriptedConfig:
    scripted = ScriptedConfig(
        exit_code=section.required_integer("exitCode", 0),
        logs=section.string("logs", ""),
        duration_seconds=section.number("durationSeconds", 0.0),
    )
    section.finish()
    return scripted


def _api_versions(section: Section) -> ApiVersionRange:
    defaults = ApiVersionRange()
    api_versions = ApiVersionRange(
        oldest=section.string("oldest", defaults.oldest),
        newest=section.string("newest", defaults.newest),
    )
    section.finish()
    return api_versions


def _strings(top: Section, key: str, refusal: str) -> list[str]:
    """A top-level list of strings (absent: empty)."""
    raw = top.raw(key) or []
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ConfigError(refusal)
    return raw


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
