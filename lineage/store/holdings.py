"""The holdings table, ``<namespace>.holdings``: the holdings engine's state beside the events.

One table of several kinds of rows, so that one Iceberg commit replaces them all together with the
offsets they reflect (pyiceberg has no multi-table commit):

- ``run``:    a (subject, category) at a holder from ``arrived_at`` (its first arrival) until
              ``ended_at``; bulk runs cover events ``first_seq..last_seq`` of their ``flow``
              (``last_seq`` null: every event of the flow since);
- ``flow``:   one event of a bulk flow: its number in the flow, time, id and ``bulk_as_of``;
- ``link``:   two identifiers (``via``, ``other``) of the person keyed ``subject``, first declared at
              ``arrived_at`` (keyed by person, so a person's links are one lookup of the sorted table);
- ``person``: an identifier (``subject``) and its person key (``other``).

The table is partitioned (identity) by ``bucket``: a run's is a hash of its subject into ``BUCKETS``
(``lineage.holdings.shards.shard_of``, the Spark job's shards too); the flow events are bucket
``FLOWS_BUCKET``, the links and person keys ``IDENTITY_BUCKET``. An explicit column rather than
Iceberg's ``bucket[N](subject)`` transform: a commit names the files of the buckets it replaces by
their partition value, without reading them, and pyiceberg's filters cannot name a transform's value.

A refresh writes what changed (``HoldingsEngine.take_changes``), not the table: each bucket of runs
it touched gains a file (a delta) of the runs added and of every run of the subjects whose runs
changed otherwise, and such a subject gets a fifth kind of row,

- ``reset``:  every run of ``subject`` with a lower ``gen`` (the commit that wrote a row) no longer
              holds; all resets are one small file, bucket ``RESETS_BUCKET``, rewritten whole.

A bucket that has gathered ``MAX_FILES`` files is folded back into one (its rows as they hold), two
buckets a refresh at most; a maintainer with time to spare folds those of ``FOLD_AT`` commits between
refreshes (``fold_buckets``). Flows and identities, few, are rewritten whole. Readers apply the resets:
``current_rows``, ``engine_from_table`` and the ``holding_runs`` view (queries/_macros.sql).

Properties say which events the rows reflect: ``lineage.holdings.applied`` (the last offset applied
of each source partition, JSON), ``lineage.holdings.source`` (the events snapshot read), and the
engine's watermark. Each refresh's snapshot summary names its events snapshot too, so a reader pins
an events snapshot and the holdings made from exactly it (a fold's names the one its rows were made
from, when the snapshot it folded named one).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import uuid
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, count, groupby, islice, repeat
from operator import attrgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import BooleanExpression, In
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import bin_pack_arrow_table, pyarrow_to_schema, write_file
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionField, PartitionFieldValue, PartitionKey, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE, Table, TableProperties, Transaction, WriteTask
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import ancestors_of
from pyiceberg.table.update import AssertRefSnapshotId
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import IntegerType, LongType
from pyiceberg.utils.config import Config
from pyiceberg.utils.properties import property_as_int

from lineage.errors import StoreConflictError, StoreCorruptError, StoreError, StoreNotFoundError
from lineage.holdings import Changes, FlowEvent, FlowInfo, HoldingsEngine, Link, Provenance, Run
from lineage.private import private_files
from lineage.store.catalog import StoreLocation, store_error
from lineage.store.claim import check_claim
from lineage.store.file_bounds import manifest_bounds
from lineage.store.plans import HoldingsState, Pinned
from lineage.store.snapshots import SnapshotRef, file_path, resolve, snapshot_data_files
from lineage.store.tables import (
    BUCKETS,
    FLOW_PROVENANCE,
    FLOWS_BUCKET,
    HOLDINGS,
    HOLDINGS_COLUMNS,
    IDENTITY_BUCKET,
    LAYOUT,
    READS,
    RESETS_BUCKET,
    ascending,
    bucket_of,
    iceberg_schema,
    offset_key,
    retained_before,
)
from lineage.store.writer import _Transaction

__all__ = [
    "BUCKETS",
    "FENCE",
    "FOLDED",
    "HOLDINGS",
    "HOLDINGS_COLUMNS",
    "LAYOUT",
    "READS",
    "ROW_COLUMNS",
    "Folded",
    "HoldingsState",
    "Pinned",
    "pinned_state",
    "engine_from_table",
    "fenced_only",
    "fold_buckets",
    "foldable",
    "holdings_arrow",
    "load_holdings",
    "read_state",
    "write_holdings",
]

log = logging.getLogger(__name__)

APPLIED = "lineage.holdings.applied"
SOURCE = "lineage.holdings.source"
WATERMARK = "lineage.holdings.watermark"
#: "true" when a refresh held back events of its source snapshot (``HoldingsMaintainer.holdback``): the
#: holdings then reflect that snapshot's events up to the applied offsets only
HELD = "lineage.holdings.held"
#: in a held commit's snapshot summary, the offsets applied (JSON): a reader pinning its events
#: snapshot by id cuts the events to them, as the reader of the newest holdings does
REFLECTS = "lineage.holdings.reflects"
HELD_BACK = "lineage.holdings.held-back"  # beside it: how many offsets of the events snapshot wait
FORMAT = "lineage.holdings.format"
GENERATION = "lineage.holdings.generation"  # the ``gen`` of the last commit's rows
FOLDED = "lineage.holdings.folded"  # in a fold's snapshot summary: the buckets it folded
#: in the summary of a forget's empty snapshot that moves the holdings on (a refresh that read the
#: events it removed then fails its commit: ``lineage.store.forget``)
FENCE = "lineage.holdings.fence"
_BATCH = 200_000  # rows made into Arrow at a time
_STRING = pa.string()
_TS = pa.timestamp("us", tz="UTC")
#: data files a bucket of runs gathers (a refresh appends one of the rows it changed) before a refresh
#: folds them into one: a lookup opens each of its bucket's files
MAX_FILES = 8
#: files of distinct commits a bucket gathers before a fold between refreshes takes it: folding at
#: two rewrote every bucket after each refresh under a steady trickle (three times the refreshes'
#: CPU, and ~600 s / interval copies kept until tidied); at four, a third of the runs a refresh
FOLD_AT = MAX_FILES // 2
_FOLDS = max(1, BUCKETS // MAX_FILES)  # buckets folded at most a refresh
#: resets kept at most: past this (a catch-up after an outage rewrites many subjects), a refresh folds
#: every bucket they name instead. Each query of the runs reads them whole (10,000 left an access
#: answer unchanged within the noise, 162 ms median either way at 1,000 subjects a seed organisation)
MAX_RESETS = 10_000

#: the columns of what a row says (``read_rows``): all but ``gen``, which only says which commit wrote it
ROW_COLUMNS = pa.schema([f for f in HOLDINGS_COLUMNS if f.name != "gen"])
_ROW_TYPE = pa.struct(list(HOLDINGS_COLUMNS))
_SCHEMA = iceberg_schema(HOLDINGS_COLUMNS)
_SORT = ascending(_SCHEMA, ("kind", "subject"))
_SPEC = PartitionSpec(
    PartitionField(
        source_id=_SCHEMA.find_field("bucket").field_id, field_id=1000, transform=IdentityTransform(), name="bucket"
    )
)
_PROPERTIES = {
    "format-version": "2",
    "commit.retry.num-retries": "0",  # a lost race must reach us: the rows were computed from what we read
    "write.parquet.compression-codec": "zstd",
    "write.parquet.row-group-limit": "20000",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
#: the row groups of the files a holdings commit writes: a person's key and links are read from one
#: group of the identity bucket, their runs from one of their bucket (``point_read``). The identity
#: lookups took 1.7 ms at 5,000 rows against 3.1-3.4 ms at 20,000 (1M subjects, 3M identity rows);
#: 2,000 read in 1.3 ms but made a footer of 3.2 MB, 23 ms to parse once a snapshot. A person's runs
#: with their linked ids (21 columns): 5.4 ms at 5,000, 7.1 at 10,000, DuckDB 12.2 at 20,000; but
#: DuckDB's scans of every run (breach, registers) took 20-40% longer at 5,000, 5-10% at 10,000.
IDENTITY_ROW_GROUP = 5000
ROW_GROUP = 10_000
_WRITERS = 4  # files written at once by a holdings commit


def load_holdings(location: StoreLocation, *, create: bool = False) -> Table:
    """The holdings table (``StoreNotFoundError`` when missing and not ``create``)."""
    with private_files():
        return location.load_table(HOLDINGS, _SCHEMA, _SORT, _PROPERTIES, create=create, partition_spec=_SPEC)


def read_state(table: Table) -> HoldingsState:
    """What the table's current snapshot reflects."""
    props = table.properties
    snapshot = table.current_snapshot()
    applied = json.loads(props.get(APPLIED, "{}"))
    return HoldingsState(
        snapshot_id=None if snapshot is None else snapshot.snapshot_id,
        source=int(props[SOURCE]) if SOURCE in props else None,
        watermark=int(props[WATERMARK]) if props.get(WATERMARK) not in (None, "") else None,
        applied={o: {int(p): int(off) for p, off in parts.items()} for o, parts in applied.items()},
        layout=props.get(FORMAT),
        held=props.get(HELD) == "true",
    )


