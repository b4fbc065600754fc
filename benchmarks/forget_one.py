"""Forgetting one person in a large events table: time, and bytes rewritten beside the table's size.

The history is ``answers_latency``'s (default 1,000,000 subjects x 20 events, written as ``compact``
leaves a table: files of 150,000 subjects sorted by subject), in the embedded store. One subject in
the middle and their linked device are forgotten with ``forget_rows`` (the store side of
``lineage forget``: copy-on-write delete, every older snapshot expired, the files only they referred
to removed). No holdings table: a holdings refresh of 20M events is its own benchmark, and its
delete is the same call on a smaller table. Printed: seconds, files and bytes rewritten, the table's
files and bytes, and that a second run finds nothing left.

    ./run bench forget_one [--subjects 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import embedded, load  # noqa: E402
from answers_latency import write  # noqa: E402

from lineage.store.forget import forget_rows  # noqa: E402


def _digest(identifier: str) -> str:
    return hashlib.sha256(identifier.encode()).hexdigest()  # no key needed to time the store's work


def _data_files(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in (folder / "warehouse").rglob("*.parquet")}


def main() -> int:
    """Write the history, forget one person, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lineage-forget-") as tmp:
        shape = embedded(Path(tmp) / "store")
        started = time.perf_counter()
        rows = write([shape], args.subjects)
        print(f"wrote {rows:,} events of {args.subjects:,} subjects in {time.perf_counter() - started:.1f} s")
        before = _data_files(Path(tmp) / "store")
        middle = args.subjects // 2
        person = [f"u{middle:07d}", f"d{middle:07d}"]
        started = time.perf_counter()
        done = forget_rows(shape.location, person, digest=_digest, grace_s=0)
        took = time.perf_counter() - started
        after = _data_files(Path(tmp) / "store")
        gone = {p: s for p, s in before.items() if p not in after}
        new = {p: s for p, s in after.items() if p not in before}
        print(
            f"forget: {took:.2f} s; rows {done.events_rows}; data files rewritten {len(gone)} of {len(before)} "
            f"({sum(gone.values()) / 1e6:.1f} MB of {sum(before.values()) / 1e6:.1f} MB read and replaced by "
            f"{sum(new.values()) / 1e6:.1f} MB); snapshots expired {done.snapshots_expired}; "
            f"files removed {done.files_removed}; {load()}"
        )
        again = forget_rows(shape.location, person, digest=_digest, grace_s=0)
        print(f"second run: rows {again.events_rows}, files rewritten {again.files_rewritten}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
