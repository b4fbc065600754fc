"""The ``lineage`` command: one function per sub-command; ``main`` returns the exit code.

Errors lineage raises become one line on stderr and exit code 2; bad input lines in ``emit`` give
exit code 1 after every good line has been sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from lineage.errors import ConfigurationError, InputLineError, LineageError
from lineage.private import open_private
from lineage.settings import Settings

if TYPE_CHECKING:
    from lineage.policy import Policy
    from lineage.sim import WorldSize
    from lineage.store import Store
    from lineage.taxonomy import Taxonomy

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        os.environ,
        bootstrap_servers=getattr(args, "bootstrap_servers", None),
        topic=getattr(args, "topic", None),
    )


def _taxonomy(settings: Settings) -> Taxonomy:
    from lineage.taxonomy import Taxonomy, default_taxonomy

    return Taxonomy.load([settings.taxonomy_dir]) if settings.taxonomy_dir else default_taxonomy()


def cmd_emit(args: argparse.Namespace) -> int:
    """Send JSON-lines events from a file or stdin; report each bad line with its number."""
    from lineage.emitter import Emitter
    from lineage.jsonlines import parse_lines

    settings = _settings(args)
    source: TextIO = sys.stdin if args.file in (None, "-") else open(args.file, encoding="utf-8")  # noqa: SIM115
    sent = bad = 0
    with (
        source,
        Emitter(system=args.system or "lineage-emit", region=args.region or "CN", settings=settings) as emitter,
    ):
        for item in parse_lines(source, system=args.system, region=args.region, taxonomy=emitter.taxonomy):
            if isinstance(item, InputLineError):
                bad += 1
                print(f"lineage emit: {item}", file=sys.stderr)
                continue
            emitter.emit(item)
            sent += 1
    print(f"sent {sent} event(s); {bad} bad line(s) refused", file=sys.stderr)
    return 1 if bad else 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print the topic's events as JSON lines, from the beginning, until it goes quiet."""
    from lineage.codec import Codec
    from lineage.jsonlines import event_to_json
    from lineage.kafka_client import read_messages

    settings = _settings(args)
    codec = Codec()
    for m in read_messages(settings, settings.topic, idle_timeout_s=args.idle, max_messages=args.max):
        try:
            event = codec.decode(m.value or b"", topic=m.topic, partition=m.partition, offset=m.offset)
        except LineageError as exc:
            print(f"lineage tail: {exc}", file=sys.stderr)
            continue
        print(json.dumps(event_to_json(event), ensure_ascii=False))
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    """Start or stop a local Kafka broker from the official jars."""
    from lineage.local_kafka import LocalBroker, fetch_jars, stop_saved

    settings = Settings.from_env(os.environ)
    state = settings.cache_dir / "broker.json"
    if args.action == "stop":
        stopped = stop_saved(state)
        print(f"stopped broker at {stopped}" if stopped else "no broker was running")
        return 0
    if args.action == "fetch":
        print(fetch_jars(settings.cache_dir))
        return 0
    if state.exists():
        print(json.loads(state.read_text(encoding="utf-8"))["bootstrap_servers"])
        return 0
    broker = LocalBroker(fetch_jars(settings.cache_dir), settings.cache_dir / "broker").start()
    broker.save_state(state)
    print(broker.bootstrap_servers)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Start a broker (unless LINEAGE_BOOTSTRAP_SERVERS names one), run the seed world through it, report."""
    import logging
    import uuid

    from lineage.demo import prepare_out, run_demo
    from lineage.local_kafka import LocalBroker, fetch_jars

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    size = _world_size(args)
    prepare_out(Path(args.out))  # a bad --out fails before a broker starts
    topic = f"lineage.demo.{uuid.uuid4().hex[:8]}"  # its own topics: a rerun starts clean, no real topic is touched

    def say(text: str) -> None:
        print(text, flush=True)

    def go(servers: str | None) -> int:
        overrides = {"bootstrap_servers": servers} if servers else {}
        settings = Settings.from_env(os.environ, topic=topic, dead_letter_topic=topic + ".dlq", **overrides)
        result = run_demo(settings, size, Path(args.out), _taxonomy(settings), say)
        return 0 if result.exact and result.dead_letters == 1 and result.events == result.sent else 1

    if "LINEAGE_BOOTSTRAP_SERVERS" in os.environ:
        return go(None)
    settings = Settings.from_env(os.environ)
    say(f"== fetching Kafka jars into {settings.cache_dir} (first run only) and starting a local broker")
    with LocalBroker(fetch_jars(settings.cache_dir)) as broker:
        say(f"== broker ready at {broker.bootstrap_servers}")
        code = go(broker.bootstrap_servers)
    say("== broker stopped")
    return code


def _world_size(args: argparse.Namespace) -> WorldSize:
    from lineage.sim import DEFAULT_END, WorldSize

    end = _time("--end", args.end) or DEFAULT_END
    return WorldSize(subjects=args.subjects, days=args.days, seed=args.seed, violations=args.violations, end=end)


def cmd_sim(args: argparse.Namespace) -> int:
    """Simulate the seed organisations into Kafka; optionally list the injected breaches."""
    from lineage.kafka_client import KafkaEventSink, create_topics
    from lineage.sim import emit
    from lineage.world import build

    settings = _settings(args)
    size = _world_size(args)
    taxonomy = _taxonomy(settings)
    plans, injected = build(size, taxonomy, args.org)
    listing = open_private(args.injected_out, "--injected-out") if args.injected_out else None  # fail before sending
    create_topics(settings, [settings.topic, settings.dead_letter_topic])
    sink = KafkaEventSink(settings)
    try:
        sent = emit(plans, sink, taxonomy, settings, progress=lambda n: print(f"  {n:,} events sent", file=sys.stderr))
    finally:
        sink.close(settings.delivery_timeout_s)
    for p in plans:
        print(f"{p.org.key}: {size.subjects} subjects, {len(p.events):,} events, "
              f"{sum(1 for i in injected if i.organisation == p.org.key)} injected breaches")  # fmt: skip
    print(f"sent {sent:,} events to {settings.topic} ({size.days} days to {size.end:%Y-%m-%d}, seed {size.seed})")
    # the simulated services stop at the end of the history; judged later, data they would have
    # purged since then would count as kept too long
    print(f"judge retention as of the history's end: lineage check ... --now {size.end.isoformat()}")
    if listing is not None:
        with listing:
            for i in injected:
                listing.write(json.dumps(dataclasses.asdict(i)) + "\n")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Consume the event topic (or an Avro file) into the store until stopped; SIGTERM/SIGINT end it cleanly."""
    import logging
    import signal
    import threading

    from lineage.consumer import IngestConsumer, terminal_progress

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = _settings(args)
    store_dir = Path(args.store) if args.store else settings.store_dir
    taxonomy = _taxonomy(settings)
    if args.from_file:
        from lineage.backfill import ingest_file

        stats = ingest_file(Path(args.from_file), settings, store_dir=store_dir, taxonomy=taxonomy)
        print(stats.line(), file=sys.stderr)
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    consumer = IngestConsumer(
        settings,
        store_dir=store_dir,
        group_id=args.group or settings.group_id,
        taxonomy=taxonomy,
        segment_rows=args.segment_rows,
        on_progress=terminal_progress,
        instance_id=args.instance_id,
    )
    stats = consumer.run(stop, idle_exit_s=args.exit_when_idle)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(stats.line(), file=sys.stderr)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    """Print the flow graph's summary and flows; export GraphML and node-link JSON."""
    from lineage.graph import FlowGraph, export, summarise
    from lineage.store import Store

    settings = Settings.from_env(os.environ)
    store = Store(Path(args.store) if args.store else settings.store_dir)
    g = FlowGraph.from_rows(store.rows("flow_edges"), _taxonomy(settings)).to_networkx()
    s = summarise(g)
    print(
        f"{s.holders} holders, {s.regions} regions, {s.flows} flows "
        f"({s.cross_border_flows} cross-border), {s.events} flow events"
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


def cmd_compact(args: argparse.Namespace) -> int:
    """Merge small segments; remove superseded ones past the grace period."""
    from lineage.store import Store

    settings = Settings.from_env(os.environ)
    report = Store(Path(args.store) if args.store else settings.store_dir).compact(grace_s=args.grace)
    print(f"merged {report.segments_in} segments into {report.merged_groups}; removed {report.removed} old files")
    return 0


def _time(option: str, text: str | None) -> datetime | None:
    from lineage.errors import InvalidEventError

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEventError(option, text, "is not an ISO 8601 time (e.g. 2026-05-01T08:00:00+08:00)") from None
    if value.tzinfo is None:
        raise InvalidEventError(option, text, "needs a UTC offset (e.g. +08:00 or Z)")
    return value


def _store(args: argparse.Namespace, settings: Settings) -> Store:
    from lineage.store import Store

    return Store(Path(args.store) if args.store else settings.store_dir)


def cmd_access(args: argparse.Namespace) -> int:
    """Answer a data subject's access request."""
    from lineage.answers import access_request
    from lineage.formats import render
    from lineage.reports import access_document

    settings = Settings.from_env(os.environ)
    report = access_request(_store(args, settings), args.identifier, _taxonomy(settings), _time("--as-of", args.as_of))
    if not report.holds_data:
        print(f"No data held about {args.identifier!r} as of {report.as_of.isoformat()}.")
        return 0
    print(render(access_document(report), args.format), end="")
    return 0


def cmd_breach(args: argparse.Namespace) -> int:
    """Estimate a breach's impact and the indicative notifications it triggers."""
    import csv

    from lineage.answers import breach_impact
    from lineage.errors import InvalidEventError
    from lineage.formats import render
    from lineage.reports import breach_document

    settings = Settings.from_env(os.environ)
    t1, t2 = _time("--from", args.t1), _time("--to", args.t2)
    if t1 is None or t2 is None:
        raise InvalidEventError("--from/--to", None, "both are required")
    report = breach_impact(
        _store(args, settings), args.node, t1, t2, _taxonomy(settings), aware_at=_time("--aware", args.aware)
    )
    if args.subjects_out:
        with open_private(args.subjects_out, "--subjects-out", newline="") as f:  # a list of people
            writer = csv.writer(f)
            writer.writerow(["subject", "jurisdiction", "age_band", "category", "holder", "reached_at", "encrypted"])
            for r in report.records:
                writer.writerow([r["subject"], r["jurisdiction"] or "", r["age_band"], r["category"], r["holder"],
                                 r["reached_at"].isoformat(), r["encrypted"]])  # fmt: skip
    print(render(breach_document(report), args.format), end="")
    return 0


def cmd_erasure(args: argparse.Namespace) -> int:
    """Plan a subject's erasure across every holder."""
    from lineage.answers import erasure_plan
    from lineage.formats import render

    settings = Settings.from_env(os.environ)
    plan = erasure_plan(_store(args, settings), args.identifier, _taxonomy(settings), _time("--as-of", args.as_of))
    if not plan.holders:
        print(f"No data held about {args.identifier!r} as of {plan.as_of.isoformat()}: nothing to erase.")
        return 0
    facts = {"identifier": plan.identifier, "as_of": plan.as_of, "complete": plan.complete, "rule": plan.rule}
    print(render((f"Erasure plan: {plan.identifier}", facts, {"holders": plan.holders}), args.format), end="")
    return 0


def cmd_transfers(args: argparse.Namespace) -> int:
    """The cross-border transfer register, set against the PIPL thresholds."""
    from lineage.answers import transfers_register
    from lineage.formats import render
    from lineage.reports import transfers_document

    settings = Settings.from_env(os.environ)
    rows = transfers_register(_store(args, settings), _taxonomy(settings), _time("--as-of", args.as_of))
    print(render(transfers_document(rows), args.format), end="")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Data held past its retention period."""
    from lineage.answers import retention_register
    from lineage.formats import render

    settings = Settings.from_env(os.environ)
    rows = retention_register(_store(args, settings), _time("--now", args.now))
    facts = {"overdue_holdings": len(rows)}
    print(render(("Held past retention", facts, {"overdue": rows}), args.format), end="")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Report every flow that breaks a declared policy; exit 1 when there is any."""
    from lineage.formats import render
    from lineage.policy import check, load_policy
    from lineage.reports import check_document

    settings = Settings.from_env(os.environ)
    taxonomy = _taxonomy(settings)
    policy = load_policy(Path(args.policy), taxonomy)
    found = check(_store(args, settings), policy, _time("--now", args.now))
    print(render(check_document(policy.name, found), args.format), end="")
    return 1 if found else 0


def _policies(arg: list[str] | None, taxonomy: Taxonomy) -> list[Policy]:
    """Policies from files and folders (every ``*.toml`` in a folder)."""
    from lineage.policy import load_policy

    paths: list[Path] = []
    for item in arg or []:
        p = Path(item)
        found = sorted(p.glob("*.toml")) if p.is_dir() else [p]
        if not found:
            raise ConfigurationError("--policy", f"{item} is a folder with no *.toml policy file")
        paths.extend(found)
    return [load_policy(p, taxonomy) for p in paths]


def cmd_map(args: argparse.Namespace) -> int:
    """Write the data map page; with policies, their violations are highlighted."""
    from lineage.datamap import build_map, write_map
    from lineage.policy import check

    settings = Settings.from_env(os.environ)
    if not Path(args.out).parent.is_dir():  # before the checks, which can take a while
        raise ConfigurationError("--out", f"{Path(args.out).parent} is not a folder")
    taxonomy = _taxonomy(settings)
    store = _store(args, settings)
    policies = _policies(args.policy, taxonomy)
    now = _time("--now", args.now)
    found = {p.name: check(store, p, now) for p in policies}
    m = build_map(store, taxonomy, policies, found)
    write_map(m, Path(args.out))
    crossing = sum(1 for e in m.edges if e.cross_border)
    print(f"wrote {args.out}: {len(m.nodes)} holders, {len(m.edges)} flows, {crossing} cross-border, "
          f"{len(m.violations)} policy violations")  # fmt: skip
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lineage", description="Track where personal data goes.")
    sub = p.add_subparsers(dest="command", required=True)

    def kafka_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--bootstrap-servers", help="host:port[,host:port] (env LINEAGE_BOOTSTRAP_SERVERS)")
        sp.add_argument("--topic", help="event topic (env LINEAGE_TOPIC, default lineage.events)")

    emit = sub.add_parser("emit", help="send JSON-lines events (one per line) from FILE or stdin")
    emit.add_argument("file", nargs="?", help="JSON-lines file; '-' or nothing for stdin")
    emit.add_argument("--system", help="emitting system, for lines that do not name one")
    emit.add_argument("--region", help="ISO 3166 code where that system runs")
    kafka_opts(emit)
    emit.set_defaults(func=cmd_emit)

    tail = sub.add_parser("tail", help="print the topic's events as JSON lines")
    tail.add_argument("--idle", type=float, default=5.0, help="stop after this many quiet seconds")
    tail.add_argument("--max", type=int, default=None, help="stop after this many events")
    kafka_opts(tail)
    tail.set_defaults(func=cmd_tail)

    broker = sub.add_parser("broker", help="run a local Kafka broker from the official jars")
    broker.add_argument("action", choices=["start", "stop", "fetch"])
    broker.set_defaults(func=cmd_broker)

    ingest = sub.add_parser("ingest", help="consume events into the lineage store (Ctrl-C or SIGTERM to stop)")
    ingest.add_argument("--store", help="store folder (env LINEAGE_STORE_DIR, default lineage-store)")
    ingest.add_argument("--group", help="consumer group (env LINEAGE_GROUP_ID, default lineage-ingest)")
    ingest.add_argument("--instance-id", help="static group membership id, unique per process (fast restarts)")
    ingest.add_argument("--from-file", help="ingest an Avro container file (backfill/replay) instead of Kafka")
    ingest.add_argument("--segment-rows", type=int, default=50_000, help="rows per segment before a flush")
    ingest.add_argument("--exit-when-idle", type=float, default=None, help="stop after this many idle seconds")
    kafka_opts(ingest)
    ingest.set_defaults(func=cmd_ingest)

    graph = sub.add_parser("graph", help="summarise the flow graph; export GraphML / node-link JSON")
    graph.add_argument("--store", help="store folder")
    graph.add_argument("--graphml", help="write GraphML here")
    graph.add_argument("--json", help="write node-link JSON here")
    graph.set_defaults(func=cmd_graph)

    compact = sub.add_parser("compact", help="merge small store segments")
    compact.add_argument("--store", help="store folder")
    compact.add_argument("--grace", type=float, default=300.0, help="keep superseded files this many seconds")
    compact.set_defaults(func=cmd_compact)

    def answer_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--store", help="store folder (env LINEAGE_STORE_DIR)")
        sp.add_argument("--format", choices=["markdown", "json", "csv"], default="markdown")

    access = sub.add_parser("access", help="answer a data subject's access request")
    access.add_argument("identifier", help="any identifier of the subject (account id, device id, hashed e-mail)")
    access.add_argument("--as-of", help="answer as the history stood at this ISO 8601 time")
    answer_opts(access)
    access.set_defaults(func=cmd_access)

    breach = sub.add_parser("breach", help="whose data a breached holder exposed, and what to notify")
    breach.add_argument("--node", action="append", required=True, help="a compromised holder (repeatable)")
    breach.add_argument("--from", dest="t1", required=True, help="start of the breach window (ISO 8601)")
    breach.add_argument("--to", dest="t2", required=True, help="end of the breach window (ISO 8601)")
    breach.add_argument("--aware", help="when the breach became known (default: now); deadlines count from it")
    breach.add_argument("--subjects-out", help="write the affected subjects to this CSV file (created 0600)")
    answer_opts(breach)
    breach.set_defaults(func=cmd_breach)

    erasure = sub.add_parser("erasure", help="plan a subject's erasure across every holder")
    erasure.add_argument("identifier", help="any identifier of the subject")
    erasure.add_argument("--as-of", help="as the history stood at this ISO 8601 time")
    answer_opts(erasure)
    erasure.set_defaults(func=cmd_erasure)

    transfers = sub.add_parser("transfers", help="the cross-border transfer register")
    transfers.add_argument("--as-of", help="as the history stood at this ISO 8601 time")
    answer_opts(transfers)
    transfers.set_defaults(func=cmd_transfers)

    retention = sub.add_parser("retention", help="data still held past its retention period")
    retention.add_argument("--now", help="judge as of this ISO 8601 time (default: now)")
    answer_opts(retention)
    retention.set_defaults(func=cmd_retention)

    check = sub.add_parser("check", help="report the flows that break a declared policy file")
    check.add_argument("--policy", required=True, help="a policy TOML file (see policies/)")
    check.add_argument("--now", help="judge retention as of this ISO 8601 time (default: now)")
    answer_opts(check)
    check.set_defaults(func=cmd_check)

    def world_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--subjects", type=int, default=1000, help="data subjects per organisation (default 1000)")
        sp.add_argument("--days", type=int, default=365, help="days of history (default 365)")
        sp.add_argument("--seed", type=int, default=7, help="random seed: the same seed sends the same events")
        sp.add_argument("--violations", type=int, default=2, help="breaches injected per policy clause (default 2)")
        sp.add_argument("--end", help="the history's last moment, ISO 8601 (default 2026-11-01T00:00Z)")

    sim = sub.add_parser("sim", help="simulate the five seed organisations' events into Kafka")
    world_opts(sim)
    sim.add_argument("--org", action="append", help="only this organisation (repeatable): mochat, moqi-shanghai, "
                     "shenzhen-ru, mooffers, mall")  # fmt: skip
    sim.add_argument("--injected-out", help="write the injected breaches here as JSON lines")
    kafka_opts(sim)
    sim.set_defaults(func=cmd_sim)

    dmap = sub.add_parser("map", help="write the data map: one self-contained HTML page")
    dmap.add_argument("--out", default="map.html", help="the page to write (default map.html)")
    dmap.add_argument("--policy", action="append", help="a policy file or a folder of them (repeatable)")
    dmap.add_argument("--now", help="judge retention as of this ISO 8601 time (default: now)")
    dmap.add_argument("--store", help="store folder (env LINEAGE_STORE_DIR)")
    dmap.set_defaults(func=cmd_map)

    demo = sub.add_parser("demo", help="the seed world through a real broker: reports, policy checks, the map")
    world_opts(demo)
    demo.add_argument("--out", default="demo-output", help="folder for the store and map.html (default demo-output)")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LineageError as exc:
        print(f"lineage: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
