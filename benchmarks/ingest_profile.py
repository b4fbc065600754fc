"""The ingest path without Kafka, on the embedded store: decode, validate, buffer, commit; timed or profiled.

The same messages as ``ingest_throughput`` go through ``Ingestor.add`` and a ``flush`` every
``--segment-rows`` (the consumer's loop, with its collector paused between flushes), into a fresh
embedded store. Prints events/s per repeat and the time inside ``flush``; with ``--profile``,
pyinstrument's call tree of one more pass (and py-spy's, if it is installed, is left to the user).

    ./run bench ingest_profile [--events 200000] [--repeats 3] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import load  # noqa: E402
from ingest_throughput import _payloads  # noqa: E402

from lineage import default_taxonomy  # noqa: E402
from lineage.ingest.pipeline import Ingestor  # noqa: E402


def run(values: list[bytes], segment_rows: int) -> tuple[float, float, float, float, int]:
    """One pass into a fresh store: events/s, then wall and CPU seconds inside flush, CPU seconds in all, commits."""
    taxonomy = default_taxonomy()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as folder:
        ingestor = Ingestor(Path(folder), "bench", taxonomy=taxonomy)
        flushing = flushing_cpu = 0.0
        gc.disable()  # as the consumer does: the collector runs right after each flush only
        try:
            start, start_cpu = time.perf_counter(), time.process_time()
            for n, value in enumerate(values):
                ingestor.add(n % 3, n // 3, value)  # three partitions, as the topic has
                # the consumer checks once per polled batch (up to 20,000 messages), not per message
                if n % 1000 == 999 and ingestor.buffered_messages >= segment_rows:
                    t, c = time.perf_counter(), time.process_time()
                    ingestor.flush()
                    flushing += time.perf_counter() - t
                    flushing_cpu += time.process_time() - c
                    gc.collect()
            t, c = time.perf_counter(), time.process_time()
            ingestor.flush()
            end, end_cpu = time.perf_counter(), time.process_time()
            flushing += end - t
            flushing_cpu += end_cpu - c
        finally:
            gc.enable()
        return len(values) / (end - start), flushing, flushing_cpu, end_cpu - start_cpu, ingestor.writer.commits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--segment-rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print pyinstrument's call tree of one more pass")
    parser.add_argument("--all-frames", action="store_true", help="show the library frames pyinstrument hides")
    args = parser.parse_args()
    payloads = _payloads()
    values = [payloads[i % len(payloads)][1] for i in range(args.events)]
    for r in range(args.repeats):
        rate, flushing, flushing_cpu, cpu, commits = run(values, args.segment_rows)
        print(f"pass {r + 1}: {rate:>7,.0f} events/s ({len(values) / cpu:>7,.0f} per CPU second); "
              f"flush {flushing:.2f} s ({flushing_cpu:.2f} CPU s) in {commits} commits; {load()}")  # fmt: skip
    if args.profile:
        from pyinstrument import Profiler

        with Profiler(interval=0.001) as profiler:
            run(values, args.segment_rows)
        print(profiler.output_text(unicode=False, color=False, show_all=args.all_frames))
    return 0


if __name__ == "__main__":
    sys.exit(main())
