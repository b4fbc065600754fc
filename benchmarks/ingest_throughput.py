"""End-to-end ingest (broker to durable store, offsets recorded) beside two baselines, same run.

(a) a raw kafka-python poll loop over the same topic that only touches the bytes; (b) decoding the
same messages alone (no Kafka, no store); (c) ``consumers.ingest`` as its own process, from an empty
store and a new group until every message is in a durable segment. Its peak memory (max RSS) is
read from the child's rusage; run with two sizes to see that it does not grow with the topic.
Goal: ingest keeps at least 50% of the raw poll rate.

    ./run bench ingest_throughput [--events 1000000] [--small 250000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kafka

from lineage import Codec, Party, Settings
from lineage.contract.records import make_record
from lineage.store import Store
from lineage.transport.kafka import create_topics
from lineage.transport.local_broker import LocalBroker, fetch_jars

REPO = Path(__file__).parent.parent
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


def ingest(bootstrap: str, topic: str, n: int, processes: int = 1) -> tuple[float, float]:
    """Run ``processes`` ingest consumers in one group to the end; return events/s and the peak RSS (MB)."""
    idle = 2.0
    group = f"ingest-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="bench-store-") as store:
        command = [
            sys.executable, "-m", "consumers.ingest",
            "--store", store, "--bootstrap-servers", bootstrap, "--topic", topic,
            "--group", group, "--exit-when-idle", str(idle),
        ]  # fmt: skip
        start = time.perf_counter()
        procs = [
            subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(processes)
        ]
        outputs = [p.communicate()[0] for p in procs]
        elapsed = time.perf_counter() - start - idle
        assert all(p.returncode == 0 for p in procs), outputs
        stored = Store(Path(store)).count()
    assert stored == n, f"stored {stored} of {n}:\n{outputs}"
    peak = max(float(re.findall(r"peak_rss_mb=(\d+)", out)[-1]) for out in outputs)
    return n / elapsed, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=250_000, help="a second, smaller run for the memory bound")
    args = parser.parse_args()

    payloads = _payloads()
    bootstrap = os.environ.get("LINEAGE_BOOTSTRAP_SERVERS")
    broker = None
    if not bootstrap:
        broker = LocalBroker(fetch_jars(Path(os.environ.get("LINEAGE_CACHE_DIR", ".cache")))).start()
        bootstrap = broker.bootstrap_servers
    try:
        results = {}
        for n in (args.small, args.events):
            topic = f"bench.ingest.{n}.{uuid.uuid4().hex[:6]}"
            create_topics(Settings(bootstrap_servers=bootstrap), [topic, "lineage.events.dlq"], partitions=3)
            t = time.perf_counter()
            produce(bootstrap, topic, n, payloads)
            print(f"produced {n:,} events in {time.perf_counter() - t:.1f} s")
            ingest_rate, peak = ingest(bootstrap, topic, n)
            ingest2_rate, peak2 = ingest(bootstrap, topic, n, processes=2)
            raw_rate, values = raw_poll(bootstrap, topic, n)
            decode_rate = decode_only(values)
            del values
            results[n] = (raw_rate, decode_rate, ingest_rate, peak, ingest2_rate, peak2)
            print(
                f"{n:>9,} events: raw poll {raw_rate:>8,.0f}/s | decode only {decode_rate:>8,.0f}/s | "
                f"ingest x1 {ingest_rate:>7,.0f}/s ({ingest_rate / raw_rate:.0%} of raw, peak {peak:.0f} MB) | "
                f"ingest x2 {ingest2_rate:>7,.0f}/s ({ingest2_rate / raw_rate:.0%} of raw, peak {peak2:.0f} MB each)"
            )
    finally:
        if broker is not None:
            broker.stop()
    raw_rate, decode_rate, ingest_rate, peak, ingest2_rate, _ = results[args.events]
    print(f"\nat {args.events:,} events (3 partitions):")
    print(f"raw poll loop, 1 process (touch bytes): {raw_rate:>9,.0f} events/s")
    print(f"decode alone, 1 process:                {decode_rate:>9,.0f} events/s")
    print(
        f"ingest to durable segments, 1 process:  {ingest_rate:>9,.0f} events/s = {ingest_rate / raw_rate:.0%} of raw"
    )
    print(
        f"ingest, 2 processes in one group:       {ingest2_rate:>9,.0f} events/s = {ingest2_rate / raw_rate:.0%} of raw"
    )
    print("goal: ingest >= 50% of the raw poll rate")
    print(
        f"peak RSS of one ingest process: {results[args.small][3]:.0f} MB at {args.small:,} events, "
        f"{peak:.0f} MB at {args.events:,}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
