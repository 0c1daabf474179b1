"""The values of the plugin's flags: argparse types, and --cluster/--resource-id read for the
subcommands that take them as plain strings."""

from __future__ import annotations

import argparse

from .errors import UsageError


def cluster(text: str) -> dict[str, str]:
    """--cluster SUB/RG/NAME as spec.cluster."""
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not SUBSCRIPTION/RESOURCE_GROUP/NAME")
    return {"subscriptionId": parts[0], "resourceGroup": parts[1], "name": parts[2]}


def cluster_of(args: argparse.Namespace) -> dict[str, str]:
    """--cluster or --resource-id, for the subcommands that parse them as plain strings."""
    if args.resource_id:
        return {"resourceId": args.resource_id}
    try:
        return cluster(args.cluster)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"--cluster: {error}") from None


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


def at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1")
    return value
