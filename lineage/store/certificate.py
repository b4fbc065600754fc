"""Erasure certificates, ``<namespace>.erasures``: what was forgotten, when, under which case. No identifier.

One row per identifier of a forgotten person, keyed by its keyed hash (HMAC-SHA256 with the
console audit's key: the caller hashes, this table never sees an identifier). Rows are only ever
appended. A forget first appends ``started`` rows for every linked identifier: a run killed after
the person's links left the holdings is finished by a re-run that learns the whole person's
digests from them. Then ``done`` rows counting what was removed (a re-run after a kill counts
what it found left); the newest row is what an access request answers.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lineage.errors import StoreConflictError, StoreNotFoundError
from lineage.private import private_files
from lineage.store import manifests
from lineage.store.catalog import StoreLocation, store_error
from lineage.store.tables import ERASURES, iceberg_schema

if TYPE_CHECKING:
    # pyiceberg (and the forget module, which imports the holdings) load where a table is written or
    # scanned: a command checking the certificates of a small table reads its files without them (~0.9 s)
    from pyiceberg.table import Table

    from lineage.store.forget import Forgotten

__all__ = [
    "DONE", "ERASURES", "KEEP_AT_MOST", "NOTHING_HELD", "STARTED", "Certificate", "CertificateIndex", "append_record",
    "certificates", "made_since", "record_certificate", "remove_certificate_orphans", "unfinished",
]  # fmt: skip

STARTED = "started"
DONE = "done"
NOTHING_HELD = "nothing held"  # the store held no row of the identifier: nothing was removed

_TS = pa.timestamp("us", tz="UTC")
_COLUMNS = pa.schema(
    [
        ("digest", pa.string()),
        ("case_ref", pa.string()),
        ("status", pa.string()),
        ("erased_at", _TS),
        ("events_rows", pa.int64()),
        ("holdings_rows", pa.int64()),
        ("files_rewritten", pa.int64()),
        ("snapshots_expired", pa.int64()),
        ("files_removed", pa.int64()),
        ("pins_removed", pa.string()),
        ("kafka_bound", pa.string()),
    ]
)
_PROPERTIES = {"format-version": "2", "commit.retry.num-retries": "0", "write.parquet.compression-codec": "zstd"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Certificate:
    """One identifier's erasure: its keyed hash, the case, when, what was removed, and the bound on Kafka copies."""

    digest: str
    case_ref: str
    status: str  # STARTED, DONE or NOTHING_HELD
    erased_at: datetime
    events_rows: int
    holdings_rows: int  # stored rows removed: a run a later refresh made again, and its reset, count too
    files_rewritten: int
    snapshots_expired: int
    files_removed: int
    pins_removed: str
    kafka_bound: str


def record_certificate(
    location: StoreLocation,
    digests: Sequence[str],
    *,
    case_ref: str,
    status: str,
    erased_at: datetime,
    removed: Forgotten | None,
    kafka_bound: str,
) -> list[Certificate]:
    """Append one row per identifier digest (the counts are the person's, repeated on each; none when started)."""
    from lineage.store.forget import Forgotten

    removed = removed or Forgotten(
        events_rows=0, holdings_rows=0, files_rewritten=0, snapshots_expired=0, files_removed=0, pins_removed=()
    )
    made = [
        Certificate(
            digest=d,
            case_ref=case_ref,
            status=status,
            erased_at=erased_at,
            events_rows=removed.events_rows,
            holdings_rows=removed.holdings_rows,
            files_rewritten=removed.files_rewritten,
            snapshots_expired=removed.snapshots_expired,
            files_removed=removed.files_removed,
            pins_removed=",".join(removed.pins_removed),
            kafka_bound=kafka_bound,
        )
        for d in sorted(set(digests))
    ]
    rows = pa.Table.from_pylist([{n: getattr(c, n) for n in _COLUMNS.names} for c in made], schema=_COLUMNS)
    append_record(location, ERASURES, rows, "the erasure certificate")
    return made


