#!/usr/bin/env bash
# Copies the single source of truth, crds/*.yaml at the repository root, into the chart's crds/.
# tests/test_helm_chart.py fails while the two copies differ. Usage: bash charts/sync-crds.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cp "$root"/crds/*.yaml "$root"/charts/aks-runcommand-operator/crds/
echo "sync-crds: charts/aks-runcommand-operator/crds/ now matches crds/"
