"""`kubectl runcommand`: run a command on an AKS cluster through the operator, from a pipeline
or a terminal, with only Kubernetes RBAC on RunCommands.

Standard library only, plus the `kubectl` binary on PATH: the release packs this subpackage as a
zipapp without dependencies (import-linter keeps it from importing the rest of `controller`).
"""
