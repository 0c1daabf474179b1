"""`make demo`: the whole product on this machine, end to end.

Starts a management and a target control plane (real kube-apiserver + etcd), the ARM emulator in
front of the target cluster, and the operator; applies examples/*.yaml; prints what ran where
and how it ended. Exits non-zero if any example ends with another exit code than it expects.
Ctrl-C stops everything it started.

With ``--keep DIR`` it stays up after the examples, for the tutorial (docs/getting-started/
tutorial.md): it writes ``DIR/env`` (``export KUBECONFIG=...`` for the management cluster) and
serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import textwrap
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.controlplane import running
from tests.kube import kubectl
from tests.stack import cluster_entry, emulator_config, running_emulator, running_operator

EXAMPLES = Path(__file__).resolve().parent
CRDS = EXAMPLES.parent / "crds"
# Two emulated AKS clusters, both in front of the one target control plane, so the tutorial's
# RunCommandSet has a fleet to roll out over.
CLUSTERS = ("aks-demo", "aks-demo-2")
NAMESPACE = "demo"
EXPECTED = "demo.aks.gitops.dev/expected-exit-code"
FINAL = ("Succeeded", "Failed", "Unknown")


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__)
    options.add_argument(
        "--keep", type=Path, metavar="DIR",
        help="stay up after the examples and write DIR/env for the tutorial",
    )  # fmt: skip
    keep: Path | None = options.parse_args(argv).keep
    kubectl_path = str(Path(sys.executable).parent / "kubectl")
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aks-runcommand-demo-")))
        step("starting the management and target control planes (kube-apiserver + etcd)")
        management = stack.enter_context(running("management", work / "management"))
        target = stack.enter_context(running("target", work / "target"))
        mgmt = management.kubeconfig

        def k(*args: str, stdin: str | None = None) -> str:
            return kubectl(kubectl_path, mgmt, *args, stdin=stdin).stdout

        step("installing the CRDs")
        k("apply", "--server-side", "-f", str(CRDS))
        k("wait", "--for=condition=Established", "crd", "--all")
        step(f"starting the ARM emulator in front of the target cluster ({', '.join(CLUSTERS)})")
        entries = [cluster_entry(name, target.kubeconfig) for name in CLUSTERS]
        emulator = stack.enter_context(
            running_emulator(emulator_config(entries), work / "emulator")
        )
        print(f"    emulator at {emulator.base_url}")
        step("starting the operator")
        operator = stack.enter_context(
            running_operator(mgmt, emulator, work / "operator", "--namespace", NAMESPACE)
        )

        step(f"applying examples/ in namespace {NAMESPACE}")
        k("create", "namespace", NAMESPACE)
        for example in sorted(EXAMPLES.glob("*.yaml")):
            print(f"    {example.name}")
            k("-n", NAMESPACE, "apply", "-f", str(example))

        step("waiting for every RunCommand to finish")
        items = wait_for_all(k)
        print()
        print(k("-n", NAMESPACE, "get", "runcommands", "-o", "wide"))
        failures = [report(item) for item in items]
        step("the target cluster, as the commands left it")
        print(kubectl(kubectl_path, target.kubeconfig, "get", "namespaces,configmaps", "-A").stdout)
        mismatches = [failure for failure in failures if failure]
        if mismatches:
            print("DEMO FAILED:\n  " + "\n  ".join(mismatches), file=sys.stderr)
            print(f"operator log: {operator.log.read_text()[-4000:]}", file=sys.stderr)
            return 1
        step("every example ended with the exit code it expects")
        if keep is not None:
            serve(keep, mgmt, target.kubeconfig)
        return 0


def serve(keep: Path, management: Path, target: Path) -> None:
    """Stay up for the tutorial until Ctrl-C or SIGTERM; ExitStack then stops everything."""
    keep.mkdir(parents=True, exist_ok=True)
    env = keep / "env"
    env.write_text(f"export KUBECONFIG={management}\nexport TARGET_KUBECONFIG={target}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    step(f"serving: `source {env}`, then kubectl; Ctrl-C stops everything")
    while True:
        time.sleep(3600)


def wait_for_all(k: Any, timeout: float = 180) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        items: list[dict[str, Any]] = json.loads(
            k("-n", NAMESPACE, "get", "runcommands", "-o", "json")
        )["items"]
        pending = [
            i["metadata"]["name"]
            for i in items
            if (i.get("status") or {}).get("state") not in FINAL
        ]
        if not pending:
            return items
        if time.monotonic() > deadline:
            raise SystemExit(f"still running after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.5)


def report(item: dict[str, Any]) -> str | None:
    """Print one RunCommand for a person; return a problem if it did not end as expected."""
    name, status = item["metadata"]["name"], item.get("status") or {}
    expected = item["metadata"].get("annotations", {}).get(EXPECTED)
    print(f"--- {name}")
    state, exit_code, reason = status.get("state"), status.get("exitCode"), status.get("reason")
    print(f"    state        {state}   exit code {exit_code}   reason {reason}")
    print(f"    cluster      {status.get('clusterName')}   command id {status.get('commandId')}")
    started, finished = status.get("startedAt"), status.get("finishedAt")
    took = status.get("duration")
    print(f"    ran          {started} -> {finished} ({took})")
    print(
        "    conditions   "
        + ", ".join(f"{c['type']}={c['status']}" for c in status.get("conditions", []))
    )
    print("    logs")
    print(textwrap.indent((status.get("logs") or "").rstrip() or "(none)", "      | "))
    if expected is not None and str(status.get("exitCode")) != expected:
        return f"{name}: exit code {status.get('exitCode')}, expected {expected}"
    return None


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: everything the demo started has been stopped", file=sys.stderr)
        sys.exit(130)
