"""The ingest consumer: a Kafka group member that polls, stores rows, sends dead letters, commits.

Order within a flush is what makes it lose nothing and double nothing: dead letters are made durable
first, then the rows and their partitions' offsets are committed to the store's table in one Iceberg
commit, then the offsets are committed to Kafka for lag tools. A crash anywhere re-reads from the
offsets in the table; a repeated dead letter is possible (at-least-once), a repeated stored event is
not. On assignment the consumer claims its partitions in the table, so a paused former owner (a
zombie) cannot commit rows of them afterwards.
"""

from __future__ import annotations

import gc
import logging
import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lineage.contract.taxonomy import Taxonomy
from lineage.errors import BrokerError, BrokerUnavailableError, StoreError
from lineage.ingest.pipeline import Ingestor
from lineage.settings import Settings
from lineage.store import StoreLocation
from lineage.transport.clients import batch_source, dead_letter_sink
from lineage.transport.kafka import RawMessage, create_topics

__all__ = ["IngestConsumer", "IngestStats"]

# With --exit-when-idle, how long joining the group may take before the run gives up: far beyond a
# join at load 10 (tens of seconds behind a member slow to rejoin), short of holding a job for ever
FIRST_ASSIGNMENT_S = 300.0

log = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    """The peak resident memory of the calling process, in MB.

    Linux's VmHWM, not ``ru_maxrss``: a process started by fork and exec inherits its parent's
    ``ru_maxrss``, so a consumer launched by a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass
class IngestStats:
    """Running totals of one consumer process."""

    messages: int = 0
    accepted: int = 0
    dead_letters: int = 0
    bad_headers: int = 0  # events stored with a provenance header unusable (stored as null)
    commits: int = 0
    started: float = field(default_factory=time.monotonic)
    lag: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Messages per second since start."""
        return self.messages / max(time.monotonic() - self.started, 1e-9)

    def line(self) -> str:
        """One key=value line with no identifiers in it."""
        lag = ",".join(f"p{p}:{n}" for p, n in sorted(self.lag.items())) or "-"
        peak_mb = peak_rss_mb()
        return (
            f"ingest messages={self.messages} accepted={self.accepted} dead_letters={self.dead_letters} "
            f"bad_headers={self.bad_headers} "
            f"commits={self.commits} rate={self.rate:.0f}/s lag={lag} peak_rss_mb={peak_mb:.0f}"
        )


