"""Metric labels for the target cluster, and the switch that empties them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller import metrics

CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-blue"
)


@pytest.fixture(autouse=True)
def labels_back_on() -> Iterator[None]:
    yield
    metrics.label_clusters(True)


def test_target_labels_come_from_the_cluster_id() -> None:
    assert metrics.target(CLUSTER_ID) == (
        "00000000-0000-0000-0000-000000000001",
        "rg-prod",
        "aks-blue",
    )
    assert metrics.target(None) == ("", "", "")


def test_turned_off_the_labels_are_empty_so_series_do_not_multiply() -> None:
    metrics.label_clusters(False)
    assert metrics.target(CLUSTER_ID) == ("", "", "")
