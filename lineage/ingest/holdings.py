"""Keeping the holdings table in step with the events table: exactly once, late events by rollback.

A ``HoldingsMaintainer`` reads the events the holdings do not reflect yet (the stored offsets of each
source partition above those the holdings applied), feeds them to the holdings engine in event-time
order, and replaces the holdings table's rows that changed (the buckets holding them) together with
the offsets they now reflect, in one Iceberg commit. A crash before the commit changes nothing; after
it, nothing is applied twice; a second maintainer that commits first makes ours fail the commit's
check and start again from the table.

An event stamped at or before what was applied (a service's spool sent after an outage; partitions
read at different speeds) rolls the engine back to its time, and every event from then on is
replayed. A long-running maintainer keeps its engine between refreshes and reads only what is new.

After store retention (``lineage.store.retention``) the events before its cut-off are gone, and the
holdings are the only record of what they made. So nothing is ever replayed from before the cut-off:
a rebuild starts from the stored holdings rolled back to the cut-off (their state then) and replays
the events kept; a late event older than the cut-off is applied as if it occurred at the cut-off
(whatever the watermark: the store no longer holds what came before it to replay), and the next
retention run with a later cut-off removes it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from lineage.errors import LineageError, StoreConflictError, StoreError
from lineage.holdings import Event, HoldingsEngine
from lineage.store import Store, StoreLocation
from lineage.store.holdings import (
    HOLDINGS,
    LAYOUT,
    HoldingsState,
    engine_from_table,
    event_offsets,
    load_holdings,
    read_batches,
    read_state,
    write_holdings,
)
from lineage.store.maintenance import expire, remove_orphans
from lineage.store.tables import retained_before

__all__ = ["HoldingsMaintainer", "Refreshed", "RefreshStopped"]

log = logging.getLogger(__name__)


class RefreshStopped(LineageError):
    """A refresh was asked to stop before its commit: nothing was written."""


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What one refresh did."""

    events: int  # events applied (replayed ones included)
    rolled_back_to: int | None  # a late event's time, when one made the engine roll back (microseconds)
    snapshot: int | None  # the holdings snapshot written (None: they were up to date)
    source: int | None  # the events snapshot they reflect
    seconds: float

    def line(self) -> str:
        """One line for an operator."""
        if self.snapshot is None:
            return f"holdings up to date with events snapshot {self.source}"
        late = " (a late event: replayed from its time)" if self.rolled_back_to is not None else ""
        return (
            f"holdings snapshot {self.snapshot}: {self.events} events applied{late}, "
            f"reflecting events snapshot {self.source}, in {self.seconds:.1f} s"
        )