def holdings_arrow(engine: HoldingsEngine, changed: Changes | None = None, gen: int = 0) -> pa.Table:
    """The engine's state as rows of the holdings table (``changed``: the rows of those changes' buckets only)."""
    return pa.Table.from_batches(list(_batches(engine, changed, gen)), HOLDINGS_COLUMNS)


def _batches(
    engine: HoldingsEngine, changed: Changes | None, gen: int = 0, size: int = _BATCH
) -> Iterator[pa.RecordBatch]:
    """Rows a batch at a time, in the table's sort order, never all rows as Python objects at once.

    Kinds come in the order of their names, each sorted by subject: the table's sort order without
    sorting a copy of millions of rows.
    """
    yield from _flow_and_identity_batches(
        engine, changed is None or changed.flows, changed is None or changed.links, size
    )
    yield from _run_batches(engine, None if changed is None else changed.subjects, size, gen)


def _flow_and_identity_batches(
    engine: HoldingsEngine, flows: bool, links: bool, size: int = _BATCH
) -> Iterator[pa.RecordBatch]:
    """The flow rows (``flows``), then the link and person rows (``links``): few beside the runs."""
    if flows and (batch := _flow_batch(list(engine.flows()))) is not None:
        yield batch
    if not links:
        return
    nothing = (None,) * (len(HOLDINGS_COLUMNS) - 8)
    ids = IDENTITY_BUCKET
    rows = chain(
        (("link", person, None, None, link.at, link.a, *nothing[1:], link.b, ids, 0)
         for person, link in sorted((engine.person_of(link.a), link) for link in engine.links())),
        (("person", ident, None, None, None, *nothing, person, ids, 0) for ident, person in sorted(engine.persons())),
    )  # fmt: skip
    while chunk := list(islice(rows, size)):
        yield pa.RecordBatch.from_struct_array(pa.array(chunk, _ROW_TYPE))


def _flow_batch(flows: list[tuple[FlowInfo, list[int], list[str], list[int]]]) -> pa.RecordBatch | None:
    """The events of these flows as rows, a column at a time, each flow's terms made once and repeated."""
    counts = [len(times) for _, times, _, _ in flows]
    n = sum(counts)
    if not n:
        return None
    infos = [info for info, _, _, _ in flows]
    which = pa.array(list(chain.from_iterable(map(repeat, range(len(flows)), counts))), pa.int32())

    def each(values: list[Any], kind: pa.DataType) -> pa.Array:
        return pa.array(values, kind).take(which)

    def events(k: int, kind: pa.DataType) -> pa.Array:
        return pa.array(list(chain.from_iterable(flow[k] for flow in flows)), kind)

    columns = [
        pa.repeat(pa.scalar("flow", _STRING), n),
        pa.nulls(n, _STRING),
        pa.nulls(n, _STRING),
        each([i.recipient for i in infos], _STRING),
        events(1, _TS),
        events(2, _STRING),
        each([i.flow for i in infos], _STRING),
        pa.array(list(chain.from_iterable(map(range, counts))), pa.int32()),
        pa.nulls(n, pa.int32()),
        pa.nulls(n, _TS),
        pa.nulls(n, _STRING),
        *(each([i.prov[k] for i in infos], t) for k, (_, t) in enumerate(FLOW_PROVENANCE)),
        each([list(i.categories) for i in infos], pa.list_(_STRING)),
        events(3, _TS),
        pa.nulls(n, _STRING),
        pa.repeat(pa.scalar(FLOWS_BUCKET, pa.int32()), n),
        pa.repeat(pa.scalar(0, pa.int64()), n),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=HOLDINGS_COLUMNS)


def _run_batches(
    engine: HoldingsEngine, subjects: Iterable[str] | None, size: int, gen: int = 0
) -> Iterator[pa.RecordBatch]:
    """The runs (of ``subjects``; None: all) by subject, ``size`` rows a batch, written by commit ``gen``."""
    runs = engine.runs_by_subject(subjects)
    while chunk := list(islice(runs, size)):
        yield _run_batch(chunk, gen)


def _run_batch(runs: list[Run], gen: int = 0) -> pa.RecordBatch:
    """Runs as rows of the holdings table, built a column at a time.

    Each column is one list handed to Arrow, not rows converted as structs. The engine shares one
    ``Provenance`` between every run of the same terms, so its eleven columns are made once per
    distinct one and taken by index (Arrow finds the distinct ones by identity).
    """
    n = len(runs)
    provs = [r.prov for r in runs]
    ids = pa.array(list(map(id, provs)), pa.uint64())
    distinct_ids = pc.unique(ids)
    by_id = dict(zip(map(id, provs), provs, strict=True))
    distinct = [by_id[i] for i in distinct_ids.to_pylist()]
    take = pc.index_in(ids, distinct_ids)
    subjects = [r.subject for r in runs]
    bucket = {s: bucket_of(s) for s in dict.fromkeys(subjects)}
    columns = [
        pa.array(["run"] * n, _STRING),
        pa.array(subjects, _STRING),
        pa.array([r.category for r in runs], _STRING),
        pa.array([r.holder for r in runs], _STRING),
        pa.array([r.arrived for r in runs], _TS),
        pa.array([r.via for r in runs], _STRING),
        pa.array([r.flow for r in runs], _STRING),
        pa.array([r.first_seq for r in runs], pa.int32()),
        pa.array([r.last_seq for r in runs], pa.int32()),
        pa.array([r.ended for r in runs], _TS),
        pa.array([r.ended_by for r in runs], _STRING),
        *(pa.array([p[k] for p in distinct], t).take(take) for k, (_, t) in enumerate(FLOW_PROVENANCE)),
        pa.nulls(n, pa.list_(_STRING)),
        pa.nulls(n, _TS),
        pa.nulls(n, _STRING),
        pa.array(list(map(bucket.__getitem__, subjects)), pa.int32()),
        pa.repeat(pa.scalar(gen, pa.int64()), n),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=HOLDINGS_COLUMNS)


