"""The seed world as a workload: simulate, emit, ingest, check and map, each beside a baseline, same run.

(1) plan the five organisations; (2) emit every planned event through the SDK into a real broker,
beside a bare kafka-python producer sending the same bytes pre-encoded; (3) ingest them with
``consumers.ingest`` beside a raw poll loop over the same topic; (4) on the stored world: ``check``
of all five policies and the data map, beside one plain read of every event row into Python (what
any answer that is not pushed down into DuckDB would pay).

    ./run bench seed_world [--subjects 5000] [--days 365]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).parent))

from _stores import embedded  # noqa: E402
from emit_throughput import run_raw  # noqa: E402
from ingest_throughput import ingest, raw_poll  # noqa: E402

from lineage import Settings, default_taxonomy  # noqa: E402
from lineage.answers.mapdata import map_data  # noqa: E402
from lineage.answers.policy_check import check  # noqa: E402
from lineage.devtools.local_broker import LocalBroker, fetch_jars  # noqa: E402
from lineage.ingest.pipeline import Ingestor  # noqa: E402
from lineage.present.datamap import build_map, render_map  # noqa: E402
from lineage.store import Store  # noqa: E402
from lineage.testing import MemorySink  # noqa: E402
from lineage.transport.kafka import KafkaEventSink, create_topics  # noqa: E402
from lineage.world.organisations import build  # noqa: E402
from lineage.world.sim import WorldSize, emit  # noqa: E402

T = TypeVar("T")


def _timed(label: str, fn: Callable[[], T]) -> tuple[float, T]:
    """Run ``fn`` once, print and return its wall time with its result."""
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"  {label}: {elapsed:.2f} s")
    return elapsed, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=5000, help="per organisation (default 5000)")
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    taxonomy = default_taxonomy()
    size = WorldSize(subjects=args.subjects, days=args.days)

    print(f"world: 5 organisations x {size.subjects:,} subjects, {size.days} days")
    plan_s, (plans, injected) = _timed("plan", lambda: build(size, taxonomy))
    n = sum(len(p.events) for p in plans)
    memory = MemorySink()
    sdk_mem_s, _ = _timed("SDK into memory (build+validate+encode)", lambda: emit(plans, memory, taxonomy))
    payloads = [(m.key, m.value) for m in memory.messages]

    broker = None
    bootstrap = os.environ.get("LINEAGE_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = LocalBroker(fetch_jars(Path(os.environ.get("LINEAGE_CACHE_DIR", ".cache")))).start()
        bootstrap = broker.bootstrap_servers
    try:
        raw_topic = Settings(bootstrap_servers=bootstrap, topic=f"bench.seed.raw.{uuid.uuid4().hex[:6]}")
        sdk_topic = Settings(bootstrap_servers=bootstrap, topic=f"bench.seed.sdk.{uuid.uuid4().hex[:6]}")
        for s in (raw_topic, sdk_topic):
            create_topics(s, [s.topic], partitions=3)
        raw_rate = run_raw(raw_topic, payloads)
        sink = KafkaEventSink(sdk_topic)
        start = time.perf_counter()
        emit(plans, sink, taxonomy, sdk_topic)
        sink.close(sdk_topic.delivery_timeout_s)
        sdk_rate = n / (time.perf_counter() - start)
        poll_rate, _ = raw_poll(bootstrap, sdk_topic.topic, n)
        with tempfile.TemporaryDirectory(prefix="bench-seed-ingest-") as ingest_store:
            ingest_rate, peak = ingest(bootstrap, sdk_topic.topic, n, embedded(Path(ingest_store)))
    finally:
        if broker is not None:
            broker.stop()

    with tempfile.TemporaryDirectory(prefix="bench-seed-") as folder:
        ingestor = Ingestor(Path(folder), "events", taxonomy=taxonomy)
        for offset, value in enumerate(v for _, v in payloads):
            ingestor.add(0, offset, value)
        ingestor.flush()
        store = Store(Path(folder))
        print("on the stored world:")
        scan_s, _ = _timed("baseline: every event row read into Python", lambda: store.sql("SELECT * FROM events"))

        def check_all() -> int:
            return sum(len(check(store, p.policy, size.end)) for p in plans)

        check_s, found = _timed("check, all five policies", check_all)

        def map_page() -> int:
            found_by = {p.policy.name: check(store, p.policy, size.end) for p in plans}
            return len(render_map(build_map(map_data(store, found_by), taxonomy, [p.policy for p in plans])))

        map_s, page_bytes = _timed("data map (checks included), rendered", map_page)

    print(f"\nevents: {n:,}; breaches injected {len(injected)}, found {found}")
    print(f"plan:   {n / plan_s:>9,.0f} events/s")
    print(f"emit:   SDK into Kafka {sdk_rate:>9,.0f} events/s; raw producer, same bytes {raw_rate:>9,.0f}/s "
          f"({sdk_rate / raw_rate:.0%}); SDK into memory {n / sdk_mem_s:,.0f}/s")  # fmt: skip
    print(f"ingest: consumers.ingest {ingest_rate:>9,.0f} events/s; raw poll loop {poll_rate:>9,.0f}/s "
          f"({ingest_rate / poll_rate:.0%}); peak RSS {peak:.0f} MB")  # fmt: skip
    print(f"check:  {check_s:.2f} s for five policies ({check_s / scan_s:.2f}x one plain read of every event)")
    print(f"map:    {map_s:.2f} s, {page_bytes:,} bytes ({map_s / scan_s:.2f}x one plain read of every event)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
