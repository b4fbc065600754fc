"""The flow graph: who holds personal data, where, and where it flows. The only networkx module.

Nodes are holders (``data subjects`` for direct collection, our systems, third parties) and regions
(``region:HK``). A holder has a ``located_in`` edge to each region it keeps data in. A ``flow`` edge
from holder to holder aggregates every collection, share and transfer between them: data
categories, events, distinct subjects (subject-level events), bulk events, first and last seen,
cross-border flag and mechanisms. The graph stays small (one edge per pair, not per event), so it
answers reachability in microseconds; per-subject lineage stays in DuckDB.

It is built from the store with one aggregate query (``queries/flow_edges.sql``), or kept current
batch by batch with ``FlowGraph.apply``; both give the same graph.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import networkx as nx

from lineage.contract.records import Record
from lineage.contract.rules import crosses_border
from lineage.contract.taxonomy import Taxonomy
from lineage.private import open_private

__all__ = ["DATA_SUBJECTS", "FlowGraph", "GraphSummary", "export", "summarise"]

DATA_SUBJECTS = "data subjects"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class _Edge:
    categories: set[str] = field(default_factory=set)
    subjects: set[str] = field(default_factory=set)
    events: int = 0
    bulk_events: int = 0
    first_seen: int | None = None
    last_seen: int | None = None
    mechanisms: set[str] = field(default_factory=set)
    event_types: set[str] = field(default_factory=set)
    region_pairs: set[tuple[str | None, str]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class GraphSummary:
    """Counts a person reads first."""

    holders: int
    regions: int
    flows: int
    cross_border_flows: int
    events: int


class FlowGraph:
    """An aggregated ``networkx.DiGraph`` of personal-data flows."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        """Start empty; ``taxonomy`` decides which region pairs cross a border."""
        self.taxonomy = taxonomy
        self._edges: dict[tuple[str, str], _Edge] = {}
        self._nodes: dict[str, dict[str, Any]] = {}
        # distinct-subject counts known only as numbers (built by SQL, not from subject ids)
        self._subject_counts: dict[tuple[str, str], int] = {}

    # -- building -----------------------------------------------------------------------------

    def apply(self, records: Iterable[Record]) -> None:
        """Fold a batch of stored records in (no rebuild)."""
        for r in records:
            kind = r["event_type"]
            holder = r["holder"]
            self._node(holder["name"], holder["role"], holder["region"])
            if kind == "COLLECTED":
                src = r["source"] if r["source"] not in (None, "direct") else DATA_SUBJECTS
                if src == DATA_SUBJECTS:
                    self._nodes.setdefault(DATA_SUBJECTS, {"kind": "subjects", "role": None, "regions": set()})
                else:
                    self._node(src, None, None)
                edge = self._edge(src, holder["name"])
                edge.region_pairs.add((None, holder["region"]))
            elif kind in ("SHARED", "TRANSFERRED"):
                rec = r["recipient"]
                self._node(rec["name"], rec["role"], rec["region"])
                edge = self._edge(holder["name"], rec["name"])
                edge.region_pairs.add((holder["region"], rec["region"]))
                if r["mechanism"] is not None:
                    edge.mechanisms.add(r["mechanism"])
            else:
                continue
            edge.events += 1
            edge.event_types.add(kind)
            edge.categories.update(r["categories"])
            if r["scope"] == "BULK":
                edge.bulk_events += 1
            else:
                edge.subjects.add(r["subject_id"])
            at = r["occurred_at"]
            edge.first_seen = at if edge.first_seen is None else min(edge.first_seen, at)
            edge.last_seen = at if edge.last_seen is None else max(edge.last_seen, at)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], taxonomy: Taxonomy) -> FlowGraph:
        """The graph from ``queries/flow_edges.sql`` rows (times as datetimes)."""
        g = cls(taxonomy)
        for row in rows:
            src, dst = row["src"], row["dst"]
            if src == DATA_SUBJECTS:
                g._nodes.setdefault(DATA_SUBJECTS, {"kind": "subjects", "role": None, "regions": set()})
            else:
                g._node(src, row["src_role"], None)
            for region in row["src_regions"]:
                g._node(src, None, region)
            g._node(dst, row["dst_role"], None)
            for region in row["dst_regions"]:
                g._node(dst, None, region)
            e = g._edge(src, dst)
            e.categories = set(row["categories"])
            e.events = int(row["events"])
            e.bulk_events = int(row["bulk_events"])
            e.first_seen = _micros(row["first_seen"])
            e.last_seen = _micros(row["last_seen"])
            e.mechanisms = set(row["mechanisms"])
            e.event_types = set(row["event_types"])
            e.region_pairs = {_pair(p) for p in row["region_pairs"]}
            if not e.region_pairs:
                e.region_pairs = {(None, r) for r in row["dst_regions"]}
            e.subjects = set()
            g._subject_counts[(src, dst)] = int(row["subjects"])
        return g

    def _node(self, name: str, role: str | None, region: str | None) -> None:
        node = self._nodes.get(name)
        if node is None:
            node = self._nodes[name] = {"kind": "holder", "role": None, "regions": set()}
        if role is not None:
            node["role"] = role
            node["kind"] = "internal" if role == "internal" else "external"
        if region is not None:
            node["regions"].add(region)

    def _edge(self, src: str, dst: str) -> _Edge:
        edge = self._edges.get((src, dst))
        if edge is None:
            edge = self._edges[(src, dst)] = _Edge()
        return edge

    # -- reading ------------------------------------------------------------------------------

    def _crosses(self, pairs: set[tuple[str | None, str]]) -> bool:
        return any(crosses_border(self.taxonomy, a, b) for a, b in pairs)

    def to_networkx(self) -> nx.DiGraph:
        """A ``networkx.DiGraph`` with plain attributes (lists, ISO times), ready to export."""
        g = nx.DiGraph()
        for name, attrs in sorted(self._nodes.items()):
            g.add_node(name, kind=attrs["kind"], role=attrs["role"] or "", regions=sorted(attrs["regions"]))
            for region in sorted(attrs["regions"]):
                rid = f"region:{region}"
                if rid not in g:
                    meta = self.taxonomy.regions[region]
                    g.add_node(rid, kind="region", name=meta.name, zone=meta.zone)
                g.add_edge(name, rid, kind="located_in")
        for (src, dst), e in sorted(self._edges.items()):
            g.add_edge(
                src,
                dst,
                kind="flow",
                categories=sorted(e.categories),
                subjects=self._subject_counts.get((src, dst), len(e.subjects)),
                events=e.events,
                bulk_events=e.bulk_events,
                first_seen=_iso(e.first_seen),
                last_seen=_iso(e.last_seen),
                cross_border=self._crosses(e.region_pairs),
                mechanisms=sorted(e.mechanisms),
                event_types=sorted(e.event_types),
            )
        return g


def summarise(g: nx.DiGraph) -> GraphSummary:
    """Counts of holders, regions, flows and cross-border flows."""
    flows = [d for _, _, d in g.edges(data=True) if d["kind"] == "flow"]
    return GraphSummary(
        holders=sum(1 for _, d in g.nodes(data=True) if d["kind"] != "region"),
        regions=sum(1 for _, d in g.nodes(data=True) if d["kind"] == "region"),
        flows=len(flows),
        cross_border_flows=sum(1 for d in flows if d["cross_border"]),
        events=sum(d["events"] for d in flows),
    )


def export(g: nx.DiGraph, *, graphml: Path | None = None, node_link: Path | None = None) -> None:
    """Write GraphML (lists joined with ';', which GraphML cannot hold) and node-link JSON.

    Both go through ``open_private``: the graph names holders and subject counts, and an output
    path must never lead through a symlink or into another user's file.
    """
    if node_link is not None:
        with open_private(node_link, "--json") as f:
            f.write(json.dumps(nx.node_link_data(g, edges="links"), indent=1, ensure_ascii=False) + "\n")
    if graphml is not None:
        flat = nx.DiGraph()
        for n, d in g.nodes(data=True):
            flat.add_node(n, **{k: ";".join(v) if isinstance(v, list) else v for k, v in d.items()})
        for u, v, d in g.edges(data=True):
            flat.add_edge(u, v, **{k: ";".join(x) if isinstance(x, list) else x for k, x in d.items()})
        with open_private(graphml, "--graphml", "wb") as out:
            nx.write_graphml(flat, out)


def _pair(text: str) -> tuple[str | None, str]:
    src, _, dst = text.partition(">")
    return src, dst


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // timedelta(microseconds=1)


def _iso(micros: int | None) -> str:
    return "" if micros is None else (_EPOCH + timedelta(microseconds=micros)).isoformat()