#: rows turned into Python objects at a time when the engine is restored from the table: the whole
#: table's columns as Python lists at once took ~22 GB at 1M subjects (18M rows), beside the engine
_RESTORE_ROWS = 65_536


def engine_from_table(table: pa.Table | Iterable[pa.RecordBatch], watermark: int | None) -> HoldingsEngine:
    """The engine whose state ``table`` (rows of the holdings table, or their batches as read) is.

    The rows become Python objects a slice at a time, never the whole table's columns at once;
    batches given as a stream (``read_batches``) are dropped once applied. pyiceberg 0.12 reads
    every file ahead (a thread per file), so the Arrow copy is freed as the restore goes rather
    than bounded: 10.3 GB at the peak for 1M subjects, against 15.0 with the table whole.
    """
    prov_names = [name for name, _ in FLOW_PROVENANCE]
    runs: list[Run] = []
    gens = array("q")  # each run's ``gen``, beside it
    resets: dict[str, int] = {}
    flows: list[tuple[FlowEvent, FlowInfo]] = []
    links: list[Link] = []
    provs: dict[tuple[Any, ...], Provenance] = {}
    batches = table.to_batches(max_chunksize=_RESTORE_ROWS) if isinstance(table, pa.Table) else table
    for batch in batches:
        for start in range(0, batch.num_rows, _RESTORE_ROWS):
            _restore_rows(batch.slice(start, _RESTORE_ROWS), prov_names, provs, (runs, gens, resets), flows, links)
    if resets:  # the runs a later commit made again: dropped (``_current``'s rule)
        runs = [run for run, gen in zip(runs, gens, strict=True) if resets.get(run.subject, 0) <= gen]
    return HoldingsEngine.restore(runs, flows, links, watermark)


def _restore_rows(
    batch: pa.RecordBatch,
    prov_names: list[str],
    provs: dict[tuple[Any, ...], Provenance],
    made: tuple[list[Run], array[int], dict[str, int]],
    flows: list[tuple[FlowEvent, FlowInfo]],
    links: list[Link],
) -> None:
    """Add the runs (with their gen), resets, flows and links of one slice of the holdings table's rows."""
    runs, gens, resets = made
    names = batch.schema.names
    cols: dict[str, list[Any]] = {
        name: (batch.column(name).cast(pa.int64()) if pa.types.is_timestamp(t) else batch.column(name)).to_pylist()
        if name in names
        else [None] * batch.num_rows  # ``gen`` in a table of layout 2
        for name, t in zip(HOLDINGS_COLUMNS.names, HOLDINGS_COLUMNS.types, strict=True)
    }
    for i, kind in enumerate(cols["kind"]):
        if kind in ("run", "flow"):
            values = tuple(cols[n][i] for n in prov_names)
            prov = provs.get(values) or provs.setdefault(values, Provenance(*values))
            if kind == "run":
                runs.append(Run(cols["subject"][i], cols["category"][i], cols["holder"][i], cols["arrived_at"][i],
                                cols["via"][i], prov, cols["flow"][i], cols["first_seq"][i], cols["last_seq"][i],
                                cols["ended_at"][i], cols["ended_by"][i]))  # fmt: skip
                gens.append(cols["gen"][i] or 0)
            else:
                info = FlowInfo(cols["flow"][i], prov.source, cols["holder"][i], tuple(cols["categories"][i]), prov)
                flows.append((FlowEvent(cols["flow"][i], cols["first_seq"][i], cols["arrived_at"][i], cols["via"][i],
                                        cols["bulk_as_of"][i]), info))  # fmt: skip
        elif kind == "link":
            links.append(Link(cols["via"][i], cols["other"][i], cols["arrived_at"][i]))
        elif kind == "reset":  # a null gen (no writer makes one) drops nothing, as in ``_not_reset``
            resets[cols["subject"][i]] = max(resets.get(cols["subject"][i], 0), cols["gen"][i] or 0)


def read_rows(location: StoreLocation, table: Table, snapshot_id: int) -> pa.Table:
    """Every row that holds in one snapshot of the holdings table (``current_rows``), in ``ROW_COLUMNS``."""
    try:
        rows = table.scan(snapshot_id=snapshot_id).to_arrow()
        return (current_rows(rows) if "gen" in rows.column_names else rows).select(ROW_COLUMNS.names)
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "reading the holdings table") from None


def current_rows(rows: pa.Table) -> pa.Table:
    """``rows`` (of the holdings table) without its resets and the runs they drop.

    A reset of a subject drops each of its runs of a lower ``gen`` (a null one is 0): a refresh that
    made a subject's runs again adds them and a reset rather than rewriting the files of the old
    ones. Runs alone: a person or link row keyed by the same identifier stays. The same rule as the
    ``holding_runs`` view (queries/_macros.sql) and ``engine_from_table``.
    """
    is_reset = pc.equal(rows.column("kind"), "reset")
    resets = rows.filter(is_reset)
    rows = rows.filter(pc.invert(is_reset))
    if not resets.num_rows:
        return rows
    return rows.filter(pc.or_(pc.not_equal(rows.column("kind"), "run"), _not_reset(rows, resets)))


def _not_reset(rows: pa.Table, resets: pa.Table) -> pa.Array:
    """Whether each of ``rows`` holds: no reset of its subject has a higher ``gen``."""
    latest = resets.group_by("subject").aggregate([("gen", "max")])
    found = pc.index_in(rows.column("subject"), value_set=latest.column("subject"))
    reset_at = pc.take(latest.column("gen_max"), found)
    gen = pc.coalesce(rows.column("gen"), pa.scalar(0, pa.int64()))
    return pc.fill_null(pc.or_kleene(pc.is_null(reset_at), pc.less_equal(reset_at, gen)), True)


def read_batches(location: StoreLocation, table: Table, snapshot_id: int) -> Iterator[pa.RecordBatch]:
    """Every stored row of one snapshot of the holdings table, as batches read one after another.

    As written: the resets and the runs they drop too (``engine_from_table`` applies them; ``read_rows``
    gives only the rows that hold).
    """
    try:
        reader = table.scan(snapshot_id=snapshot_id).to_arrow_batch_reader()
        yield from reader
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "reading the holdings table") from None


