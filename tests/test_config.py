"""Operator configuration: flags win over environment variables; bad values are refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from controller import config


def refused(argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a refused configuration prints; it exits 2 (argparse's usage error)."""
    with pytest.raises(SystemExit) as exit_info:
        config.load(argv, env=env)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()  # one line, no usage dump
    return line


def test_defaults_watch_all_namespaces_in_the_public_cloud() -> None:
    loaded = config.load([], env={})
    assert loaded.watching.namespaces == ()
    assert loaded.arm.cloud.name == "AzurePublicCloud"
    assert loaded.identity.credential.mode == "default"
    assert loaded.peering.name is None
    assert loaded.identity.workload_identity_from_secrets is False
    assert loaded.metrics.port is None
    assert loaded.identity.default_credentials_secret == "aks-runcommand-credentials"


def test_environment_configures_and_flags_override() -> None:
    env = {
        "WATCH_NAMESPACES": "team-a, team-b",
        "AZURE_CLOUD": "AzureUSGovernment",
        "MAX_LOG_BYTES": "2048",
        "HISTORY_LIMIT": "3",
        "PEERING_NAME": "aks-runcommand",
        "PEERING_PRIORITY": "7",
        "LOG_FORMAT": "json",
        "METRICS_PORT": "9090",
    }
    from_env = config.load([], env=env)
    assert from_env.watching.namespaces == ("team-a", "team-b")
    assert from_env.arm.cloud.arm_endpoint == "https://management.usgovcloudapi.net"
    assert (from_env.settings.max_log_bytes, from_env.settings.history_limit) == (2048, 3)
    assert (from_env.peering.name, from_env.peering.priority, from_env.logging.format) == (
        "aks-runcommand",
        7,
        "json",
    )

    flags = config.load(["-n", "ops", "--max-log-bytes", "100", "--standalone"], env=env)
    assert flags.watching.namespaces == ("ops",)
    assert flags.settings.max_log_bytes == 100
    assert flags.peering.name is None
    assert config.load(["--all-namespaces"], env=env).watching.namespaces == ()


