"""The data map: one self-contained HTML page of where personal data flows.

Columns: where data comes from (data subjects, sign-in providers), our systems, the parties we
give it to. Rows: regions, so a flow that leaves its band's transfer zone is a cross-border flow,
drawn in orange; flows with policy violations are drawn in red. A holder seen in two regions is
drawn once per region (a system "in US" when its policy says HK is itself the finding).

The layout is computed here, so the page is plain SVG that renders without scripts; the inline
script adds hover and click details. Nothing is fetched: no fonts, no libraries, no network. The
page holds counts, categories and event ids, never a data subject's identifier.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from string import Template
from typing import Any

from lineage.answers.mapdata import MapData
from lineage.contract.policy import Policy
from lineage.contract.rules import crosses_border
from lineage.contract.taxonomy import Taxonomy
from lineage.private import open_private

__all__ = [
    "MAP_SCRIPT",
    "MAP_WIDTH",
    "DataMap",
    "build_map",
    "map_payload",
    "map_svg",
    "render_map",
    "stamp_line",
    "write_map",
]

SOURCES, OURS, THEIRS = 0, 1, 2
_X = (30, 400, 790)
_W, _H, _GAP, _BAND_PAD, _TOP = 250, 26, 8, 34, 70
_WIDTH = _X[THEIRS] + _W + 40
_ROLE_COLOURS = {
    "internal": "#2b6cb0",
    "processor": "#2c7a7b",
    "sub_processor": "#319795",
    "controller": "#6b46c1",
    "joint_controller": "#805ad5",
    "third_party": "#c05621",
    "affiliate": "#718096",
    "": "#2f855a",
}


@dataclass
class MapNode:
    """A holder in one region (sources have no region); mutable while ``build_map`` counts and lays out."""

    id: str
    name: str
    region: str | None
    role: str
    column: int
    organisations: set[str] = field(default_factory=set)
    x: int = 0
    y: int = 0
    events_in: int = 0
    events_out: int = 0
    violations: list[dict[str, str]] = field(default_factory=list)


@dataclass
class MapEdge:
    """Every flow from one node to another, aggregated."""

    id: str
    src: str
    dst: str
    facts: dict[str, Any]
    cross_border: bool
    violations: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class DataMap:
    """Nodes, edges and region bands, laid out."""

    nodes: dict[str, MapNode]  # by id
    edges: list[MapEdge]
    bands: list[tuple[str, str, int, int]]  # region, label, top, height
    height: int
    violations: list[dict[str, str]]
    title: str

    def node(self, name: str, region: str | None) -> MapNode:
        """The node of holder ``name`` in ``region`` (None: a source)."""
        return next(n for n in self.nodes.values() if (n.name, n.region) == (name, region))

    def edge(self, src: MapNode, dst: MapNode) -> MapEdge:
        """The flow from one node to another."""
        return next(x for x in self.edges if (x.src, x.dst) == (src.id, dst.id))


def build_map(
    data: MapData, taxonomy: Taxonomy, policies: Sequence[Policy] = (), title: str = "Personal data map"
) -> DataMap:
    """Lay out the flows of ``data`` (``answers.mapdata.map_data``); its violations are pinned to their flows."""
    owner = {system: p.name for p in policies for system in p.systems}
    # keyed by (name, region) and (src, dst) tuples; the page's ids are just numbers, since any
    # string-built id ("name@region") can collide when names contain the separator
    nodes: dict[tuple[str, str | None], MapNode] = {}

    def node(name: str, region: str | None, role: str | None) -> MapNode:
        if (name, region) not in nodes:
            column = SOURCES if region is None else OURS if (role == "internal" or name in owner) else THEIRS
            nodes[name, region] = MapNode(f"n{len(nodes)}", name, region, role or "", column)
        return nodes[name, region]

    edges: dict[tuple[str, str], MapEdge] = {}
    for r in data.flows:
        a, b = node(r["src"], r["src_region"], r["src_role"]), node(r["dst"], r["dst_region"], r["dst_role"])
        a.events_out += r["events"]
        b.events_in += r["events"]
        crossing = crosses_border(taxonomy, a.region, b.region)
        facts = {k: _plain(r[k]) for k in ("events", "subjects", "bulk_events", "first_seen", "last_seen",
                                             "categories", "mechanisms")}  # fmt: skip
        edges[a.id, b.id] = MapEdge(f"e{len(edges)}", a.id, b.id, facts, crossing)
        if a.name in owner:
            b.organisations.add(owner[a.name])
        if b.name in owner:
            b.organisations.add(owner[b.name])

    found = [(name, v) for name, vs in data.violations.items() for v in vs]
    listed = []
    for name, v in found:
        item = {"organisation": name, "clause": v.clause, "detail": v.detail, "event_id": v.event_id}
        listed.append(item)
        at = data.placed.get(v.event_id)
        if at is None:
            continue
        src, dst = nodes[at["src"], at["src_region"]], nodes[at["dst"], at["dst_region"]]
        edges[src.id, dst.id].violations.append(item)
        dst.violations.append(item)  # the holder the breach put data at
    by_id = {n.id: n for n in nodes.values()}
    bands, height = _layout(by_id, taxonomy)
    return DataMap(by_id, list(edges.values()), bands, height, listed, title)


def _layout(nodes: dict[str, MapNode], taxonomy: Taxonomy) -> tuple[list[tuple[str, str, int, int]], int]:
    by_region: dict[str, list[MapNode]] = defaultdict(list)
    for n in nodes.values():
        if n.region is not None:
            by_region[n.region].append(n)

    def weight(region: str) -> tuple[int, int, str]:
        ours = [n for n in by_region[region] if n.column == OURS]
        return (-len(ours), -len(by_region[region]), region)

    bands, y = [], _TOP
    for region in sorted(by_region, key=weight):
        cols = [sorted((n for n in by_region[region] if n.column == c), key=lambda n: (sorted(n.organisations),
                n.name)) for c in (OURS, THEIRS)]  # fmt: skip
        rows = max(len(c) for c in cols)
        for c, members in zip((OURS, THEIRS), cols, strict=True):
            for i, n in enumerate(members):
                n.x, n.y = _X[c], y + _BAND_PAD + i * (_H + _GAP)
        height = _BAND_PAD + rows * (_H + _GAP) + 10
        meta = taxonomy.regions.get(region)
        bands.append((region, f"{meta.name if meta else region} ({region})", y, height))
        y += height + 14
    sources = sorted(
        (n for n in nodes.values() if n.column == SOURCES), key=lambda n: (n.name != "data subjects", n.name)
    )
    for i, n in enumerate(sources):
        n.x, n.y = _X[SOURCES], _TOP + _BAND_PAD + i * (_H + _GAP) * 2
    return bands, max(y, _TOP + _BAND_PAD + len(sources) * (_H + _GAP) * 2) + 20


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _path(a: MapNode, b: MapNode) -> str:
    x1, y1, x2, y2 = a.x + _W, a.y + _H / 2, b.x, b.y + _H / 2
    if x2 <= x1:  # same column: loop out to the right
        x2 = b.x + _W
        return f"M{x1},{y1} C{x1 + 80},{y1} {x2 + 80},{y2} {x2},{y2}"
    mid = (x2 - x1) / 2
    return f"M{x1},{y1} C{x1 + mid},{y1} {x2 - mid},{y2} {x2},{y2}"


def map_svg(m: DataMap) -> str:
    """The map's SVG elements, escaped; colours and widths as SVG attributes, so no inline style is needed."""
    e = html.escape
    svg: list[str] = []
    for region, label, top, height in m.bands:
        svg.append(f'<g class="band" data-region="{e(region)}"><rect x="{_X[OURS] - 20}" y="{top}" '
                   f'width="{_X[THEIRS] + _W + 20 - _X[OURS] + 20}" height="{height}" rx="8"/>'
                   f'<text x="{_X[OURS] - 10}" y="{top + 20}">{e(label)}</text></g>')  # fmt: skip
    for col, head in ((SOURCES, "Where it comes from"), (OURS, "Our systems"), (THEIRS, "Who receives it")):
        svg.append(f'<text class="head" x="{_X[col]}" y="{_TOP - 20}">{head}</text>')
    order = sorted(m.edges, key=lambda x: (bool(x.violations), x.cross_border))  # highlighted ones on top
    for edge in order:
        kind = "violation" if edge.violations else "cross" if edge.cross_border else "flow"
        width = 1.2 + math.log10(1 + edge.facts["events"]) * (1.6 if kind != "flow" else 0.8)
        svg.append(f'<path class="edge {kind}" data-id="{e(edge.id)}" data-src="{e(edge.src)}" '
                   f'data-dst="{e(edge.dst)}" d="{_path(m.nodes[edge.src], m.nodes[edge.dst])}" '
                   f'stroke-width="{width:.1f}"/>')  # fmt: skip
    for n in m.nodes.values():
        colour = _ROLE_COLOURS.get(n.role, "#4a5568")
        flag = (
            f'<text class="flag" x="{n.x + _W - 8}" y="{n.y + 18}">⚠ {len(n.violations)}</text>' if n.violations else ""
        )
        region = f" · {n.region}" if n.region else ""
        svg.append(f'<g class="node{" bad" if n.violations else ""}" data-id="{e(n.id)}" data-name="{e(n.name)}" '
                   f'data-region="{e(n.region or "")}" '
                   f'data-column="{n.column}"><rect x="{n.x}" y="{n.y}" width="{_W}" height="{_H}" rx="5" '
                   f'fill="{colour}"/><text x="{n.x + 8}" y="{n.y + 17}">{e(n.name)}{e(region)}</text>'
                   f"{flag}</g>")  # fmt: skip
    return "\n".join(svg)