def append_record(location: StoreLocation, name: str, rows: pa.Table, what: str) -> None:
    """Append ``rows`` to the store's own record table ``name`` (made on first use), retrying lost races."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

    schema = iceberg_schema(rows.schema)
    for attempt in range(location.commit_retries):
        try:
            with private_files():
                table = location.load_table(name, schema, UNSORTED_SORT_ORDER, _PROPERTIES, create=True)
                table.append(rows)
        except CommitFailedException:
            time.sleep(min(2.0, 0.02 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.5))
            continue
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, location, f"keeping {what}") from None
        return
    raise StoreConflictError(f"keeping {what} lost to other writers {location.commit_retries} times in a row")


def remove_certificate_orphans(location: StoreLocation, *, grace_s: float) -> int:
    """Delete the certificates table's files that nothing refers to, older than ``grace_s``; how many.

    A forget killed while appending its certificate leaves the file it was writing (empty, or cut
    short) under the table; the next forget's sweep of the events and holdings never reached it.
    """
    table = _table(location)
    if table is None:
        return 0
    from lineage.store.maintenance import remove_orphans

    return remove_orphans(location, grace_s=grace_s, table=table)


def _table(location: StoreLocation) -> Table | None:
    from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

    try:
        return location.load_table(ERASURES, iceberg_schema(_COLUMNS), UNSORTED_SORT_ORDER, _PROPERTIES)
    except StoreNotFoundError:
        return None


def certificates(
    location: StoreLocation, digests: Sequence[str] = (), case_ref: str | None = None
) -> list[Certificate]:
    """The rows of these identifier digests, or of one case, oldest first (none: the store forgot nobody)."""
    table = _table(location)
    if table is None or table.current_snapshot() is None or not (digests or case_ref):
        return []
    from lineage.store.forget import column_in

    wanted = column_in("digest", sorted(set(digests))) if digests else column_in("case_ref", [case_ref or ""])
    try:
        found = table.scan(row_filter=wanted).to_arrow()
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "reading the erasure certificates") from None
    made = [Certificate(**row) for row in found.to_pylist()]
    return sorted(made, key=lambda c: (c.erased_at, c.digest))


class CertificateIndex:
    """Each digest's newest certificate, read whole once per version of the certificates table, then kept.

    A console asks it on every person page: loading the table and scanning it took ~5 ms a page
    with nobody forgotten (more once anyone was). Its metadata file names a version that never
    changes, so a lookup reads the table again only after a forget committed; one thread reads it,
    the others wait for that read. Past ``KEEP_AT_MOST`` rows (~800 bytes each when kept), nothing
    is kept: each lookup scans the table for its digest, as before. A long-lived ``Store`` keeps one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards ``_kept``
        self._reading = threading.Lock()  # one read of the table at a time: the others use it
        self._kept: tuple[str, Mapping[str, Certificate]] | None = None

    def of(self, location: StoreLocation, version: str | None) -> Mapping[str, Certificate]:
        """Each digest's newest certificate now; ``version``: the table's metadata file now (None: no table)."""
        if version is None:
            return _NONE
        with self._lock:
            kept = self._kept
        if kept is not None and kept[0] == version:
            return kept[1]
        with self._reading:
            with self._lock:
                kept = self._kept
            if kept is None or kept[0] != version:  # not read by the thread this one waited for
                kept = _newest_of(location, version)
                with self._lock:
                    self._kept = kept
        return kept[1]


#: the most certificate rows a process keeps in memory (more: each lookup scans for its digest)
KEEP_AT_MOST = 100_000

_NONE: Mapping[str, Certificate] = MappingProxyType({})


class _Scanned(Mapping[str, Certificate]):
    """A table too large to keep: each lookup scans it for one digest (its row statistics skip most files)."""

    def __init__(self, location: StoreLocation, rows: int) -> None:
        self._location, self._rows = location, rows

    def __getitem__(self, digest: str) -> Certificate:
        found = certificates(self._location, [digest])
        if not found:
            raise KeyError(digest)
        return found[-1]

    def __iter__(self) -> Iterator[str]:
        table = _table(self._location)
        digests = [] if table is None else table.scan(selected_fields=("digest",)).to_arrow().column(0).to_pylist()
        return iter(dict.fromkeys(digests))

    def __len__(self) -> int:
        return self._rows  # rows, not digests: only "any at all" is asked of it

    def made_since(self, since: datetime) -> frozenset[str]:
        """``made_since`` of a table too large to keep: the digests of the rows made since, in one scan."""
        from pyiceberg.expressions import GreaterThanOrEqual, Reference

        table = _table(self._location)
        if table is None:
            return frozenset()
        try:
            made = GreaterThanOrEqual(Reference("erased_at"), _micros(since))  # type: ignore[arg-type, call-arg]
            rows = table.scan(row_filter=made, selected_fields=("digest",)).to_arrow()
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, self._location, "reading the erasure certificates") from None
        return frozenset(rows.column("digest").to_pylist())

    def unfinished(self) -> bool:
        """``unfinished`` of a table too large to keep: one scan of three columns, not a lookup per digest."""
        table = _table(self._location)
        if table is None:
            return False
        try:
            rows = table.scan(selected_fields=("digest", "status", "erased_at")).to_arrow().to_pylist()
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, self._location, "reading the erasure certificates") from None
        newest = {r["digest"]: r["status"] for r in sorted(rows, key=lambda r: (r["erased_at"], r["digest"]))}
        return STARTED in newest.values()


