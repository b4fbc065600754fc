"""One holdings refresh of 1% new events against a full rebuild of the same store, same run.

The simulated seed world's events (time order) are stored in an embedded store: the first 99%, then
a long-running maintainer refreshes (its engine kept, as ``consumers.holdings`` keeps it); the last 1%
(from an instant's start) are stored and timed: (1) the maintainer's refresh of them, which appends
the rows that changed to their buckets (``--steps N``: in N refreshes, each timed, the buckets it
folds included); (2) a full rebuild (``lineage holdings --rebuild``: every event read and applied,
every row written). Printed: sizes, seconds, the ratio (target: <= 5%), and what the refresh wrote.
``--fold-budget S``: after each refresh the maintainer folds the buckets that fit in S seconds
(``HoldingsMaintainer.fold``, what ``consumers.holdings`` does with the time left of its interval),
timed apart from the refreshes. ``--lookups N``: a person's access answer (``access_request``) for N
people, median, on the table as the refreshes left it and again after the rebuild (one file a bucket).

    ./run bench holdings_refresh [--subjects 2000] [--steps 1] [--fold-budget 0] [--lookups 0]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import load  # noqa: E402

from lineage import Codec, default_taxonomy  # noqa: E402
from lineage.answers import access_request  # noqa: E402
from lineage.ingest.holdings import HoldingsMaintainer  # noqa: E402
from lineage.ingest.pipeline import Ingestor  # noqa: E402
from lineage.store import Store, StoreLocation  # noqa: E402
from lineage.store.holdings import BUCKETS, FOLDED, load_holdings  # noqa: E402
from lineage.testing import MemorySink  # noqa: E402
from lineage.world.organisations import build  # noqa: E402
from lineage.world.sim import WorldSize, emit  # noqa: E402


def _world(subjects: int) -> tuple[list[bytes], list[int]]:
    """The world's encoded events in time order, and each one's time."""
    taxonomy = default_taxonomy()
    plans, _ = build(WorldSize(subjects=subjects, days=365), taxonomy)
    sink = MemorySink()
    emit(plans, sink, taxonomy)
    codec = Codec()
    values = [m.value for m in sink.messages]
    return values, [int(codec.decode_record(v)["occurred_at"]) for v in values]


def _store(location: StoreLocation, values: list[bytes], first: int) -> None:
    ingestor = Ingestor(location, "events", taxonomy=default_taxonomy())
    for offset, value in enumerate(values, first):
        ingestor.add(0, offset, value)
    ingestor.flush()


def _written(location: StoreLocation, since: int | None) -> tuple[int, int, int, int]:
    """Data files deleted and added, rows written, and the table's stored rows, by the refreshes after ``since``.

    Stored rows: as the snapshot summary counts them, resets and the runs they drop included. The
    snapshots of folds between refreshes are left out.
    """
    table = load_holdings(location)
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    total = int(snapshot.summary.additional_properties["total-records"])
    deleted = added = rows = 0
    while snapshot is not None and snapshot.snapshot_id != since:
        assert snapshot.summary is not None
        props = snapshot.summary.additional_properties
        if FOLDED not in props:
            deleted += int(props.get("deleted-data-files", 0))
            added += int(props.get("added-data-files", 0))
            rows += int(props.get("added-records", 0))
        parent = snapshot.parent_snapshot_id
        snapshot = None if parent is None else table.snapshot_by_id(parent)
    return deleted, added, rows, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=2000, help="per organisation (1000: ~120,000 events)")
    parser.add_argument("--new", type=float, default=0.01, help="the share of events the refresh applies")
    parser.add_argument("--steps", type=int, default=1, help="refreshes the new events are applied in (mean and max)")
    parser.add_argument("--fold-budget", type=float, default=0.0, help="seconds a fold after each refresh may take")
    parser.add_argument("--lookups", type=int, default=0, help="people whose access answer is timed (median)")
    args = parser.parse_args()
    values, times = _world(args.subjects)
    split = len(values) - max(1, int(len(values) * args.new))
    while 0 < split < len(values) and times[split] == times[split - 1]:
        split -= 1  # not inside an instant: its first half would make the refresh roll back and replay it
    print(f"holdings refresh: {len(values):,} events of the seed world ({args.subjects} subjects per organisation); "
          f"{len(values) - split:,} new ({args.new:.2%}); {BUCKETS} buckets of runs; {load()}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-holdings-refresh-") as tmp:
        location = StoreLocation.embedded(Path(tmp))
        _store(location, values[:split], 0)
        maintainer = HoldingsMaintainer(location)
        base = maintainer.refresh().snapshot
        seconds, applied, rolled = [], 0, False
        folds: list[float] = []
        folded_rows = folded_buckets = 0
        for start_at, end_at in _steps(times, split, args.steps):
            _store(location, values[start_at:end_at], start_at)
            start = time.perf_counter()
            done = maintainer.refresh()
            seconds.append(time.perf_counter() - start)
            applied, rolled = applied + done.events, rolled or done.rolled_back_to is not None
            start = time.perf_counter()
            folded = maintainer.fold(args.fold_budget)
            if folded is not None:
                folds.append(time.perf_counter() - start)
                folded_rows, folded_buckets = folded_rows + folded.rows, folded_buckets + len(folded.buckets)
        deleted, added, rows, total = _written(location, base)
        refresh = seconds[0] if len(seconds) == 1 else sum(seconds) / len(seconds)
        each = f" in {len(seconds)} refreshes: mean {refresh:.2f} s, max {max(seconds):.2f} s"
        each = each if len(seconds) > 1 else ""
        print(f"  refresh of the new events{each}: {sum(seconds):.2f} s ({applied:,} events applied"
              f"{', rolled back' if rolled else ''}); "
              f"{deleted} data files replaced by {added}, {rows:,} rows written")  # fmt: skip
        if folds:
            print(f"  folds between refreshes (budget {args.fold_budget:g} s): {len(folds)}, "
                  f"mean {sum(folds) / len(folds):.2f} s, max {max(folds):.2f} s (not in the refreshes'); "
                  f"{folded_buckets} buckets, {folded_rows:,} rows written")  # fmt: skip
        files = len(list(load_holdings(location).scan().plan_files()))
        print(f"  the table after: {files} data files, {total:,} rows stored (resets and the runs they drop included)")
        people = _people(values, args.lookups)
        if people:
            print(f"  a person's access answer, median of {len(people)}: {_lookup(location, people) * 1e3:.1f} ms")
        start = time.perf_counter()
        rebuilt = HoldingsMaintainer(location).refresh(rebuild=True)
        rebuild = time.perf_counter() - start
        rebuilt_rows = _written(location, None)[3]
        print(f"  full rebuild:               {rebuild:.2f} s "
              f"({rebuilt.events:,} events applied, {rebuilt_rows:,} rows)")  # fmt: skip
        if people:
            print(f"  the same after the rebuild:  {_lookup(location, people) * 1e3:.1f} ms")
        print(
            f"  ratio: the refresh took {refresh / rebuild:.1%} of a full rebuild (target <= 5%)"
            + (f"; the slowest {max(seconds) / rebuild:.1%}" if len(seconds) > 1 else "")
        )


def _people(values: list[bytes], n: int) -> list[str]:
    """``n`` subjects of the world, the same each run."""
    if n <= 0:
        return []
    codec = Codec()
    subjects = sorted({str(codec.decode_record(v)["subject_id"]) for v in values[::50]} - {"None"})
    return random.Random(1).sample(subjects, min(n, len(subjects)))


def _lookup(location: StoreLocation, people: list[str]) -> float:
    """The median time of one person's access answer, one store (its session kept) for all."""
    store, taxonomy, as_of = Store(location), default_taxonomy(), datetime(2030, 1, 1, tzinfo=UTC)
    access_request(store, people[0], taxonomy, as_of)  # the first opens the store
    times = []
    for person in people:
        start = time.perf_counter()
        access_request(store, person, taxonomy, as_of)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _steps(times: list[int], split: int, steps: int) -> list[tuple[int, int]]:
    """The new events (from ``split``) in ``steps`` parts of about equal size, none splitting an instant."""
    bounds = [split]
    for k in range(1, steps):
        cut = split + (len(times) - split) * k // steps
        while bounds[-1] < cut < len(times) and times[cut] == times[cut - 1]:
            cut -= 1
        if cut > bounds[-1]:
            bounds.append(cut)
    bounds.append(len(times))
    return list(zip(bounds, bounds[1:], strict=False))


if __name__ == "__main__":
    main()
