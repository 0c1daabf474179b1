"""Start and stop a real kube-apiserver + etcd pair on loopback, with kube-controller-manager
running the garbage collector and the namespace controller, as in a cluster: owned objects are
collected when their owner goes, `--cascade=orphan` means what it says, and a deleted namespace
terminates. (`controller_manager=False` leaves it out, for tests that need no collection.)

Each control plane lives in its own directory (certificates, etcd data, logs, kubeconfig,
and a state file with the process ids) and listens on free ports, so several can run at
once. Processes started for a test session die with the session (PR_SET_PDEATHSIG), so an
interrupted run leaves no orphans; processes started by the CLI's `up` outlive it until `down`.

kube-apiserver can be stopped and started again on the same port with the same certificates
and etcd (`ControlPlane.restart`, `stop_apiserver`, `start_apiserver`), so a test can show a
client riding out an API server outage: objects survive and the kubeconfig keeps working.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .pki import Pki, create_pki

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_FILE = "controlplane.json"
_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class ControlPlane:
    name: str
    directory: Path
    kubeconfig: Path
    server: str
    etcd_pid: int
    apiserver_pid: int  # 0 while stopped by stop_apiserver()
    controller_manager_pid: int = 0  # 0: none runs
    # What start_apiserver() needs to start the same kube-apiserver again.
    apiserver_argv: tuple[str, ...] = field(default=(), repr=False)
    pki: Pki | None = field(default=None, repr=False)
    die_with_parent: bool = True

    def stop_apiserver(self, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds (0: at once, like a crash). etcd, the
        certificates and the port stay reserved for start_apiserver()."""
        if self.apiserver_pid:
            _terminate(self.apiserver_pid, grace)
        self.apiserver_pid = 0
        _write_state(self)

    def start_apiserver(self, timeout: float = 90) -> None:
        """Start kube-apiserver again on the same port; return once /readyz answers ok."""
        if self.apiserver_pid:
            raise ControlPlaneError(f"kube-apiserver of {self.name} is already running")
        if not self.apiserver_argv or self.pki is None:
            raise ControlPlaneError(f"{self.name} was not started by this launcher")
        if self.die_with_parent and threading.current_thread() is not threading.main_thread():
            # PR_SET_PDEATHSIG fires when the forking *thread* ends: a worker thread's child
            # would be killed with that thread.
            raise ControlPlaneError("start kube-apiserver from the main thread")
        self.apiserver_pid = _start_apiserver(
            list(self.apiserver_argv),
            self.server,
            self.pki,
            self.directory / "kube-apiserver.log",
            die_with_parent=self.die_with_parent,
            timeout=timeout,
        )
        _write_state(self)

    def restart(self, downtime: float = 0.0) -> None:
        """Stop kube-apiserver, stay down for `downtime` seconds, start it again."""
        self.stop_apiserver()
        if downtime > 0:
            time.sleep(downtime)  # the outage itself, not a wait for some condition
        self.start_apiserver()


def bin_dir() -> Path:
    return Path(os.environ.get("BIN_DIR", REPO_ROOT / ".cache" / "bin"))


def find_binary(name: str) -> str:
    candidate = bin_dir() / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ControlPlaneError(
            f"{name} not found in {bin_dir()} or on PATH; build it with `make binaries`"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel kills it when the parent dies.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _spawn(argv: list[str], log: Path, *, die_with_parent: bool) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so `down` can stop it whole
            preexec_fn=_die_with_parent if die_with_parent else None,
        )


