"""The `aks-arm-emulator` console script as a real subprocess, and the YAML configuration."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from aks_arm_emulator.config import (
    EXAMPLE_YAML,
    ConfigError,
    config_from_mapping,
    load_config,
)

CONFIG = """\
clusters:
  - subscriptionId: 11111111-2222-3333-4444-555555555555
    resourceGroup: rg-Demo
    name: aks1
    kubeconfig: kube/config
    aadManaged: true
    disableRunCommand: false
    powerState: Running
mode: scripted
scripted: {exitCode: 1, logs: "x", durationSeconds: 0.5}
lowercaseStates: true
retryAfterSeconds: 2
commandTimeoutSeconds: 60
maxLogBytes: 2048
maxRequestBytes: 100000
throttle:
  reads: {capacity: 10, refillPerSecond: 1}
  writes: {capacity: 5, refillPerSecond: 0.5}
faults: {seed: 3, serverErrorRate: 0.1, throttleRate: 0.1, latencySeconds: 0.01,
         dropConnectionAfterSubmitRate: 0.05, podNeverStarts: false, podStartTimeoutSeconds: 30}
apiVersions: {oldest: "2022-01-01", newest: "2026-08-01"}
toolPath: [bin]
"""


def emulator_script() -> str:
    return str(Path(sys.executable).parent / "aks-arm-emulator")


@pytest.mark.e2e  # the emulator as a process
def test_cli_serves_https_prints_url_first_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "emulator.yaml"
    config.write_text(CONFIG)
    state = tmp_path / "state"
    process = subprocess.Popen(
        [
            emulator_script(),
            "--config",
            str(config),
            "--port",
            "0",
            "--tls",
            "--state-dir",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline().strip()
        match = re.fullmatch(r"https://127\.0\.0\.1:(\d+)", first_line)
        assert match is not None, first_line
        port = match.group(1)
        ca_file = state / "ca.crt"
        assert ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
        context = ssl.create_default_context(cafile=str(ca_file))
        # The serving certificate covers both 127.0.0.1 and localhost.
        for host in ("127.0.0.1", "localhost"):
            with urllib.request.urlopen(
                f"https://{host}:{port}/_emulator/health", context=context, timeout=10
            ) as response:
                assert response.status == 200
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(
                f"https://127.0.0.1:{port}/_emulator/health",
                context=ssl.create_default_context(),
                timeout=10,
            )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.e2e  # the emulator as a process
def test_cli_refuses_a_bad_config_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("clusters:\n  - subscriptionId: nope\n    resourceGroup: rg\n    name: a\n")
    done = subprocess.run(
        [emulator_script(), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "clusters[0].subscriptionId must be a UUID" in done.stderr


@pytest.mark.e2e  # the emulator as a process
def test_cli_requires_state_dir_for_tls(tmp_path: Path) -> None:
    config = tmp_path / "ok.yaml"
    config.write_text("mode: scripted\n")
    done = subprocess.run(
        [emulator_script(), "--config", str(config), "--tls"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--tls needs --state-dir" in done.stderr


def test_full_config_is_loaded_with_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "emulator.yaml"
    path.write_text(CONFIG)
    config = load_config(path)
    (only,) = config.clusters
    assert only.kubeconfig == tmp_path / "kube" / "config"
    assert only.aad_managed is True
    assert config.mode == "scripted"
    assert config.scripted.exit_code == 1 and config.scripted.duration_seconds == 0.5
    assert config.lowercase_states is True and config.retry_after_seconds == 2
    assert config.max_log_bytes == 2048 and config.max_request_bytes == 100000
    assert config.throttle.writes.capacity == 5 and config.throttle.writes.refill_per_second == 0.5
    assert config.faults.seed == 3 and config.faults.drop_connection_after_submit_rate == 0.05
    assert config.api_versions.newest == "2026-08-01"
    assert config.tool_path == (tmp_path / "bin",)


def test_defaults_match_the_service() -> None:
    import yaml

    config = config_from_mapping(yaml.safe_load(EXAMPLE_YAML))
    assert config.max_log_bytes == 524288
    assert config.throttle.reads.capacity == 250 and config.throttle.reads.refill_per_second == 25
    assert config.throttle.writes.capacity == 200 and config.throttle.writes.refill_per_second == 10
    assert config.clusters[0].power_state == "Running"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"mode": "dry-run"}, "mode must be execute or scripted"),
        ({"clusters": {}}, "clusters must be a list"),
        (
            {
                "clusters": [
                    {
                        "subscriptionId": "11111111-2222-3333-4444-555555555555",
                        "resourceGroup": "rg",
                        "name": "a",
                    }
                ]
            },
            "clusters[0].kubeconfig is required in execute mode",
        ),
        (
            {
                "mode": "scripted",
                "clusters": [
                    {
                        "subscriptionId": "11111111-2222-3333-4444-555555555555",
                        "resourceGroup": "rg",
                        "name": "-bad-",
                    }
                ],
            },
            "clusters[0].name is not a valid managed cluster name",
        ),
        ({"faults": {"serverErrorRate": 2}}, "faults.serverErrorRate must be between 0 and 1"),
        ({"faults": {"serverEroorRate": 0.1}}, "unknown key(s) in faults: serverEroorRate"),
        ({"maxLogBytes": "big"}, "maxLogBytes must be an integer"),
        ({"throttle": {"reads": {"capacity": 0}}}, "throttle.reads needs capacity >= 1"),
        (
            {
                "clusters": [
                    {
                        "subscriptionId": "11111111-2222-3333-4444-555555555555",
                        "resourceGroup": "rg",
                        "name": "a",
                        "powerState": "Paused",
                    }
                ]
            },
            "clusters[0].powerState must be Running or Stopped",
        ),
        ({"apiVersions": {"newest": "latest"}}, "apiVersions.newest must look like YYYY-MM-DD"),
    ],
)
def test_invalid_config_is_explained(document: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(document)
    assert message in str(info.value)
