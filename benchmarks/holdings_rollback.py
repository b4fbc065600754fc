"""What a late event costs the holdings engine, by the size of its state: the rollback against the replay.

For each size, the seed world's events are applied to one engine in time order; then it is rolled
back to the time of its last 1% of events (what a late event does) and those events applied again.
The baseline is that replay, same run: a rollback proportional to what it undoes would cost about
as much; one that walks the whole state grows with the state instead.

    ./run bench holdings_rollback [--subjects 1000 4000]     # per organisation
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import load  # noqa: E402
from holdings_maintainer import _world  # noqa: E402

from lineage import Codec  # noqa: E402
from lineage.holdings import HoldingsEngine, event_from_record  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, nargs="+", default=[1000, 4000], help="per organisation, each a run")
    args = parser.parse_args()
    codec = Codec()
    print(load())
    for subjects in args.subjects:
        events = [event_from_record(codec.decode_record(v)) for v in _world(subjects)]
        events.sort(key=lambda e: e.sort_key())
        engine = HoldingsEngine()
        engine.apply(events, ordered=True)
        runs = sum(1 for _ in engine.runs())
        cut = events[len(events) * 99 // 100].at
        start = time.perf_counter()
        engine.rollback(cut)
        rollback = time.perf_counter() - start
        again = [e for e in events if e.at >= cut]
        start = time.perf_counter()
        engine.apply(again, ordered=True)
        replay = time.perf_counter() - start
        print(f"5 organisations x {subjects:,} subjects: {len(events):,} events, {runs:,} runs; rollback to the last "
              f"1% ({len(again):,} events): {rollback:.2f} s; their replay (baseline): {replay:.2f} s "
              f"({rollback / replay:.0f}x)")  # fmt: skip
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
