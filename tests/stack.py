"""The whole product as real processes, for end-to-end tests and the demo: the ARM emulator
(`aks-arm-emulator`) and the operator (`python -m controller`), each in its own process group,
talking to real API servers started by tests.controlplane."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.controlplane.launcher import REPO_ROOT, bin_dir, free_port
from tests.helpers import CLIENT_ID, TENANT
from tests.helpers import SUBSCRIPTION as SUBSCRIPTION_ID

TENANT_ID = TENANT

# The operator's own identity at the emulator's sign-in endpoint (which accepts any client).
CLIENT_SECRET = "operator-secret-value-never-logged"
RESOURCE_GROUP = "rg-platform"
# The line the emulator logs as it answers an ARM request (asctime: local time, milliseconds).
_ANSWERED = re.compile(
    r"^(?P<time>\S+ \S+) INFO aks_arm_emulator\.app: (?P<method>[A-Z]+) (?P<path>\S+) -> \d+ "
    r"\(request \S+, correlation (?P<correlation>\S+)\)$"
)


def _venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@dataclass
class Emulator:
    base_url: str
    ca_file: Path
    log: Path
    process: subprocess.Popen[str]

    def _introspect(self, path: str, method: str = "GET", body: Any = None) -> Any:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            # The emulator's refusals are ARM error envelopes; surface their message.
            message = json.loads(error.read())["error"]["message"]
            raise ValueError(f"{method} {path}: {error.code} {message}") from None

    def polls(self, command_id: str) -> list[float]:
        """When the emulator answered each poll of that command (epoch seconds, in order), read
        from the line its log gets as each answer goes out (asctime: local time, milliseconds)."""
        path = f"/commandResults/{command_id} -> "
        return [
            datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for line in self.log.read_text().splitlines()
            if " GET /subscriptions/" in line and path in line
        ]

    def submissions(self) -> list[dict[str, Any]]:
        """Every submission the emulator accepted (never a clusterToken itself)."""
        return list(self._introspect("/_emulator/submissions")["submissions"])

    def stats(self) -> dict[str, int]:
        """ARM answers by "METHOD STATUS", as counted by the emulator."""
        return dict(self._introspect("/_emulator/stats")["requests"])

    def cluster_lists(self) -> int:
        """managedClusters LIST requests answered so far (each page counts)."""
        operations = self._introspect("/_emulator/stats")["operations"]
        return int(operations.get("managedClusters list", 0))

    def lists_of(self, path: str) -> list[float]:
        """When the emulator answered each LIST of `path` (epoch seconds, in order), one per list
        however many pages it took: a list's pages share its correlation id. From its log."""
        first_pages: dict[str, float] = {}
        for line in self.log.read_text().splitlines():
            answered = _ANSWERED.match(line)
            if answered and answered["method"] == "GET" and answered["path"] == path:
                stamp, millis = answered["time"].split(",")
                at = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
                first_pages.setdefault(answered["correlation"], at)
        return list(first_pages.values())

    def posts(self) -> list[dict[str, Any]]:
        """Every runCommand POST in arrival order: correlationId, clientRequestId, cluster,
        receivedAt, answeredAt, outcome (pending, accepted, refused, throttled, serverError,
        dropped, aborted), status, code, commandId, commandStarted."""
        return list(self._introspect("/_emulator/posts")["posts"])

    def started_posts(self) -> list[dict[str, Any]]:
        """The POSTs that started a command: accepted, dropped, or aborted after starting."""
        return [p for p in self.posts() if p["commandStarted"]]

    def clear_posts(self) -> int:
        return int(self._introspect("/_emulator/posts", "DELETE")["removed"])

    def faults(self) -> dict[str, Any]:
        """The fault knobs in force, camelCase as in the YAML `faults:` section."""
        return dict(self._introspect("/_emulator/faults")["faults"])

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs (camelCase, e.g. `serverErrorRate=0.5`) for requests arriving
        from now on; knobs not named keep their value. ValueError if the emulator refuses."""
        return dict(self._introspect("/_emulator/faults", "POST", knobs)["faults"])

    def add_cluster(self, entry: dict[str, Any]) -> str:
        """Add a cluster while the emulator runs (a `clusters:` entry); returns its id."""
        return str(self._introspect("/_emulator/clusters", "POST", entry)["id"])

    def remove_cluster(self, entry: dict[str, Any]) -> bool:
        return bool(self._introspect("/_emulator/clusters", "DELETE", entry)["removed"])

    def revoke_tokens(self) -> int:
        """ARM refuses every access token issued so far (401 InvalidAuthenticationToken)."""
        return int(self._introspect("/_emulator/revoke-tokens", "POST", {})["revoked"])


def emulator_config(clusters: list[dict[str, Any]], **knobs: Any) -> dict[str, Any]:
    return {"clusters": clusters, "mode": "execute", **knobs}


def cluster_entry(name: str, kubeconfig: Path, **fields: Any) -> dict[str, Any]:
    return {
        "subscriptionId": SUBSCRIPTION_ID,
        "resourceGroup": RESOURCE_GROUP,
        "name": name,
        "kubeconfig": str(kubeconfig),
        **fields,
    }


def _stop(process: subprocess.Popen[Any], grace: float = 10) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def running_emulator(config: dict[str, Any], directory: Path) -> Iterator[Emulator]:
    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "emulator.yaml"
    config_file.write_text(json.dumps(config))  # JSON is YAML
    log = directory / "emulator.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [
                _venv_bin("aks-arm-emulator"),
                "--config",
                str(config_file),
                "--tls",
                "--state-dir",
                str(directory),
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
            # Commands find kubectl from this virtual environment and helm from the Go build.
            env={
                **os.environ,
                "PATH": os.pathsep.join(
                    [str(Path(sys.executable).parent), str(bin_dir()), os.environ["PATH"]]
                ),
            },
        )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("https://"):
            raise RuntimeError(f"emulator did not start: {log.read_text()[-2000:]}")
        yield Emulator(base_url, directory / "ca.crt", log, process)
    finally:
        _stop(process)


NO_OPERATOR_IDENTITY_LABEL = "e2e.aks.gitops.dev/no-operator-identity"


@dataclass
class Operator:
    kubeconfig: Path
    emulator: Emulator
    directory: Path
    args: tuple[str, ...] = ()
    # Tests read debug logs; the bench measures what production runs (INFO).
    verbose: bool = True
    process: subprocess.Popen[bytes] | None = None
    liveness_port: int = 0
    starts: int = field(default=0)

    @property
    def log(self) -> Path:
        return self.directory / "operator.log"

    def start(self) -> None:
        self.liveness_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "AZURE_TENANT_ID": TENANT_ID,
            "AZURE_CLIENT_ID": CLIENT_ID,
            "AZURE_CLIENT_SECRET": CLIENT_SECRET,
            "AZURE_AUTHORITY_HOST": self.emulator.base_url,
            "PYTHONUNBUFFERED": "1",
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "controller",
                    "--arm-endpoint",
                    self.emulator.base_url,
                    "--arm-ca-file",
                    str(self.emulator.ca_file),
                    "--credentials",
                    "client-secret",
                    # The tests' namespaces borrow the operator's identity unless a test labels
                    # one to be refused (tests/operator/test_policy_e2e.py).
                    "--operator-identity-namespace-selector",
                    f"!{NO_OPERATOR_IDENTITY_LABEL}",
                    *(["--verbose"] if self.verbose else []),
                    "--liveness",
                    f"http://127.0.0.1:{self.liveness_port}/healthz",
                    *self.args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"operator exited {self.process.returncode}: {self.log.read_text()[-3000:]}"
                )
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{self.liveness_port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            time.sleep(0.2)
        raise RuntimeError(f"operator not live after 30s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """An abrupt crash: no cleanup handlers run."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self, grace: float) -> tuple[float, bool]:
        """Stop it as Kubernetes stops a pod: SIGTERM, then SIGKILL once `grace` seconds have
        passed. Returns the seconds it took to exit, and whether it had to be killed."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return time.monotonic() - started, True
        return time.monotonic() - started, False

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


@contextlib.contextmanager
def running_operator(
    kubeconfig: Path, emulator: Emulator, directory: Path, *args: str, verbose: bool = True
) -> Iterator[Operator]:
    operator = Operator(kubeconfig, emulator, directory, args, verbose)
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
