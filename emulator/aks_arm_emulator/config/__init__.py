"""Emulator configuration: frozen dataclasses, one module per section of the YAML file, and
a validating loader (emulator.py). Everything is importable from here."""

from .clusters import ClusterConfig, Mode, validate_clusters
from .emulator import (
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_MAX_REQUEST_BYTES,
    EXAMPLE_YAML,
    ApiVersionRange,
    EmulatorConfig,
    ScriptedConfig,
    cluster_from_mapping,
    config_from_mapping,
    load_config,
    validate,
)
from .fault_knobs import FaultsConfig, faults_from_mapping, faults_to_mapping, validate_faults
from .patterns import API_VERSION_RE, CLUSTER_NAME_RE, UUID_RE
from .reader import ConfigError, camel_case
from .signin_rules import SigninConfig, validate_signin
from .throttle_rules import THROTTLE_PROFILES, BucketRules, ProviderLimits, ThrottleRules

__all__ = [
    "API_VERSION_RE",
    "CLUSTER_NAME_RE",
    "DEFAULT_MAX_LOG_BYTES",
    "DEFAULT_MAX_REQUEST_BYTES",
    "EXAMPLE_YAML",
    "THROTTLE_PROFILES",
    "UUID_RE",
    "ApiVersionRange",
    "BucketRules",
    "ClusterConfig",
    "ConfigError",
    "EmulatorConfig",
    "FaultsConfig",
    "Mode",
    "ProviderLimits",
    "ScriptedConfig",
    "SigninConfig",
    "ThrottleRules",
    "camel_case",
    "cluster_from_mapping",
    "config_from_mapping",
    "faults_from_mapping",
    "faults_to_mapping",
    "load_config",
    "validate",
    "validate_clusters",
    "validate_faults",
    "validate_signin",
]