def _wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    what: str,
    log: Path,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ControlPlaneError(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise ControlPlaneError(f"{what} not ready after {timeout:.0f}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def _admin_ssl_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return context


def _write_kubeconfig(path: Path, name: str, server: str, pki: Pki) -> None:
    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    # JSON is YAML, and it keeps this launcher on the standard library.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": f"{name}-admin",
                "user": {
                    "client-certificate-data": b64(pki.admin_cert),
                    "client-key-data": b64(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": name, "user": f"{name}-admin", "namespace": "default"},
            }
        ],
        "current-context": name,
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def _start_apiserver(
    argv: list[str],
    server: str,
    pki: Pki,
    log: Path,
    *,
    die_with_parent: bool,
    timeout: float,
) -> int:
    return _start_serving(
        argv,
        log,
        f"{server}/readyz",
        _admin_ssl_context(pki),
        die_with_parent=die_with_parent,
        timeout=timeout,
    )


def _start_serving(
    argv: list[str],
    log: Path,
    health_url: str,
    context: ssl.SSLContext,
    *,
    die_with_parent: bool,
    timeout: float,
) -> int:
    """Start a server; return its pid once `health_url` answers ok (else stop it, and raise)."""
    process = _spawn(argv, log, die_with_parent=die_with_parent)
    try:
        _wait_until(
            lambda: _get(health_url, context) == (200, b"ok"),
            process,
            Path(argv[0]).name,
            log,
            timeout,
        )
    except BaseException:
        _terminate(process.pid)
        raise
    return process.pid


def _write_state(plane: ControlPlane) -> None:
    pids = [
        pid for pid in (plane.controller_manager_pid, plane.apiserver_pid, plane.etcd_pid) if pid
    ]
    (plane.directory / STATE_FILE).write_text(
        json.dumps(
            {
                "name": plane.name,
                "server": plane.server,
                "kubeconfig": str(plane.kubeconfig),
                "pids": pids,
            }
        )
    )


# What the tests need of kube-controller-manager: collection of owned objects, and namespaces that
# finish terminating. Nothing else runs (no nodes, no pods to schedule or to account for).
CONTROLLERS = ("garbage-collector-controller", "namespace-controller")


def _start_controller_manager(
    directory: Path, kubeconfig: Path, pki: Pki, *, die_with_parent: bool, timeout: float
) -> int:
    """kube-controller-manager with the admin kubeconfig; return once its /healthz answers ok
    (its controllers then start: the garbage collector once it has discovered every resource)."""
    port = free_port()
    context = ssl.create_default_context()
    context.check_hostname = False  # its self-signed serving certificate, on loopback
    context.verify_mode = ssl.CERT_NONE
    return _start_serving(
        [
            find_binary("kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--controllers={','.join(CONTROLLERS)}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={directory / 'pki' / 'kube-controller-manager'}",
            # Its own serving needs no delegated authentication: /healthz is always allowed.
            "--authentication-skip-lookup=true",
            f"--root-ca-file={pki.ca_cert}",
            f"--service-account-private-key-file={pki.sa_signing_key}",
            "--use-service-account-credentials=false",
            "--profiling=false",
        ],
        directory / "kube-controller-manager.log",
        f"https://127.0.0.1:{port}/healthz",
        context,
        die_with_parent=die_with_parent,
        timeout=timeout,
    )


def start(
    name: str,
    directory: Path,
    *,
    die_with_parent: bool,
    timeout: float = 90,
    controller_manager: bool = True,
) -> ControlPlane:
    """Start etcd, kube-apiserver and (unless told not to) kube-controller-manager in
    `directory`; return once each answers its health check."""
    directory = directory.resolve()
    if (directory / STATE_FILE).exists():
        raise ControlPlaneError(f"{directory} already holds a control plane; run `down` first")
    directory.mkdir(parents=True, exist_ok=True)
    pki = create_pki(directory / "pki", name)
    etcd_client, etcd_peer, apiserver_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_client}"
    peer_url = f"http://127.0.0.1:{etcd_peer}"
    etcd_log, apiserver_log = directory / "etcd.log", directory / "kube-apiserver.log"

    etcd = _spawn(
        [
            find_binary("etcd"),
            f"--name={name}",
            f"--data-dir={directory / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={name}={peer_url}",
            "--unsafe-no-fsync=true",  # throwaway data: durability only costs time here
            "--log-level=warn",
        ],
        etcd_log,
        die_with_parent=die_with_parent,
    )
    server = f"https://127.0.0.1:{apiserver_port}"
    try:
        _wait_until(lambda: _get(f"{etcd_url}/health")[0] == 200, etcd, "etcd", etcd_log, timeout)
        apiserver_argv = [
            find_binary("kube-apiserver"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={apiserver_port}",
            f"--etcd-servers={etcd_url}",
            f"--cert-dir={directory / 'pki'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_signing_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            # The controller manager here runs no serviceaccount controller, so nothing would
            # create the token-less ServiceAccount objects this admission plugin waits for.
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]
        apiserver_pid = _start_apiserver(
            apiserver_argv,
            server,
            pki,
            apiserver_log,
            die_with_parent=die_with_parent,
            timeout=timeout,
        )
    except BaseException:
        _terminate(etcd.pid)
        raise

    kubeconfig = directory / "kubeconfig"
    _write_kubeconfig(kubeconfig, name, server, pki)
    controller_manager_pid = 0
    if controller_manager:
        try:
            controller_manager_pid = _start_controller_manager(
                directory, kubeconfig, pki, die_with_parent=die_with_parent, timeout=timeout
            )
        except BaseException:
            _terminate(apiserver_pid)
            _terminate(etcd.pid)
            raise
    plane = ControlPlane(
        name,
        directory,
        kubeconfig,
        server,
        etcd.pid,
        apiserver_pid,
        controller_manager_pid,
        apiserver_argv=tuple(apiserver_argv),
        pki=pki,
        die_with_parent=die_with_parent,
    )
    _write_state(plane)
    return plane


def _is_ours(pid: int) -> bool:
    """Guard against pid reuse: only signal processes that run one of our binaries."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    program = os.path.basename(cmdline.split(b"\0", 1)[0])
    return program in (b"etcd", b"kube-apiserver", b"kube-controller-manager")


def _terminate(pid: int, grace: float = 10) -> None:
    if not _is_ours(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop(directory: Path) -> bool:
    """Stop the control plane recorded in `directory`; False if there was none."""
    state_file = directory / STATE_FILE
    if not state_file.exists():
        return False
    for pid in json.loads(state_file.read_text())["pids"]:
        _terminate(int(pid))
    state_file.unlink()
    return True


@contextlib.contextmanager
def running(
    name: str, directory: Path, *, controller_manager: bool = True
) -> Iterator[ControlPlane]:
    plane = start(name, directory, die_with_parent=True, controller_manager=controller_manager)
    try:
        yield plane
    finally:
        stop(directory)
