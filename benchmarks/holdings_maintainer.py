"""The holdings maintainer on the simulated seed world: its throughput, and its lag behind a consumer, same run.

(1) Throughput: the world's events stored in an embedded store; then one refresh from nothing
(every event applied), beside the baseline of reading the same events the engine reads into Python
(``Store.engine_events``, no holdings work), and ten refreshes each applying a tenth of the events
as they are stored: as ``consumers.holdings`` runs them (no collection during a refresh, the heap
settled after it: ``lineage.process.settle_heap``), then with the garbage collector as it comes.
(2) Lag: a consumer (``consumers.ingest --no-holdings``) ingests the world from
a topic filled beforehand, at full speed, while ``consumers.holdings --interval 1`` runs beside it;
every 0.5 s we read how many stored events the holdings do not reflect yet (what ``Store.behind``
counts) and how old the holdings are in seconds (the issue's target: p99 <= 5 s), and how long
after the consumer's last commit the maintainer has caught up.

    ./run bench holdings_maintainer [--subjects 1700] [--no-fold]     # ~208,000 events
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import REPO, load  # noqa: E402

from lineage import Settings, default_taxonomy  # noqa: E402
from lineage.devtools.local_broker import LocalBroker, fetch_jars  # noqa: E402
from lineage.ingest.holdings import HoldingsMaintainer  # noqa: E402
from lineage.ingest.pipeline import Ingestor  # noqa: E402
from lineage.process import paused_gc, settle_heap  # noqa: E402
from lineage.store import Store, StoreLocation  # noqa: E402
from lineage.store.holdings import event_offsets, read_state, try_load_holdings  # noqa: E402
from lineage.testing import MemorySink  # noqa: E402
from lineage.transport.kafka import KafkaEventSink, create_topics  # noqa: E402
from lineage.world.organisations import build  # noqa: E402
from lineage.world.sim import WorldSize, emit  # noqa: E402


def _world(subjects: int) -> list[bytes]:
    taxonomy = default_taxonomy()
    plans, _ = build(WorldSize(subjects=subjects, days=365), taxonomy)
    sink = MemorySink()
    emit(plans, sink, taxonomy)
    return [m.value for m in sink.messages]


def _store(location: StoreLocation, values: list[bytes], first: int = 0) -> None:
    ingestor = Ingestor(location, "events", taxonomy=default_taxonomy())
    for offset, value in enumerate(values, first):
        ingestor.add(0, offset, value)
    ingestor.flush()


def throughput(values: list[bytes], tmp: Path) -> None:
    location = StoreLocation.embedded(tmp / "one-pass")
    _store(location, values)
    start = time.perf_counter()
    read = sum(1 for _ in Store(location, holdings=False).engine_events({}, None))
    baseline = time.perf_counter() - start
    rate = read / baseline
    print(f"  baseline: the {read:,} events the engine reads, read into Python: {baseline:.1f} s ({rate:,.0f}/s)")
    start = time.perf_counter()
    done = HoldingsMaintainer(location).refresh()
    one = time.perf_counter() - start
    print(f"  one refresh from nothing: {one:.1f} s, {done.events / one:,.0f} events/s applied "
          f"({one / baseline:.1f}x the read alone)")  # fmt: skip
    for settled in (True, False):  # the maintainer's way first: the second may find the machine warmer
        _tenths(StoreLocation.embedded(tmp / f"tenths-{settled}"), values, settled)


def _tenths(location: StoreLocation, values: list[bytes], settled: bool) -> None:
    """Ten refreshes of a tenth each; ``settled``: with the heap handled as ``consumers.holdings`` does."""
    maintainer = HoldingsMaintainer(location)
    step = -(-len(values) // 10)
    times, applied = [], 0
    for first in range(0, len(values), step):
        _store(location, values[first : first + step], first)
        start = time.perf_counter()
        if settled:
            with paused_gc():  # as the maintainer's loop: no collection in a round, the heap settled after it
                applied += maintainer.refresh().events
                settle_heap()
        else:
            applied += maintainer.refresh().events
        times.append(time.perf_counter() - start)
    gc.unfreeze()
    how = "collector paused, heap settled after each (the maintainer's loop)" if settled else "collector as it comes"
    print(f"  ten refreshes of a tenth each, {how}: {sum(times):.1f} s in all, {applied / sum(times):,.0f} events/s "
          f"applied; each {', '.join(f'{t:.1f}' for t in times)} s")  # fmt: skip


def _offsets(location: StoreLocation) -> tuple[int, int] | None:
    """Events stored, and stored events the holdings do not reflect (None: no events table yet)."""
    try:
        stored = event_offsets(location.load())
    except Exception:  # noqa: BLE001 - not created yet
        return None
    table = try_load_holdings(location)
    applied = read_state(table).applied if table is not None else {}
    total = sum(off + 1 for ps in stored.values() for off in ps.values())
    return total, sum(max(0, off - applied.get(o, {}).get(p, -1)) for o, ps in stored.items() for p, off in ps.items())


def _staleness(samples: list[tuple[float, int, int]]) -> list[float]:
    """How far behind the holdings are at each sample, in seconds: the age of the oldest event they miss.

    A sample at ``t`` whose holdings reflect ``stored - behind`` events misses events since the first
    sample at which the store held more than that (to the bench's sampling step); 0 when it misses none.
    """
    out = []
    for t, stored, behind in samples:
        reflected = stored - behind
        since = next((t0 for t0, s0, _ in samples if t0 <= t and s0 > reflected), t)
        out.append(t - since)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lag(values: list[bytes], tmp: Path, bootstrap: str, fold: bool = True) -> None:
    topic = f"bench.holdings.{uuid.uuid4().hex[:6]}"
    settings = Settings(bootstrap_servers=bootstrap, topic=topic)
    create_topics(settings, [topic, "lineage.events.dlq"], partitions=3)
    sink = KafkaEventSink(settings)
    for i, value in enumerate(values):
        sink.send(topic, str(i % 997).encode(), value, f"e{i}")
    sink.close(120)
    folder = tmp / "lag"
    location = StoreLocation.embedded(folder)
    env = {**os.environ, "PYTHONPATH": str(REPO), "LINEAGE_STORE_DIR": str(folder)}
    base = [sys.executable, "-m"]
    consumer = subprocess.Popen(
        [*base, "consumers.ingest", "--no-holdings", "--bootstrap-servers", bootstrap, "--topic", topic,
         "--group", topic + ".g", "--exit-when-idle", "3"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    maintainer_log = (tmp / "maintainer.log").open("wb")
    maintainer = subprocess.Popen(
        [*base, "consumers.holdings", "--interval", "1", *([] if fold else ["--no-fold"])], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=maintainer_log,
    )  # fmt: skip
    start = time.perf_counter()
    samples: list[tuple[float, int, int]] = []
    try:
        while consumer.poll() is None:
            if (counts := _offsets(location)) is not None:
                samples.append((time.perf_counter() - start, *counts))
            time.sleep(0.5)
        consumed = time.perf_counter() - start
        while (counts := _offsets(location)) is None or counts[1] != 0:
            if counts is not None:  # sampled until caught up: the last events' wait counts too
                samples.append((time.perf_counter() - start, *counts))
            time.sleep(0.2)
        caught_up = time.perf_counter() - start
    finally:
        maintainer.terminate()
        maintainer.wait(120)
        maintainer_log.close()
    assert consumer.returncode == 0
    logged = (tmp / "maintainer.log").read_text(errors="replace")
    stored = Store(location).count()
    during = [b for t, _, b in samples if t <= consumed]
    peak, mean = max(during), sum(during) / len(during)
    stale = _staleness(samples)
    print(f"  consumer: {stored:,} events stored in {consumed:.1f} s ({stored / consumed:,.0f}/s, exit-when-idle 3 s "
          f"included)")  # fmt: skip
    print(f"  maintainer behind it: peak {peak:,} events, mean {mean:,.0f} over {len(during)} samples; "
          f"caught up {caught_up - consumed:.1f} s after the consumer exited")  # fmt: skip
    print(f"  how far behind the holdings were (the age of the oldest stored event they miss; target p99 <= 5 s): "
          f"p50 {_pct(stale, 0.5):.1f} s, p99 {_pct(stale, 0.99):.1f} s, max {max(stale):.1f} s")  # fmt: skip
    folds = re.findall(r"folded buckets .* in ([0-9.]+) s", logged)
    late, held = logged.count("a late event"), logged.count("held back for the next refresh")
    print(f"  the maintainer's commits: {logged.count('events applied')} refreshes ({late} after a late event, "
          f"{held} holding events back), {len(folds)} folds between them"
          + (f" ({', '.join(folds)} s)" if folds else ""))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=1700, help="per organisation (default 1700: ~208,000 events)")
    parser.add_argument("--no-fold", dest="fold", action="store_false", help="the maintainer folds nothing between")
    args = parser.parse_args()
    values = _world(args.subjects)
    print(f"world: 5 organisations x {args.subjects:,} subjects, 365 days: {len(values):,} events; {load()}")
    bootstrap = os.environ.get("LINEAGE_BOOTSTRAP_SERVERS")
    broker = None
    with tempfile.TemporaryDirectory(prefix="bench-holdings-") as tmp:
        print("(1) throughput, embedded store:")
        throughput(values, Path(tmp))
        if not bootstrap:
            broker = LocalBroker(fetch_jars(Path(os.environ.get("LINEAGE_CACHE_DIR", ".cache")))).start()
            bootstrap = broker.bootstrap_servers
        try:
            print("(2) lag behind a consumer at full speed, embedded store:")
            lag(values, Path(tmp), bootstrap, args.fold)
        finally:
            if broker is not None:
                broker.stop()
    print(f"done; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
