"""Full output on the real stack: written to an object the RunCommand owns before the status
names it, whole (500 KiB), in a Secret when asked; the Finished condition ends on failure."""

from __future__ import annotations

import base64
import json

import pytest

from tests.controlplane import ControlPlane
from tests.helpers import poll_until
from tests.kube import absent, eventually, kubectl_json
from tests.operator.rc import RunCommands, condition, manifest
from tests.stack import Operator

pytestmark = pytest.mark.usefixtures("operator")
BIG = 500 * 1024


@pytest.fixture
def rc(management_cluster: ControlPlane, kubectl_path: str) -> RunCommands:
    return RunCommands(kubectl_path, management_cluster.kubeconfig)


def test_the_whole_output_goes_to_a_configmap_the_runcommand_owns(
    rc: RunCommands, namespace: str
) -> None:
    command = f"head -c {BIG} /dev/zero | tr '\\0' x; echo; echo the end; exit 3"
    rc.apply(manifest("big", namespace, command))
    body = rc.wait(namespace, "big")
    status = body["status"]
    assert status["state"] == "Failed" and status["exitCode"] == 3
    ref = status["logsRef"]
    assert ref == {"kind": "ConfigMap", "name": ref["name"], "key": "output"}
    assert ref["name"] == f"big-out-{status['commandId'][:10]}"
    assert status["history"][-1]["logsRef"] == ref

    cm = kubectl_json(
        rc.kubectl_path, rc.kubeconfig, "-n", namespace, "get", "configmap", ref["name"]
    )
    output = cm["data"]["output"]
    assert output == "x" * BIG + "\nthe end\n"  # whole, where status.logs keeps a 16 KiB tail
    assert len(status["logs"].encode()) <= 16 * 1024
    (owner,) = cm["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "RunCommand",
        "big",
        body["metadata"]["uid"],
    )

    finished = condition(body, "Finished")
    assert finished is not None
    assert (finished["status"], finished["reason"]) == ("True", "Failed")
    assert finished["observedGeneration"] == body["metadata"]["generation"]
    assert finished["message"].startswith("CommandFailed: ")

    # Owned for real: the garbage collector takes it with its RunCommand.
    rc.kubectl("-n", namespace, "delete", "runcommand", "big")
    gone = absent(rc.kubectl_path, rc.kubeconfig, "-n", namespace, "configmap", ref["name"])
    eventually("the output ConfigMap collected with its RunCommand", gone, timeout=120)


def test_spec_output_secret_keeps_the_output_in_a_secret(rc: RunCommands, namespace: str) -> None:
    rc.apply(manifest("secretive", namespace, "echo token=s3cr3t", output={"kind": "Secret"}))
    status = rc.wait(namespace, "secretive")["status"]
    assert status["state"] == "Succeeded"
    ref = status["logsRef"]
    assert ref["kind"] == "Secret"
    secret = kubectl_json(
        rc.kubectl_path, rc.kubeconfig, "-n", namespace, "get", "secret", ref["name"]
    )
    assert base64.b64decode(secret["data"]["output"]) == b"token=s3cr3t\n"
    configmaps = kubectl_json(rc.kubectl_path, rc.kubeconfig, "-n", namespace, "get", "configmaps")[
        "items"
    ]
    assert ref["name"] not in {cm["metadata"]["name"] for cm in configmaps}


def test_spec_output_none_keeps_only_the_tail(rc: RunCommands, namespace: str) -> None:
    rc.apply(manifest("quiet", namespace, "echo hi", output={"kind": "None"}))
    status = rc.wait(namespace, "quiet")["status"]
    assert status["state"] == "Succeeded" and status["logs"] == "hi\n"
    assert "logsRef" not in status and "logsRef" not in status["history"][-1]


def refuse_configmaps(rc: RunCommands, namespace: str, prefix: str) -> str:
    """A ValidatingAdmissionPolicy that refuses ConfigMaps named `prefix...` in `namespace`;
    returns when the API server enforces it. Returns the policy's name."""
    name = f"refuse-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"!object.metadata.name.startsWith('{prefix}')",
                    "message": "refused by the test",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    rc.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]}))

    def refused() -> bool:
        probe = rc.kubectl("-n", namespace, "create", "configmap", f"{prefix}probe", check=False)
        if probe.returncode == 0:
            rc.kubectl("-n", namespace, "delete", "configmap", f"{prefix}probe")
        return probe.returncode != 0 and "refused by the test" in probe.stderr

    poll_until(refused, bool, what="the admission policy takes effect", timeout=30)
    return name


def test_an_output_that_cannot_be_written_holds_the_result_until_it_can(
    rc: RunCommands, namespace: str, operator: Operator
) -> None:
    """Admission refuses the ConfigMap: nothing is recorded, the run stays Running and is
    polled again; once it is allowed, the output is written and the run ends."""
    policy = refuse_configmaps(rc, namespace, "held-out-")
    rc.apply(manifest("held", namespace, "echo held"))
    refused = f"{namespace}/held: cannot write the output to ConfigMap"
    poll_until(
        operator.log.read_text,
        lambda log: refused in log,
        what="the operator tries to write the output",
        timeout=60,
        describe=lambda log: repr(log[-500:]),
    )
    assert rc.get(namespace, "held")["status"]["state"] == "Running"

    rc.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy)
    status = rc.wait(namespace, "held")["status"]
    assert status["state"] == "Succeeded"
    cm = kubectl_json(
        rc.kubectl_path,
        rc.kubeconfig,
        "-n",
        namespace,
        "get",
        "configmap",
        status["logsRef"]["name"],
    )
    assert cm["data"]["output"] == "held\n"
