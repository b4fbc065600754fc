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
from typing import Any

from lineage.contract.policy import Policy, Violation
from lineage.contract.rules import crosses_border
from lineage.contract.taxonomy import Taxonomy
from lineage.private import open_private
from lineage.store import Store

__all__ = ["DataMap", "build_map", "render_map", "write_map"]

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
    store: Store,
    taxonomy: Taxonomy,
    policies: Sequence[Policy] = (),
    violations: Mapping[str, Sequence[Violation]] | None = None,
    title: str = "Personal data map",
) -> DataMap:
    """Lay out the store's flows; ``violations`` (policy name -> found) are pinned to their flows."""
    owner = {system: p.name for p in policies for system in p.systems}
    rows = store.rows("map_flows")
    # keyed by (name, region) and (src, dst) tuples; the page's ids are just numbers, since any
    # string-built id ("name@region") can collide when names contain the separator
    nodes: dict[tuple[str, str | None], MapNode] = {}

    def node(name: str, region: str | None, role: str | None) -> MapNode:
        if (name, region) not in nodes:
            column = SOURCES if region is None else OURS if (role == "internal" or name in owner) else THEIRS
            nodes[name, region] = MapNode(f"n{len(nodes)}", name, region, role or "", column)
        return nodes[name, region]

    edges: dict[tuple[str, str], MapEdge] = {}
    for r in rows:
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

    found = [(name, v) for name, vs in (violations or {}).items() for v in vs]
    where = {r["event_id"]: r for r in store.rows("map_events", {"ids": sorted({v.event_id for _, v in found})})}
    listed = []
    for name, v in found:
        item = {"organisation": name, "clause": v.clause, "detail": v.detail, "event_id": v.event_id}
        listed.append(item)
        at = where.get(v.event_id)
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


def render_map(m: DataMap) -> str:
    """The page, as one HTML string."""
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
                   f'style="stroke-width:{width:.1f}px"/>')  # fmt: skip
    for n in m.nodes.values():
        colour = _ROLE_COLOURS.get(n.role, "#4a5568")
        flag = (
            f'<text class="flag" x="{n.x + _W - 8}" y="{n.y + 18}">⚠ {len(n.violations)}</text>' if n.violations else ""
        )
        region = f" · {n.region}" if n.region else ""
        svg.append(f'<g class="node{" bad" if n.violations else ""}" data-id="{e(n.id)}" data-name="{e(n.name)}" '
                   f'data-region="{e(n.region or "")}" '
                   f'data-column="{n.column}"><rect x="{n.x}" y="{n.y}" width="{_W}" height="{_H}" rx="5" '
                   f'style="fill:{colour}"/><text x="{n.x + 8}" y="{n.y + 17}">{e(n.name)}{e(region)}</text>'
                   f"{flag}</g>")  # fmt: skip
    data = {
        "nodes": {n.id: {"name": n.name, "region": n.region, "role": n.role, "organisations": sorted(n.organisations),
                         "events_in": n.events_in, "events_out": n.events_out, "violations": n.violations}
                  for n in m.nodes.values()},
        "edges": {x.id: {"src": x.src, "dst": x.dst, "cross_border": x.cross_border, **x.facts,
                         "violations": x.violations} for x in m.edges},
    }  # fmt: skip
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
    payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")  # no "</script" or "<!--" inside
    flows = sum(1 for x in m.edges)
    return _PAGE.format(
        title=e(m.title),
        summary=e(
            f"{len(m.nodes)} holders by region, {flows} flows, {len(crossing)} cross-border, "
            f"{len(m.violations)} policy violations"
        ),  # fmt: skip
        width=_WIDTH,
        height=m.height,
        svg="\n".join(svg),
        cross_rows=cross_rows or '<tr><td colspan="5">none</td></tr>',
        violation_rows=violation_rows or '<tr><td colspan="4">none found</td></tr>',
        data=payload,
        script=_SCRIPT,
        script_hash=_SCRIPT_HASH,
    )


