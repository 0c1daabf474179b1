"""The shapes ARM gives its identifiers, shared by the configuration's checks and the routes
that match requests."""

from __future__ import annotations

import re

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# From the REST spec: managedClusters/{resourceName}.
CLUSTER_NAME_RE = re.compile(r"^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$")
API_VERSION_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(-preview)?$")
