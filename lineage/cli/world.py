"""The seed world: ``lineage sim`` and ``lineage demo``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from lineage.cli._common import add_world_options, taxonomy_for, world_size
from lineage.cli.options import add_kafka_options, settings_from
from lineage.private import open_private
from lineage.settings import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    sim = sub.add_parser("sim", help="simulate the five seed organisations' events into Kafka")
    add_world_options(sim)
    sim.add_argument("--org", action="append", help="only this organisation (repeatable): mochat, moqi-shanghai, "
                     "shenzhen-ru, mooffers, mall")  # fmt: skip
    sim.add_argument("--injected-out", help="write the injected breaches here as JSON lines")
    add_kafka_options(sim)
    sim.set_defaults(func=cmd_sim)

    demo = sub.add_parser("demo", help="the seed world through a real broker: reports, policy checks, the map")
    add_world_options(demo)
    demo.add_argument("--out", default="demo-output", help="folder for the store and map.html (default demo-output)")
    demo.set_defaults(func=cmd_demo)


def cmd_sim(args: argparse.Namespace) -> int:
    """Simulate the seed organisations into Kafka; optionally list the injected breaches."""
    from lineage.transport.clients import event_sink
    from lineage.transport.kafka import create_topics
    from lineage.world.organisations import build
    from lineage.world.sim import emit

    settings = settings_from(args)
    size = world_size(args)
    taxonomy = taxonomy_for(settings)
    plans, injected = build(size, taxonomy, args.org)
    listing = open_private(args.injected_out, "--injected-out") if args.injected_out else None  # fail before sending
    try:
        create_topics(settings, [settings.topic, settings.dead_letter_topic])
        sink = event_sink(settings)
        try:
            sent = emit(plans, sink, taxonomy, settings,
                        progress=lambda n: print(f"  {n:,} events sent", file=sys.stderr))  # fmt: skip
        finally:
            sink.close(settings.delivery_timeout_s)
    except BaseException:
        if listing is not None:
            listing.discard()  # no half listing left beside the target
        raise
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


def cmd_demo(args: argparse.Namespace) -> int:
    """Start a broker (unless LINEAGE_BOOTSTRAP_SERVERS names one), run the seed world through it, report."""
    import logging
    import uuid

    from lineage.devtools.local_broker import LocalBroker, fetch_jars
    from lineage.logs import configure_logging
    from lineage.world.demo import prepare_out, run_demo
    configure_logging(logging.WARNING, "%(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    size = world_size(args)
    prepare_out(Path(args.out))  # a bad --out fails before a broker starts
    topic = f"lineage.demo.{uuid.uuid4().hex[:8]}"  # its own topics: a rerun starts clean, no real topic is touched

    def say(text: str) -> None:
        print(text, flush=True)

    def go(servers: str | None) -> int:
        overrides = {"bootstrap_servers": servers} if servers else {}
        settings = Settings.from_env(os.environ, topic=topic, dead_letter_topic=topic + ".dlq", **overrides)
        result = run_demo(settings, size, Path(args.out), taxonomy_for(settings), say)
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
