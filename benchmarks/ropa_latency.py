"""`lineage ropa` latency on the answers_latency history (default 1M subjects / 20M events), beside baselines, same run.

The history is answers_latency's (written straight into an embedded store as ``compact`` leaves it):
every subject collected by app and crm, shared with pay and sms, transferred to hk-store, 1 in 40 a
child under 14, plus two-hop bulk exports. Baselines, on the same store in the same run: a full scan
of the flow columns the record reads (count, distinct subjects, categories), and the transfer
register (one aggregate over the cross-border arrivals).

    ./run bench ropa_latency [--subjects 1000000] [--samples 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import embedded  # noqa: E402
from answers_latency import write  # noqa: E402

from lineage import default_taxonomy  # noqa: E402
from lineage.answers import transfers_register  # noqa: E402
from lineage.answers.ropa import ropa  # noqa: E402
from lineage.store import Store  # noqa: E402

FULL_SCAN = (
    "SELECT count(*) AS n, count(DISTINCT subject_id) AS subjects, count(DISTINCT holder_name) AS holders, "
    "list_distinct(flatten(list(categories))) AS categories FROM events "
    "WHERE event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED')"
)


def timed(label: str, samples: int, run: Callable[[], object]) -> float:
    """Median seconds of ``samples`` runs of ``run``, printed with the spread."""
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    print(f"{label:<34} median {median:7.2f} s   min {min(times):7.2f} s   max {max(times):7.2f} s")
    return median


def main() -> None:
    """Write the history, then time the record of processing beside the baselines."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    taxonomy = default_taxonomy()
    with tempfile.TemporaryDirectory(prefix="ropa-bench-") as folder:
        shape = embedded(Path(folder))
        t = time.perf_counter()
        rows = write([shape], args.subjects)
        print(f"wrote {rows:,} events for {args.subjects:,} subjects in {time.perf_counter() - t:.1f} s")
        # the record reads the events alone; without stored holdings a store computes them in memory
        # first (what the maintainer keeps in a deployment), which is not what this times
        store = Store(shape.location, holdings=False)
        store.snapshot = store.location.load().current_snapshot().snapshot_id  # type: ignore[union-attr]
        scan = timed("baseline: full scan of the flows", args.samples, lambda: store.sql(FULL_SCAN))
        transfers = timed("baseline: transfers register", args.samples, lambda: transfers_register(store, taxonomy))
        record = ropa(store, taxonomy)
        took = timed("ropa", args.samples, lambda: ropa(store, taxonomy))
        print(f"ropa: {len(record.activities)} activities, {len(record.assessments)} flags; "
              f"{took / scan:.1f}x the full scan, {took / transfers:.1f}x the transfers register")  # fmt: skip


if __name__ == "__main__":
    main()
