"""Exactly once into the events table: each commit adds rows and moves their offsets together.

The Iceberg Kafka Connect sink is the model: offsets are committed with the data, in the table,
so a consumer on any host resumes from the table and not from Kafka. Here every consumer commits
its own partitions, and its commits carry other writers' waiting batches (no coordinator process):

- the last stored offset of each source partition is a table property
  (``lineage.offset.<origin>.<partition>``); properties survive any engine's compaction;
- a commit requires that the table is still at the snapshot it read (``AssertRefSnapshotId``), and
  every commit makes a new snapshot (an empty one for a claim or a batch of dead letters), so of
  two writers racing, one loses; the loser re-reads the offsets, drops rows at or below them,
  and tries again. pyiceberg's own retry is off (``commit.retry.num-retries=0``): it would re-send
  the stale offsets unchanged and store rows twice;
- a consumer *claims* a partition on assignment by raising its owner epoch
  (``lineage.owner.<origin>.<partition>``); a writer whose epoch was superseded (a zombie that lost
  the partition while paused) drops its rows for it instead of committing them;
- a writer that lost a race *stages* its written batch (``lineage.store.staging``), and any writer's
  next commit carries every staged batch still valid, naming them in its summary (``lineage.carried``):
  one catalog round stores many writers' rows, so rows/s grows with writers instead of falling.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import _dataframe_to_data_files, parquet_file_to_data_file
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table, TableProperties, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import AssertRefSnapshotId, update_table_metadata

from lineage.errors import StoreConflictError, StoreError
from lineage.private import private_files
from lineage.store.catalog import StoreLocation, store_error
from lineage.store.claim import check_claim
from lineage.store.staging import StagedBatch, StagedPart, Staging, stored_or_stale
from lineage.store.tables import ColumnBuffer, offset_key, owner_epoch, owner_key

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog

__all__ = ["PartitionRows", "Stored", "TableWriter"]

log = logging.getLogger(__name__)

_TURN_S = 2.0  # longest a writer holds the commit turn, and waits for it
CARRIED = "lineage.carried"  # snapshot summary: the staged batches (ids, JSON) a commit stored for other writers


@dataclass(slots=True)
class PartitionRows:
    """Messages consumed from one partition since the last commit: offsets first..last, valid rows kept."""

    first: int
    last: int
    rows: ColumnBuffer = field(default_factory=ColumnBuffer)


@dataclass(frozen=True, slots=True)
class Stored:
    """What one commit stored for one partition: offsets first..last (inclusive), and how many rows."""

    origin: str
    partition: int
    first: int
    last: int
    rows: int


class _Transaction(Transaction):
    """A transaction that builds its staged metadata once per change, not once per look.

    pyiceberg 0.12 rebuilds and deep-copies the whole table metadata (every snapshot's summary, the
    schema, the name mapping) each time ``table_metadata`` is read, and one append reads it about
    ten times: a commit's CPU grew with the table's snapshot count (73 ms at 50 snapshots, 232 ms at
    200, measured). The metadata models are frozen, so one copy per staged state can be shared.
    """

    _staged: tuple[object, TableMetadata] | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        """The table's metadata with the staged updates applied (rebuilt only after a new update)."""
        updates = self._updates
        if self._staged is None or self._staged[0] is not updates:
            self._staged = (updates, update_table_metadata(self._table.metadata, updates))
        return self._staged[1]


def _carried_since(metadata: TableMetadata, batch_id: str, since: int | None) -> bool | None:
    """Whether a snapshot after ``since`` (the table's snapshot when the batch was staged) carried ``batch_id``.

    None when that history is gone (expired by compaction or a forget) before ``since`` was reached.
    """
    snapshot = metadata.snapshot_by_id(metadata.current_snapshot_id) if metadata.current_snapshot_id else None
    while snapshot is not None and snapshot.snapshot_id != since:
        carried = snapshot.summary.get(CARRIED) if snapshot.summary is not None else None
        if carried and batch_id in json.loads(carried):
            return True
        parent = snapshot.parent_snapshot_id
        snapshot = metadata.snapshot_by_id(parent) if parent is not None else None
    return False if snapshot is not None or since is None else None


def _all_present(table: Table, location: StoreLocation, files: list[DataFile]) -> bool:
    """Whether every one of ``files`` is still there (one look each: a retry's check, not the first try's).

    A look that fails is raised, not taken for "gone": writing present files again would unstage a
    batch another writer may be carrying, and this one would then report its rows unstored.
    """
    try:
        return all(table.io.new_input(f.file_path).exists() for f in files)
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "checking the data files written for a retry") from None