def write_map(m: DataMap, out: Path) -> None:
    """Write the page, readable by its owner only."""
    page = render_map(m)
    with open_private(out, "--out") as f:
        f.write(page)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none';
  style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'">
<title>{title}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 0; color: #1a202c; background: #f7fafc; }}
header {{ padding: 12px 20px; background: #1a365d; color: white; }}
header h1 {{ font-size: 18px; margin: 0 0 4px; }}
.legend span {{ margin-right: 16px; }} .legend i {{ display: inline-block; width: 22px; height: 4px; margin-right: 5px;
  vertical-align: middle; }}
main {{ display: flex; align-items: flex-start; }}
#map {{ flex: none; }}
#details {{ position: sticky; top: 0; width: 360px; max-height: 100vh; overflow: auto; padding: 12px 16px;
  background: white; border-left: 1px solid #cbd5e0; min-height: 300px; }}
#details h2 {{ font-size: 15px; margin: 0 0 8px; word-break: break-all; }}
#details dt {{ font-weight: 600; margin-top: 6px; }} #details dd {{ margin: 0 0 0 8px; }}
#details .v {{ color: #c53030; }}
.band rect {{ fill: #edf2f7; stroke: #cbd5e0; }} .band text {{ fill: #4a5568; font-weight: 600; }}
.head {{ font-weight: 700; fill: #2d3748; font-size: 14px; }}
.node {{ cursor: pointer; }} .node text {{ fill: white; font-size: 12px; pointer-events: none; }}
.node.bad rect {{ stroke: #c53030; stroke-width: 3px; }} .node .flag {{ text-anchor: end; font-weight: 700; }}
.edge {{ fill: none; stroke: #a0aec0; opacity: .55; cursor: pointer; }}
.edge.cross {{ stroke: #dd6b20; opacity: .9; stroke-dasharray: 7 3; }}
.edge.violation {{ stroke: #c53030; opacity: .95; }}
.edge:hover, .edge.lit {{ opacity: 1; stroke-width: 5px !important; }}
svg.focus .edge:not(.lit) {{ opacity: .08; }}
#tip {{ position: fixed; pointer-events: none; background: #1a202c; color: white; padding: 6px 8px; border-radius: 4px;
  font-size: 12px; max-width: 380px; display: none; z-index: 2; }}
section {{ padding: 8px 20px 20px; }} table {{ border-collapse: collapse; background: white; }}
td, th {{ border: 1px solid #cbd5e0; padding: 3px 6px; text-align: left; vertical-align: top; }}
</style></head>
<body>
<header><h1>{title}</h1><div id="summary">{summary}</div>
<div class="legend"><span><i style="background:#a0aec0"></i>flow</span>
<span><i style="background:#dd6b20"></i>cross-border flow</span><span><i style="background:#c53030"></i>flow breaking a
 declared policy</span><span>hover for a summary, click for details</span></div></header>
<main><svg id="map" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">
{svg}
</svg>
<aside id="details"><h2>Details</h2><p>Click a system, party or flow.</p></aside></main>
<section><h2>Policy violations</h2><table id="violations"><tr><th>organisation</th><th>clause</th><th>what</th>
<th>event</th></tr>{violation_rows}</table>
<h2>Cross-border flows</h2><table id="crossings"><tr><th>from</th><th>to</th><th>events</th><th>mechanisms</th>
<th>categories</th></tr>{cross_rows}</table></section>
<div id="tip"></div>
<script id="map-data" type="application/json">{data}</script>
<script>{script}</script></body></html>
"""

# the page's one script; the CSP allows it by hash, so markup that slipped into the page could not run
_SCRIPT = """
"use strict";
const DATA = JSON.parse(document.getElementById("map-data").textContent);
const svg = document.getElementById("map"), tip = document.getElementById("tip");
const details = document.getElementById("details");
const ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"};
function esc(s) { return String(s).replace(/[&<>"]/g, c => ESC[c]); }
function label(id) { const n = DATA.nodes[id]; return n.name + (n.region ? " (" + n.region + ")" : ""); }
function summary(el) {
  const id = el.dataset.id;
  if (el.classList.contains("node")) {
    const n = DATA.nodes[id];
    return esc(label(id)) + " · " + esc(n.role || "source") + "<br>" + n.events_in + " events in, " + n.events_out +
      " out" + (n.violations.length ? "<br>⚠ " + n.violations.length + " policy violation(s)" : "");
  }
  const f = DATA.edges[id];
  return esc(label(f.src)) + " → " + esc(label(f.dst)) + "<br>" + f.events + " events, " + f.subjects + " subjects" +
    (f.cross_border ? "<br>cross-border via " + esc(f.mechanisms.filter(Boolean).join(", ") || "no mechanism") : "") +
    (f.violations.length ? "<br>⚠ " + f.violations.length + " policy violation(s)" : "");
}
function violations(list) {
  if (!list.length) return "";
  const more = list.length > 50 ? "<dd class='v'>and " + (list.length - 50) + " more: see the table below</dd>" : "";
  return "<dt class='v'>Policy violations (" + list.length + ")</dt>" + list.slice(0, 50).map(v =>
    "<dd class='v'>" + esc(v.organisation) + ", " + esc(v.clause) + ": " + esc(v.detail) + " <code>" +
    esc(v.event_id) + "</code></dd>").join("") + more;
}
function show(el) {
  const id = el.dataset.id;
  let body;
  if (el.classList.contains("node")) {
    const n = DATA.nodes[id];
    body = "<h2>" + esc(label(id)) + "</h2><dl><dt>Role</dt><dd>" + esc(n.role || "source of data") + "</dd>" +
      (n.organisations.length ? "<dt>Organisations</dt><dd>" + esc(n.organisations.join(", ")) + "</dd>" : "") +
      "<dt>Events</dt><dd>" + n.events_in + " in, " + n.events_out + " out</dd>" + violations(n.violations) + "</dl>";
  } else {
    const f = DATA.edges[id];
    body = "<h2>" + esc(label(f.src)) + " → " + esc(label(f.dst)) + "</h2><dl>" +
      "<dt>Cross-border</dt><dd>" + (f.cross_border ? "yes, via " + esc(f.mechanisms.filter(Boolean).join(", ") ||
      "no mechanism recorded") : "no") + "</dd><dt>Events</dt><dd>" + f.events + " (" + f.bulk_events +
      " bulk exports)</dd><dt>Subjects</dt><dd>" + f.subjects + "</dd><dt>Categories</dt><dd>" +
      esc(f.categories.join(", ")) + "</dd><dt>Seen</dt><dd>" + esc(f.first_seen) + " to " + esc(f.last_seen) +
      "</dd>" + violations(f.violations) + "</dl>";
  }
  details.innerHTML = body;
  details.dataset.shown = id;
}
function focus(el) {
  svg.querySelectorAll(".lit").forEach(x => x.classList.remove("lit"));
  if (!el) { svg.classList.remove("focus"); return; }
  const id = el.dataset.id;
  svg.querySelectorAll(".edge").forEach(x => {
    if (x === el || x.dataset.src === id || x.dataset.dst === id) x.classList.add("lit");
  });
  svg.classList.add("focus");
}
svg.addEventListener("mousemove", ev => {
  const el = ev.target.closest(".node, .edge");
  if (!el) { tip.style.display = "none"; focus(null); return; }
  tip.innerHTML = summary(el);
  tip.style.display = "block";
  tip.style.left = (ev.clientX + 14) + "px";
  tip.style.top = (ev.clientY + 14) + "px";
  focus(el);
});
svg.addEventListener("mouseleave", () => { tip.style.display = "none"; focus(null); });
svg.addEventListener("click", ev => { const el = ev.target.closest(".node, .edge"); if (el) show(el); });
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
