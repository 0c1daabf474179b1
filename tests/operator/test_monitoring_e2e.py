"""The dashboard and the alerts against a live operator: a real Prometheus (built from its Go
module) scrapes the session's operator while it runs a few commands and a RunCommandSet, then
every dashboard panel's query must return series, and every series an alert reads must exist
with the labels the chart's rules select (job and namespace, as a ServiceMonitor sets them)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane import ControlPlane
from tests.controlplane.launcher import find_binary, free_port
from tests.helpers import poll_until
from tests.kube import kubectl
from tests.monitoring.chart import NAMESPACE, RELEASE, dashboard, rules_file
from tests.operator.conftest import FLEET_GROUP
from tests.operator.rc import RunCommands, manifest
from tests.stack import SUBSCRIPTION_ID, Emulator

pytestmark = pytest.mark.usefixtures("operator")
JOB = f"{RELEASE}-metrics"  # the metrics Service's name: the job a ServiceMonitor scrapes
# Dashboard variables, as Grafana would fill them for "All" over a short range.
VARIABLES = {"$__rate_interval": "1m", "$__range": "15m", "$subscription": ".*"}


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_until_ready(self, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, f"prometheus exited {process.returncode}"
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"prometheus not ready after {timeout:.0f}s")

    def scraped_after(self, moment: float, timeout: float = 60) -> float:
        """Wait for a scrape of the operator that began after `moment` (epoch seconds, as
        Prometheus stamps a scrape's samples); return when it began."""
        begun = poll_until(
            lambda: [float(s["value"][1]) for s in self.query(f'timestamp(up{{job="{JOB}"}})')],
            lambda times: any(t > moment for t in times),
            what=f"a scrape of {JOB} after {moment:.3f}",
            timeout=timeout,
            interval=0.5,
        )
        return max(begun)

    def wait_for(self, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.query(expr)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(1)


@pytest.fixture(scope="module")
def prometheus(metrics_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    directory = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{metrics_port}"], "labels": {"namespace": NAMESPACE}}
                ],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            find_binary("prometheus"),
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        server.wait_until_ready(process)
        scraped = server.wait_for(f'up{{job="{JOB}"}} == 1')
        assert scraped, (directory / "prometheus.log").read_text()
        yield server
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _activity(
    rc: RunCommands,
    emulator: Emulator,
    prometheus: Prometheus,
    namespace: str,
    management: ControlPlane,
    kubectl_path: str,
) -> None:
    """Runs of every kind the dashboard shows: success, failure, an input error, a 429, a set."""
    rc.apply(manifest("ok", namespace, "echo fine"))
    rc.apply(manifest("fails", namespace, "exit 4"))
    rc.apply(
        manifest("no-files", namespace, "true", filesFrom=[{"configMapRef": {"name": "gone"}}])
    )
    emulator.set_faults(throttleRate=1.0)
    try:
        rc.apply(manifest("throttled", namespace, "echo after a 429"))
        assert prometheus.wait_for("aks_runcommand_throttled_total > 0"), "no 429 was counted"
    finally:
        emulator.set_faults(throttleRate=0.0)
    clusters = [
        {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": FLEET_GROUP, "name": name}
        for name in ("fleet-a", "fleet-b")
    ]
    body = {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommandSet",
        "metadata": {"name": "observed", "namespace": namespace},
        "spec": {"template": {"command": "echo from a set"}, "clusters": clusters},
    }
    kubectl(kubectl_path, management.kubeconfig, "apply", "-f", "-", stdin=json.dumps(body))
    for name in ("ok", "fails", "throttled"):
        rc.wait(namespace, name, timeout=120)


def _panel_queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in board["panels"]:
        for target in panel.get("targets", ()):
            expr = target["expr"]
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            yield panel["title"], expr


def test_every_panel_and_every_alert_reads_series_of_this_operator(
    prometheus: Prometheus,
    emulator: Emulator,
    namespace: str,
    management_cluster: ControlPlane,
    kubectl_path: str,
    tmp_path: Path,
) -> None:
    rc = RunCommands(kubectl_path, management_cluster.kubeconfig)
    _activity(rc, emulator, prometheus, namespace, management_cluster, kubectl_path)
    # The checks read a scrape taken after one that showed the set's round finished (so every
    # run had ended): the rates the panels take have two samples from after the last run.
    assert prometheus.wait_for(
        f'aks_runcommand_set_rounds_finished_total{{job="{JOB}"}}', timeout=120
    ), "the set's round never ended"
    prometheus.scraped_after(time.time())

    board = dashboard(tmp_path)
    empty = [
        (title, expr)
        for title, expr in _panel_queries(board)
        if not prometheus.wait_for(expr, timeout=10)
    ]
    assert not empty, f"dashboard queries without series: {empty}"

    rules = yaml.safe_load(rules_file(tmp_path).read_text())
    selectors = {
        match.group(1)
        for group in rules["groups"]
        for rule in group["rules"]
        for match in re.finditer(r"\b([a-z_]+)\{[^}]*\}", rule["expr"])
    }
    assert "aks_runcommand_runs_finished_total" in selectors and "up" in selectors
    missing = [
        name
        for name in sorted(selectors)
        if not prometheus.query(f'count({name}{{job="{JOB}", namespace="{NAMESPACE}"}})')
    ]
    assert not missing, f"series the alerts read that this operator does not export: {missing}"
    # The operator is up: its down alert's expression is empty, as it must be while it runs.
    (down,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"].endswith("Down")]
    assert prometheus.query(down["expr"]) == []