def _micros(at: datetime) -> int:
    """An instant as the table's timestamps hold it (microseconds since the epoch, UTC)."""
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def made_since(found: Mapping[str, Certificate], since: datetime) -> frozenset[str]:
    """The digests whose newest certificate (of any status) was made at or after ``since``.

    Of a table too large to keep (``_Scanned``), one scan of the rows made since, not a lookup a digest.
    """
    if isinstance(found, _Scanned):
        return found.made_since(since)
    return frozenset(d for d, c in found.items() if c.erased_at >= since)


def unfinished(found: Mapping[str, Certificate]) -> bool:
    """Whether a forget has begun and not finished (running, or killed midway): a digest's newest is 'started'."""
    if isinstance(found, _Scanned):
        return found.unfinished()
    return any(c.status == STARTED for c in found.values())


def _newest_of(location: StoreLocation, version: str) -> tuple[str, Mapping[str, Certificate]]:
    """The version read (its metadata file), and the newest certificate of each digest in it."""
    if (read := _read_files(version)) is not None:
        return version, _newest(read)
    table = _table(location)
    snapshot = None if table is None else table.current_snapshot()
    if table is None or snapshot is None:
        return ("" if table is None else table.metadata_location), _NONE
    rows = int(snapshot.summary.get("total-records") or 0) if snapshot.summary is not None else 0
    if rows > KEEP_AT_MOST:
        return table.metadata_location, _Scanned(location, rows)
    try:
        found = table.scan().to_arrow().to_pylist()
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "reading the erasure certificates") from None
    return table.metadata_location, _newest(found)


def _read_files(version: str) -> list[dict[str, Any]] | None:
    """Every row of the table at ``version``, read from its files without pyiceberg; None: let pyiceberg read it.

    Only a local table of data files alone, holding at most ``KEEP_AT_MOST`` rows, each file with
    our columns and the rows its manifest says (``manifests.live_files``).
    """
    files = manifests.live_files(version)
    if files is None or sum(f.rows for f in files) > KEEP_AT_MOST:
        return None
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for file in files:
        try:
            read = pq.ParquetFile(file.path).read(columns=_COLUMNS.names).select(_COLUMNS.names)
        except (OSError, ValueError, KeyError, pa.ArrowException):  # pyiceberg reads it, or names the fault
            return None
        if read.num_rows != file.rows or not read.schema.equals(_COLUMNS):  # not as we write them: pyiceberg
            return None
        rows += _pylist(read)
    return rows


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _pylist(read: pa.Table) -> list[dict[str, Any]]:
    """``read.to_pylist()`` but times made here: pyarrow imports pandas (~0.2 s) to convert a zoned timestamp.

    A timestamp column is viewed as its microseconds (a view, not a cast: no ``pyarrow.compute``).
    """
    columns = {
        name: (
            [None if us is None else _EPOCH + timedelta(microseconds=us)
             for chunk in column.chunks for us in chunk.view(pa.int64()).to_pylist()]
            if pa.types.is_timestamp(column.type)
            else column.to_pylist()
        )
        for name, column in zip(read.column_names, read.columns, strict=True)
    }  # fmt: skip
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _newest(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Certificate]:
    """Each digest's newest certificate of ``rows`` (ties in time broken by digest, as ``certificates`` sorts)."""
    newest: dict[str, Certificate] = {}
    for made in sorted((Certificate(**row) for row in rows), key=lambda c: (c.erased_at, c.digest)):
        newest[made.digest] = made
    return MappingProxyType(newest) if newest else _NONE