class HoldingsMaintainer:
    """Brings the holdings table of one store up to date with its events table."""

    def __init__(self, location: StoreLocation) -> None:
        """Maintain the holdings of the store at ``location``."""
        self.location = location
        self._engine: HoldingsEngine | None = None
        self._based_on: int | None = None  # the holdings snapshot ``_engine`` is the state of
        self.tidy_every_s = 600.0  # also how long a replaced holdings snapshot stays readable
        self._tidied = time.monotonic()

    def refresh(self, *, rebuild: bool = False, stop: threading.Event | None = None) -> Refreshed:
        """Apply what is new (``rebuild``: recompute everything from the events); retry lost races.

        ``stop`` set while events are applied ends the refresh before its commit (``RefreshStopped``):
        a long replay need not delay a shutdown, and nothing partial is ever written.
        """
        for attempt in range(max(1, self.location.commit_retries)):
            try:
                return self._refresh(rebuild, stop)
            except StoreConflictError:
                self._engine = None
                if attempt + 1 >= self.location.commit_retries:
                    raise
                log.info("lost a race to another maintainer's commit: starting again from its table")
                time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
            except RefreshStopped:
                self._engine = None  # it applied part of the new events: the table is the truth again
                raise
        raise AssertionError("unreachable")

    def _refresh(self, rebuild: bool, stop: threading.Event | None) -> Refreshed:
        started = time.monotonic()
        events_table = self.location.load()
        current = events_table.current_snapshot()
        if current is None:
            return Refreshed(0, None, None, None, 0.0)
        offsets = event_offsets(events_table)  # what the current snapshot holds (read with it)
        table = load_holdings(self.location, create=True)
        state = read_state(table)
        if state.snapshot_id is not None and state.layout != LAYOUT and not rebuild:
            log.warning(
                "the holdings table has layout %s, this version writes %s: rebuilding it once from the events",
                state.layout,
                LAYOUT,
            )
            rebuild = True
        if state.snapshot_id is not None and not rebuild and state.applied == offsets:
            return Refreshed(0, None, None, state.source, time.monotonic() - started)
        cutoff = retained_before(events_table.properties)
        engine, applied = self._engine_for(state, rebuild and cutoff is None)
        self._engine = None  # until the commit lands, the engine is ahead of the table
        store = Store(self.location, snapshot=current.snapshot_id, holdings=False)
        if rebuild and cutoff is not None:
            self._check_baseline(state)
            engine.rollback(cutoff)  # the holdings as the retired events left them: the baseline kept
            batch: Iterator[Event] = store.engine_events({}, cutoff)
            rolled_back_to = None
        else:
            # an event older than the cut-off reads as at the cut-off (queries/holdings_events.sql)
            batch, rolled_back_to = engine.catch_up(
                store.engine_events(applied, None), lambda since: store.engine_events({}, since)
            )
        log.info("applying new events (events snapshot %s)", current.snapshot_id)
        applied_n = engine.apply(batch if stop is None else _until(stop, batch), ordered=True)
        changed = engine.take_changes()  # what the table lacks: the engine was its state before
        if stop is not None and stop.is_set():
            raise RefreshStopped("stopped before the holdings were written: nothing was committed")
        snapshot = write_holdings(
            self.location,
            engine,
            read_at=state.snapshot_id,
            source=current.snapshot_id,
            applied=offsets,
            # new events that change no holding (consents, dead letters): the offsets move, no rows rewritten
            rows=rebuild or rolled_back_to is not None or applied_n > 0 or state.snapshot_id is None,
            changed=None if rebuild else changed,
        )
        self._engine, self._based_on = engine, snapshot
        self._tidy()
        done = Refreshed(applied_n, rolled_back_to, snapshot, current.snapshot_id, time.monotonic() - started)
        log.info("%s", done.line())
        return done

    def _check_baseline(self, state: HoldingsState) -> None:
        """A rebuild after retention starts from the stored holdings: refuse when there are none to start from."""
        if state.snapshot_id is None or state.layout != LAYOUT:
            raise StoreError(
                f"events of {self.location.describe()} before the retention cut-off are gone and no holdings of "
                "this version keep what they made: a rebuild from the events alone would lose those holdings",
                path=self.location.describe(),
            )

    def _tidy(self) -> None:
        """Every ``tidy_every_s``: expire holdings snapshots replaced that long ago, and delete their files.

        Each refresh that changes holdings writes a full copy; without this a maintainer refreshing
        every few seconds would keep every copy (readers finish with a snapshot long before).
        """
        if time.monotonic() - self._tidied < self.tidy_every_s:
            return
        self._tidied = time.monotonic()
        expire(self.location, older_than_s=self.tidy_every_s, table=HOLDINGS)
        remove_orphans(self.location, grace_s=self.tidy_every_s, table_name=HOLDINGS)

    def _engine_for(self, state: HoldingsState, rebuild: bool) -> tuple[HoldingsEngine, dict[str, dict[int, int]]]:
        """The engine to continue from, and the offsets it reflects."""
        if rebuild or state.snapshot_id is None:
            return HoldingsEngine(), {}
        if self._engine is not None and self._based_on == state.snapshot_id:
            return self._engine, state.applied
        table = load_holdings(self.location)
        rows = read_batches(self.location, table, state.snapshot_id)
        return engine_from_table(rows, state.watermark), state.applied


def _until(stop: threading.Event, events: Iterator[Event]) -> Iterator[Event]:
    """``events`` until ``stop`` is set (checked every thousand: an Event.is_set per event costs)."""
    for n, event in enumerate(events):
        if not n % 1000 and stop.is_set():
            raise RefreshStopped("stopped while applying events: nothing was committed")
        yield event
