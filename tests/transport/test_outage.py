"""A broker killed (kill -9) mid-stream and restarted: nothing the SDK emitted is lost or left pending."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lineage import Codec, DeliveryError, Emitter, Settings, UndeliveredError
from lineage.transport.kafka import create_topics, read_messages
from lineage.transport.local_broker import LocalBroker, fetch_jars

pytestmark = pytest.mark.integration

EVENTS = 50_000
DOWN_S = 60.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own, since the test kills it (the session broker is shared)."""
    cache = Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parents[2] / ".cache"))
    broker = LocalBroker(fetch_jars(cache), tmp_path / "kafka").start()
    try:
        yield broker
    finally:
        broker.stop()


def test_kill_9_for_60_s_during_50000_emits_loses_nothing(
    own_broker: LocalBroker, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every event emitted across a 60 s kill -9 outage reaches the topic (or is named), every handle resolves."""
    settings = Settings(
        bootstrap_servers=own_broker.bootstrap_servers,
        topic=f"test.outage.{uuid.uuid4().hex[:8]}",
        client_id="lineage-outage-test",
        connect_timeout_s=10,
        delivery_timeout_s=30,
        spool_dir=tmp_path / "spool",
    )
    create_topics(settings, [settings.topic], partitions=3)

    def outage() -> None:  # emits go on while the broker is dead and while it boots again
        time.sleep(15)
        own_broker.kill()
        time.sleep(DOWN_S)
        own_broker.restart()

    chaos = threading.Thread(target=outage)
    handles = []
    reported: tuple[str, ...] = ()
    emitter = Emitter(system="web", region="CN", settings=settings)
    start = time.monotonic()
    chaos.start()
    try:
        for i in range(EVENTS):  # 500 events a second for 100 s: the outage falls in the middle
            handles.append(
                emitter.collected(
                    f"user-{i % 5000}", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT"
                )
            )
            if i % 500 == 499:
                time.sleep(max(0.0, start + (i + 1) / 500 - time.monotonic()))
        chaos.join()
        try:
            emitter.close()
        except UndeliveredError as exc:
            reported = exc.event_ids
        closed_at = time.monotonic()
    finally:
        chaos.join()
    sent = [h.event_id for h in handles]

    unresolved = []
    for h in handles:
        try:
            h.result(0)
        except DeliveryError as exc:
            if "may still arrive" in str(exc):
                unresolved.append(h.event_id)
    codec = Codec()
    arrived = Counter(
        codec.decode(m.value).event_id
        for m in read_messages(settings, settings.topic, idle_timeout_s=15)
        if m.value is not None
    )
    duplicates = sum(n - 1 for n in arrived.values())
    _, err = capfd.readouterr()
    with capfd.disabled():  # the figures for the record
        print(
            f"\nsent {len(sent)}; distinct in topic {len(arrived)}; duplicates {duplicates}; "
            f"reported undelivered {len(reported)}; unresolved handles {len(unresolved)}; "
            f"emitting and closing took {closed_at - start:.0f} s"
        )
    assert unresolved == []
    assert set(arrived) | set(reported) == set(sent)  # nothing lost: delivered, or named
    assert set(arrived) <= set(sent)
    assert reported == ()  # the broker came back: the spool was drained before close() returned
    assert "Traceback" not in err and "Exception ignored" not in err


_NO_SPOOL_SCRIPT = r"""
import json, os, signal, sys, time
from lineage import DeliveryError, Emitter, Settings, UndeliveredError

settings = Settings(bootstrap_servers=sys.argv[1], topic=sys.argv[2], connect_timeout_s=10, delivery_timeout_s=5)
handles, reported, slowest = [], [], 0.0
emitter = Emitter(system="web", region="CN", settings=settings)
for i in range(4000):
    if i == 2000:
        os.kill(int(sys.argv[3]), signal.SIGKILL)  # the broker dies mid-stream and stays dead
    try:
        handles.append(emitter.collected(f"user-{i}", ["user.contact.email"], purpose="essential.service",
                                         legal_basis="CONTRACT"))
    except DeliveryError as exc:  # an earlier failure raised by this call, or no broker to send to
        reported += exc.event_ids
for h in handles:
    began = time.monotonic()
    try:
        h.result()
    except DeliveryError:
        pass
    slowest = max(slowest, time.monotonic() - began)
try:
    emitter.close()
except UndeliveredError as exc:
    reported += exc.event_ids
    print(str(exc).splitlines()[0], file=sys.stderr)
print(json.dumps({"sent": [h.event_id for h in handles], "reported": reported, "slowest": slowest}))
"""


def test_dead_broker_without_spool_reports_every_lost_event_by_id(own_broker: LocalBroker) -> None:
    """Broker killed for good: handles resolve within the delivery timeout, lost events are named, no traceback."""
    settings = Settings(bootstrap_servers=own_broker.bootstrap_servers, topic=f"test.dead.{uuid.uuid4().hex[:8]}")
    create_topics(settings, [settings.topic], partitions=3)
    assert own_broker.process is not None
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _NO_SPOOL_SCRIPT,
            settings.bootstrap_servers,
            settings.topic,
            str(own_broker.process.pid),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-3000:]
    outcome = json.loads(proc.stdout)
    assert outcome["slowest"] < 5 + 2  # the delivery timeout, and a little scheduling slack
    own_broker.kill()  # already dead (the script killed it): reap it
    own_broker.restart()
    codec = Codec()
    arrived = {
        codec.decode(m.value).event_id
        for m in read_messages(settings, settings.topic, idle_timeout_s=10)
        if m.value is not None
    }
    assert outcome["reported"]  # the outage lost something, and said so
    assert set(outcome["sent"]) <= arrived | set(outcome["reported"])
