"""Batches whose files are written but not yet committed, where any writer's commit can carry them.

The measurement (docs/operations.md, "many writers") showed a commit costs ~105-150 ms whatever it
carries, and that writers racing on one table mostly lose: rows/s fell as writers were added. So a
writer that loses a race (or lost one in its last commit) *stages* its batch here, in the catalog's
own database: which data files, and for each partition the owner epoch and offsets the batch was
planned against. The next writer to commit, whoever it is, adds every staged batch that is still
valid to its own commit: one catalog round stores many writers' rows, as the Iceberg Kafka Connect
sink's coordinator does, with no coordinator process to run, elect or lose.

A staged batch is valid only while, for each of its partitions, the table's owner epoch is the one it
was staged under and the stored offset is the one it was planned after: a zombie's batch (fenced by a
newer claim) or one already stored is never committed; it is dropped. Exactly once rests on the
table, as before: every commit asserts the snapshot it read. The rows are data files under the
table; this table holds only their paths and offsets, no person's identifier.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lineage.store.tables import offset_key, owner_epoch, owner_key

__all__ = ["STAGED_TABLE", "StagedBatch", "StagedPart", "Staging", "stored_or_stale"]

log = logging.getLogger(__name__)

STAGED_TABLE = "lineage_staged_batches"

_METADATA = sa.MetaData()
_STAGED = sa.Table(
    STAGED_TABLE,
    _METADATA,
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("catalog_name", sa.String(255), nullable=False),
    sa.Column("table_namespace", sa.String(255), nullable=False),
    sa.Column("table_name", sa.String(255), nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("parts", sa.Text, nullable=False),
    sa.Column("files", sa.Text, nullable=False),
    sa.Column("staged_at", sa.Float, nullable=False),
)

# who commits next: a writer holds the turn for a few seconds at most, so a dead one blocks no one long
_TURN = sa.Table(
    "lineage_commit_turns",
    _METADATA,
    sa.Column("catalog_name", sa.String(255), primary_key=True),
    sa.Column("table_namespace", sa.String(255), primary_key=True),
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(36), nullable=False),
    sa.Column("until", sa.Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StagedPart:
    """One partition of a staged batch: rows of offsets first..last, planned after ``before`` under ``epoch``."""

    partition: int
    epoch: int
    before: int
    first: int
    last: int
    rows: int


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """One writer's commit, waiting: its data files and its partitions, all stored together or none."""

    batch_id: str
    origin: str
    parts: tuple[StagedPart, ...]
    files: tuple[str, ...]

    @staticmethod
    def new(origin: str, parts: Iterable[StagedPart], files: Iterable[str]) -> StagedBatch:
        """A batch with a fresh id."""
        return StagedBatch(str(uuid.uuid4()), origin, tuple(parts), tuple(files))