def write_holdings(
    location: StoreLocation,
    engine: HoldingsEngine,
    *,
    read_at: int | None,
    source: int,
    applied: dict[str, dict[int, int]],
    rows: bool = True,
    changed: Changes | None = None,
    held: int = 0,
) -> int:
    """Store the engine's rows (or what changed of them) and record what they reflect, in one commit.

    ``read_at`` is the holdings snapshot the engine was built on: a commit on any other (another
    maintainer got there first) is refused as ``StoreConflictError`` rather than overwriting it.
    ``rows=False``: the rows are unchanged (the new events changed no holding): only what they
    reflect is recorded, and no copy of the rows is written. ``changed``: what changed since
    ``read_at`` (``HoldingsEngine.take_changes``): only those rows are written (``_changed_rows``:
    deltas, resets, a fold or two). A table of an older layout is brought to this one (its rows all
    written again, ``changed`` or not). ``held``: how many offsets of ``source`` after the ``applied``
    ones were held back; the snapshot's summary then records the offsets applied too (``REFLECTS``)
    and that count: a reader pinning that events snapshot by id cuts its events to them. Such a
    commit (or the next, which ends the cut) makes a snapshot even when no row changed, so the
    newest snapshot naming an events snapshot always says how its holdings read it.
    """
    check_claim(location)  # a long-running maintainer too, once a minute
    table = load_holdings(location, create=True)
    columns = table.schema().column_names
    old_layout = "bucket" not in columns or "gen" not in columns
    if old_layout or read_at is None:
        changed = None
    if old_layout:
        # every row written again, in this layout, even when none changed: DuckDB reads a table's
        # files as one only when their columns agree (review: a conversion without rows left the old
        # files beside new deltas, and every answer failed)
        rows = True
    if changed is not None and not changed:
        rows = False
    gen = int(table.properties.get(GENERATION) or 0) + 1
    tx = _Transaction(table)
    summary = {SOURCE: str(source)}
    if held:
        summary |= {REFLECTS: _offsets_json(applied), HELD_BACK: str(held)}
    conflict = "changed while they were computed (another maintainer?)"
    with _committing(location, tx, read_at, conflict, "writing the holdings"):
        # checked at once against the table just loaded too: a race lost before now fails here
        tx._apply((), (AssertRefSnapshotId.model_validate({"snapshot-id": read_at, "ref": "main"}),))
        if old_layout:
            _to_this_layout(tx, columns)
        with private_files():
            if not rows and read_at is not None:
                # the same rows: the properties below say which events they now reflect, and a
                # snapshot of no file says it to readers by id when a cut begins, moves or ends
                said = _summary(table, read_at)
                keys = (SOURCE, REFLECTS, HELD_BACK)
                if (held or REFLECTS in said) and [summary.get(k) for k in keys] != [said.get(k) for k in keys]:
                    with tx.update_snapshot(snapshot_properties=summary).fast_append():
                        pass
            elif read_at is None or changed is None:
                # every row, sorted by subject within each kind, as the table's sort order says: a
                # person's lookup then reads the few row groups whose subject range holds them.
                # Through our own files' writer, not pyiceberg's append or overwrite: it sizes the
                # identity bucket's row groups, and deletes what it wrote when the write fails
                stored = [] if read_at is None else snapshot_data_files(location, table, read_at, replacing=True)
                _replace_files(tx, table, stored, [holdings_arrow(engine, gen=gen)], summary)
            else:
                drop, parts = _changed_rows(location, table, read_at, engine, changed, gen)
                _replace_files(tx, table, drop, parts, summary)
            tx.set_properties(
                {
                    APPLIED: _offsets_json(applied),
                    SOURCE: str(source),
                    FORMAT: LAYOUT,
                    WATERMARK: "" if engine.watermark is None else str(engine.watermark),
                    GENERATION: str(gen),
                    HELD: "true" if held > 0 else "",
                }
            )
            committed = tx.commit_transaction()
    # the table as this commit left it, not reloaded: a commit landing just after ours (a forget) must
    # not pass for ours, or a maintainer would keep an engine that still holds what it removed
    snapshot = committed.current_snapshot()
    assert snapshot is not None
    return snapshot.snapshot_id


@contextmanager
def _committing(
    location: StoreLocation, tx: Transaction, read_at: int | None, conflict: str, doing: str
) -> Iterator[None]:
    """A commit's failures in our words: a race lost is ``StoreConflictError`` (``conflict``), any other one line.

    A commit that surely did not land (refused, or failed before it was sent) leaves none of the
    files written for it: they hold rows read before a forget may have removed them, and a forgotten
    person must not wait in an orphan file for orphan removal. A failure of unknown outcome (the
    catalog failed mid-commit) keeps them, as the table may name them. A file missing because a
    forget expired ``read_at`` meanwhile (the snapshot the commit built on) is a race lost too;
    any other failure on a table that moved is reported as it is (it may not pass).
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001
        # pyiceberg (pinned) marks a transaction failed once its commit was sent; one refused, or
        # validated out, did not land (pyiceberg then removes its manifests, not its data files). A
        # pyiceberg without these attributes: nothing is deleted
        producers = getattr(tx, "_snapshot_producers", ())
        if isinstance(exc, (CommitFailedException, ValidationException)) or not getattr(tx, "_failed", True):
            for producer in producers:
                _discard(tx._table.io, producer._added_data_files)
                producer._clean_all_uncommitted()
        where = location.describe()
        if isinstance(exc, CommitFailedException) or (
            isinstance(exc, _GONE) and _expired(location, read_at, producers)
        ):
            raise StoreConflictError(f"the holdings of {where} {conflict}", path=where) from None
        raise store_error(exc, location, doing) from None


# what reading a snapshot a forget expired meanwhile raises: raw in pyiceberg's commit, ours in our reads
_GONE = (FileNotFoundError, ValidationException, StoreCorruptError)


def _expired(location: StoreLocation, read_at: int | None, producers: Iterable[Any]) -> bool:
    """Whether ``read_at`` is gone from the holdings (a forget expired it) and no snapshot of ``producers`` landed.

    False when that cannot be told: the commit's own error is then the one reported.
    """
    try:
        table = load_holdings(location)
    except Exception:  # noqa: BLE001
        return False
    landed = any(table.metadata.snapshot_by_id(p._snapshot_id) is not None for p in producers)
    return read_at is not None and table.metadata.snapshot_by_id(read_at) is None and not landed


def _discard(io: FileIO, files: Iterable[DataFile]) -> None:
    """Delete data files no commit names; one that cannot go is left to orphan removal."""
    for data_file in files:
        _discard_path(io, data_file.file_path)


def _discard_path(io: FileIO, path: str) -> None:
    """Delete the file at ``path`` if it is there; one that cannot go is left to orphan removal."""
    try:
        io.delete(path)
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001
        log.warning("a data file of a failed holdings commit is left to orphan removal: %s", type(exc).__name__)


@dataclass(frozen=True, slots=True)
class Folded:
    """A fold's commit: its snapshot, the buckets folded and the rows they now hold."""

    snapshot_id: int
    buckets: tuple[int, ...]
    rows: int


