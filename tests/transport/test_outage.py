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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lineage import Codec, DeliveryError, Emitter, Settings, UndeliveredError
from lineage.devtools.local_broker import LocalBroker, fetch_jars
from lineage.sdk.spool import SpooledDelivery
from lineage.transport.kafka import create_topics, read_messages
from lineage.transport.sink import Delivery
from tests.fixtures import KAFKA_CLIENTS

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


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_kill_9_for_60_s_during_50000_emits_loses_nothing(
    own_broker: LocalBroker, tmp_path: Path, capfd: pytest.CaptureFixture[str], client: str
) -> None:
    """Every event emitted across a 60 s kill -9 outage reaches the topic (or is named), every handle resolves."""
    settings = Settings(
        kafka_client=client,
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

settings = Settings(bootstrap_servers=sys.argv[1], topic=sys.argv[2], connect_timeout_s=10, delivery_timeout_s=5,
                    kafka_client=sys.argv[4])
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


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_dead_broker_without_spool_reports_every_lost_event_by_id(own_broker: LocalBroker, client: str) -> None:
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
            client,
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


RATE = 2_000  # events a second, from one thread: far more often than the sink's one-second reconnect cadence
RECONNECT_BOUND_S = 10.0  # generous, for a machine at load 10; the measured figure is printed


class _Stream(threading.Thread):
    """Emits about ``RATE`` events a second until stopped, noting when each call began and what it returned."""

    def __init__(self, emitter: Emitter) -> None:
        super().__init__(name="emitting", daemon=True)
        self.emitter = emitter
        self.stopping = threading.Event()
        # (wall-clock start of the call, its handle or None if the call raised): read by the test thread
        self.calls: list[tuple[float, Delivery | None]] = []
        self.failure: BaseException | None = None
        self.slowest_s = 0.0
        self.refusals: Counter[str] = Counter()  # the sink's own refusals (no earlier failure reported), by message
        self.slowest_refusal_s = 0.0

    def run(self) -> None:
        start = time.monotonic()
        try:
            while not self.stopping.is_set():
                i = len(self.calls)
                began, began_mono = time.time(), time.monotonic()
                handle: Delivery | None
                try:
                    handle = self.emitter.collected(
                        f"user-{i % 5000}", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT"
                    )
                except UndeliveredError:  # an earlier event's failure, reported by this call
                    handle = None
                except DeliveryError as exc:  # refused: no producer to send with
                    handle = None
                    self.refusals[str(exc).split(": ", 1)[1]] += 1
                    self.slowest_refusal_s = max(self.slowest_refusal_s, time.monotonic() - began_mono)
                self.slowest_s = max(self.slowest_s, time.monotonic() - began_mono)
                self.calls.append((began, handle))
                if i % 100 == 99:
                    time.sleep(max(0.0, start + (i + 1) / RATE - time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread, which fails with it
            self.failure = exc


def _direct(handle: Delivery | None) -> bool:
    """Whether a call's event went to the broker (not refused, not queued in the spool behind a backlog)."""
    return handle is not None and not isinstance(handle, SpooledDelivery)


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    ("spooled", "client"),
    # librdkafka queues what is sent during an outage instead of refusing it: with no spool, the
    # refusals this test counts do not happen on confluent (its events wait, or fail at their deadline)
    [(False, "kafka-python"), (True, "kafka-python"), (True, "confluent")],
    ids=["without-spool", "with-spool", "with-spool-confluent"],
)
def test_emitter_reconnects_after_kill_9_while_emitting_2000_a_second(
    own_broker: LocalBroker, tmp_path: Path, capfd: pytest.CaptureFixture[str], spooled: bool, client: str
) -> None:
    """Broker killed and restarted under 2,000 emits/s: reconnected within 10 s, every later event acked once."""
    settings = Settings(
        bootstrap_servers=own_broker.bootstrap_servers,
        topic=f"test.reconnect.{uuid.uuid4().hex[:8]}",
        client_id="lineage-reconnect-test",
        kafka_client=client,
        connect_timeout_s=10,
        delivery_timeout_s=5,  # short: the producer is given up (and must be replaced) early in the outage
        spool_dir=tmp_path / "spool" if spooled else None,
    )
    create_topics(settings, [settings.topic], partitions=3)
    emitter = Emitter(system="web", region="CN", settings=settings)
    stream = _Stream(emitter)
    calls = stream.calls
    reported: tuple[str, ...] = ()
    backlog_sent_s = 0.0
    stream.start()
    try:
        assert _wait_for(lambda: len(calls) >= RATE or stream.failure is not None, 120), "the stream did not start"
        own_broker.kill()
        killed = time.time()
        # the outage is noticed (a call refused or spooled): the producer is given up and must be replaced
        before = len(calls)
        assert _wait_for(lambda: any(not _direct(h) for _, h in calls[before:]) or stream.failure is not None, 120)
        own_broker.restart()
        answered = time.time()
        after = len(calls)

        def direct_again() -> int | None:  # the first call since the broker answered that went to the broker
            return next((n for n in range(after, len(calls)) if _direct(calls[n][1])), None)

        # Then one more second of events; without a reconnect, give up after a minute (the asserts say
        # why). With a spool, calls go straight to the broker again once the last of the backlog is sent.
        _wait_for(lambda: direct_again() is not None or stream.failure is not None, 60)
        first_direct = direct_again()
        if first_direct is not None:
            _wait_for(lambda: len(calls) >= first_direct + 2 * RATE or stream.failure is not None, 120)
    finally:
        stream.stopping.set()
        stream.join(60)
        try:
            try:
                if spooled:  # any backlog left: resent within a generous bound, not the short delivery timeout
                    began = time.monotonic()
                    emitter.flush(300)
                    backlog_sent_s = time.monotonic() - began
            finally:
                emitter.close()
        except UndeliveredError as exc:
            reported = exc.event_ids
    assert stream.failure is None, repr(stream.failure)

    arrived: Counter[str] = Counter()
    stamped = []  # when each record was handed to a producer (its Kafka timestamp, epoch ms)
    codec = Codec()
    for m in read_messages(settings, settings.topic, idle_timeout_s=15):
        if m.value is not None:
            arrived[codec.decode(m.value).event_id] += 1
            stamped.append(m.timestamp)
    # Records the old producer took carry a time before the kill; the first later one is the reconnect.
    reconnected_ms = min((t for t in stamped if t > int(killed * 1000)), default=None)
    elapsed = time.time() - answered
    later = [(began, h) for began, h in calls if reconnected_ms is not None and began * 1000 > reconnected_ms + 1]
    refused_after = sum(1 for began, h in calls if began > answered and h is None)
    _, err = capfd.readouterr()
    with capfd.disabled():  # the figures for the record
        took = "never" if reconnected_ms is None else f"{reconnected_ms / 1000 - answered:.2f} s"
        drained = "never" if first_direct is None else f"{calls[first_direct][0] - answered:.2f} s"
        print(
            f"\n{'with' if spooled else 'without'} spool: {len(calls)} calls at "
            f"{len(calls) / (calls[-1][0] - calls[0][0]):.0f}/s; reconnected {took} after the broker answered; "
            f"first call straight to the broker {drained} after; refused after it answered {refused_after}; "
            f"events after the reconnect {len(later)}; slowest call {stream.slowest_s:.3f} s, "
            f"slowest refused call {stream.slowest_refusal_s:.3f} s; "
            f"backlog left when emitting stopped sent in {backlog_sent_s:.1f} s"
        )
    # While no producer is open, a call is refused at once with a one-line reason naming the broker.
    assert spooled or stream.refusals, "no call was refused during the outage"
    assert all("\n" not in why and settings.bootstrap_servers in why for why in stream.refusals), stream.refusals
    assert stream.slowest_refusal_s < 2.0  # microseconds when idle; generous for a machine at load 10
    assert reconnected_ms is not None, f"no event reached the broker in the {elapsed:.0f} s after it answered"
    assert reconnected_ms / 1000 - answered < RECONNECT_BOUND_S
    assert first_direct is not None, "events never went straight to the broker again"
    assert len(later) >= RATE
    assert all(h is not None for _, h in later), "a call after the reconnect was refused"
    for _, h in later:
        assert h is not None
        if _direct(h):
            h.result()  # acknowledged (raises DeliveryError if not)
        assert arrived[h.event_id] == 1, "an event after the reconnect is missing from the topic or duplicated"
    if spooled:
        assert reported == ()  # the backlog was sent before close() returned
    assert "Traceback" not in err and "Exception ignored" not in err
