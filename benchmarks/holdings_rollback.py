"""What a late event costs the holdings engine, by the size of its state: the rollback against the replay.

For each size, the seed world's events are applied to one engine in time order; then it is rolled
back to the time of its last 1% of events (what a late event does) and those events applied again.
Baselines in the same run: that replay, and the same rollback with the undo journal off
(``undo_limit = 0``: the rollback walks every run, flow and link, as before the journal). A rollback
proportional to what it undoes costs about as much as the replay or less; the walk grows with the state.

    ./run bench holdings_rollback [--subjects 1000 4000]     # per organisation
"""

from __future__ import annotations

import argparse
import gc
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
        cut = events[len(events) * 99 // 100].at
        again = [e for e in events if e.at >= cut]
        took = {}
        for way, limit in (("by the journal", HoldingsEngine().undo_limit), ("rebuilt from the runs", 0)):
            engine = HoldingsEngine()
            engine.undo_limit = limit  # 0: the journal keeps nothing, so the rollback walks the whole state
            engine.apply(events, ordered=True)
            runs = sum(1 for _ in engine.runs())
            gc.collect()  # what the apply left to the collector is not the rollback's
            start = time.perf_counter()
            engine.rollback(cut)
            rollback = time.perf_counter() - start
            gc.collect()
            start = time.perf_counter()
            engine.apply(again, ordered=True)
            took[way] = rollback, time.perf_counter() - start
            del engine
        print(f"5 organisations x {subjects:,} subjects: {len(events):,} events, {runs:,} runs; rollback to the last "
              f"1% ({len(again):,} events), then their replay:")  # fmt: skip
        for way, (rollback, replay) in took.items():
            print(f"  {way}: rollback {rollback * 1000:,.1f} ms, replay {replay * 1000:,.1f} ms")
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