class IngestConsumer:
    """Consumes ``settings.topic`` in group ``group_id`` into the store at ``store_dir``."""

    def __init__(
        self,
        settings: Settings,
        *,
        store_dir: Path | StoreLocation | None = None,
        group_id: str,
        taxonomy: Taxonomy,
        segment_rows: int = 50_000,
        flush_interval_s: float = 2.0,
        on_progress: Callable[[IngestStats], None] | None = None,
        instance_id: str | None = None,
    ) -> None:
        """Connect to Kafka and prepare the store; nothing is read until ``run``.

        The store is ``store_dir`` (a folder: the embedded store in it; or a location), else the one
        the settings name (which may be a shared catalog and object store).
        """
        self.settings = settings
        if isinstance(store_dir, StoreLocation):
            self.location = store_dir
        else:
            self.location = StoreLocation.from_settings(settings, store_dir)
        self._member = instance_id or f"{settings.client_id}-{uuid.uuid4().hex[:8]}"
        self.ingestor = Ingestor(self.location, settings.topic, taxonomy=taxonomy, member=self._member)
        self._store_failure: StoreError | None = None
        self.segment_rows = segment_rows
        self.flush_interval_s = flush_interval_s
        self.on_progress = on_progress
        self.stats = IngestStats()
        self._last_assignment: float | None = None  # not yet given partitions by the group
        try:  # the dead-letter topic must exist before the first bad message; brokers may not auto-create
            create_topics(settings, [settings.dead_letter_topic])
        except BrokerError as exc:
            log.warning("could not make sure the dead-letter topic exists: %s", exc)
        self._dlq = dead_letter_sink(settings)
        self._source = batch_source(
            settings, group_id, self, max_poll_records=min(segment_rows, 20_000), instance_id=instance_id
        )

    # -- PartitionListener: called from inside poll() during a rebalance ------------------------

    def assigned(self, partitions: list[int]) -> dict[int, int]:
        """Claim each partition in the store and start it right after its last stored offset.

        A store failure here is not raised through the Kafka client's callback (each client treats a
        callback's exception its own way, and may read on unclaimed): it is kept and raised by the
        next ``poll``, before any message read meanwhile is stored.
        """
        self._last_assignment = time.monotonic()
        try:
            starts = self.ingestor.claim(partitions)
        except StoreError as exc:
            self._store_failure = exc
            return {}
        log.info(
            "assigned member=%s partitions=%s resume=%s",
            self._member,
            partitions,
            {p: starts.get(p, 0) for p in partitions},
        )
        return {p: starts[p] for p in partitions if p in starts}

    def revoked(self, partitions: list[int]) -> None:
        """Drop what was read from partitions that are leaving; their next owner re-reads it.

        kafka-python calls this on its IO thread, where a blocking Kafka call (a commit, a producer
        flush) raises; and nothing is lost by dropping: the next owner starts after the last durable
        segment. Dead letters already sent for the dropped offsets may be sent again.
        """
        log.info("revoked partitions=%s", partitions)
        self.ingestor.discard(partitions)

    # -- the loop -------------------------------------------------------------------------------

    def flush(self, partitions: list[int] | None = None) -> None:
        """Make dead letters durable, commit rows and offsets to the store, then the offsets to Kafka."""
        self._raise_store_failure()
        self._dlq.flush()
        stored = self.ingestor.flush(partitions)
        if stored:
            self.stats.commits += 1
        self._source.commit({s.partition: s.last + 1 for s in stored})

    def _raise_store_failure(self) -> None:
        if self._store_failure is not None:
            failure, self._store_failure = self._store_failure, None
            raise failure

    def run(self, stop: threading.Event, *, idle_exit_s: float | None = None, poll_s: float = 0.5) -> IngestStats:
        """Consume until ``stop`` is set (or nothing arrives for ``idle_exit_s``); always flush at the end."""
        last_flush = last_seen = last_report = time.monotonic()
        with _collect_between_flushes():
            try:
                while not stop.is_set():
                    batch = self._source.poll(poll_s)
                    self._raise_store_failure()
                    now = time.monotonic()
                    if batch:
                        last_seen = now
                        self._ingest(batch)
                    if self.ingestor.buffered_messages >= self.segment_rows or (
                        now - last_flush >= self.flush_interval_s and self.ingestor.buffered_messages
                    ):
                        self.flush()
                        gc.collect()
                        last_flush = now
                    if now - last_report >= 2.0:
                        self._refresh_lag()
                        self._report()
                        last_report = now
                    if idle_exit_s is not None and self._idle_done(now, last_seen, idle_exit_s):
                        break
            finally:
                try:
                    self.flush()  # raises, storing nothing, while dead letters are undelivered
                finally:
                    self._source.close()
                    self._dlq.close()
        self.stats.lag = {}
        self._report()
        return self.stats

    def _idle_done(self, now: float, last_seen: float, idle_s: float) -> bool:
        """Idle long enough, since the last message and the last assignment, with nothing left to read.

        Counting from the last assignment matters: a group leader that lacked the topic's metadata
        hands out no partitions, then rebalances a moment later. Before the first assignment it is
        still joining, not idle: on a loaded machine, or behind a member slow to rejoin, that takes
        longer than any idle bound, and with no partition there is no lag to say work is waiting.
        (Every join ends in an assignment, an empty one too, so a member left without partitions
        still exits.)
        """
        if self._last_assignment is None:
            if now - self.stats.started > FIRST_ASSIGNMENT_S:  # a group that never forms must not hold a job forever
                raise BrokerUnavailableError(
                    self.settings.bootstrap_servers, FIRST_ASSIGNMENT_S,
                    "the consumer group gave this member no assignment (is the group coordinator available?)",
                )  # fmt: skip
            return False
        if now - max(last_seen, self._last_assignment) < idle_s or self.ingestor.buffered_messages:
            return False
        return self._refresh_lag() and not any(self.stats.lag.values())

    def _refresh_lag(self) -> bool:
        """Update the lag figures; a broker hiccup only costs one progress report."""
        try:
            self.stats.lag = self._source.lag()
        except BrokerError as exc:
            log.warning("lag unavailable: %s", exc)
            return False
        return True

    def _ingest(self, batch: list[RawMessage]) -> None:
        ingestor, dlq, stats = self.ingestor, self._dlq, self.stats
        rows_before, bad_before = ingestor.rows, ingestor.bad_headers
        for m in batch:
            letter = ingestor.add(m.partition, m.offset, m.value, m.key, m.headers)
            if letter is not None:
                dlq.send(letter)
                stats.dead_letters += 1
                log.warning(
                    "dead letter partition=%d offset=%d field=%s", letter.partition, letter.offset, letter.field
                )
        stats.messages += len(batch)
        stats.accepted += ingestor.rows - rows_before
        if ingestor.bad_headers > bad_before:  # their events are kept; the values are not logged (untrusted)
            stats.bad_headers = ingestor.bad_headers
            log.warning("provenance headers unusable, stored as null: %d in this batch",
                        ingestor.bad_headers - bad_before)  # fmt: skip

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)


@contextmanager
def _collect_between_flushes() -> Iterator[None]:
    """Run the cyclic garbage collector only right after a flush, when few objects are alive.

    Between flushes tens of thousands of buffered rows are alive; the collector finds nothing among
    them (plain values) but scanning them again and again cost ~20% of ingest time (measured with
    pyinstrument on 200,000 events). The caller collects after each flush.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def terminal_progress(stats: IngestStats) -> None:
    """Show progress on one updating line on a terminal, or as a log line otherwise."""
    if sys.stderr.isatty():
        print("\r" + stats.line(), end="", file=sys.stderr, flush=True)
    else:
        log.info(stats.line())
