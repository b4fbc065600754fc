"""The HTTP gateway beside the SDK, same broker, same run: events/s in batches, and single-event latency.

The gateway (``lineage gateway serve``, one process) is driven by ``--clients`` threads posting
batches of ``--batch`` events over kept-alive connections; each answer is a 202 only once the
broker acknowledged every event. The baseline is the SDK in this process emitting the same events
(validated, encoded, sent, flushed). Single events: one POST at a time, each waiting for its 202,
beside the SDK's ``emit(...).result()``. Targets (issue 23): >= 20,000 events/s in batches and a
single-event p99 <= 50 ms on 2 cores.

    ./run bench gateway [--events 100000] [--batch 500] [--clients 2] [--singles 1000] [--kafka-client kafka-python]

``--kafka-client`` picks the producer library on both sides (the SDK baseline and the gateway); by
default the settings' default, confluent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from lineage import Emitter, Settings, default_taxonomy
from lineage.contract.validation import Validator
from lineage.devtools.local_broker import LocalBroker, fetch_jars
from lineage.devtools.ports import free_port
from lineage.sdk.jsonlines import parse_object
from lineage.transport.kafka import create_topics

BIN = Path(sys.executable).parent
CATEGORIES = (["user.contact.phone_number"], ["user.contact.email", "user.name"], ["user.device.device_id"])


def _events(n: int) -> list[dict[str, Any]]:
    return [{"event_id": str(uuid.uuid4()), "event_type": "COLLECTED", "system": "bench", "system_region": "CN",
             "subject_id": f"user-{i % 50_000}", "categories": CATEGORIES[i % 3], "purpose": "essential.service",
             "legal_basis": "CONTRACT", "occurred_at": "2026-05-01T08:00:00+08:00"} for i in range(n)]  # fmt: skip


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def sdk(settings: Settings, events: list[dict[str, Any]], singles: int) -> tuple[float, list[float]]:
    """The SDK from the same JSON objects: events/s emitting them all, then single-event latencies (ms)."""
    validator = Validator(default_taxonomy())
    with Emitter(system="bench", region="CN", settings=settings) as emitter:
        start = time.perf_counter()
        for obj in events:
            event = parse_object(obj, system=None, region=None, validator=validator)
            assert not isinstance(event, Exception), event
            emitter.emit(event)
        emitter.flush()
        rate = len(events) / (time.perf_counter() - start)
        latencies = []
        for obj in _events(singles):
            t = time.perf_counter()
            event = parse_object(obj, system=None, region=None, validator=validator)
            assert not isinstance(event, Exception), event
            emitter.emit(event).result()
            latencies.append((time.perf_counter() - t) * 1000)
    return rate, latencies


def _post(conn: http.client.HTTPConnection, body: bytes, token: str) -> int:
    conn.request("POST", "/v1/events", body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    return answer.status


def gateway(port: int, token: str, events: list[dict[str, Any]], batch: int, clients: int,
            singles: int) -> tuple[float, list[float], dict[int, int]]:  # fmt: skip
    """Events/s posting batches from ``clients`` threads, then single-event latencies (ms); statuses seen."""
    bodies = [json.dumps(events[i : i + batch]).encode() for i in range(0, len(events), batch)]
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for body in mine:
            status = _post(conn, body, token)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, args=(bodies[k::clients],)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = len(events) / (time.perf_counter() - start)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies = []
    for obj in _events(singles):
        body = json.dumps(obj).encode()
        t0 = time.perf_counter()
        status = _post(conn, body, token)
        latencies.append((time.perf_counter() - t0) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
    conn.close()
    return rate, latencies, statuses


def _serve(settings: Settings, folder: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    tokens = folder / "gateway-tokens.json"
    added = subprocess.run([BIN / "lineage", "gateway", "token", "add", "bench-svc", "--system", "bench", "--tokens",
                            str(tokens)], capture_output=True, text=True, check=True)  # fmt: skip
    port = free_port()
    env = os.environ | {"LINEAGE_KAFKA_CLIENT": settings.kafka_client}
    proc = subprocess.Popen([BIN / "lineage", "gateway", "serve", "--port", str(port), "--rate", "0", "--tokens",
                             str(tokens), "--bootstrap-servers", settings.bootstrap_servers, "--topic", settings.topic],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the gateway did not start") from None
            time.sleep(0.2)
    return proc, port, added.stdout.splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--kafka-client", choices=("kafka-python", "confluent"), default=Settings().kafka_client)
    args = parser.parse_args()

    events = _events(args.events)
    broker = None
    bootstrap = os.environ.get("LINEAGE_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = LocalBroker(fetch_jars(Path(os.environ.get("LINEAGE_CACHE_DIR", ".cache")))).start()
        bootstrap = broker.bootstrap_servers
    folder = Path(f".bench-gateway-{uuid.uuid4().hex[:6]}")
    folder.mkdir(mode=0o700)
    try:
        topics = {kind: Settings(bootstrap_servers=bootstrap, topic=f"bench.gw.{kind}.{uuid.uuid4().hex[:6]}",
                                 kafka_client=args.kafka_client) for kind in ("sdk", "gateway")}  # fmt: skip
        for s in topics.values():
            create_topics(s, [s.topic], partitions=3)
        warm = Settings(bootstrap_servers=bootstrap, topic=f"bench.gw.warm.{uuid.uuid4().hex[:6]}")
        create_topics(warm, [warm.topic], partitions=3)
        sdk(warm, events[: len(events) // 4], 50)  # the broker's JIT and page cache warm, not measured
        sdk_rate, sdk_lat = sdk(topics["sdk"], events, args.singles)
        proc, port, token = _serve(topics["gateway"], folder)
        try:
            gw_rate, gw_lat, statuses = gateway(port, token, events, args.batch, args.clients, args.singles)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    finally:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
        if broker is not None:
            broker.stop()
    print(f"events: {args.events:,} in batches of {args.batch} from {args.clients} clients; singles: {args.singles}; "
          f"Kafka client: {args.kafka_client}")  # fmt: skip
    print(f"answers: {statuses}")
    print(f"gateway, batches:         {gw_rate:>9,.0f} events/s (goal >= 20,000)")
    print(f"SDK in process, same run: {sdk_rate:>9,.0f} events/s (gateway {gw_rate / sdk_rate:.0%} of it)")
    print(f"gateway, one event per request: p50 {statistics.median(gw_lat):.1f} ms, "
          f"p99 {_percentile(gw_lat, 99):.1f} ms (goal p99 <= 50 ms)")  # fmt: skip
    sdk_p50, sdk_p99 = statistics.median(sdk_lat), _percentile(sdk_lat, 99)
    print(f"SDK emit(...).result(), same run: p50 {sdk_p50:.1f} ms, p99 {sdk_p99:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