class Staging:
    """The staged batches of one table, in its catalog's database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, catalog_name: str, identifier: tuple[str, str]) -> None:
        """Stage batches of the table ``identifier`` of ``catalog_name``; the table is made on first use."""
        self._engine = engine
        self._key = {"catalog_name": catalog_name, "table_namespace": identifier[0], "table_name": identifier[1]}
        self._ready = False

    def _prepare(self) -> None:
        if not self._ready:
            try:
                _METADATA.create_all(self._engine, checkfirst=True)
            except sa.exc.SQLAlchemyError:
                # another writer made it between the check and the create: it is there now
                if not sa.inspect(self._engine).has_table(STAGED_TABLE):
                    raise
            self._ready = True

    def add(self, batch: StagedBatch) -> bool:
        """Stage ``batch``; False (logged) when the database refused: the writer commits it alone then."""
        parts = [[p.partition, p.epoch, p.before, p.first, p.last, p.rows] for p in batch.parts]
        row = {
            **self._key,
            "batch_id": batch.batch_id,
            "origin": batch.origin,
            "parts": json.dumps(parts),
            "files": json.dumps(list(batch.files)),
            "staged_at": time.time(),
        }
        try:
            self._prepare()
            with self._engine.begin() as conn:
                conn.execute(_STAGED.insert().values(**row))
        except sa.exc.SQLAlchemyError as exc:
            log.warning("staging a batch failed (%s): it is committed by its own writer", type(exc).__name__)
            return False
        return True

    def waiting(self) -> list[StagedBatch]:
        """Every staged batch of the table, oldest first; none when the database cannot be read."""
        where = [getattr(_STAGED.c, k) == v for k, v in self._key.items()]
        query = sa.select(_STAGED.c.batch_id, _STAGED.c.origin, _STAGED.c.parts, _STAGED.c.files).where(*where)
        try:
            self._prepare()
            with self._engine.connect() as conn:
                rows = conn.execute(query.order_by(_STAGED.c.staged_at)).all()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("reading staged batches failed (%s): this commit carries none", type(exc).__name__)
            return []
        out = []
        for batch_id, origin, parts, files in rows:
            try:
                out.append(_parsed(batch_id, origin, json.loads(parts), json.loads(files)))
            except (ValueError, TypeError):
                log.warning("a staged batch could not be read: it is dropped")
                self.remove([batch_id])
        return out

    def has(self, batch_id: str) -> bool:
        """Whether ``batch_id`` is still staged (True when the database cannot say)."""
        query = sa.select(_STAGED.c.batch_id).where(_STAGED.c.batch_id == batch_id)
        try:
            with self._engine.connect() as conn:
                return conn.execute(query).first() is not None
        except sa.exc.SQLAlchemyError:
            return True

    def take_turn(self, holder: str, seconds: float) -> bool:
        """Hold the table's commit turn for ``seconds`` unless another holder has it; True when held.

        The turn only spares writers lost races: correctness rests on each commit asserting the
        snapshot it read, so when the database cannot say, the writer goes ahead (True).
        """
        key = [getattr(_TURN.c, k) == v for k, v in self._key.items()]
        now = time.time()
        free = sa.or_(_TURN.c.until < now, _TURN.c.holder == holder)
        try:
            self._prepare()
            with self._engine.begin() as conn:
                taken = conn.execute(_TURN.update().where(*key, free).values(holder=holder, until=now + seconds))
                if taken.rowcount == 1:
                    return True
                if conn.execute(sa.select(_TURN.c.holder).where(*key)).first() is not None:
                    return False
                conn.execute(_TURN.insert().values(**self._key, holder=holder, until=now + seconds))
                return True
        except sa.exc.IntegrityError:
            return False  # another writer made the row first: it holds the turn
        except sa.exc.SQLAlchemyError as exc:
            log.warning("taking the commit turn failed (%s): committing without it", type(exc).__name__)
            return True

    def end_turn(self, holder: str) -> None:
        """Give the turn up (if ``holder`` has it) for the next writer."""
        key = [getattr(_TURN.c, k) == v for k, v in self._key.items()]
        try:
            with self._engine.begin() as conn:
                conn.execute(_TURN.update().where(*key, _TURN.c.holder == holder).values(until=0.0))
        except sa.exc.SQLAlchemyError:
            pass  # it lapses by itself

    def remove(self, batch_ids: Iterable[str]) -> None:
        """Forget the batches named (stored, stale or abandoned); a failure only leaves them for a later commit."""
        ids = sorted(set(batch_ids))
        if not ids:
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(_STAGED.delete().where(_STAGED.c.batch_id.in_(ids)))
        except sa.exc.SQLAlchemyError as exc:
            log.warning("removing staged batches failed (%s): a later commit drops them", type(exc).__name__)


def _parsed(batch_id: str, origin: str, parts: object, files: object) -> StagedBatch:
    if not isinstance(parts, list) or not isinstance(files, list):
        raise ValueError("staged batch: parts and files must be lists")
    staged = tuple(StagedPart(*(int(v) for v in part)) for part in parts)
    return StagedBatch(str(batch_id), str(origin), staged, tuple(str(f) for f in files))


def stored_or_stale(batch: StagedBatch, properties: Mapping[str, str]) -> bool:
    """True unless ``batch`` can still be committed on a table with ``properties``.

    It can while each of its partitions is owned under the epoch it was staged with and stored up to
    the offset it was planned after; a newer claim (a zombie's batch) or a moved offset (stored
    already, by whichever writer) makes it stale for good.
    """
    for part in batch.parts:
        if owner_epoch(properties.get(owner_key(batch.origin, part.partition))) != part.epoch:
            return True
        if int(properties.get(offset_key(batch.origin, part.partition), -1)) != part.before:
            return True
    return False
