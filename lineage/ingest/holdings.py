"""Keeping the holdings table in step with the events table: exactly once, late events by rollback.

A ``HoldingsMaintainer`` reads the events the holdings do not reflect yet (the stored offsets of each
source partition above those the holdings applied), feeds them to the holdings engine in event-time
order, and writes the holdings rows that changed (deltas: ``lineage.store.holdings``) together with
the offsets they now reflect, in one Iceberg commit. A crash before the commit changes nothing; after
it, nothing is applied twice; a second maintainer that commits first makes ours fail the commit's
check and start again from the table.

An event stamped at or before what was applied (a service's spool sent after an outage; partitions
read at different speeds) rolls the engine back to its time, and every event from then on is
replayed. A long-running maintainer keeps its engine between refreshes and reads only what is new;
it also keeps the last events it applied (``Recent``), so a replay reads only the new ones while
the events table has only grown since. The events stored while a refresh applied are applied before
it writes (``top_ups``), in the same commit, when the events table was only appended to meanwhile.
Such a maintainer also holds back what one partition has beyond the others in event time
(``holdback``): partitions stored at different speeds then make no late events.
Between refreshes, with time to spare, it folds the buckets deltas have gathered (``fold``): off the
refresh, so a burst of events is not slowed by it, and lookups open one file a bucket again.

After store retention (``lineage.store.retention``) the events before its cut-off are gone, and the
holdings are the only record of what they made. So nothing is ever replayed from before the cut-off:
a rebuild starts from the stored holdings rolled back to the cut-off (their state then) and replays
the events kept; a late event older than the cut-off is applied as if it occurred at the cut-off
(whatever the watermark: the store no longer holds what came before it to replay), and the next
retention run with a later cut-off removes it.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

from lineage.errors import LineageError, StoreConflictError, StoreError
from lineage.holdings import Event, HoldingsEngine
from lineage.store import Store, StoreLocation
from lineage.store.engine import Offsets, Scan
from lineage.store.file_bounds import SourceOffsets
from lineage.store.holdings import (
    HOLDINGS,
    LAYOUT,
    READS,
    Folded,
    HoldingsState,
    engine_from_table,
    event_offsets,
    fenced_only,
    fold_buckets,
    foldable,
    load_holdings,
    read_batches,
    read_state,
    try_load_holdings,
    write_holdings,
)
from lineage.store.maintenance import expire, remove_orphans
from lineage.store.snapshots import only_appended
from lineage.store.tables import retained_before

__all__ = ["HoldingsMaintainer", "Recent", "Refreshed", "RefreshStopped"]

log = logging.getLogger(__name__)

#: the fewest rows a fold's buckets must average for its rate to plan the next: a file's fixed costs
#: (~30-40 ms each here) make a fold of small buckets look slow (16 of ~1,250 rows: 30,000 rows/s)
_RATE_FROM_ROWS = 20_000
#: a fold's rate before any is measured: folds of the seed world went at ~390,000 rows/s here alone,
#: about half that beside a consumer (2026-12-06)
_FIRST_RATE = 200_000.0
_NO_TIME_S = 0.1  # a budget this short (or none: a refresh that overran) is not looked at


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
    held: int = 0  # offsets of ``source`` held back for the next refresh (``HoldingsMaintainer.holdback``)

    def line(self) -> str:
        """One line for an operator."""
        if self.snapshot is None:
            return f"holdings up to date with events snapshot {self.source}"
        late = " (a late event: replayed from its time)" if self.rolled_back_to is not None else ""
        held = f", {self.held} offsets held back for the next refresh" if self.held else ""
        return (
            f"holdings snapshot {self.snapshot}: {self.events} events applied{late}, "
            f"reflecting events snapshot {self.source}{held}, in {self.seconds:.1f} s"
        )


class Recent:
    """The events an engine applied lately, in the order applied: what a late event's replay applies again.

    A late event rolls the engine back to its time and every event from then on is applied again.
    Those it applied before are here, so the replay reads only the new ones from the store, not
    every stored event since that time (at 26,000 events/s a consumer's partitions drift tens of
    thousands of events apart, and most refreshes meet a late event). Valid only while the events
    table has only grown (``only_appended``) under the same retention cut-off: a forget or retention
    run removes events a replay must not apply again. Bounded to about ``limit`` events; a replay
    reaching back before those it holds reads the store, as without it.
    """

    def __init__(self, complete_after: int | None, floor: int | None, limit: int) -> None:
        """Keep applied events; every one applied later than ``complete_after`` is held (None: every one)."""
        self.complete_after = complete_after
        self.floor = floor  # the retention cut-off the events were read under
        self.read_at: int | None = None  # the events snapshot they were last read at
        self.limit = limit
        self._events: list[Event] = []
        self._times: list[int] = []

    def __len__(self) -> int:
        """How many events are held."""
        return len(self._events)

    def since(self, at: int) -> list[Event] | None:
        """The held events from time ``at`` on (None: some are not held), taken out: applying them records them."""
        i = bisect_left(self._times, at)
        held = self._events[i:] if self.complete_after is None or at > self.complete_after else None
        if held is None:  # the replay reads them from the store, and records them all from ``at`` on
            self.complete_after = at - 1
        del self._events[i:], self._times[i:]
        return held

    def record(self, events: Iterator[Event]) -> Iterator[Event]:
        """``events``, each held as it passes (to the engine, which applies them in this order)."""
        for e in events:
            self._events.append(e)
            self._times.append(e.at)
            if len(self._events) > self.limit + self.limit // 4:  # drop the oldest, a quarter at a time
                cut = len(self._events) - self.limit
                dropped = self._times[cut - 1]
                self.complete_after = dropped if self.complete_after is None else max(self.complete_after, dropped)
                del self._events[:cut], self._times[:cut]
            yield e


class HoldingsMaintainer:
    """Brings the holdings table of one store up to date with its events table."""

    def __init__(self, location: StoreLocation, *, threads: int | None = None) -> None:
        """Maintain the holdings of the store at ``location``; ``threads``: DuckDB's for its reads (``Store``)."""
        self.location = location
        self.threads = threads
        self._engine: HoldingsEngine | None = None
        # what the table said when ``_engine`` was its state: the snapshot alone is not enough, since a
        # refresh that changes no row (here, another maintainer's, a forget's) moves the offsets and the
        # source in the table's properties without a new snapshot
        self._based_on: HoldingsState | None = None
        self._recent: Recent | None = None  # the last events ``_engine`` applied
        self.recent_events = 100_000  # how many to keep (~450 bytes each); a replay reaching further reads the store
        # how many times a refresh may apply the events stored while it applied, before it writes: each
        # joins the same commit (its events wait no second refresh), and a bound keeps the commit coming
        self.top_ups = 1
        #: how fast the last fold of large buckets went (rows a second): a fold starts only when it
        #: should end in half the time it is given
        self.fold_rows_per_s = _FIRST_RATE
        self._plan: tuple[int, dict[int, int]] | None = None  # a holdings snapshot, and its buckets to fold
        self.tidy_every_s = 600.0  # also how long a replaced holdings snapshot stays readable
        # the events snapshots a refresh reads, and the holdings snapshot it starts from (``_reading``)
        self._reads: tuple[list[int], int | None] = ([], None)
        self._tidied = time.monotonic()
        #: hold back, per partition, the new events at or past the time the slowest has reached (the
        #: next refresh applies them whatever it finds): partitions stored at different speeds then
        #: make no late events. For a maintainer that refreshes again soon (``consumers.holdings``);
        #: a refresh asked for once (the CLI's, a forget's) applies every event.
        self.holdback = False
        self._seen: Offsets = {}  # the offsets stored when the last commit read the events
        # each event file's highest offset per partition: which files hold new events (``Store.scan``)
        self._file_offsets: dict[str, SourceOffsets] = {}

    def _events_at(self, snapshot: int | None) -> Store:
        """The events table alone (no holdings: they are what this makes) at ``snapshot``, on ``threads``."""
        return Store(self.location, snapshot=snapshot, holdings=False, threads=self.threads)

    def refresh(self, *, rebuild: bool = False, stop: threading.Event | None = None) -> Refreshed:
        """Apply what is new (``rebuild``: recompute everything from the events); retry lost races.

        ``stop`` set while events are applied ends the refresh before its commit (``RefreshStopped``):
        a long replay need not delay a shutdown, and nothing partial is ever written.
        """
        for attempt in range(max(1, self.location.commit_retries)):
            try:
                with self._reading(), ExitStack() as scans:
                    return self._refresh(rebuild, stop, scans)
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

    def _refresh(self, rebuild: bool, stop: threading.Event | None, scans: ExitStack) -> Refreshed:
        """One try of ``refresh``; ``scans`` holds a snapshot's read open until the engine has applied its events."""
        started = time.monotonic()
        # the holdings before the events: a forget removing events after this moves the holdings on
        # (its fence), so a commit on what we read now fails rather than writing the person back
        table = try_load_holdings(self.location)
        events_table = self.location.load()
        current = events_table.current_snapshot()
        if current is None:
            return Refreshed(0, None, None, None, 0.0)
        if table is None:  # made first, then the events read again: a forget from now on finds it
            table = load_holdings(self.location, create=True)
            events_table = self.location.load()
            current = events_table.current_snapshot()
            assert current is not None  # a table's snapshots never all go
        offsets = event_offsets(events_table)  # what the current snapshot holds (read with it)
        state = read_state(table)
        fresh = fenced_only(table)  # only forgets' fences: written as a first write is, from the events
        if state.snapshot_id is not None and state.layout not in READS and not rebuild and not fresh:
            log.warning(
                "the holdings table has layout %s, this version writes %s: rebuilding it once from the events",
                state.layout,
                LAYOUT,
            )
            rebuild = True
        if state.snapshot_id is not None and not rebuild and state.applied == offsets:
            return Refreshed(0, None, None, state.source, time.monotonic() - started)
        cutoff = retained_before(events_table.properties)
        self._reads = ([current.snapshot_id], state.snapshot_id)  # a top-up adds the events snapshot it reads
        engine, applied = self._engine_for(state, (rebuild and cutoff is None) or fresh)
        recent = self._recent
        if (
            engine is not self._engine
            or recent is None
            or recent.floor != cutoff
            or not only_appended(self.location, recent.read_at, current.snapshot_id, table=events_table)
        ):
            recent = Recent(engine.watermark, cutoff, self.recent_events)
        self._engine = self._recent = None  # until the commit lands, the engine is ahead of the table
        current_id = current.snapshot_id
        # one connection for each snapshot's reads (the bounds, the new events, a replay)
        scan = scans.enter_context(self._events_at(current_id).scan(self._file_offsets))
        if rebuild and cutoff is not None:
            self._check_baseline(state)
            engine.rollback(cutoff)  # the holdings as the retired events left them: the baseline kept
            recent = Recent(cutoff - 1, cutoff, self.recent_events)
            batch: Iterator[Event] = scan.events({}, cutoff, floor=cutoff)
            rolled_back_to, seen = None, offsets
        else:
            bounds = self._bounds(scan, applied, cutoff) if self.holdback and not rebuild and not fresh else {}
            # an event older than the cut-off reads as at the cut-off (queries/holdings_events.sql)
            batch, rolled_back_to = engine.catch_up(
                scan.events(applied, None, floor=cutoff, bounds=bounds),
                functools.partial(scan.events, {}, floor=cutoff, bounds=bounds),
                kept=recent.since,
            )
            seen, offsets = offsets, _below(offsets, bounds)
        log.info("applying new events (events snapshot %s)", current.snapshot_id)
        batch = recent.record(batch)
        applied_n = engine.apply(batch if stop is None else _until(stop, batch), ordered=True)
        scans.close()  # every event read is applied: the connection and its sort memory go now
        # events stored while those were applied join this refresh's commit (what the next refresh would
        # read: those above the offsets applied), rather than waiting for a whole refresh more
        for _ in range(0 if rebuild else self.top_ups):
            if stop is not None and stop.is_set():
                break
            newer = self._newer_events(current_id, cutoff)
            if newer is None:
                break
            later, later_offsets = newer
            self._reads[0].append(later)
            scan = scans.enter_context(self._events_at(later).scan(self._file_offsets))
            bounds = self._bounds(scan, offsets, cutoff) if self.holdback else {}
            batch, back = engine.catch_up(
                scan.events(offsets, None, floor=cutoff, bounds=bounds),
                functools.partial(scan.events, {}, floor=cutoff, bounds=bounds),
                kept=recent.since,
            )
            log.info("applying the events stored meanwhile (events snapshot %s)", later)
            batch = recent.record(batch)
            applied_n += engine.apply(batch if stop is None else _until(stop, batch), ordered=True)
            scans.close()
            if back is not None:
                rolled_back_to = back if rolled_back_to is None else min(rolled_back_to, back)
            current_id, seen, offsets = later, later_offsets, _below(later_offsets, bounds)
        changed = engine.take_changes()  # what the table lacks: the engine was its state before
        if stop is not None and stop.is_set():
            raise RefreshStopped("stopped before the holdings were written: nothing was committed")
        held = sum(off - offsets.get(o, {}).get(p, -1) for o, parts in seen.items() for p, off in parts.items())
        snapshot = write_holdings(
            self.location,
            engine,
            read_at=state.snapshot_id,
            source=current_id,
            applied=offsets,
            # new events that change no holding (consents, dead letters): the offsets move, no rows rewritten
            rows=rebuild or fresh or rolled_back_to is not None or applied_n > 0 or state.snapshot_id is None,
            changed=None if rebuild or fresh else changed,
            held=held,
        )
        self._reads = ([], None)  # committed: what fails from here (a tidy) is no lost race
        recent.read_at = current_id
        self._engine, self._recent = engine, recent
        self._based_on = HoldingsState(snapshot, current_id, engine.watermark, offsets, LAYOUT, held > 0)
        self._seen = seen
        self._tidy()
        done = Refreshed(applied_n, rolled_back_to, snapshot, current_id, time.monotonic() - started, held)
        log.info("%s", done.line())
        return done

    def fold(self, budget_s: float) -> Folded | None:
        """Fold the buckets deltas have gathered, most files first: as many as should fit in ``budget_s``.

        The maintainer's idle work, in one commit: what answers read stays the same, and the table
        moves on (a snapshot, no new events) with the engine still its state, so the next refresh goes
        on from it. How many buckets: their stored rows at the rate folds went (``fold_rows_per_s``),
        in half the time left. None when there is nothing to fold or no time for it, or when the fold
        failed: it is optional work, so a table moved meanwhile (a forget) or a store error is one log
        line, and the next refresh meets what it meant.
        """
        if budget_s <= _NO_TIME_S:  # behind: the next refresh starts at once, so no look at the table either
            return None
        started = time.monotonic()
        state: HoldingsState | None = None
        try:
            table = try_load_holdings(self.location)  # none yet (nothing stored): nothing to say
            state = read_state(table) if table is not None else None
            if table is None or state is None or state.snapshot_id is None or state.layout != LAYOUT:
                return None
            if self._plan is None or self._plan[0] != state.snapshot_id:  # the manifests read once a snapshot
                self._plan = (state.snapshot_id, foldable(self.location, table, state.snapshot_id))
            candidates = self._plan[1]
            if not candidates:
                return None
            # half the time left: a fold that overran would delay the next refresh, and the load moves a
            # fold's rate (beside a consumer on the same cores, about half its rate alone)
            fits = (budget_s - (time.monotonic() - started)) / 2 * self.fold_rows_per_s
            buckets, rows = [], 0
            for bucket, stored in candidates.items():
                if rows + stored <= fits:
                    buckets.append(bucket)
                    rows += stored
            if not buckets:
                # time left but too little: a rate measured once under load must not stop folding for
                # good, so one below the first guess creeps back to it while nothing fits
                if self.fold_rows_per_s < _FIRST_RATE:
                    self.fold_rows_per_s = min(_FIRST_RATE, self.fold_rows_per_s * 1.1)
                return None
            folding = time.monotonic()
            folded = fold_buckets(self.location, state.snapshot_id, buckets)
        except StoreConflictError:
            log.info("no fold of the holdings this time: they changed meanwhile (a forget, another maintainer)")
            return None
        except LineageError as exc:
            if not exc.retryable and not self._moved_from(state):
                raise  # a store that cannot be read is the refresh's failure too: not hidden here
            # a retryable one, or a file gone because the table moved on (a forget removes its files)
            log.warning("no fold of the holdings this time: %s", " ".join(str(exc).split()))
            return None
        took = time.monotonic() - folding
        if rows >= _RATE_FROM_ROWS * len(buckets):  # small buckets are mostly fixed costs: their rate misleads
            self.fold_rows_per_s = rows / max(took, 1e-3)
        if self._based_on == state:
            self._based_on = replace(state, snapshot_id=folded.snapshot_id)
        log.info("folded buckets %s of the holdings (%s rows) in %.2f s", buckets, f"{folded.rows:,}", took)
        return folded

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A failure while a snapshot read was expired meanwhile (a forget) is a race lost: ``StoreConflictError``.

        A forget rewrites both tables and expires what it replaced at once, so a refresh reading them
        then finds a snapshot or a file gone; its retry starts again from the tables as they are now.
        """
        self._reads = ([], None)
        try:
            yield
        except RefreshStopped:
            raise
        except Exception as exc:  # noqa: BLE001
            if not isinstance(exc, StoreConflictError) and self._expired(*self._reads):
                where = self.location.describe()
                # what failed, kept for the log (the type alone: a message may name a file)
                log.info("a snapshot the refresh read is gone (a forget); it failed with %s", type(exc).__name__)
                raise StoreConflictError(
                    f"the events of {where} changed while the holdings refresh read them (a forget): "
                    "it must start again from the tables",
                    path=where,
                ) from None
            raise

    def _expired(self, events_snapshots: list[int], holdings_snapshot: int | None) -> bool:
        """Whether one of ``events_snapshots`` or ``holdings_snapshot`` is gone from its table (False: cannot tell)."""
        try:
            events = self.location.load()
            holdings = try_load_holdings(self.location) if holdings_snapshot is not None else None
        except Exception:  # noqa: BLE001
            return False
        if any(events.snapshot_by_id(s) is None for s in events_snapshots):
            return True
        if holdings is None or holdings_snapshot is None:
            return False
        return holdings.snapshot_by_id(holdings_snapshot) is None

    def _moved_from(self, state: HoldingsState | None) -> bool:
        """Whether the holdings table is past ``state``'s snapshot now (False when none was read)."""
        if state is None:
            return False
        table = try_load_holdings(self.location)
        current = table.current_snapshot() if table is not None else None
        return current is None or current.snapshot_id != state.snapshot_id

    def _newer_events(self, since: int, cutoff: int | None) -> tuple[int, dict[str, dict[int, int]]] | None:
        """The events snapshot after ``since`` and its offsets, when events were only appended since (None: else).

        A forget, a retention run or a compaction in between leaves them to the next refresh, which
        starts from the table (what it rewrote or removed may have been applied already).
        """
        table = self.location.load()
        later = table.current_snapshot()
        if (
            later is None
            or later.snapshot_id == since
            or retained_before(table.properties) != cutoff
            or not only_appended(self.location, since, later.snapshot_id, table=table)
        ):
            return None
        return later.snapshot_id, event_offsets(table)

    def _bounds(self, scan: Scan, applied: Offsets, cutoff: int | None) -> Offsets:
        """Where to stop in each partition (``Scan.holdback``); what the last commit held back is applied now.

        A held-back event waits one refresh at most: a partition that stopped receiving events, or a
        slower one far behind, must not hold the others back for longer.
        """
        return scan.holdback(applied, floor=cutoff, through=self._seen)

    def _check_baseline(self, state: HoldingsState) -> None:
        """A rebuild after retention starts from the stored holdings: refuse when there are none to start from."""
        if state.snapshot_id is None or state.layout not in READS:
            raise StoreError(
                f"events of {self.location.describe()} before the retention cut-off are gone and no holdings of "
                "this version keep what they made: a rebuild from the events alone would lose those holdings",
                path=self.location.describe(),
            )

    def _tidy(self) -> None:
        """Every ``tidy_every_s``: expire holdings snapshots replaced that long ago, and delete their files.

        Each refresh that changes holdings writes files that replace others (the resets' file, a
        bucket folded, the flows); without this a maintainer refreshing every few seconds would keep
        every replaced file (readers finish with a snapshot long before).
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
        if self._engine is not None and self._based_on == state:
            return self._engine, state.applied
        table = load_holdings(self.location)
        rows = read_batches(self.location, table, state.snapshot_id)
        return engine_from_table(rows, state.watermark), state.applied


def _below(offsets: Offsets, bounds: Offsets) -> Offsets:
    """The offsets applied: those stored (``offsets``), each stopping before its partition's bound (held back)."""
    out: Offsets = {}
    for origin, parts in offsets.items():
        for part, off in parts.items():
            bound = bounds.get(origin, {}).get(part)
            last = off if bound is None else min(off, bound - 1)
            if last >= 0:  # -1: nothing of the partition applied yet, as when it is not named
                out.setdefault(origin, {})[part] = last
    return out


def _until(stop: threading.Event, events: Iterator[Event]) -> Iterator[Event]:
    """``events`` until ``stop`` is set (checked every thousand: an Event.is_set per event costs)."""
    for n, event in enumerate(events):
        if not n % 1000 and stop.is_set():
            raise RefreshStopped("stopped while applying events: nothing was committed")
        yield event
