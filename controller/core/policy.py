"""Who may run what, where: the operator's second line of defence behind the admission policy.

Two sources, both pure values here; the wiring reads them before any credential is built:

- the operator's allowance for its own identity (flags): a namespace without a credentials
  Secret may borrow the operator's identity only when it is named, or its labels match;
- ``RunCommandPolicy`` objects (cluster-scoped). Every policy whose ``namespaceSelector``
  matches the run's namespace must allow the run; a namespace no policy selects is governed by
  the defaults alone. These are the semantics the chart's ValidatingAdmissionPolicy can express
  (it evaluates each policy on its own and refuses when any refuses), so both layers agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from controller.vocabulary import Reason

from .input_rules import InputFailure
from .spec import RunSpec

IdentityMode = Literal["OperatorIdentity", "ClientSecret", "ClientCertificate", "WorkloadIdentity"]

# A credential Secret's mode (controller.arm.CredentialConfig.mode) in the policy's spelling.
IDENTITY_MODES: Mapping[str, IdentityMode] = {
    "client-secret": "ClientSecret",
    "client-certificate": "ClientCertificate",
    "workload-identity": "WorkloadIdentity",
}


class PolicyRefusal(InputFailure):
    """A policy (the operator's allowance or a RunCommandPolicy) refuses the run; nothing was
    sent. Final: it stands until someone changes the policy, the namespace's labels or the
    spec, and no retry budget outlasts that."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.POLICY_DENIED, message)


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: matchLabels entries become ``In`` with one value."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.operator:
            case "In":
                return present and labels[self.key] in self.values
            case "NotIn":
                return not present or labels[self.key] not in self.values
            case "Exists":
                return present
            case "DoesNotExist":
                return not present


@dataclass(frozen=True)
class LabelSelector:
    """A Kubernetes label selector. The empty selector matches every namespace."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)

    @classmethod
    def from_object(cls, selector: Mapping[str, Any]) -> LabelSelector:
        """From ``{matchLabels, matchExpressions}``, as in the Kubernetes API."""
        terms = [
            Requirement(key, "In", (str(value),))
            for key, value in (selector.get("matchLabels") or {}).items()
        ]
        for expression in selector.get("matchExpressions") or ():
            operator = expression["operator"]
            if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise ValueError(f"unknown selector operator {operator!r}")
            terms.append(
                Requirement(expression["key"], operator, tuple(expression.get("values") or ()))
            )
        return cls(tuple(terms))

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """kubectl's syntax, as the API server reads it: ``a=b,c!=d,e,!f,g in (x,y),h notin (z)``.
        Keys and values are checked as the API server checks them, so a selector accepted here
        is never refused by a watch later."""
        terms: list[Requirement] = []
        for term in (t.strip() for t in _selector_terms(text)):
            if not term:
                continue
            if set_based := _SET_TERM.fullmatch(term):
                key, operator, listed = set_based.groups()
                values = tuple(v.strip() for v in listed.split(","))
                terms.append(Requirement(key, "In" if operator == "in" else "NotIn", values))
            elif equality := _EQUALITY_TERM.fullmatch(term):
                key, operator, value = equality.groups()
                terms.append(Requirement(key, "NotIn" if operator == "!=" else "In", (value,)))
            elif term.startswith("!"):
                terms.append(Requirement(term[1:].strip(), "DoesNotExist"))
            else:
                terms.append(Requirement(term, "Exists"))
        for requirement in terms:
            if not _LABEL_KEY.fullmatch(requirement.key):
                raise ValueError(
                    f"{requirement.key!r} is not a label key (an optional DNS subdomain prefix "
                    "and '/', then at most 63 letters, digits, '-', '_' or '.', starting and "
                    "ending with a letter or digit)"
                )
            for value in requirement.values:
                if not _LABEL_VALUE.fullmatch(value):
                    raise ValueError(
                        f"{value!r} is not a label value (at most 63 letters, digits, '-', '_' "
                        "or '.', starting and ending with a letter or digit, or empty)"
                    )
        return cls(tuple(terms))


def _selector_terms(text: str) -> list[str]:
    """Split at commas outside parentheses: "a in (x,y),b" is two terms."""
    terms, depth, start = [], 0, 0
    for at, char in enumerate(text):
        if char in "()":
            depth += 1 if char == "(" else -1
            if depth not in (0, 1):
                raise ValueError(f"unbalanced parentheses in {text!r}")
        elif char == "," and depth == 0:
            terms.append(text[start:at])
            start = at + 1
    if depth:
        raise ValueError(f"unbalanced parentheses in {text!r}")
    return [*terms, text[start:]]


_SET_TERM = re.compile(r"(\S+)\s+(in|notin)\s*\(([^)]*)\)")
_EQUALITY_TERM = re.compile(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)")
_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_LABEL_KEY = re.compile(
    rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}"
)
_LABEL_VALUE = re.compile(rf"{_NAME}?")


@dataclass(frozen=True)
class OperatorIdentityAllowance:
    """Which namespaces may use the operator's own identity (flags); none by default."""

    namespaces: frozenset[str] = frozenset()  # "*" names every namespace
    selector: LabelSelector | None = None

    def allows(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if "*" in self.namespaces or namespace in self.namespaces:
            return True
        return self.selector is not None and self.selector.matches(labels)


def check_operator_identity(
    allowance: OperatorIdentityAllowance, namespace: str, labels: Mapping[str, str], secret: str
) -> None:
    if not allowance.allows(namespace, labels):
        raise PolicyRefusal(
            f"namespace {namespace} has no credentials Secret {secret} and may not use the "
            "operator's own identity; create the Secret in this namespace, or allow the "
            "namespace with --operator-identity-namespaces or "
            "--operator-identity-namespace-selector (chart: operatorIdentity.namespaces, "
            "operatorIdentity.namespaceSelector)",
        )


def glob_matches(pattern: str, value: str) -> bool:
    """``*`` matches anything, ``prefix*`` a prefix, anything else itself; case-insensitive,
    as ARM's names are. The admission policy's CEL implements exactly this."""
    pattern, value = pattern.lower(), value.lower()
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


@dataclass(frozen=True)
class ClusterPattern:
    subscription_id: str = "*"
    resource_group: str = "*"
    name: str = "*"

    def matches(self, subscription_id: str, resource_group: str, name: str) -> bool:
        return (
            glob_matches(self.subscription_id, subscription_id)
            and glob_matches(self.resource_group, resource_group)
            and glob_matches(self.name, name)
        )


@dataclass(frozen=True)
class RunCommandPolicy:
    """One ``RunCommandPolicy``. An absent field does not restrict (None); an empty list
    allows nothing."""

    name: str
    namespace_selector: LabelSelector
    clusters: tuple[ClusterPattern, ...] | None
    allow_secret_files: bool
    identities: frozenset[str] | None

    @classmethod
    def from_object(cls, body: Mapping[str, Any]) -> RunCommandPolicy:
        spec = body.get("spec") or {}
        clusters = spec.get("clusters")
        identities = spec.get("identities")
        return cls(
            name=str(body["metadata"]["name"]),
            namespace_selector=LabelSelector.from_object(spec.get("namespaceSelector") or {}),
            clusters=None
            if clusters is None
            else tuple(
                ClusterPattern(
                    c.get("subscriptionId", "*"), c.get("resourceGroup", "*"), c.get("name", "*")
                )
                for c in clusters
            ),
            allow_secret_files=bool(spec.get("allowSecretFiles", True)),
            identities=None if identities is None else frozenset(identities),
        )

    def refusal(self, spec: RunSpec, identity: IdentityMode | None) -> str | None:
        """Why this policy refuses the run, or None. ``identity`` None: not known yet (only
        the spec-visible rules are checked, as at admission)."""
        where = f"RunCommandPolicy {self.name}"
        cluster = spec.cluster
        if self.clusters is not None and not any(
            p.matches(cluster.subscription_id, cluster.resource_group, cluster.name)
            for p in self.clusters
        ):
            return (
                f"{where} rule spec.clusters does not allow cluster subscription "
                f"{cluster.subscription_id}, resource group {cluster.resource_group}, "
                f"name {cluster.name}"
            )
        if not self.allow_secret_files and any(s.kind == "Secret" for s in spec.files_from):
            return (
                f"{where} rule spec.allowSecretFiles is false: spec.filesFrom may not read Secrets"
            )
        if identity is not None and self.identities is not None and identity not in self.identities:
            allowed = ", ".join(sorted(self.identities)) or "none"
            return f"{where} rule spec.identities does not allow {identity} (allowed: {allowed})"
        return None


def check_policies(
    policies: Sequence[RunCommandPolicy],
    namespace: str,
    labels: Mapping[str, str],
    spec: RunSpec,
    identity: IdentityMode,
) -> None:
    """Every policy that selects the namespace must allow the run."""
    for policy in sorted(policies, key=lambda p: p.name):
        if not policy.namespace_selector.matches(labels):
            continue
        refusal = policy.refusal(spec, identity)
        if refusal is not None:
            raise PolicyRefusal(f"namespace {namespace}: {refusal}")