def foldable(location: StoreLocation, table: Table, read_at: int) -> dict[int, int]:
    """The buckets of runs worth a fold at ``read_at``, each with its stored rows, most files first.

    A bucket whose files ``FOLD_AT`` commits or more wrote (a lookup opens each; one write may split a
    large bucket into several files, and folding those again would change nothing); its resets go
    with it. Read from the manifests alone.
    """
    files: Counter[int] = Counter()
    rows: Counter[int] = Counter()
    writers: dict[int, set[int | None]] = {}
    try:
        snapshot = table.snapshot_by_id(read_at)
        manifests = snapshot.manifests(table.io) if snapshot is not None else []
        for manifest in manifests:
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                bucket = _bucket_of_file(entry.data_file)
                if bucket is None:
                    continue
                files[bucket] += 1
                rows[bucket] += entry.data_file.record_count
                writers.setdefault(bucket, set()).add(entry.snapshot_id)
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "reading the holdings table's manifests") from None
    wanted = {b for b, made_by in writers.items() if b >= 0 and len(made_by) >= FOLD_AT}
    return {b: rows[b] for b in sorted(wanted, key=lambda b: (-files[b], b))}


def fold_buckets(location: StoreLocation, read_at: int, buckets: list[int]) -> Folded:
    """Fold ``buckets`` of runs, each into one file of its rows that hold, in one commit on ``read_at``.

    What answers read is unchanged: the rows kept are those the resets let hold, each with its
    ``gen``, and the folded buckets' resets go. So are the properties (which events the rows
    reflect): a maintainer folds in its idle time without refreshing. The snapshot names the events
    snapshot ``read_at`` named (a pinned reader finds the same rows), and ``FOLDED``. A table that
    moved past ``read_at`` (a refresh, a forget) refuses it (``StoreConflictError``): nothing is
    written, and nothing is read of a snapshot that may be gone.
    """
    check_claim(location)
    table = load_holdings(location)
    current = table.current_snapshot()
    if current is None or current.snapshot_id != read_at:
        raise StoreConflictError(
            f"the holdings of {location.describe()} moved on before a fold: nothing was committed",
            path=location.describe(),
        )
    if "gen" not in table.schema().column_names:
        raise StoreError(
            f"the holdings of {location.describe()} are of an older layout: refresh them first",
            path=location.describe(),
        )
    stored_files = snapshot_data_files(location, table, read_at)
    has_resets = any(_bucket_of_file(f) == RESETS_BUCKET for f in stored_files)
    stored = _read_buckets(location, table, read_at, [RESETS_BUCKET]) if has_resets else None
    kept = _kept_rows(location, table, read_at, buckets, (), stored)
    parts = [_merged([kept.pop(bucket, [])]) for bucket in buckets]
    drop = set(buckets)
    if stored is not None:
        resets = dict(zip(stored.column("subject").to_pylist(), stored.column("gen").to_pylist(), strict=True))
        left = {s: g for s, g in resets.items() if bucket_of(s) not in drop}
        if left != resets:
            drop.add(RESETS_BUCKET)
            parts.append(_reset_rows(left))
    # the events snapshot the folded one was made from (not the property, which a forget or a
    # refresh of no rows moves on without a snapshot of these rows): none named, none claimed
    source = (current.summary.additional_properties if current.summary is not None else {}).get(SOURCE)
    summary = {FOLDED: ",".join(map(str, buckets)), **({SOURCE: source} if source else {})}
    if source and (cut := (current.summary.additional_properties if current.summary is not None else {}).get(REFLECTS)):
        summary[REFLECTS] = cut  # the same rows: they reflect the same cut of the same events
    tx = _Transaction(table)
    with _committing(
        location, tx, read_at, "changed while a fold read them: nothing was committed", "folding the holdings"
    ):
        tx._apply((), (AssertRefSnapshotId.model_validate({"snapshot-id": read_at, "ref": "main"}),))
        with private_files():
            _replace_files(tx, table, [f for f in stored_files if _bucket_of_file(f) in drop], parts, summary)
            committed = tx.commit_transaction()
    snapshot = committed.current_snapshot()
    assert snapshot is not None
    return Folded(snapshot.snapshot_id, tuple(buckets), sum(part.num_rows for part in parts[: len(buckets)]))


def _replace_files(
    tx: Transaction, table: Table, drop: list[DataFile], parts: list[pa.Table], summary: dict[str, str]
) -> None:
    """Drop the data files ``drop`` and add ``parts`` (most the rows of one bucket), in one snapshot of ``tx``.

    The identity bucket's files get row groups of ``IDENTITY_ROW_GROUP`` rows, the others ``ROW_GROUP``
    (the table's property is for other writers).

    What ``overwrite`` does, without its pass over all rows once per partition to split them
    (``_determine_partitions``: 2.2 of 12.6 s of writing in ten refreshes, pyinstrument): a part of
    one bucket is written whole (``_write_tasks``). The files to drop are named, not found by a
    filter: one overwrite snapshot (an append when none go), where ``delete`` then ``fast_append``
    made two and evaluated the filter on every manifest (0.26 s of a 1.17 s refresh).
    """
    update = tx.update_snapshot(snapshot_properties=summary)
    with update.overwrite() if drop else update.fast_append() as producer:
        for data_file in drop:
            producer.delete_data_file(data_file)
        metadata = tx.table_metadata
        tasks = _write_tasks(metadata, parts, producer.commit_uuid)  # a spec refused at the first, before any file
        written: list[DataFile] = []  # every file written: none may outlive a failure

        locations = load_location_provider(table_location=metadata.location, table_properties=metadata.properties)

        identity, grouped = (
            metadata.model_copy(update={"properties": {**metadata.properties, "write.parquet.row-group-limit": str(n)}})
            for n in (IDENTITY_ROW_GROUP, ROW_GROUP)
        )

        def write(task: WriteTask) -> list[DataFile]:
            bucket = task.partition_key.partition[0] if task.partition_key is not None else None
            try:
                files = list(write_file(table.io, identity if bucket == IDENTITY_BUCKET else grouped, iter([task])))
            except BaseException:
                # a file begun (a disk full midway) is named nowhere else: its path as pyiceberg made it
                name = task.generate_data_file_filename("parquet")
                _discard_path(
                    table.io, locations.new_data_location(data_file_name=name, partition_key=task.partition_key)
                )
                raise
            written.extend(files)
            return files

        try:
            # our pool, not only pyiceberg's: leaving it waits for every write, so a failure's discard
            # finds all the files written (and each under private_files). Each task holds a copy of
            # its bucket's rows, so they are made as the pool takes them, a few ahead: all at once, a
            # whole table's (a first write, a rebuild) took 15.2 GB at 20M events, against 12.1 GB
            # through pyiceberg's overwrite
            with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
                pending: deque[Future[list[DataFile]]] = deque()
                for task in tasks:
                    pending.append(pool.submit(write, task))
                    while len(pending) > _WRITERS or (pending and pending[0].done()):
                        for data_file in pending.popleft().result():  # in the tasks' order
                            producer.append_data_file(data_file)
                while pending:
                    for data_file in pending.popleft().result():
                        producer.append_data_file(data_file)
        except BaseException:
            _discard(table.io, written)
            raise