def test_custom_arm_endpoint_signs_in_at_the_authority_host() -> None:
    loaded = config.load(
        ["--arm-endpoint", "https://127.0.0.1:8443", "--credentials", "client-secret"],
        env={
            "AZURE_AUTHORITY_HOST": "https://127.0.0.1:8443",
            "AZURE_TENANT_ID": "t",
            "AZURE_CLIENT_ID": "c",
            "AZURE_CLIENT_SECRET": "s3cr3t",
        },
    )
    assert loaded.arm.cloud.arm_scope == "https://127.0.0.1:8443/.default"
    assert loaded.arm.cloud.authority_host == "https://127.0.0.1:8443"
    assert loaded.identity.credential.client_secret == "s3cr3t"
    assert "s3cr3t" not in repr(loaded)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--cloud", "Mars"], {}, "unknown Azure cloud 'Mars'"),
        (["--credentials", "client-secret"], {}, "credential mode 'client-secret' needs"),
        (["--max-log-bytes", "0"], {}, "must be positive"),
        (["--peering", "p", "--standalone"], {}, "not allowed with argument"),
        (["--credentials", "magic"], {}, "invalid choice: 'magic'"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in refused(argv, env, capsys)


def test_operator_identity_is_allowed_nowhere_by_default() -> None:
    loaded = config.load([], env={})
    assert not loaded.identity.operator_identity.allows("default", {})


def test_operator_identity_allowance_from_environment_and_flags() -> None:
    env = {
        "OPERATOR_IDENTITY_NAMESPACES": "platform, ops",
        "OPERATOR_IDENTITY_NAMESPACE_SELECTOR": "trusted=yes",
    }
    loaded = config.load([], env=env)
    assert loaded.identity.operator_identity.allows("ops", {})
    assert loaded.identity.operator_identity.allows("team-a", {"trusted": "yes"})
    assert not loaded.identity.operator_identity.allows("team-a", {"trusted": "no"})
    flags = config.load(["--operator-identity-namespaces", "*"], env=env)
    assert flags.identity.operator_identity.allows("anything", {})


def test_fleet_follow_interval_from_flag_or_env() -> None:
    assert config.load([], {}).fleet.follow_seconds == 60.0
    assert config.load([], {"FLEET_FOLLOW_SECONDS": "5"}).fleet.follow_seconds == 5.0
    assert config.load(["--fleet-follow-seconds", "2.5"], {}).fleet.follow_seconds == 2.5


def test_poll_interval_from_flag_or_env_and_within_the_longest_stretch() -> None:
    assert config.load([], {}).settings.poll_interval_seconds == 5.0
    assert config.load([], {"POLL_INTERVAL_SECONDS": "2"}).settings.poll_interval_seconds == 2.0
    flag = config.load(["--poll-interval-seconds", "10"], {"POLL_INTERVAL_SECONDS": "2"})
    assert flag.settings.poll_interval_seconds == 10.0
    for bad in ("0", "-1", "31"):
        with pytest.raises(SystemExit):
            config.load(["--poll-interval-seconds", bad], {})


def test_arm_budget_defaults_to_the_aks_provider_limits_and_can_be_arm_only() -> None:
    assert config.load([], env={}).arm.budget == "aks"
    assert config.load([], env={"ARM_BUDGET": "arm"}).arm.budget == "arm"
    assert config.load(["--arm-budget", "aks"], env={"ARM_BUDGET": "arm"}).arm.budget == "aks"


def test_metrics_cluster_labels_are_on_unless_turned_off() -> None:
    assert config.load([], env={}).metrics.cluster_labels is True
    assert config.load([], env={"METRICS_CLUSTER_LABELS": "false"}).metrics.cluster_labels is False
    off = config.load(["--no-metrics-cluster-labels"], env={})
    assert off.metrics.cluster_labels is False


def test_a_shard_is_a_label_selector_the_api_server_applies_and_defaults_to_all_objects() -> None:
    def selector(argv: list[str], env: dict[str, str]) -> str | None:
        return config.load(argv, env=env).watching.label_selector

    key = "sharding.aks.gitops.dev/key"
    assert selector([], {}) is None
    assert selector([], {"SHARD_KEY": "", "WATCH_LABEL_SELECTOR": ""}) is None
    assert selector([], {"SHARD_KEY": "blue"}) == f"{key}=blue"
    assert selector(["--shard-key", "red"], {"SHARD_KEY": "blue"}) == f"{key}=red"
    # The shard of unlabelled objects, as the chart deploys it next to the keyed ones.
    assert selector([], {"WATCH_LABEL_SELECTOR": f"!{key}"}) == f"!{key}"
    assert selector(["--watch-label-selector", "team=a,tier!=x"], {}) == "team=a,tier!=x"


@pytest.mark.parametrize(
    "argv",
    [
        ["--shard-key", "not a label value"],
        ["--shard-key", "a", "--watch-label-selector", "team=a"],
        ["--watch-label-selector", "=nokey"],
    ],
)
def test_a_bad_shard_setting_is_refused_naming_the_flag(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        config.load(argv, env={})
    assert argv[0] in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "env", "flag"),
    [
        (["--history-limit", "0"], {}, "--history-limit"),
        (["--max-context-bytes", "-1"], {}, "--max-context-bytes"),
        (["--max-log-bytes", "many"], {}, "--max-log-bytes"),
        ([], {"HISTORY_LIMIT": "0"}, "--history-limit"),
        ([], {"MAX_LOG_BYTES": "lots"}, "--max-log-bytes"),
        (["--fleet-follow-seconds", "0"], {}, "--fleet-follow-seconds"),
        (["--metrics-port", "70000"], {}, "--metrics-port"),
    ],
)
def test_a_bad_number_is_refused_naming_only_its_flag(
    argv: list[str], env: dict[str, str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    error = refused(argv, env, capsys)
    assert f"argument {flag}:" in error
    named = {f for f in ("--history-limit", "--max-log-bytes", "--max-context-bytes") if f in error}
    assert named <= {flag}, error


@pytest.mark.parametrize("lease", ["5", "160", "-1"])
def test_a_claim_lease_no_longer_than_the_longest_post_is_refused_as_its_help_says(
    lease: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(["--claim-lease-seconds", lease], {}, capsys)
    assert "argument --claim-lease-seconds:" in err
    assert "160 s" in err or "positive" in err
    assert config.load(["--claim-lease-seconds", "161"], env={}).settings.claim_lease_seconds == 161


@pytest.mark.parametrize(
    "selector", ["a b", "team=a b", "x in (a,b", "team=not/a/value", "team=-a", "a=" + "b" * 64]
)
def test_an_invalid_watch_label_selector_is_one_clear_error(
    selector: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert f"--watch-label-selector {selector!r}:" in refused(
        ["--watch-label-selector", selector], {}, capsys
    )


def test_set_based_watch_label_selectors_are_accepted_as_the_api_server_accepts_them() -> None:
    for selector in ("tier in (a,b),team", "env notin (dev), !legacy", "a==b,c!=d", "x="):
        assert config.load(["--watch-label-selector", selector], env={}).watching.label_selector


def test_help_shows_the_defaults(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # argparse wraps at the terminal's width
    with pytest.raises(SystemExit):
        config.load(["--help"], env={"HISTORY_LIMIT": "7"})
    text = " ".join(capsys.readouterr().out.split())
    assert "HISTORY_LIMIT) (default: 7)" in text  # the effective default, after the environment
    assert "(default: 180.0)" in text  # --claim-lease-seconds
    assert "(default: aks-runcommand-credentials)" in text


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--arm-ca-file", "/nonexistent/ca.pem"], {}, "--arm-ca-file /nonexistent/ca.pem"),
        ([], {"ARM_CA_FILE": "/nonexistent/ca.pem"}, "--arm-ca-file /nonexistent/ca.pem"),
        (["--liveness", "tcp://0.0.0.0:8080"], {}, "--liveness 'tcp://0.0.0.0:8080'"),
        (
            ["--credentials", "client-certificate"],
            {
                "AZURE_TENANT_ID": "t",
                "AZURE_CLIENT_ID": "c",
                "AZURE_CLIENT_CERTIFICATE_PATH": "/nonexistent/client.pem",
            },
            "/nonexistent/client.pem (env AZURE_CLIENT_CERTIFICATE_PATH)",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_naming_the_file_and_the_flag(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in refused(argv, env, capsys)


def test_a_ca_file_that_is_no_pem_bundle_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    assert f"--arm-ca-file {garbage} (env ARM_CA_FILE): not a PEM CA bundle" in refused(
        ["--arm-ca-file", str(garbage)], {}, capsys
    )


def test_poll_timings_from_flags_or_env_and_none_beyond_the_longest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    loaded = config.load(["--poll-initial-seconds", "2"], {"POLL_MAX_SECONDS": "60"})
    assert (loaded.settings.poll_initial_seconds, loaded.settings.poll_max_seconds) == (2.0, 60.0)
    # A longer stretch lets the interval exceed the default longest (30 s).
    longer = config.load(["--poll-interval-seconds", "45", "--poll-max-seconds", "60"], {})
    assert longer.settings.poll_interval_seconds == 45.0
    error = refused(["--poll-initial-seconds", "11", "--poll-max-seconds", "10"], {}, capsys)
    assert "argument --poll-initial-seconds: must be at most 10" in error
    error = refused([], {"POLL_INTERVAL_SECONDS": "20", "POLL_MAX_SECONDS": "10"}, capsys)
    assert "argument --poll-interval-seconds: must be at most 10" in error


def test_every_setting_of_the_tree_says_what_it_is_for() -> None:
    """kopf's OperatorSettings' style: a docstring under each field of each branch."""
    import ast

    from controller import settings

    tree = ast.parse(Path(settings.__file__).read_text())
    undocumented = []
    for branch in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        body = branch.body
        for i, statement in enumerate(body):
            if not isinstance(statement, ast.AnnAssign):
                continue
            after = body[i + 1] if i + 1 < len(body) else None
            documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
            if not documented:
                undocumented.append(f"{branch.name}.{ast.unparse(statement.target)}")
    assert undocumented == []
    assert {f.name for f in dataclasses.fields(settings.OperatorConfig)} >= {
        "settings", "arm", "fleet", "schedules", "polls", "watching", "metrics", "health"
    }  # fmt: skip


def test_every_flag_sets_a_setting_of_the_tree() -> None:
    from controller.flags import FLAGS

    defaults = config.load([], {})
    for flag in FLAGS:
        node: object = defaults
        for name in filter(None, flag.path.split(".")):
            assert hasattr(node, name), f"{flag.names[0]}: no setting {flag.path}"
            node = getattr(node, name)
    assert defaults.fleet.follow_seconds == 60.0  # set once, in controller/settings.py
