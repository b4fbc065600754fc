"""End-to-end ingest (broker to the Iceberg table, offsets committed with the rows) beside baselines, same run.

(a) a raw kafka-python poll loop over the same topic that only touches the bytes (run before and after
the ingest runs; the faster of the two is the baseline); (b) decoding the same messages alone (no Kafka,
no store); (c) ``consumers.ingest``, 1 and 2 processes in one group, from an empty table and a new group
until every message is committed, on each store: the embedded default (SQLite catalog, local
warehouse) and PostgreSQL + S3 (SeaweedFS), both servers started here on 127.0.0.1. Peak memory is the
child's VmHWM; a second, smaller run shows whether it grows with the topic. (d) commit latency per
store: ``TableWriter.commit`` timed in this process, for the consumer's flush size and for small batches.
Goal: ingest keeps at least 50% of the raw poll rate.

    ./run bench ingest_throughput [--events 1000000] [--small 250000] [--commits 30]
        [--clients kafka-python,confluent] [--stores embedded,postgres+s3] [--processes 1,2]

``--clients``: the ingest consumer's Kafka library (``LINEAGE_KAFKA_CLIENT``), each measured in turn
on the same topic (default: the settings' default, confluent); the raw poll loop stays kafka-python's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import kafka  # noqa: E402
from _stores import REPO, StoreShape, embedded, load, p99, servers, shared  # noqa: E402

from lineage import Codec, Party, Settings  # noqa: E402
from lineage.contract.records import make_record  # noqa: E402
from lineage.devtools.local_broker import LocalBroker, fetch_jars  # noqa: E402
from lineage.store import PartitionRows, Store, TableWriter  # noqa: E402
from lineage.transport.kafka import create_topics  # noqa: E402

DISTINCT = 50_000  # distinct encoded events, repeated to reach the count (ids repeat; the store does not care)


def _payloads() -> list[tuple[bytes, bytes]]:
    codec = Codec()
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    pay = Party(name="pay-sdk", role="processor", region="CN")
    hk = Party(name="hk-store", role="affiliate", region="HK")
    out = []
    for i in range(DISTINCT):
        subject = f"user-{i}"
        at = t0 + timedelta(seconds=i)
        common = {"system": "web", "system_region": "CN", "subject_id": subject, "occurred_at": at}
        if i % 3 == 0:
            rec = make_record(
                "COLLECTED",
                categories=["user.contact.email", "user.name"],
                purpose="essential.service",
                legal_basis="CONTRACT",
                subject_jurisdiction="CN",
                retention_days=365,
                **common,
            )
        elif i % 3 == 1:
            rec = make_record(
                "SHARED",
                categories=["user.financial.bank_account"],
                purpose="essential.service.payment_processing",
                recipient=pay,
                **common,
            )
        else:
            rec = make_record(
                "TRANSFERRED",
                categories=["user.contact.phone_number"],
                purpose="essential.service",
                recipient=hk,
                transfer_kind="CROSS_BORDER",
                mechanism="gba.standard_contract",
                **common,
            )
        out.append((subject.encode(), codec.encode_record(rec)))
    return out


def produce(bootstrap: str, topic: str, n: int, payloads: list[tuple[bytes, bytes]]) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, acks=1)
    for i in range(n):
        key, value = payloads[i % len(payloads)]
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def raw_poll(bootstrap: str, topic: str, n: int) -> tuple[float, list[bytes]]:
    """The same consumer settings as ours, touching each value; returns events/s and the values."""
    start = time.perf_counter()
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=20_000,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    while len(values) < n:
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(m.value for m in records)
    elapsed = time.perf_counter() - start
    consumer.close()
    return len(values) / elapsed, values


def decode_only(values: list[bytes]) -> float:
    codec = Codec()
    start = time.perf_counter()
    for v in values:
        codec.decode_record(v)
    return len(values) / (time.perf_counter() - start)


def ingest(
    bootstrap: str, topic: str, n: int, store: StoreShape, processes: int = 1, client: str = Settings().kafka_client
) -> tuple[float, float]:
    """Run ``processes`` ingest consumers in one group to the end; return events/s and the peak RSS (MB)."""
    idle = 2.0
    group = f"ingest-{uuid.uuid4().hex[:6]}"
    command = [
        sys.executable, "-m", "consumers.ingest", *store.argv,
        "--bootstrap-servers", bootstrap, "--topic", topic, "--group", group, "--exit-when-idle", str(idle),
        "--no-holdings",  # the ingest rate alone (the holdings maintainer has its own benchmark)
    ]  # fmt: skip
    env = {**os.environ, **store.env, "LINEAGE_KAFKA_CLIENT": client}
    start = time.perf_counter()
    procs = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(processes)
    ]
    outputs = [p.communicate()[0] for p in procs]
    elapsed = time.perf_counter() - start - idle
    assert all(p.returncode == 0 for p in procs), outputs
    stored = Store(store.location).count()
    assert stored == n, f"stored {stored} of {n}:\n{outputs}"
    peak = max(float(re.findall(r"peak_rss_mb=(\d+)", out)[-1]) for out in outputs)
    return n / elapsed, peak


def commit_latency(store: StoreShape, payloads: list[tuple[bytes, bytes]], rows: int, commits: int) -> list[float]:
    """Seconds per ``TableWriter.commit`` of ``rows`` decoded rows and their offsets (Arrow, Parquet, catalog)."""
    codec = Codec()
    records = [codec.decode_record(v) for _, v in payloads[:rows]]
    writer = TableWriter(store.location, f"bench.commit.{rows}.{uuid.uuid4().hex[:6]}", member="bench")
    writer.claim([0])
    out = []
    for c in range(commits):
        batch = PartitionRows(c * rows, (c + 1) * rows - 1)
        for i, record in enumerate(records):
            batch.rows.append(record, c * rows + i)
        start = time.perf_counter()
        writer.commit({0: batch})
        out.append(time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=250_000, help="a smaller run first (memory bound; 0: none)")
    parser.add_argument("--commits", type=int, default=30, help="timed commits per store and batch size (0: none)")
    parser.add_argument("--clients", default=Settings().kafka_client, help="comma-separated: kafka-python, confluent")
    parser.add_argument("--stores", default="embedded,postgres+s3", help="comma-separated: embedded, postgres+s3")
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts")
    args = parser.parse_args()
    clients, kinds = args.clients.split(","), args.stores.split(",")
    counts = [int(c) for c in args.processes.split(",")]

    payloads = _payloads()
    bootstrap = os.environ.get("LINEAGE_BOOTSTRAP_SERVERS")
    broker = None
    if not bootstrap:
        broker = LocalBroker(fetch_jars(Path(os.environ.get("LINEAGE_CACHE_DIR", ".cache")))).start()
        bootstrap = broker.bootstrap_servers
    # (store, processes, client) -> (events/s, peak MB), per size
    results: dict[int, dict[tuple[str, int, str], tuple[float, float]]] = {}
    baselines: dict[int, tuple[float, float, float]] = {}  # raw before, raw after, decode alone
    latency: dict[tuple[str, int], list[float]] = {}
    try:
        with servers() as (pg, s3), tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            print(f"servers up: PostgreSQL {pg.port}, SeaweedFS {s3.endpoint}; {load()}")
            runs = 0

            def store(kind: str) -> StoreShape:
                nonlocal runs
                runs += 1
                return embedded(Path(tmp) / f"store-{runs}") if kind == "embedded" else shared(pg, s3)

            for n in [m for m in (args.small, args.events) if m]:
                topic = f"bench.ingest.{n}.{uuid.uuid4().hex[:6]}"
                create_topics(Settings(bootstrap_servers=bootstrap), [topic, "lineage.events.dlq"], partitions=3)
                t = time.perf_counter()
                produce(bootstrap, topic, n, payloads)
                print(f"produced {n:,} events in {time.perf_counter() - t:.1f} s")
                raw_before, _ = raw_poll(bootstrap, topic, n)
                results[n] = {}
                for kind in kinds:
                    for processes in counts:
                        for client in clients:
                            rate, peak = ingest(bootstrap, topic, n, store(kind), processes, client)
                            results[n][kind, processes, client] = (rate, peak)
                            print(f"  {n:,} events, {kind}, {processes} process(es) on {client}: {rate:,.0f}/s "
                                  f"({rate / raw_before:.0%} of raw before), peak {peak:.0f} MB; {load()}")  # fmt: skip
                raw_after, values = raw_poll(bootstrap, topic, n)
                baselines[n] = (raw_before, raw_after, decode_only(values))
                del values
            for kind in kinds if args.commits else ():
                for rows in (50_000, 1_000):
                    latency[kind, rows] = commit_latency(store(kind), payloads, rows, args.commits)
    finally:
        if broker is not None:
            broker.stop()

    n = args.events or args.small
    raw_before, raw_after, decode_rate = baselines[n]
    raw = max(raw_before, raw_after)
    print(f"\nat {n:,} events (3 partitions); {load()}")
    print(f"raw poll loop, 1 process (touch bytes): {raw:>9,.0f} events/s "
          f"(before {raw_before:,.0f}, after {raw_after:,.0f})")  # fmt: skip
    print(f"decode alone, 1 process:                {decode_rate:>9,.0f} events/s")
    for (kind, processes, client), (rate, peak) in results[n].items():
        print(f"ingest, {kind:<11} x{processes} on {client:<12}: {rate:>9,.0f} events/s = {rate / raw:.0%} of raw, "
              f"peak RSS {peak:.0f} MB")  # fmt: skip
    print("goal: ingest >= 50% of the raw poll rate")
    if args.small and args.events:
        for key in results[args.events]:
            small, full = results[args.small][key][1], results[args.events][key][1]
            print(f"peak RSS {key[0]} x{key[1]} on {key[2]}: {small:.0f} MB at {args.small:,} events, "
                  f"{full:.0f} MB at {args.events:,}")  # fmt: skip
    for (kind, rows), samples in latency.items():
        print(f"commit latency, {kind:<11}, {rows:>6,} rows: median {statistics.median(samples) * 1000:>5.0f} ms, "
              f"p99 {p99(samples) * 1000:>5.0f} ms over {len(samples)} commits")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
