"""Emit throughput through a real broker: the SDK beside a raw kafka-python producer, same run.

The raw producer sends bytes encoded before the clock starts; the SDK builds, validates, encodes and
sends each event from plain arguments. Both use the same producer settings (acks=all, idempotence,
linger 5 ms, 256 KiB batches). Goal: the SDK keeps at least 70% of the raw rate.

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

import kafka

from lineage import Codec, Emitter, Settings
from lineage.contract.records import build_event
from lineage.devtools.local_broker import LocalBroker, fetch_jars
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
        raw_rates, sdk_rates = [], []
        for r in range(args.rounds):
            for kind in ("raw", "sdk"):
                settings = Settings(bootstrap_servers=bootstrap, topic=f"bench.emit.{kind}.{r}.{uuid.uuid4().hex[:6]}")
                create_topics(settings, [settings.topic], partitions=3)
                if kind == "raw":
                    raw_rates.append(run_raw(settings, payloads))
                else:
                    sdk_rates.append(run_sdk(settings, inputs))
                print(f"round {r + 1} {kind:>3}: {(raw_rates if kind == 'raw' else sdk_rates)[-1]:>9,.0f} events/s")
    finally:
        if broker is not None:
            broker.stop()
    raw, sdk = max(raw_rates), max(sdk_rates)
    size = sum(len(v) for _, v in payloads) / len(payloads)
    print(f"\nevents per round: {args.events:,}; average encoded size: {size:.0f} B")
    print(f"raw kafka-python producer, pre-encoded bytes: {raw:>9,.0f} events/s (best of {args.rounds})")
    print(f"lineage Emitter (build+validate+encode+send): {sdk:>9,.0f} events/s (best of {args.rounds})")
    print(f"ratio SDK/raw: {sdk / raw:.0%} (goal >= 70%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
