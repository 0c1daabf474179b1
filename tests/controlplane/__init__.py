"""A real kube-apiserver + etcd on loopback for tests and the demo (see launcher.py)."""

from .launcher import ControlPlane, ControlPlaneError, running, start, stop

__all__ = ["ControlPlane", "ControlPlaneError", "running", "start", "stop"]
