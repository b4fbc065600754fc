"""The demo: the seed world end to end on a real broker, then the reports an analyst would print.

Simulate the five seed organisations (``lineage.world.organisations``) into Kafka through the SDK, with one
malformed message among them; consume everything into a store with the ingest consumer (the bad
message goes to the dead-letter topic); then print an access report for one subject, a breach report
for one third party, the cross-border register and every policy violation set against the breaches
the simulator injected; and write the data map.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from lineage.answers import access_request, breach_impact, transfers_register
from lineage.answers.mapdata import map_data
from lineage.answers.policy_check import check
from lineage.contract.events import Party
from lineage.contract.taxonomy import Taxonomy
from lineage.errors import ConfigurationError
from lineage.ingest.consumer import IngestConsumer
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.present.datamap import build_map, write_map
from lineage.present.formats import render
from lineage.present.reports import access_document, breach_document, check_document, transfers_document
from lineage.private import private_dir
from lineage.settings import Settings
from lineage.store import Store, StoreLocation
from lineage.transport.clients import event_sink
from lineage.transport.kafka import create_topics
from lineage.world.organisations import build
from lineage.world.sim import Plan, WorldSize, emit

__all__ = ["BREACHED", "DemoResult", "prepare_out", "run_demo"]

BREACHED = "amap-location-sdk"  # a location SDK two of the seed organisations use
_MARKER = ".lineage-demo"  # says a folder is the demo's own, so a rerun may clear it


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo did: events through Kafka, breaches injected and found, the files written."""

    sent: int
    events: int
    dead_letters: int
    injected: int
    found: int
    exact: bool
    store: Path
    map: Path


def prepare_out(out: Path) -> Path:
    """Give the demo an empty store folder under ``out``, refusing to clear a folder it did not make.

    Idempotent; the CLI calls it before starting a broker, so a bad ``--out`` fails at once.
    """
    if out.is_symlink():
        raise ConfigurationError("--out", f"{out} is a symbolic link; name a new or empty folder")
    if out.exists() and not out.is_dir():
        raise ConfigurationError("--out", f"{out} is a file; name a new or empty folder")
    try:
        if out.exists() and any(out.iterdir()) and not (out / _MARKER).exists():
            raise ConfigurationError("--out", f"{out} exists and is not a demo folder; name a new or empty one")
        private_dir(out, "--out")
        (out / _MARKER).touch()
        shutil.rmtree(out / "store", ignore_errors=True)
    except OSError as exc:  # a read-only place, a folder we may not list: one line, before any broker starts
        raise ConfigurationError("--out", f"cannot use {out}: {exc.strerror}") from None
    return out / "store"


def _chatty_subject(p: Plan) -> str:
    """The adult whose data reached the most recipients: the access report worth reading."""
    reached: dict[str, set[str]] = defaultdict(set)
    adults = set(p.adults)
    for e in p.events:
        recipient = e.fields.get("recipient")
        if isinstance(recipient, Party) and e.fields.get("subject_id") in adults:
            reached[e.fields["subject_id"]].add(recipient.name)
    return max(sorted(reached), key=lambda s: len(reached[s]))


def run_demo(
    settings: Settings, size: WorldSize, out: Path, taxonomy: Taxonomy, say: Callable[[str], None]
) -> DemoResult:
    """Run the whole demo against the broker ``settings`` name; print through ``say``."""
    started = time.monotonic()
    store_dir = prepare_out(out)
    plans, injected = build(size, taxonomy)
    planned = sum(len(p.events) for p in plans)
    say(
        f"== world: 5 organisations x {size.subjects} subjects, {size.days} days to {size.end:%Y-%m-%d}, "
        f"seed {size.seed}: {planned:,} events, {len(injected)} injected policy breaches"
    )
    create_topics(settings, [settings.topic, settings.dead_letter_topic])
    sink = event_sink(settings)
    t = time.monotonic()
    try:
        sent = emit(plans, sink, taxonomy, settings)
        # a message no SDK would send, as a broken service might: it must reach the dead-letter topic
        sink.send(settings.topic, b"demo", b"\x00not an avro event", "malformed")
    finally:
        sink.close(settings.delivery_timeout_s)
    say(f"== sent {sent:,} events and 1 malformed message to {settings.topic} in {time.monotonic() - t:.1f} s")

    t = time.monotonic()
    consumer = IngestConsumer(
        settings, store_dir=store_dir, group_id=f"lineage-demo-{uuid.uuid4().hex[:8]}", taxonomy=taxonomy
    )
    stats = consumer.run(threading.Event(), idle_exit_s=3)
    say(f"== consumed in {time.monotonic() - t:.1f} s: {stats.line()}")
    if stats.accepted != sent:
        say(f"!! {sent - stats.accepted:,} of {sent:,} events missing from the store: the reports below are partial")
    # the answers read the holdings: bring them up to date with everything consumed
    say(f"== {HoldingsMaintainer(StoreLocation.embedded(store_dir)).refresh().line()}")
    store = Store(store_dir)

    mochat = next(p for p in plans if p.org.key == "mochat")
    subject = _chatty_subject(mochat)
    say(render(access_document(access_request(store, subject, taxonomy, size.end)), "markdown"))

    t1, t2 = size.end - timedelta(days=30), size.end
    report = breach_impact(store, [BREACHED], t1, t2, taxonomy, aware_at=size.end)
    say(render(breach_document(report), "markdown"))

    say(render(transfers_document(transfers_register(store, taxonomy, size.end)), "markdown"))

    found = {p.policy.name: check(store, p.policy, size.end) for p in plans}
    summary = []
    exact = True
    for p in plans:
        want = Counter((i.clause, i.event_id) for i in injected if i.organisation == p.org.key)
        got = Counter((v.clause, v.event_id) for v in found[p.policy.name])
        exact &= want == got
        summary.append(
            {
                "organisation": p.org.name,
                "policy": p.policy.name,
                "injected": sum(want.values()),
                "found": sum(got.values()),
                "exact_match": "yes" if want == got else "NO",
            }
        )
    say(render(("Policy violations: injected and found", {"exact_match": exact}, {"by_policy": summary}), "markdown"))
    for p in plans:
        say(render(check_document(p.policy.name, found[p.policy.name]), "markdown"))

    page = out / "map.html"
    m = build_map(map_data(store, found), taxonomy, [p.policy for p in plans], title="Seed world: personal data map")
    write_map(m, page)
    crossing = sum(1 for e in m.edges if e.cross_border)
    say(f"== wrote {page}: {len(m.nodes)} holders, {len(m.edges)} flows, {crossing} cross-border, "
        f"{len(m.violations)} policy violations")  # fmt: skip
    say(f"== demo done in {time.monotonic() - started:.1f} s; store in {store_dir}")
    return DemoResult(
        sent=sent,
        events=stats.accepted,
        dead_letters=stats.dead_letters,
        injected=len(injected),
        found=sum(len(v) for v in found.values()),
        exact=exact,
        store=store_dir,
        map=page,
    )
