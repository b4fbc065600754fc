"""Emit throughput through a real broker, on each Kafka client: raw producers beside the SDK, same run.

Four figures per round, against one broker: the raw kafka-python producer, the SDK on kafka-python,
the raw confluent-kafka (librdkafka) producer, the SDK on confluent (``kafka_client``). The raw
producers send bytes encoded before the clock starts; the SDK builds, validates, encodes and sends
each event from plain arguments. All use the same producer settings (acks=all, idempotence, linger
5 ms, 256 KiB batches). Goals (issue 21): the SDK keeps at least 70% of its raw client's rate, and
reaches 100,000 events/s in one process.

    ./run bench emit_throughput [--events 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import confluent_kafka
import kafka

from lineage import Codec, Emitter, Settings
from lineage.contract.records import build_event
from lineage.devtools.local_broker import LocalBroker, fetch_jars
from lineage.transport.confluent.producer import producer_config
from lineage.transport.kafka import create_topics

CATEGORIES = (["user.contact.phone_number"], ["user.contact.email", "user.name"], ["user.device.device_id"])
PURPOSES = ("essential.service", "essential.service.payment_processing", "analytics.reporting")


def _inputs(n: int) -> list[tuple[str, list[str], str, datetime]]:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    return [(f"user-{i % 50_000}", CATEGORIES[i % 3], PURPOSES[i % 3], t0 + timedelta(seconds=i)) for i in range(n)]


def run_raw(settings: Settings, payloads: list[tuple[bytes, bytes]]) -> float:
    """Send pre-encoded bytes with a bare KafkaProducer; return events/s."""
    producer = kafka.KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        batch_size=256 * 1024,
    )
    start = time.perf_counter()
    for key, value in payloads:
        producer.send(settings.topic, value=value, key=key)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return len(payloads) / elapsed


def run_raw_confluent(settings: Settings, payloads: list[tuple[bytes, bytes]]) -> float:
    """Send pre-encoded bytes with a bare librdkafka producer (the sink's own properties); return events/s."""
    producer = confluent_kafka.Producer(producer_config(settings))
    start = time.perf_counter()
    for key, value in payloads:
        while True:
            try:
                producer.produce(settings.topic, value, key)
                break
            except BufferError:  # the local queue is full: serve reports until there is room
                producer.poll(0.01)
        producer.poll(0)
    left = producer.flush(60)
    elapsed = time.perf_counter() - start
    assert left == 0, f"{left} messages unacknowledged"
    return len(payloads) / elapsed


RUNS = {"raw kafka-python": "raw", "SDK on kafka-python": "kafka-python", "raw confluent": "raw-confluent",
        "SDK on confluent": "confluent"}  # fmt: skip


def run_sdk(settings: Settings, inputs: list[tuple[str, list[str], str, datetime]]) -> float:
    """Emit through the SDK from plain arguments; return events/s."""
    with Emitter(system="bench", region="CN", settings=settings) as emitter:
        start = time.perf_counter()
        for subject, categories, purpose, at in inputs:
            emitter.collected(subject, categories, purpose=purpose, legal_basis="CONTRACT", occurred_at=at)
        emitter.flush()
        elapsed = time.perf_counter() - start
    return len(inputs) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    inputs = _inputs(args.events)
    codec = Codec()
    payloads = [
        (
            subject.encode(),
            codec.encode(
                build_event(
                    "COLLECTED",
                    system="bench",
                    system_region="CN",
                    event_id=str(uuid.uuid4()),
                    subject_id=subject,
                    categories=cats,
                    purpose=purpose,
                    legal_basis="CONTRACT",
                    occurred_at=at,
                )
            ),
        )
        for subject, cats, purpose, at in inputs
    ]
    broker = None
    bootstrap = os.environ.get("LINEAGE_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = LocalBroker(fetch_jars(Path(os.environ.get("LINEAGE_CACHE_DIR", ".cache")))).start()
        bootstrap = broker.bootstrap_servers
    try:
        rates: dict[str, list[float]] = {name: [] for name in RUNS}
        for r in range(args.rounds):
            for name, kind in RUNS.items():
                client = "confluent" if kind.endswith("confluent") else "kafka-python"
                topic = f"bench.emit.{kind}.{r}.{uuid.uuid4().hex[:6]}"
                settings = Settings(bootstrap_servers=bootstrap, topic=topic, kafka_client=client)
                create_topics(settings, [settings.topic], partitions=3)
                if kind == "raw":
                    rates[name].append(run_raw(settings, payloads))
                elif kind == "raw-confluent":
                    rates[name].append(run_raw_confluent(settings, payloads))
                else:
                    rates[name].append(run_sdk(settings, inputs))
                print(f"round {r + 1} {name:>19}: {rates[name][-1]:>9,.0f} events/s")
    finally:
        if broker is not None:
            broker.stop()
    best = {name: max(found) for name, found in rates.items()}
    size = sum(len(v) for _, v in payloads) / len(payloads)
    print(f"\nevents per round: {args.events:,}; average encoded size: {size:.0f} B; best of {args.rounds}")
    for name in RUNS:
        print(f"{name + ':':<21} {best[name]:>9,.0f} events/s")
    kp, cf = best["SDK on kafka-python"] / best["raw kafka-python"], best["SDK on confluent"] / best["raw confluent"]
    print(f"SDK/raw on kafka-python: {kp:.0%}; on confluent: {cf:.0%} (goal >= 70%)")
    print(f"SDK on confluent / SDK on kafka-python: {best['SDK on confluent'] / best['SDK on kafka-python']:.2f}x "
          "(goal: SDK >= 100,000 events/s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
