"""The chart's monitoring objects, rendered by the real helm, and the real promtool."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.controlplane.launcher import REPO_ROOT, find_binary

CHART = REPO_ROOT / "charts" / "aks-runcommand-operator"
RELEASE, NAMESPACE = "aks-runcommand-operator", "ops"  # what alerts_test.yaml expects
MONITORING_APIS = (
    "monitoring.coreos.com/v1/PrometheusRule",
    "monitoring.coreos.com/v1/ServiceMonitor",
)


def render(tmp_path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    """`helm template` of the chart with ``values``, as objects."""
    home = tmp_path / "helm-home"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    env.pop("KUBECONFIG", None)
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps(values))
    args = [find_binary("helm"), "template", RELEASE, str(CHART), "-n", NAMESPACE,
            "-f", str(values_file)]  # fmt: skip
    for api in MONITORING_APIS:
        args += ["--api-versions", api]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def rules_file(tmp_path: Path) -> Path:
    """The chart's PrometheusRule as a Prometheus rules file."""
    docs = render(tmp_path, {"metrics": {"enabled": True}, "prometheusRule": {"enabled": True}})
    (rule,) = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


def dashboard(tmp_path: Path) -> dict[str, Any]:
    """The chart's Grafana dashboard, as the ConfigMap the Grafana sidecar loads carries it."""
    docs = render(tmp_path, {"metrics": {"enabled": True}, "grafanaDashboard": {"enabled": True}})
    (config_map,) = [doc for doc in docs if doc["kind"] == "ConfigMap" and "grafana_dashboard"
                     in doc["metadata"]["labels"]]  # fmt: skip
    (text,) = config_map["data"].values()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_binary("promtool"), *args], capture_output=True, text=True, timeout=120, check=False
    )
