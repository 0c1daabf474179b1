"""Children a set finds under its own name but does not control, and which of them it adopts.

A set recreated while its predecessor's children still exist (garbage collection still under
way, `kubectl delete --cascade=orphan`, Argo CD replacing the set) finds RunCommands carrying
its name that another uid controls, or none does. Creating them answers AlreadyExists, so the
set must not plan as if they were missing.

The policy, as the ReplicaSet and Job controllers adopt orphans matching their selector:
- an orphan (no controller) whose template is the set's own (same template key label) is
  adopted: it becomes the set's child, and the usual rules apply to it (a child that ran this
  round's token does not run again; one of an earlier token runs the new round);
- a child another owner controls, or an orphan of another template, is left alone: the set
  reports it (status, event) and looks again with backoff until it is gone or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Foreign:
    """A RunCommand labelled as this set's child that this set does not control."""

    name: str
    owner: str | None  # "Kind/name" of its controller; None for an orphan
    template_key: str | None  # its template key label; None when it carries none
    resource_version: str


def adoptable(child: Foreign, template_key: str) -> bool:
    """Only orphans made from the same template: adopting one never changes what it runs."""
    return child.owner is None and child.template_key == template_key


def describe(child: Foreign) -> str:
    holder = f"controlled by {child.owner}" if child.owner else "an orphan of another template"
    return f"{child.name} ({holder})"
