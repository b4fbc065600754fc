"""The flow graph of a known small history: exact nodes, edges and counts, built two ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from lineage import Codec, Party, default_taxonomy
from lineage.answers.graph import FlowGraph, export, summarise
from lineage.contract.records import Record, make_record
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store
from tests.fixtures import T0

PAY = {"name": "pay", "role": "processor", "region": "CN"}
HK = {"name": "hk-store", "role": "affiliate", "region": "HK"}


def _history() -> list[Record]:
    def rec(kind: str, minute: int, **f: Any) -> Record:
        from datetime import timedelta

        return make_record(kind, system="app", system_region="CN", occurred_at=T0 + timedelta(minutes=minute), **f)

    collect = {"categories": ["user.contact.email"], "purpose": "essential.service", "legal_basis": "CONTRACT"}
    return [
        rec("COLLECTED", 0, subject_id="a", **collect),
        rec("COLLECTED", 1, subject_id="b", **collect),
        rec("COLLECTED", 2, subject_id="a", **collect),
        rec(
            "COLLECTED", 3, subject_id="c", source="ad-partner", **{**collect, "categories": ["user.device.device_id"]}
        ),
        rec(
            "SHARED",
            4,
            subject_id="a",
            categories=["user.financial.bank_account"],
            purpose="essential.service",
            recipient=Party(**PAY),
        ),
        rec(
            "SHARED",
            5,
            subject_id="b",
            categories=["user.contact.email"],
            purpose="essential.service",
            recipient=Party(**PAY),
        ),
        rec(
            "TRANSFERRED",
            6,
            subject_id=None,
            bulk_as_of=T0,
            categories=["user.contact.email"],
            purpose="essential.service",
            recipient=Party(**HK),
            transfer_kind="CROSS_BORDER",
            mechanism="gba.standard_contract",
        ),
        rec("ERASED", 7, subject_id="a", categories=["user.contact.email"], erasure_outcome="ERASED"),
        rec(
            "CONSENT",
            8,
            subject_id="b",
            categories=["user.contact.email"],
            purpose="essential.service",
            consent_status="GRANTED",
            consent_kind="GENERAL",
        ),
    ]


EXPECTED_FLOWS = {
    ("data subjects", "app"): {"events": 3, "subjects": 2, "bulk_events": 0, "categories": ["user.contact.email"]},
    ("ad-partner", "app"): {"events": 1, "subjects": 1, "bulk_events": 0, "categories": ["user.device.device_id"]},
    ("app", "pay"): {
        "events": 2,
        "subjects": 2,
        "bulk_events": 0,
        "categories": ["user.contact.email", "user.financial.bank_account"],
    },
    ("app", "hk-store"): {"events": 1, "subjects": 0, "bulk_events": 1, "categories": ["user.contact.email"]},
}


def _check(g: nx.DiGraph) -> None:
    flows = {(u, v): d for u, v, d in g.edges(data=True) if d["kind"] == "flow"}
    assert set(flows) == set(EXPECTED_FLOWS)
    for key, want in EXPECTED_FLOWS.items():
        assert {k: flows[key][k] for k in want} == want, key
    assert flows[("app", "hk-store")]["cross_border"] is True
    assert flows[("app", "hk-store")]["mechanisms"] == ["gba.standard_contract"]
    assert not any(flows[k]["cross_border"] for k in flows if k != ("app", "hk-store"))
    assert flows[("data subjects", "app")]["first_seen"] == "2026-05-01T08:00:00+00:00"
    assert flows[("data subjects", "app")]["last_seen"] == "2026-05-01T08:02:00+00:00"
    assert set(g.nodes) == {"data subjects", "ad-partner", "app", "pay", "hk-store", "region:CN", "region:HK"}
    assert g.nodes["app"]["kind"] == "internal" and g.nodes["pay"]["kind"] == "external"
    assert g.has_edge("hk-store", "region:HK") and g.edges["hk-store", "region:HK"]["kind"] == "located_in"
    s = summarise(g)
    assert (s.holders, s.regions, s.flows, s.cross_border_flows, s.events) == (5, 2, 4, 1, 7)


def test_incremental_graph_has_the_expected_flows() -> None:
    """Applying the history batch by batch gives exactly the expected nodes, edges and counts."""
    history = _history()
    g = FlowGraph(default_taxonomy())
    g.apply(history[:4])
    g.apply(history[4:])
    _check(g.to_networkx())


def test_graph_built_from_the_store_matches(tmp_path: Path) -> None:
    """The store's aggregate query builds the same graph as the incremental path."""
    ing = Ingestor(tmp_path, "events", taxonomy=default_taxonomy())
    codec = Codec()
    for offset, record in enumerate(_history()):
        assert ing.add(0, offset, codec.encode_record(record)) is None
    ing.flush()
    _check(FlowGraph.from_rows(Store(tmp_path).rows("flow_edges"), default_taxonomy()).to_networkx())


def test_exports_read_back(tmp_path: Path) -> None:
    """GraphML and node-link JSON exports load back with the same edges."""
    g = FlowGraph(default_taxonomy())
    g.apply(_history())
    nxg = g.to_networkx()
    export(nxg, graphml=tmp_path / "g.graphml", node_link=tmp_path / "g.json")
    assert set(nx.read_graphml(tmp_path / "g.graphml").edges) == set(nxg.edges)
    assert '"links"' in (tmp_path / "g.json").read_text()