def _write_tasks(metadata: TableMetadata, parts: list[pa.Table], write_uuid: uuid.UUID) -> Iterator[WriteTask]:
    """The tasks that write ``parts`` as files of the table's target size, one partition each.

    What ``_dataframe_to_data_files`` makes, with the Iceberg schema of the rows found once, not once
    a part, and a part of one partition (most are one bucket) taken whole rather than split by a pass
    over it. 16 files of 40 rows: 8.4 ms a file, against 13.2 ms one call a part (pyiceberg's schema
    and partition work). Only the holdings' spec is known here: one identity partition field.
    """
    spec, schema = metadata.spec(), metadata.schema()
    column = schema.find_column_name(spec.fields[0].source_id) if len(spec.fields) == 1 else None
    if column is None or not isinstance(spec.fields[0].transform, IdentityTransform):
        raise ValueError("the holdings are partitioned by one identity field: this spec is not")
    partition = spec.fields[0]
    default = TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT
    target = property_as_int(metadata.properties, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES, default)
    downcast = Config().get_bool(DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE) or False
    task_schemas: dict[pa.Schema, Schema] = {}  # our parts carry no field ids (pa.Schema's == ignores metadata)
    ids = count()
    for part in parts:
        if part.schema not in task_schemas:
            task_schemas[part.schema] = pyarrow_to_schema(
                part.schema, name_mapping=schema.name_mapping, downcast_ns_timestamp_to_us=downcast,
                format_version=metadata.format_version,
            )  # fmt: skip
        for value, rows in _by_value(part, column):
            key = PartitionKey([PartitionFieldValue(partition, value)], partition_spec=spec, schema=schema)
            for batches in bin_pack_arrow_table(rows, default if target is None else target):
                yield WriteTask(
                    write_uuid=write_uuid, task_id=next(ids), record_batches=batches, partition_key=key,
                    schema=task_schemas[part.schema],
                )  # fmt: skip


def _by_value(part: pa.Table, column: str) -> Iterator[tuple[Any, pa.Table]]:
    """``part``'s rows for each value of ``column`` (null included); the part itself when it holds one value."""
    values = part.column(column)
    distinct = pc.unique(values).to_pylist()
    if len(distinct) == 1:
        yield distinct[0], part
        return
    for value in distinct:
        yield value, part.filter(pc.is_null(values) if value is None else pc.equal(values, value))


def _changed_rows(
    location: StoreLocation, table: Table, read_at: int, engine: HoldingsEngine, changed: Changes, gen: int
) -> tuple[list[DataFile], list[pa.Table]]:
    """The data files that go, and the rows to add (a table per bucket), to store ``changed`` as commit ``gen``.

    Most buckets of runs touched gain a file of the rows that changed (a delta): the runs added, and
    every run of each subject ``changed.rewritten``, whose older runs a reset drops (``current_rows``).
    Appending costs what changed, where rewriting a bucket cost its size: a refresh of 1% of the events
    touches a subject in every bucket. A bucket whose files reach ``MAX_FILES`` (a lookup opens each)
    is folded instead, two a commit at most: its rows as they hold, in one file, its subjects' resets gone.
    The resets are one small file (bucket ``RESETS_BUCKET``) rewritten whole; flows and identities are
    rewritten whole from the engine (few rows).
    """
    stored_files = snapshot_data_files(location, table, read_at)
    files = Counter(_bucket_of_file(f) for f in stored_files)
    if not changed.links and any(_coarse(f) for f in stored_files if _bucket_of_file(f) == IDENTITY_BUCKET):
        # written by another writer (a forget's delete, Spark): rewritten once in this one's row groups
        changed = dataclasses.replace(changed, links=True)
    touched = sorted({bucket_of(s) for s in changed.subjects})
    # a refresh touching every bucket adds a file to each: folding BUCKETS / MAX_FILES of them a
    # refresh keeps each near MAX_FILES files (one a refresh let them reach ~24)
    fold = sorted((b for b in touched if files[b] >= MAX_FILES), key=lambda b: (-files[b], b))[:_FOLDS]
    stored = _read_buckets(location, table, read_at, [RESETS_BUCKET]) if files[RESETS_BUCKET] else None
    resets: dict[str, int] = {}
    if stored is not None:
        resets = dict(zip(stored.column("subject").to_pylist(), stored.column("gen").to_pylist(), strict=True))
    before = dict(resets)
    if len(resets.keys() | changed.rewritten) > MAX_RESETS:
        # every query of the runs reads the resets whole: past this, fold every bucket they name too
        fold = sorted(set(fold) | {bucket_of(s) for s in resets.keys() | changed.rewritten})
    resets = {s: g for s, g in resets.items() if bucket_of(s) not in fold}
    resets.update((s, gen) for s in changed.rewritten if bucket_of(s) not in fold)
    parts = _bucket_rows(location, table, read_at, engine, changed, fold, stored, gen)
    parts += _delta_rows(engine, changed, [b for b in touched if b not in fold], gen)
    drop = list(fold)
    if changed.flows:
        drop.append(FLOWS_BUCKET)
    if changed.links:
        drop.append(IDENTITY_BUCKET)
    if resets != before:
        drop.append(RESETS_BUCKET)
        parts.append(_reset_rows(resets))
    return [f for f in stored_files if _bucket_of_file(f) in drop], parts


def _coarse(data_file: DataFile) -> bool:
    """Whether an identity file has fewer row groups than ``IDENTITY_ROW_GROUP`` makes (False: not known)."""
    offsets = data_file.split_offsets
    return offsets is not None and len(offsets) < math.ceil(data_file.record_count / IDENTITY_ROW_GROUP)


def _bucket_of_file(data_file: DataFile) -> int | None:
    """The bucket (partition) a data file holds."""
    partition = data_file.partition
    return partition[0] if len(partition) else None


def _read_buckets(location: StoreLocation, table: Table, read_at: int, buckets: list[int]) -> pa.Table:
    """The rows of ``buckets`` as stored at ``read_at`` (as written: resets and runs they drop alike)."""
    try:
        return table.scan(snapshot_id=read_at, row_filter=_in_buckets(buckets)).to_arrow()
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "reading the holdings table") from None


def _reset_rows(resets: dict[str, int]) -> pa.Table:
    """The reset rows: each subject, and the ``gen`` below which its runs are dropped."""
    subjects = sorted(resets)
    given = {
        "kind": pa.array(["reset"] * len(subjects), _STRING),
        "subject": pa.array(subjects, _STRING),
        "bucket": pa.array([RESETS_BUCKET] * len(subjects), pa.int32()),
        "gen": pa.array([resets[s] for s in subjects], pa.int64()),
    }
    return pa.table(
        [given.get(f.name, pa.nulls(len(subjects), f.type)) for f in HOLDINGS_COLUMNS], schema=HOLDINGS_COLUMNS
    )


def _delta_rows(engine: HoldingsEngine, changed: Changes, buckets: list[int], gen: int) -> list[pa.Table]:
    """For each bucket, the runs ``changed`` made: all of each subject rewritten, and the runs added."""
    wanted = set(buckets)
    subjects: dict[int, list[str]] = {}
    for subject in changed.rewritten:
        if (b := bucket_of(subject)) in wanted:
            subjects.setdefault(b, []).append(subject)
    added = _added_by_bucket(changed)
    parts = []
    for bucket in buckets:
        sources = [
            list(_run_batches(engine, subjects.get(bucket, ()), _BATCH, gen)),
            [_run_batch(chunk, gen) for chunk in _chunks(added.get(bucket, []), _BATCH)],
        ]
        rows = pa.Table.from_batches([b for source in sources for b in source], HOLDINGS_COLUMNS)
        if sources[0] and sources[1]:  # each in subject order: one sort makes the file's
            rows = rows.combine_chunks()
            rows = rows.take(pc.sort_indices(rows, [("subject", "ascending")]))
        parts.append(rows)
    return parts