def map_payload(m: DataMap) -> str:
    """The details the page's script shows, as JSON safe inside a ``<script type="application/json">``."""
    data = {
        "nodes": {n.id: {"name": n.name, "region": n.region, "role": n.role, "organisations": sorted(n.organisations),
                         "events_in": n.events_in, "events_out": n.events_out, "violations": n.violations}
                  for n in m.nodes.values()},
        "edges": {x.id: {"src": x.src, "dst": x.dst, "cross_border": x.cross_border, **x.facts,
                         "violations": x.violations} for x in m.edges},
    }  # fmt: skip
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")  # no "</script" or "<!--" inside


def stamp_line(stamp: Mapping[str, object]) -> str:
    """An answer's stamp facts as one line of text ("store snapshot: 123; holdings behind: 0")."""
    return "; ".join(f"{k.replace('_', ' ')}: {_plain(v)}" for k, v in stamp.items())


def render_map(m: DataMap, stamp: Mapping[str, object] | None = None) -> str:
    """The page, as one HTML string; ``stamp`` (the read it was drawn from) follows the summary."""
    e = html.escape
    crossing = sorted((x for x in m.edges if x.cross_border), key=lambda x: (x.src, x.dst))
    cross_rows = "".join(
        f"<tr><td>{e(m.nodes[x.src].name)} ({e(m.nodes[x.src].region or '')})</td>"
        f"<td>{e(m.nodes[x.dst].name)} ({e(m.nodes[x.dst].region or '')})</td><td>{x.facts['events']}</td>"
        f"<td>{e(', '.join(x.facts['mechanisms']) or 'none recorded')}</td>"
        f"<td>{e(', '.join(x.facts['categories']))}</td></tr>"
        for x in crossing
    )
    violation_rows = "".join(
        f"<tr><td>{e(v['organisation'])}</td><td>{e(v['clause'])}</td><td>{e(v['detail'])}</td>"
        f"<td><code>{e(v['event_id'])}</code></td></tr>"
        for v in m.violations
    )
    flows = sum(1 for x in m.edges)
    return _PAGE.substitute(
        title=e(m.title),
        summary=e(
            f"{len(m.nodes)} holders by region, {flows} flows, {len(crossing)} cross-border, "
            f"{len(m.violations)} policy violations"
            + (f" · {stamp_line(stamp)}" if stamp else "")
        ),  # fmt: skip
        width=_WIDTH,
        height=m.height,
        svg=map_svg(m),
        cross_rows=cross_rows or '<tr><td colspan="5">none</td></tr>',
        violation_rows=violation_rows or '<tr><td colspan="4">none found</td></tr>',
        data=map_payload(m),
        script=_SCRIPT,
        script_hash=_SCRIPT_HASH,
    )


def write_map(m: DataMap, out: Path, stamp: Mapping[str, object] | None = None) -> None:
    """Write the page, readable by its owner only; ``stamp`` (the answer's stamp facts) in its summary."""
    page = render_map(m, stamp)
    with open_private(out, "--out") as f:
        f.write(page)


def _template(name: str) -> str:
    return (Path(__file__).parent / "templates" / name).read_text(encoding="utf-8")


# the page: a string.Template ($name fields), so its CSS and markup read as they are
_PAGE = Template(_template("map.html"))
# the page's one script; the CSP allows it by hash, so markup that slipped into the page could not run
_SCRIPT = _template("map.js")
#: the map's width in pixels, and the page's script, for pages that embed the map (the console)
MAP_WIDTH = _WIDTH
MAP_SCRIPT = _SCRIPT
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
