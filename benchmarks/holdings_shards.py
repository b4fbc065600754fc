"""The holdings engine on K subject shards beside one engine over everything, same run: what scale-out buys.

A nightly-exports world built as engine events (no store: this measures the engine's share of the
work, which is what shards divide): each person is collected by `app` on a random day of the year
(one or two categories, some with a linked device id), `app` exports every night to `analytics`,
which forwards weekly to `adnet`; 5% of people are erased at `app` later in the year. The baseline is
one ``HoldingsEngine`` over all events (what the maintainer does on one machine). Each K splits the
events with ``lineage.holdings.shards`` (a person's events to one shard, every bulk event to all) and
runs one engine per shard in turn: the slowest shard is the wall time K machines would take, and the
sum is the total work (each shard also reads every bulk event). Every K's runs are checked to add up
to the baseline's (``tests/holdings/test_shards.py`` checks they are the same runs).

    ./run bench holdings_shards [--people 100000] [--days 365] [--shards 2,4,8]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from lineage.holdings import Event, HoldingsEngine  # noqa: E402
from lineage.holdings.shards import split  # noqa: E402

_DAY = 86_400_000_000  # microseconds
_START = (datetime(2026, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
_CATEGORIES = ["user.contact.email", "user.contact.phone_number", "user.device.device_id"]


def _event(eid: str, kind: str, at: int, holder: str, **fields: object) -> Event:
    base: dict[str, object] = dict.fromkeys(Event.__slots__)  # type: ignore[attr-defined]
    base.update(event_id=eid, event_type=kind, at=at, scope="SUBJECT", subject_id=None, linked=(), categories=(),
                holder=holder, holder_role="internal", holder_region="CN", purpose="analytics.reporting")  # fmt: skip
    base.update(fields)
    return Event(**base)  # type: ignore[arg-type]


def world(people: int, days: int, seed: int = 1) -> list[Event]:
    """The nightly-exports world's events, in no particular order."""
    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(people):
        joined = _START + int(rng.uniform(0, days - 1) * _DAY)
        cats = tuple(rng.sample(_CATEGORIES, rng.choice((1, 2))))
        linked = (f"dev-{i // 2}",) if rng.random() < 0.2 else ()
        out.append(_event(f"c{i}", "COLLECTED", joined, "app", subject_id=f"p{i:07d}", categories=cats, linked=linked))
        if rng.random() < 0.05:
            at = joined + int(rng.uniform(1, 60) * _DAY)
            out.append(_event(f"x{i}", "ERASED", at, "app", subject_id=f"p{i:07d}", categories=("user",),
                              erasure_outcome="ERASED"))  # fmt: skip
    for day in range(1, days):
        at = _START + day * _DAY + 3_600_000_000
        out.append(
            _event(
                f"n{day}",
                "TRANSFERRED",
                at,
                "app",
                scope="BULK",
                recipient="analytics",
                recipient_role="processor",
                recipient_region="CN",
                categories=("user",),
                bulk_as_of=at,
            )
        )
        if day % 7 == 0:
            at += 3_600_000_000
            out.append(
                _event(
                    f"w{day}",
                    "SHARED",
                    at,
                    "analytics",
                    scope="BULK",
                    holder_role="processor",
                    recipient="adnet",
                    recipient_role="processor",
                    recipient_region="HK",
                    categories=("user.contact",),
                    mechanism="gba.standard_contract",
                    bulk_as_of=at,
                )
            )
    return out


def _run(events: list[Event]) -> tuple[int, float]:
    """One engine over ``events``: how many runs it made, and how long it took.

    The engine is dropped after, as on a machine of its own: K engines kept alive in one process
    would make Python's collector walk all of them during the next shard's run.
    """
    started = time.perf_counter()
    engine = HoldingsEngine()
    engine.apply(events)
    seconds = time.perf_counter() - started
    return sum(1 for _ in engine.runs()), seconds


def main() -> int:
    """Print the baseline and each K's slowest shard, total work and merge, in one run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--shards", default="2,4,8")
    args = parser.parse_args()
    events = world(args.people, args.days)
    bulk = sum(1 for e in events if e.scope == "BULK")
    print(f"{args.people:,} people, {len(events):,} events ({bulk} bulk), {args.days} days")
    runs, base = _run(events)
    print(f"one engine (baseline):  {base:6.2f} s   {runs:,} runs")
    for k in (int(x) for x in args.shards.split(",")):
        parts = split(events, k)
        timed = [_run(p) for p in parts]
        slowest, total = max(t for _, t in timed), sum(t for _, t in timed)
        assert sum(n for n, _ in timed) == runs, "the shards' runs add up to the baseline's"
        biggest = max(len(p) for p in parts)
        print(f"{k} shards: slowest {slowest:6.2f} s ({base / slowest:4.1f}x faster than one)   total {total:6.2f} s"
              f"   largest shard {biggest:,} events")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
