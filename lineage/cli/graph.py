"""``lineage graph``: the flow graph of holders and regions, summarised, and exported as GraphML or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from lineage.cli._common import store_for, taxonomy_for, told
from lineage.cli.options import add_store_options, settings_from

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-command."""
    graph = sub.add_parser("graph", help="summarise the flow graph; export GraphML / node-link JSON")
    add_store_options(graph)
    graph.add_argument("--graphml", help="write GraphML here")
    graph.add_argument("--json", help="write node-link JSON here")
    graph.set_defaults(func=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    """Print the flow graph's summary and flows; export GraphML and node-link JSON."""
    from lineage.answers.graph import export, summarise
    from lineage.present.datamap import stamp_line
    from lineage.service import answers

    settings = settings_from(args)
    drawn = answers.graph(store_for(args, settings), taxonomy_for(settings))
    told(drawn.stamp.facts())
    g = drawn.graph
    s = summarise(g)
    print(
        f"{s.holders} holders, {s.regions} regions, {s.flows} flows "
        f"({s.cross_border_flows} cross-border), {s.events} flow events ({stamp_line(drawn.stamp.facts())})"
    )
    for u, v, d in sorted(g.edges(data=True)):
        if d["kind"] != "flow":
            continue
        border = " CROSS-BORDER via " + (", ".join(d["mechanisms"]) or "NO MECHANISM") if d["cross_border"] else ""
        print(
            f"  {u} -> {v}: {d['events']} events, {d['subjects']} subjects, {d['bulk_events']} bulk; "
            f"{', '.join(d['categories'])}{border}"
        )
    export(
        g,
        graphml=Path(args.graphml) if args.graphml else None,
        node_link=Path(args.json) if args.json else None,
    )
    return 0
