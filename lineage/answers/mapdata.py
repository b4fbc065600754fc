"""What the data map draws, read from the store: every flow between holders, and where each violation sits.

``present.datamap.build_map`` lays this out and never queries the store: the map's answer is one
read here, like every other answer, and the page only shapes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lineage.contract.policy import Violation
from lineage.store import Store

__all__ = ["MapData", "map_data"]


@dataclass(frozen=True)
class MapData:
    """The map's facts: flows aggregated per pair of holders, the violations found, and their flows."""

    #: ``queries/map_flows.sql`` rows: src, src_region, src_role, dst, dst_region, dst_role and the counts
    flows: list[dict[str, Any]]
    #: policy name -> the violations found (the caller's ``check`` answers)
    violations: Mapping[str, Sequence[Violation]]
    #: event id -> the flow it travelled (src, src_region, dst, dst_region), for the violations' events
    placed: Mapping[str, Mapping[str, Any]]


def map_data(store: Store, violations: Mapping[str, Sequence[Violation]] | None = None) -> MapData:
    """The store's flows, and the flow each of ``violations``' events travelled (policy name -> found)."""
    found = dict(violations or {})
    ids = sorted({v.event_id for vs in found.values() for v in vs})
    placed = {r["event_id"]: r for r in store.rows("map_events", {"ids": ids})}
    return MapData(store.rows("map_flows"), found, placed)
