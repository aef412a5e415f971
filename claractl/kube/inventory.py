"""Actual state: the live objects carrying a project's inventory label, one list call per kind
(in parallel) — the number of requests grows with kinds, never with objects."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from claractl.kube.client import INVENTORY_KINDS, KINDS, Rest
from claractl.kube.labels import inventory_selector


def read_inventory(rest: Rest, namespace: str, project: str, kinds: list[str] | None = None,
                   parallelism: int = 8) -> list[dict[str, Any]]:
    """Live objects labelled claractl.dev/project=<project> in namespace, sorted by kind and name."""
    selector = inventory_selector(project)
    wanted = [KINDS[k] for k in (kinds or INVENTORY_KINDS)]
    with ThreadPoolExecutor(max_workers=min(parallelism, len(wanted))) as pool:
        results = list(pool.map(lambda kind: rest.list(kind, namespace, selector), wanted))
    objects = [obj for items in results for obj in items]
    return sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"]))