def _in_data_folder(table: Table, path: str) -> bool:
    """Whether ``path`` names a file inside the table's ``data/`` folder (no ``..``, ``.`` or empty step)."""
    data = table.location().rstrip("/") + "/data/"
    steps = path[len(data) :].split("/") if path.startswith(data) else [""]
    return all(step not in ("", ".", "..") for step in steps)


class TableWriter:
    """Commits buffered rows of one source (a topic, or a backfill file) into the events table."""

    def __init__(
        self, location: StoreLocation, origin: str, *, member: str = "writer", group_commit: bool = True
    ) -> None:
        """Write rows of ``origin`` as ``member`` (named in the owner property, for operators).

        ``group_commit=False`` neither stages a lost batch nor carries others' (the benchmark's baseline).
        """
        self.group_commit = group_commit
        self.location = location
        self.origin = origin
        self.member = member
        self.fenced: set[int] = set()
        self.commits = 0
        self.conflicts = 0
        self.carried = 0  # commits of this writer's batches that another writer's commit carried
        self._epochs: dict[int, int] = {}
        self._table: Table | None = None
        self._contended = False  # other writers were active at the last commit: stage the next one at once
        self._staged_in: Staging | None = None
        self._staged_since: dict[str, int | None] = {}  # staged batch -> the snapshot it was staged on
        self._holder = str(uuid.uuid4())  # this writer, in the commit turn

    def _fresh(self) -> Table:
        """The table as the catalog has it now."""
        try:
            with private_files():
                if self._table is None:
                    self._table = self.location.load(create=True)
                else:
                    # again before each commit (read once a minute): a `lineage claim` elsewhere stops us
                    check_claim(self.location, cast("SqlCatalog", self._table.catalog))
                    self._table = self._table.refresh()
        except Exception as exc:  # noqa: BLE001
            self._table = None
            raise store_error(exc, self.location, "reading the table") from None
        return self._table

    def stored(self) -> dict[int, int]:
        """The last stored offset of each partition of this source that has any."""
        prefix = offset_key(self.origin, 0)[:-1]
        out: dict[int, int] = {}
        for key, value in self._fresh().properties.items():
            if key.startswith(prefix) and key[len(prefix) :].isdigit():
                out[int(key[len(prefix) :])] = int(value)
        return out

    def claim(self, partitions: Iterable[int]) -> dict[int, int]:
        """Own ``partitions`` from now (older owners are fenced); return the next offset to read of each stored one."""
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        with private_files():
            return self._claim(wanted)

    def _claim(self, wanted: list[int]) -> dict[int, int]:
        for attempt in range(self.location.commit_retries):
            table = self._fresh()
            props = table.properties
            epochs = {p: owner_epoch(props.get(owner_key(self.origin, p))) + 1 for p in wanted}
            tx = self._transaction(table)
            claimed = {str(p): f"{epochs[p]}:{self.member}" for p in wanted}
            self._new_snapshot(tx, {f"lineage.claim.{self.origin}": json.dumps(claimed)}, [], merge=False)
            tx.set_properties({owner_key(self.origin, p): f"{epochs[p]}:{self.member}" for p in wanted})
            if self._commit(tx, attempt):
                self._epochs.update(epochs)
                self.fenced.difference_update(wanted)
                keys = {p: offset_key(self.origin, p) for p in wanted}
                return {p: int(props[k]) + 1 for p, k in keys.items() if k in props}
        raise self._gave_up("claiming partitions")

    def release(self, partitions: Iterable[int]) -> None:
        """Forget ownership of ``partitions`` (revoked): nothing of them is committed until claimed again."""
        for p in partitions:
            self._epochs.pop(p, None)

    def commit(self, batches: Mapping[int, PartitionRows]) -> list[Stored]:
        """Store each partition's rows above its stored offset, and move the offsets, in one commit.

        Returns what was stored. Partitions another writer now owns are left out and added to
        ``fenced``; the caller drops their rows. Raises ``StoreConflictError`` when every try lost.
        """
        with private_files():  # data files, manifests and metadata alike
            return self._commit_batches(batches)

    def _commit_batches(self, batches: Mapping[int, PartitionRows]) -> list[Stored]:
        written: tuple[tuple[tuple[int, int], ...], list[DataFile]] | None = None
        mine: StagedBatch | None = None  # this batch, staged for other writers' commits to carry
        turn = False  # this writer commits next (or waited its longest for another to)
        losses = 0  # tries of this call that lost a race (a wait for the turn is not one)
        direct = False  # the staged batch went uncarried while waiting: commit it without staging again
        try:
            for _ in range(3 * self.location.commit_retries + 1):  # each loss may add a wait and a direct try
                if losses >= self.location.commit_retries:
                    break
                table = self._fresh()
                props = table.properties
                if mine is not None and stored_or_stale(mine, props):
                    carried = self._carried(mine, table)
                    if carried is not None:
                        mine = None  # the writer that carried it removed it
                        return carried
                plan: dict[int, int] = {}  # partition -> stored offset before this commit
                for p, batch in sorted(batches.items()):
                    epoch = self._epochs.get(p)
                    if epoch is not None and owner_epoch(props.get(owner_key(self.origin, p))) != epoch:
                        self.fenced.add(p)
                        self._epochs.pop(p)
                        log.warning("fenced origin=%s partition=%d: another writer owns it now", self.origin, p)
                        continue
                    if p in self.fenced:
                        continue
                    stored = int(props.get(offset_key(self.origin, p), -1))
                    if batch.last > stored:
                        plan[p] = stored
                if not plan:
                    return []
                key = tuple(sorted(plan.items()))
                if written is not None and written[0] == key and not _all_present(table, self.location, written[1]):
                    # removed while this writer waited to commit them (orphan removal once they passed
                    # its grace: a retry can wait that long under contention): committed, the table
                    # would name a missing file and every read of it would fail. ``forget`` spares a
                    # young file; a removal between this look and the commit is not caught here
                    log.warning("data files written for a retry were removed meanwhile: written again")
                    written = None
                    if mine is not None:
                        self._unstage(mine)  # staged with the removed files
                        mine = None
                if written is None or written[0] != key:
                    # data files are written once per plan; a retry that lost only to other partitions'
                    # commits re-stages the same files
                    written = (key, self._write_files(table, batches, plan))
                if mine is not None and stored_or_stale(mine, props):
                    self._unstage(mine)  # planned against offsets or owners that changed
                    mine = None
                if direct:
                    mine = None  # its row is gone (another writer judged it stale on an older read)
                elif mine is None and self._contended:
                    mine = self._stage(table, batches, plan, written[1])
                if mine is not None and not turn:
                    # another writer may be committing, and will carry this batch: wait for the turn or
                    # for the batch to go, then read the table again (not counted as a lost race)
                    turn = self._await_turn(mine)
                    direct = not turn
                    continue
                direct = False
                others, stale = self._waiting(table, props, plan, mine)
                tx = self._transaction(table)
                offsets = {str(p): [max(batches[p].first, s + 1), batches[p].last] for p, s in plan.items()}
                summary = {f"lineage.offsets.{self.origin}": json.dumps(offsets)}
                files = list(written[1])
                properties = {offset_key(self.origin, p): str(batches[p].last) for p in plan}
                for other, other_files in others:
                    files.extend(other_files)
                    ranges = json.loads(summary.get(f"lineage.offsets.{other.origin}", "{}"))
                    for part in other.parts:
                        ranges[str(part.partition)] = [part.first, part.last]
                        properties[offset_key(other.origin, part.partition)] = str(part.last)
                    summary[f"lineage.offsets.{other.origin}"] = json.dumps(ranges)
                if others:
                    summary[CARRIED] = json.dumps([o.batch_id for o, _ in others])
                merge = props.get(TableProperties.MANIFEST_MERGE_ENABLED, "false") == "true"
                self._new_snapshot(tx, summary, files, merge=merge and bool(files))
                tx.set_properties(properties)
                if self._commit(tx, losses):
                    # a lone writer again (nothing lost, nothing carried) stops staging and waiting its turn
                    self._contended = bool(losses or others)
                    done = [o.batch_id for o, _ in others] + stale + ([mine.batch_id] if mine else [])
                    mine = None
                    self._forget(done)
                    return [self._stored(p, batches[p], s) for p, s in sorted(plan.items())]
                self._contended = True
                losses += 1
                # stale rows are dropped only after a commit that won: judged on a read that lost, a
                # batch staged since against the newer table would be dropped while still valid
                if turn:
                    self._end_turn()
                    turn = False
                if mine is None:
                    mine = self._stage(table, batches, plan, written[1])
            raise self._gave_up("storing a batch")
        finally:
            if turn:
                self._end_turn()
            if mine is not None:
                # given up or failed: the caller keeps the rows and tries again; a writer that carries
                # this batch meanwhile only moves the offsets the retry plans from
                self._unstage(mine)

    def _staging(self, table: Table) -> Staging | None:
        """Where this table's batches are staged: its SQL catalog's database."""
        if self._staged_in is None:
            engine = getattr(table.catalog, "engine", None)
            if engine is None or not self.group_commit:
                return None
            self._staged_in = Staging(engine, table.catalog.name, self.location.identifier())
        return self._staged_in

    def _stage(
        self, table: Table, batches: Mapping[int, PartitionRows], plan: dict[int, int], files: list[DataFile]
    ) -> StagedBatch | None:
        staging = self._staging(table)
        if staging is None:
            return None
        props = table.properties
        parts = [
            StagedPart(
                p,
                # a writer that never claimed (a backfill) is not fenced: it stages under the current owner
                self._epochs.get(p, owner_epoch(props.get(owner_key(self.origin, p)))),
                s,
                max(batches[p].first, s + 1),
                batches[p].last,
                batches[p].rows.count_above(s),
            )
            for p, s in sorted(plan.items())
        ]
        staged = StagedBatch.new(self.origin, parts, (f.file_path for f in files))
        if not staging.add(staged):
            return None
        self._staged_since[staged.batch_id] = table.metadata.current_snapshot_id
        return staged

    def _await_turn(self, mine: StagedBatch) -> bool:
        """Wait until this writer holds the commit turn (True) or its staged batch is gone (False).

        Gone means another writer's commit carried it or dropped it as stale: the next read of the
        table tells which. After ``_TURN_S`` without either, go ahead anyway (True): a turn held by a
        writer that died lapses, and a commit without the turn is still exact, only likelier to lose.
        """
        staging = self._staged_in
        if staging is None:
            return True
        deadline = time.monotonic() + _TURN_S
        while True:
            if staging.take_turn(self._holder, _TURN_S):
                return True
            if not staging.has(mine.batch_id):
                return False
            if time.monotonic() > deadline:
                return True
            time.sleep(random.uniform(0.015, 0.035))

    def _end_turn(self) -> None:
        if self._staged_in is not None:
            self._staged_in.end_turn(self._holder)

    def _unstage(self, staged: StagedBatch) -> None:
        self._forget([staged.batch_id])

    def _forget(self, batch_ids: list[str]) -> None:
        if batch_ids and self._staged_in is not None:
            self._staged_in.remove(batch_ids)
            for batch_id in batch_ids:
                self._staged_since.pop(batch_id, None)

    def _waiting(
        self, table: Table, props: Mapping[str, str], plan: Mapping[int, int], mine: StagedBatch | None
    ) -> tuple[list[tuple[StagedBatch, list[DataFile]]], list[str]]:
        """Other writers' staged batches this commit can carry (with their files), and the stale ones."""
        staging = self._staging(table)
        if staging is None:
            return [], []
        carry: list[tuple[StagedBatch, list[DataFile]]] = []
        stale: list[str] = []
        taken = {(self.origin, p) for p in plan}
        for batch in staging.waiting():
            if mine is not None and batch.batch_id == mine.batch_id:
                continue
            keys = {(batch.origin, part.partition) for part in batch.parts}
            if stored_or_stale(batch, props):
                stale.append(batch.batch_id)
            elif not keys & taken:
                files = self._files_of(table, batch)
                if files is None:
                    stale.append(batch.batch_id)
                else:
                    carry.append((batch, files))
                    taken |= keys
        return carry, stale

    def _files_of(self, table: Table, batch: StagedBatch) -> list[DataFile] | None:
        """The data files of another writer's batch, described from their footers; None if any is unusable.

        Read again at each try, never kept: a file deleted meanwhile (``forget`` removes unreferenced
        files holding the person) is then dropped with its batch instead of committed as a dangling reference.
        """
        try:
            if not all(_in_data_folder(table, path) for path in batch.files):
                raise ValueError("a staged file outside the table's data folder")
            files = [parquet_file_to_data_file(table.io, table.metadata, path) for path in batch.files]
        except Exception as exc:  # noqa: BLE001
            log.warning("a staged batch's files could not be read (%s): it is dropped", type(exc).__name__)
            return None
        return files

    def _carried(self, mine: StagedBatch, table: Table) -> list[Stored] | None:
        """What another writer's commit stored of this staged batch; None if none carried it.

        The carrying commit names the batch in its summary: looked for in the snapshots made since
        it was staged (offsets alone cannot tell, two unclaimed writers may store the same range).
        """
        found = _carried_since(table.metadata, mine.batch_id, self._staged_since.get(mine.batch_id))
        props = table.properties
        if found is None:
            # history expired: the offsets tell, for partitions still ours (nobody else stores them)
            found = all(
                int(props.get(offset_key(self.origin, part.partition), -1)) == part.last
                and self._epochs.get(part.partition, part.epoch) == part.epoch
                and owner_epoch(props.get(owner_key(self.origin, part.partition))) == part.epoch
                for part in mine.parts
            )
        if not found:
            return None
        self._staged_since.pop(mine.batch_id, None)
        self.carried += 1
        stored = []
        for part in mine.parts:  # all of a staged batch is stored or none
            epoch = self._epochs.get(part.partition)
            if epoch is not None and owner_epoch(props.get(owner_key(self.origin, part.partition))) != epoch:
                self.fenced.add(part.partition)  # claimed by another writer after it was stored
                self._epochs.pop(part.partition)
            else:
                stored.append(Stored(self.origin, part.partition, part.first, part.last, part.rows))
        return stored

    def _stored(self, partition: int, batch: PartitionRows, before: int) -> Stored:
        return Stored(self.origin, partition, max(batch.first, before + 1), batch.last, batch.rows.count_above(before))

    def _write_files(self, table: Table, batches: Mapping[int, PartitionRows], plan: dict[int, int]) -> list[DataFile]:
        parts = [batches[p].rows.table(self.origin, p, after=s) for p, s in sorted(plan.items())]
        arrow = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        if not arrow.num_rows:
            return []  # offsets only: a batch of dead letters still counts as consumed
        try:
            with private_files():
                return list(_dataframe_to_data_files(table.metadata, arrow, table.io, write_uuid=uuid.uuid4()))
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, self.location, "writing data files") from None

    @staticmethod
    def _new_snapshot(tx: Transaction, summary: dict[str, str], files: list[DataFile], *, merge: bool) -> None:
        """Append ``files`` (perhaps none) as a new snapshot: every commit of ours moves the snapshot id.

        ``AssertRefSnapshotId`` is the only check pyiceberg's SQL catalog makes against the state a
        writer read (it applies our updates to the table as it is at commit time). A commit that only
        set properties left the snapshot id as it was, so a writer that read the table before such a
        commit passed the check: a zombie claimed over while writing its files stored them, and a
        stale offsets-only commit moved another writer's offset back. An empty append costs a
        manifest list; claims and batches of dead letters alone are rare.
        """
        update = tx.update_snapshot(snapshot_properties=summary)
        with update.merge_append() if merge else update.fast_append() as append:
            for data_file in files:
                append.append_data_file(data_file)

    def _transaction(self, table: Table) -> Transaction:
        tx = _Transaction(table)
        # every commit requires the snapshot it read: an offsets-only commit would otherwise be
        # accepted on stale metadata and rewind another writer's offsets (pyiceberg adds no check)
        current = table.metadata.current_snapshot_id
        tx._apply((), (AssertRefSnapshotId.model_validate({"snapshot-id": current, "ref": "main"}),))
        return tx

    def _commit(self, tx: Transaction, attempt: int) -> bool:
        """Commit; False after a lost race (having waited a little), raise on any other failure."""
        try:
            with private_files():
                tx.commit_transaction()
        except CommitFailedException:
            self.conflicts += 1
            time.sleep(min(2.0, 0.02 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.5))
            return False
        except Exception as exc:  # noqa: BLE001
            # the outcome may be unknown (the catalog went away mid-commit): the next try re-reads
            # the offsets, so a commit that did land is not repeated
            raise store_error(exc, self.location, "committing") from None
        self.commits += 1
        return True

    def _gave_up(self, doing: str) -> StoreError:
        return StoreConflictError(
            f"{doing}: lost to other writers {self.location.commit_retries} times in a row "
            f"({self.location.describe()}); raise commit_retries or flush less often",
            path=self.location.describe(),
        )
