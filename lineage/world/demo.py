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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from lineage.contract.events import Party
from lineage.contract.taxonomy import Taxonomy
from lineage.errors import ConfigurationError
from lineage.ingest.consumer import IngestConsumer
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.present.datamap import write_map
from lineage.present.formats import render
from lineage.private import private_dir
from lineage.service import answers
from lineage.settings import Settings
from lineage.store import Store, StoreLocation
from lineage.transport.clients import event_sink
from lineage.transport.kafka import create_topics
from lineage.world.organisations import build
from lineage.world.sim import Injected, Plan, WorldSize, emit

__all__ = ["BREACHED", "DemoResult", "demo_reports", "prepare_out", "run_demo"]

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


def demo_reports(
    store: Store,
    plans: Sequence[Plan],
    injected: Sequence[Injected],
    size: WorldSize,
    taxonomy: Taxonomy,
    say: Callable[[str], None],
) -> tuple[int, bool]:
    """Print the reports an analyst would, each through the answer service as the CLI prints it (stamped alike).

    An access report for the chattiest MoChat adult, a breach of ``BREACHED`` over the last 30 days,
    the transfer register, and every policy's violations set against the injected ones. Returns how
    many violations were found, and whether they are exactly the injected ones.
    """
    mochat = next(p for p in plans if p.org.key == "mochat")
    say(render(answers.access(store, _chatty_subject(mochat), taxonomy, size.end), "markdown"))
    t1, t2 = size.end - timedelta(days=30), size.end
    say(render(answers.breach(store, [BREACHED], t1, t2, taxonomy, aware=size.end)[0], "markdown"))
    say(render(answers.transfers(store, taxonomy, size.end), "markdown"))
    checks = {p.policy.name: answers.check(store, p.policy, size.end) for p in plans}
    summary = []
    exact = True
    for p in plans:
        want = Counter((i.clause, i.event_id) for i in injected if i.organisation == p.org.key)
        got = Counter((str(v["clause"]), str(v["event_id"])) for v in checks[p.policy.name][2]["violations"])
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
        say(render(checks[p.policy.name], "markdown"))
    return sum(len(doc[2]["violations"]) for doc in checks.values()), exact


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
    found, exact = demo_reports(store, plans, injected, size, taxonomy, say)
    page = out / "map.html"
    drawn = answers.data_map(store, taxonomy, [p.policy for p in plans], size.end,
                             title="Seed world: personal data map")  # fmt: skip
    write_map(drawn.map, page, drawn.stamp.facts())
    m = drawn.map
    crossing = sum(1 for e in m.edges if e.cross_border)
    say(f"== wrote {page}: {len(m.nodes)} holders, {len(m.edges)} flows, {crossing} cross-border, "
        f"{len(m.violations)} policy violations")  # fmt: skip
    say(f"== demo done in {time.monotonic() - started:.1f} s; store in {store_dir}")
    return DemoResult(
        sent=sent,
        events=stats.accepted,
        dead_letters=stats.dead_letters,
        injected=len(injected),
        found=found,
        exact=exact,
        store=store_dir,
        map=page,
    )
