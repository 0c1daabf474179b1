"""A RunCommandSet's spec as the core reads it: its targets (explicit clusters and a selector of
discovered ones), its rollout bounds and stages, and the keys naming its round. No I/O.

A round is one run of the template on every target. It is named by a hash of the set's
runToken and template (the round key); every child of the round carries it as its runToken, so a
new round is a new run of each child, and a label, so children of earlier rounds are told apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.arm.models import ClusterRef, DiscoveredCluster
from controller.core.bounds import check_bound
from controller.core.spec import InvalidSpec, RunSpec, cluster_ref
from controller.core.stages import Stage, parse_approvals, parse_stages


@dataclass(frozen=True)
class TagIn:
    key: str
    values: frozenset[str]


@dataclass(frozen=True)
class Selector:
    subscriptions: tuple[str, ...]
    resource_groups: tuple[str, ...]
    match_tags: Mapping[str, str]
    match_expressions: tuple[TagIn, ...]

    def matches(self, cluster: DiscoveredCluster) -> bool:
        if self.resource_groups and cluster.resource_group.casefold() not in {
            group.casefold() for group in self.resource_groups
        }:
            return False
        if any(cluster.tags.get(key) != value for key, value in self.match_tags.items()):
            return False
        return all(cluster.tags.get(e.key) in e.values for e in self.match_expressions)

    def scopes(self) -> list[tuple[str, str | None]]:
        """The (subscription, resource group) lists to read: one per group, or the whole
        subscription when no group is named."""
        groups: Sequence[str | None] = self.resource_groups or (None,)
        return [(sub, group) for sub in self.subscriptions for group in groups]


@dataclass(frozen=True)
class SetSpec:
    template: Mapping[str, Any]
    clusters: tuple[ClusterRef, ...]
    selector: Selector | None
    run_token: str | None
    follow_new_clusters: bool
    max_concurrency: int | str | None
    max_failures: int | str | None
    suspend: bool
    round_key: str
    retry_key: str | None  # hash of spec.retryFailedToken
    template_key: str = ""  # hash of the template alone (see core/adoption.py)
    stages: tuple[Stage, ...] = ()  # core/stages.py
    approvals: frozenset[tuple[str, str]] = frozenset()  # (stage, roundKey)
    progress_deadline_seconds: int | None = None

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> SetSpec:
        try:
            return cls._parse(spec)
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidSpec(f"invalid spec: {error}") from error

    @classmethod
    def _parse(cls, spec: Mapping[str, Any]) -> SetSpec:
        template = dict(spec["template"])
        if "cluster" in template:
            raise ValueError("spec.template must not name a cluster; list targets in spec.clusters")
        clusters = tuple(cluster_ref(c) for c in spec.get("clusters") or ())
        selector = _selector(spec["clusterSelector"]) if spec.get("clusterSelector") else None
        if not clusters and selector is None:
            raise ValueError("set spec.clusters, spec.clusterSelector, or both")
        for bound in ("maxConcurrency", "maxFailures"):
            check_bound(spec.get(bound), f"spec.{bound}")
        probe = {**template, "cluster": {"resourceId": (clusters or (_PROBE,))[0].resource_id}}
        RunSpec.parse(probe)  # the template must make a valid RunCommand
        run_token = spec.get("runToken")
        stages = parse_stages(spec.get("stages"))
        deadline = spec.get("progressDeadlineSeconds")
        canonical = json.dumps({"t": template, "r": run_token}, sort_keys=True)
        return cls(
            template=template,
            clusters=clusters,
            selector=selector,
            run_token=run_token,
            follow_new_clusters=bool(spec.get("followNewClusters", False)),
            max_concurrency=spec.get("maxConcurrency"),
            max_failures=spec.get("maxFailures"),
            suspend=bool(spec.get("suspend", False)),
            round_key=hashlib.sha256(canonical.encode()).hexdigest()[:16],
            template_key=_short_hash(json.dumps(template, sort_keys=True)),
            stages=stages,
            approvals=parse_approvals(spec.get("approvals"), stages),
            progress_deadline_seconds=int(deadline) if deadline is not None else None,
            retry_key=_short_hash(spec["retryFailedToken"])
            if spec.get("retryFailedToken")
            else None,
        )


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


_PROBE = ClusterRef("00000000-0000-0000-0000-000000000000", "probe", "probe")


def _selector(raw: Mapping[str, Any]) -> Selector:
    return Selector(
        subscriptions=tuple(raw["subscriptions"]),
        resource_groups=tuple(raw.get("resourceGroups") or ()),
        match_tags=dict(raw.get("matchTags") or {}),
        match_expressions=tuple(
            TagIn(e["key"], frozenset(e["values"])) for e in raw.get("matchTagExpressions") or ()
        ),
    )
