"""spec.stages and spec.approvals as the real API server checks them (CEL and list maps): a bad
stage list or an approval of a stage that does not exist is refused at apply, with a message."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.helpers import SUBSCRIPTION as SUB

HEADER = {"apiVersion": "aks.gitops.dev/v1alpha1", "kind": "RunCommandSet",
          "metadata": {"name": "staged", "namespace": "default"}}  # fmt: skip
GOOD_STAGES = [
    {"name": "canary", "matchTags": {"ring": "canary"}, "maxConcurrency": "50%", "maxFailures": 1},
    {"name": "prod", "approval": "Required", "maxConcurrency": 2, "soakSeconds": 0},
]


def dry_run(kubectl_path: str, kubeconfig: Path, extra: dict[str, Any]) -> tuple[int, str]:
    spec = {"template": {"command": "true"}, "clusterSelector": {"subscriptions": [SUB]}, **extra}
    body = {**HEADER, "spec": spec}
    done = subprocess.run(
        [kubectl_path, "--kubeconfig", str(kubeconfig), "apply", "--dry-run=server", "-f", "-"],
        input=json.dumps(body), capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


@pytest.mark.usefixtures("crd")
@pytest.mark.parametrize(
    ("extra", "refusal"),
    [
        ({"stages": GOOD_STAGES, "approvals": [{"stage": "prod", "roundKey": "k"}]}, None),
        (
            {"stages": GOOD_STAGES, "approvals": [{"stage": "ghost", "roundKey": "k"}]},
            "spec.approvals may only name stages of spec.stages",
        ),
        (
            {"approvals": [{"stage": "prod", "roundKey": "k"}]},
            "spec.approvals may only name stages of spec.stages",
        ),
        (
            {"stages": [{"name": "all"}, {"name": "late", "matchTags": {"r": "x"}}]},
            "only the last stage may omit matchTags",
        ),
        (
            {"stages": [{"name": "a", "matchTags": {"r": "x"}}, {"name": "a"}]},
            "Duplicate value",
        ),
        ({"stages": [{"name": "a", "maxConcurrency": "0%"}]}, "maxConcurrency must be"),
        ({"stages": [{"name": "a", "maxFailures": "x"}]}, "maxFailures must be"),
        ({"stages": [{"name": "Not_A_Label"}]}, "spec.stages[0].name"),
        ({"stages": [{"name": "a", "approval": "Maybe"}]}, "Unsupported value"),
    ],
    ids=[
        "valid",
        "ghost-stage",
        "no-stages",
        "selector-less-not-last",
        "duplicate",
        "bound",
        "failures",
        "name",
        "approval",
    ],
)
def test_the_crd_checks_stages_and_approvals(
    management_cluster: ControlPlane, kubectl_path: str, extra: dict[str, Any], refusal: str | None
) -> None:
    code, said = dry_run(kubectl_path, management_cluster.kubeconfig, extra)
    if refusal is None:
        assert code == 0, said
    else:
        assert code != 0 and refusal in said, said