def _added_by_bucket(changed: Changes) -> dict[int, list[Run]]:
    """The runs ``changed.added``, by bucket, each bucket's in subject order (a subject's as started)."""
    added: dict[int, list[Run]] = {}
    by_subject = attrgetter("subject")
    for subject, its in groupby(sorted(changed.added, key=by_subject), by_subject):  # stable: in the order started
        added.setdefault(bucket_of(subject), []).extend(its)
    return added


def _bucket_rows(
    location: StoreLocation,
    table: Table,
    read_at: int,
    engine: HoldingsEngine,
    changed: Changes,
    buckets: list[int],
    resets: pa.Table | None,
    gen: int,
) -> list[pa.Table]:
    """Every row of ``buckets`` after ``changed``, a table per bucket of runs (after one of flows and identities).

    Flows and identities are rewritten whole from the engine (few rows). A bucket of runs keeps the
    rows it has (read as Arrow, no Python rows, from ``read_at``; those ``resets`` drop left out) but
    those of the subjects ``changed.rewritten``, whose runs are all made again; the runs
    ``changed.added`` join the rows of their subjects. Bucket by bucket, each merged by one stable
    sort of indices and one take, its read rows dropped once merged: sorting and filtering all read
    chunks at once cost 4.1 s of a 7.1 s refresh of 2.1M rows (pyinstrument), and merging all
    buckets at once held three copies of the rows (review).
    """
    parts = [
        pa.Table.from_batches(list(_flow_and_identity_batches(engine, changed.flows, changed.links)), HOLDINGS_COLUMNS)
    ]
    runs = [b for b in buckets if b >= 0]
    if not runs:
        return parts
    subjects: dict[int, list[str]] = {}
    for subject in changed.rewritten:
        subjects.setdefault(bucket_of(subject), []).append(subject)
    added = _added_by_bucket(changed)
    kept = _kept_rows(location, table, read_at, runs, changed.rewritten, resets)
    for bucket in runs:
        # kept rows, then the rewritten subjects' runs, then the runs added: each in subject order
        sources = [
            kept.pop(bucket, []),
            list(_run_batches(engine, subjects.get(bucket, ()), _BATCH, gen)),
            [_run_batch(chunk, gen) for chunk in _chunks(added.get(bucket, []), _BATCH)],
        ]
        parts.append(_merged(sources))
    return parts


def _kept_rows(
    location: StoreLocation,
    table: Table,
    read_at: int,
    buckets: list[int],
    gone: Iterable[str],
    resets: pa.Table | None,
) -> dict[int, list[pa.RecordBatch]]:
    """The stored rows of ``buckets`` of runs that still hold, by bucket.

    Left out: the runs ``resets`` drop, and every row of the subjects ``gone``.
    """
    leave = pa.array(sorted(gone), _STRING)
    kept: dict[int, list[pa.RecordBatch]] = {}
    try:
        for batch in table.scan(snapshot_id=read_at, row_filter=_in_buckets(buckets)).to_arrow_batch_reader():
            batch = pa.Table.from_batches([batch]).select(HOLDINGS_COLUMNS.names).cast(HOLDINGS_COLUMNS)
            if len(leave):
                batch = batch.filter(pc.invert(pc.is_in(batch.column("subject"), leave)))
            if resets is not None:
                batch = batch.filter(_not_reset(batch, resets))
            found = pc.unique(batch.column("bucket")).to_pylist()  # one: a file holds one bucket
            for bucket in found:
                part = batch if len(found) == 1 else batch.filter(pc.equal(batch.column("bucket"), bucket))
                kept.setdefault(bucket, []).extend(part.to_batches())
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "reading the holdings table") from None
    return kept


def _merged(sources: list[list[pa.RecordBatch]]) -> pa.Table:
    """One bucket's rows from its sources (kept rows, then fresh ones; each in subject order), sorted."""
    rows = pa.Table.from_batches([b for source in sources for b in source], HOLDINGS_COLUMNS)
    # a bucket holds only runs: their order is the subject's. Kept rows may come from several files
    # (deltas, or a bucket past the target file size): sorted even alone; one fresh source is in order
    if sources[0] or sum(1 for source in sources[1:] if source) > 1:
        rows = rows.combine_chunks()
        rows = rows.take(pc.sort_indices(rows, [("subject", "ascending")]))  # stable: each source's order kept
    return rows


def _chunks(items: list[Run], size: int) -> Iterator[list[Run]]:
    """``items`` ``size`` at a time."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _in_buckets(buckets: list[int]) -> BooleanExpression:
    """The rows of these buckets (whole files: the table is partitioned by bucket)."""
    return In("bucket", buckets)  # type: ignore[call-arg, arg-type]  # mypy sees pydantic's fields, not __new__


def _to_this_layout(tx: Transaction, columns: list[str]) -> None:
    """Add the columns an older layout lacks (partitioned by ``bucket`` once added), in the commit rewriting it."""
    with tx.update_schema() as schema:
        if "bucket" not in columns:
            schema.add_column("bucket", IntegerType(), doc="the partition: a hash of a run's subject")
        if "gen" not in columns:
            schema.add_column("gen", LongType(), doc="the commit that wrote the row; a reset above it drops it")
    if "bucket" not in columns:
        with tx.update_spec() as spec:
            spec.add_identity("bucket")


def _offsets_json(offsets: dict[str, dict[int, int]]) -> str:
    return json.dumps({o: {str(p): n for p, n in sorted(ps.items())} for o, ps in offsets.items()})


def _summary(table: Table, snapshot_id: int) -> dict[str, str]:
    """A snapshot's summary properties (empty when it or they are gone)."""
    snapshot = table.snapshot_by_id(snapshot_id)
    return {} if snapshot is None or snapshot.summary is None else dict(snapshot.summary.additional_properties)


def _cut_of(table: Table, snapshot_id: int) -> tuple[dict[str, dict[int, int]] | None, int]:
    """The offsets a held commit's holdings snapshot reflects (``REFLECTS``; None: all), and how many wait."""
    said = _summary(table, snapshot_id)
    if not said.get(REFLECTS):
        return None, 0
    cut = {o: {int(p): int(off) for p, off in parts.items()} for o, parts in json.loads(said[REFLECTS]).items()}
    return cut, int(said.get(HELD_BACK) or 0)


def holdings_snapshot_for(table: Table, events_snapshot: int) -> int | None:
    """The newest holdings snapshot computed from ``events_snapshot``, if any is kept in this layout.

    Rows an older layout wrote (no ``bucket`` column) are not: a lookup reads only its buckets and
    would find none of them, so those holdings are computed in memory instead.
    """
    # newest by sequence number, not by time alone: two snapshots naming the same source (a rebuild's
    # overwrite, a delete snapshot then an append; a refresh, then a fold) may land within one millisecond
    order = sorted(table.metadata.snapshots, key=lambda s: (s.sequence_number or 0, s.timestamp_ms), reverse=True)
    for snapshot in order:
        summary = snapshot.summary
        if summary is not None and summary.get(SOURCE) == str(events_snapshot):
            return snapshot.snapshot_id if _bucketed(table, snapshot.schema_id) else None
    return None


def _bucketed(table: Table, schema_id: int | None) -> bool:
    """Whether rows written under this schema carry their bucket (layout 2 on)."""
    schema = table.schema() if schema_id is None else table.schemas().get(schema_id)
    return schema is not None and "bucket" in schema.column_names


def fenced_only(table: Table) -> bool:
    """Whether the table holds a forget's fence and no file: no maintainer wrote rows yet (as with no snapshot).

    Files too: a table of the first layout (no format property) that a forget fenced still holds its
    rows, and is rebuilt as another version's, not read as empty.
    """
    current = table.current_snapshot()
    summary = current.summary if current is not None else None
    if FORMAT in table.properties or summary is None or summary.get(FENCE) is None:
        return False
    return summary.get("total-data-files") == "0"


def try_load_holdings(location: StoreLocation) -> Table | None:
    """The holdings table, or None when the store has none yet."""
    try:
        return load_holdings(location)
    except StoreNotFoundError:
        return None


def event_offsets(table: Table) -> dict[str, dict[int, int]]:
    """The events table's last stored offset of each source partition (its current properties)."""
    prefix = offset_key("o", 0)[: -len("o.0")]
    out: dict[str, dict[int, int]] = {}
    for key, value in table.properties.items():
        origin, _, part = key[len(prefix) :].rpartition(".")
        if key.startswith(prefix) and origin and part.isdigit():
            out.setdefault(origin, {})[int(part)] = int(value)
    return out


def pinned_state(location: StoreLocation, ref: SnapshotRef, *, holdings: bool = True) -> Pinned:
    """Pin the events snapshot ``ref`` names and the holdings made from it.

    With no ``ref``, the newest holdings decide: their events snapshot is read, so the events and the
    holdings an answer joins always agree (newer events wait for the maintainer; ``behind`` counts
    them). A named snapshot uses holdings made from it if kept, else none (computed in memory; after
    retention, from the newest stored holdings, whose events snapshot must be at or before it).
    """
    # the holdings first: loaded after them, the events table holds the snapshot they were made
    # from even if a consumer and the maintainer both committed in between (review: read the
    # other way round, a reader failed with "which is gone")
    htable = try_load_holdings(location) if holdings else None
    events = location.load()
    if htable is not None and fenced_only(htable):
        htable = None  # no holdings written yet: computed in memory, as with none
    current = htable.current_snapshot() if htable is not None else None
    if htable is None or current is None:
        snapshot = resolve(events, ref)
        return _pinned(location, events, None if snapshot is None else snapshot.snapshot_id, None, None)
    if ref is not None:
        snapshot = resolve(events, ref)
        assert snapshot is not None
        state = read_state(htable)
        if state.layout not in READS:
            made = None  # rows of another version's layout: computed in memory instead
        elif state.source == snapshot.snapshot_id:
            made = current.snapshot_id  # the newest holdings (what a command pins first, by this id)
        else:
            made = holdings_snapshot_for(htable, snapshot.snapshot_id)
        behind = _behind(events, state) if made == current.snapshot_id else 0
        if made is None and retained_before(events.properties) is not None:
            return _pinned(location, events, snapshot.snapshot_id, htable, current.snapshot_id,
                           base=_base(location, events, state, snapshot.snapshot_id))  # fmt: skip
        # events held back: the events read are cut to the offsets those holdings applied; the newest
        # holdings' cut is the table's (a forget moves the source without a snapshot of rows)
        if made is None:
            cut = None
        elif state.source == snapshot.snapshot_id:
            cut = state.applied if state.held else None
        else:
            cut, behind = _cut_of(htable, made)
        return _pinned(location, events, snapshot.snapshot_id, htable, made, behind, reflects=cut)
    state = read_state(htable)
    if state.layout not in READS:
        raise StoreError(
            f"the holdings of {location.describe()} were written by another version of lineage: "
            "run `lineage holdings --rebuild`",
            path=location.describe(),
        )
    if state.source is not None and events.snapshot_by_id(state.source) is not None:
        reflects = state.applied if state.held else None
        return _pinned(location, events, state.source, htable, current.snapshot_id, _behind(events, state),
                       reflects=reflects)  # fmt: skip
    if state.applied == event_offsets(events) and events.current_snapshot() is not None:
        # the snapshot they were made from was expired after a compaction: the same events, rewritten
        now = events.current_snapshot()
        assert now is not None
        return _pinned(location, events, now.snapshot_id, htable, current.snapshot_id)
    raise StoreError(
        f"the holdings of {location.describe()} were made from events snapshot {state.source}, which is gone: "
        "run `lineage holdings` to bring them up to date",
        path=location.describe(),
    )


def _base(location: StoreLocation, events: Table, state: HoldingsState, snapshot: int) -> HoldingsState:
    """The stored holdings to compute those of events ``snapshot`` from, after retention; refused when none fit.

    The events before the cut-off are gone, so only stored holdings keep what they made. The newest
    do when they reflect ``snapshot`` or one of its ancestors (the events since are then applied to
    them, as the maintainer would); older ones do not record which offsets they reflect.
    """
    if state.layout in READS and state.source is not None:
        if any(s.snapshot_id == state.source for s in ancestors_of(events.snapshot_by_id(snapshot), events.metadata)):
            return state
    raise StoreError(
        f"events snapshot {snapshot} of {location.describe()} has no stored holdings and the events before the "
        "retention cut-off are gone: run `lineage holdings`, then pin the events snapshot it reflects",
        path=location.describe(),
    )


def _behind(events: Table, state: HoldingsState) -> int:
    """How many stored events (offsets) the holdings in ``state`` do not reflect yet."""
    stored, reflected = event_offsets(events), state.applied
    return sum(
        max(0, off - reflected.get(origin, {}).get(part, -1))
        for origin, parts in stored.items()
        for part, off in parts.items()
    )


def _pinned(
    location: StoreLocation,
    events: Table,
    events_snapshot: int | None,
    htable: Table | None,
    holdings_snapshot: int | None,
    behind: int = 0,
    *,
    base: HoldingsState | None = None,
    reflects: dict[str, dict[int, int]] | None = None,
) -> Pinned:
    efiles = [] if events_snapshot is None else snapshot_data_files(location, events, events_snapshot)
    hfiles: list[DataFile] = []
    if htable is not None and holdings_snapshot is not None:
        hfiles = snapshot_data_files(location, htable, holdings_snapshot)
    paths, hpaths = [file_path(f.file_path) for f in efiles], [file_path(f.file_path) for f in hfiles]
    event_bounds = holdings_bounds = None
    if location.on_s3:
        schema = events.schema()
        event_bounds = [manifest_bounds(p, f, schema, ["subject_id"]) for p, f in zip(paths, efiles, strict=True)]
        if htable is not None and base is None:
            hschema, columns = htable.schema(), ["subject", "bucket"]
            holdings_bounds = [manifest_bounds(p, f, hschema, columns) for p, f in zip(hpaths, hfiles, strict=True)]
    if base is not None:  # the files to start from; the holdings answered with are computed from them
        holdings_snapshot = None
    resets = tuple(p for p, f in zip(hpaths, hfiles, strict=True) if _bucket_of_file(f) == RESETS_BUCKET)
    return Pinned(events_snapshot, paths, [f.record_count for f in efiles], holdings_snapshot, hpaths,
                  [f.record_count for f in hfiles], behind, base, retained_before(events.properties),
                  event_bounds, holdings_bounds, resets, reflects)  # fmt: skip
