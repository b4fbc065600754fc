"""Access-request and breach latency at 1M subjects / 20M events, beside a full read, on both warehouses, same run.

The history (default 1,000,000 subjects, 20 events each = 20,000,000 events, plus 14 bulk exports) is
written straight into the store's Iceberg table with pyiceberg from synthetic pyarrow columns (that is
the store format; the ingest path has its own benchmark, and 20M events through Kafka would take hours
on 2 shared cores). It is written as ``lineage compact`` leaves a table: sorted by subject and offset,
files of a few million rows, row groups of 20,000 rows (the table's property). The same columns go to
two stores: the embedded one (SQLite catalog, local warehouse) and PostgreSQL + S3 (SeaweedFS), both
servers started here on 127.0.0.1. Every subject is collected by `app` and `crm`, shared with `pay` and
`sms`, transferred to `hk-store`, gives consent, and has an erasure; 10% have purchase history, which
nightly bulk exports carry app -> warehouse -> ads-agency (two bulk hops), so `ads-agency` ends up
holding about 10% of subjects.

- access: median and p99 over random subjects (20% asked by device id) of `access_request`, beside
  a full read, the old benchmark's definition: every event read (all columns, as the events view
  gives them) into Arrow and filtered for the subject's identifiers, the naive way to answer.
- breach: `breach_impact` for ads-agency, beside the same full read and beside a networkx traversal
  (the bulk flows as a holder graph, every subject-level arrival walked forward in Python; on the
  local warehouse only, it reads the same rows; --no-networkx skips it).

    ./run bench answers_latency [--subjects 1000000] [--samples 200] [--baseline-samples 3]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import networkx as nx  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from _stores import StoreShape, embedded, load, p99, servers, shared  # noqa: E402

from lineage import default_taxonomy  # noqa: E402
from lineage.answers import access_request, breach_impact  # noqa: E402
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.private import private_files  # noqa: E402
from lineage.store import Store  # noqa: E402
from lineage.store.tables import COLUMNS  # noqa: E402

KINDS = 20  # events per subject
CHUNK = 150_000  # subjects per file: 3M rows, about the size ``compact`` writes (64 MB groups)
_T0_US = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
_DAY_US, _HOUR_US = 86_400 * 1_000_000, 3_600 * 1_000_000


_STRING = pa.string()
_RANGE: list[pa.Array] = []  # 0..CHUNK*KINDS, built once: a range of Python ints is slow to convert


def _arange(n: int) -> pa.Array:
    if not _RANGE:
        _RANGE.append(pa.array(range(CHUNK * KINDS + 1), pa.int64()))
    return _RANGE[0].slice(0, n)


def _mod(a: pa.Array, m: int) -> pa.Array:
    return pc.subtract(a, pc.multiply(pc.divide(a, m), m))  # integer division: pyarrow has no modulo kernel


def _kinds(values: list[object], kind: pa.Array, type_: pa.DataType = _STRING) -> pa.Array:
    """One value per event kind (0..19), spread over the rows by their kind."""
    return pa.array(values, type_).take(kind)


def _ids(prefix: str, numbers: pa.Array, width: int) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers.cast(_STRING), width, "0"), "")


def chunk(first: int, last: int) -> pa.Table:
    """Subjects first..last-1, 20 events each, in the order ``compact`` leaves them (subject, offset)."""
    n = last - first
    rows = n * KINDS
    row = _arange(rows)  # row r is subject first + r // 20, kind r % 20
    local = pc.divide(row, KINDS)
    i = pc.add(local, first)
    kind = _mod(row, KINDS)
    offsets = pc.add(row, first * KINDS)
    subject = _ids("u", pc.add(_arange(n), first), 7).take(local)
    device = _ids("d", pc.add(_arange(n), first), 7)
    # each subject's one device link sits on its kind-3 row: rows before r with a link = (r + 16) // 20
    linked = pa.ListArray.from_arrays(pc.divide(pc.add(_arange(rows + 1), 16), KINDS).cast(pa.int32()), device)
    category_names = [
        "user.contact.email", "user.contact.phone_number", "user.name", "user.device.device_id",
        "user.account.settings", "user.contact.email", "user.demographic.age_range",
        *["user.financial.credit_card"] * 4, *["user.contact.phone_number"] * 4, *["user.contact.email"] * 4,
        "user.contact.phone_number", "user.behavior.purchase_history",
    ]  # fmt: skip
    purchase = pc.and_(pc.equal(kind, 4), pc.equal(_mod(i, 10), 0))  # 10% of subjects: index 20, purchase history
    category = pc.if_else(purchase, KINDS, kind)
    categories = pa.ListArray.from_arrays(_arange(rows + 1).cast(pa.int32()), pa.array(category_names).take(category))
    none3 = [None] * 3
    types = ["COLLECTED"] * 7 + ["SHARED"] * 8 + ["TRANSFERRED"] * 2 + ["CONSENT"] * 2 + ["ERASED"]
    day, hour = pc.multiply(_mod(i, 365), _DAY_US), pc.multiply(kind, _HOUR_US)
    columns = {
        "event_id": _ids("e", offsets, 9),
        "event_type": _kinds(types, kind),
        "occurred_at": pc.add(pc.add(day, hour), _T0_US).cast(pa.timestamp("us", tz="UTC")),
        "system": pa.repeat(pa.scalar("app"), rows),
        "system_region": pa.repeat(pa.scalar("CN"), rows),
        "scope": pa.repeat(pa.scalar("SUBJECT"), rows),
        "subject_id": subject,
        "linked_subject_ids": linked,
        "subject_jurisdiction": pc.if_else(pc.equal(_mod(i, 50), 0), "DE", "CN"),
        "age_band": pc.if_else(pc.equal(_mod(i, 40), 0), "CHILD_UNDER_14", "ADULT"),
        "categories": categories,
        "purpose": _kinds(["essential.service"] * 17 + ["marketing.communications.email"] * 2 + [None], kind),
        "legal_basis": _kinds(["CONTRACT"] * 7 + [None] * 13, kind),
        "consent_ref": pa.nulls(rows, pa.string()),
        "consent_kind": _kinds([None] * 17 + ["GENERAL"] * 2 + [None], kind),
        "consent_status": _kinds([None] * 17 + ["GRANTED", "WITHDRAWN", None], kind),
        "source": _kinds(["direct"] * 7 + [None] * 13, kind),
        "holder_name": _kinds(["app"] * 5 + ["crm"] * 2 + ["app"] * 12 + ["sms"], kind),
        "holder_role": _kinds(["internal"] * 19 + ["processor"], kind),
        "holder_region": pa.repeat(pa.scalar("CN"), rows),
        "recipient_name": _kinds([None] * 7 + ["pay"] * 4 + ["sms"] * 4 + ["hk-store"] * 2 + none3, kind),
        "recipient_role": _kinds([None] * 7 + ["processor"] * 8 + ["affiliate"] * 2 + none3, kind),
        "recipient_region": _kinds([None] * 7 + ["CN"] * 8 + ["HK"] * 2 + none3, kind),
        "transfer_kind": _kinds([None] * 15 + ["CROSS_BORDER"] * 2 + none3, kind),
        "mechanism": _kinds([None] * 15 + ["gba.standard_contract"] * 2 + none3, kind),
        "bulk_as_of": pa.nulls(rows, pa.timestamp("us", tz="UTC")),
        "retention_days": _kinds([365] * 7 + [None] * 13, kind, pa.int32()),
        "encrypted": _kinds([None] * 15 + [True] * 2 + none3, kind, pa.bool_()),
        "erasure_outcome": _kinds([None] * 19 + ["ERASED"], kind),
        "hold_reason": pa.nulls(rows, pa.string()),
        "origin": pa.repeat(pa.scalar("bench"), rows),
        "kafka_partition": pa.repeat(pa.scalar(0, pa.int32()), rows),
        "kafka_offset": offsets,
        # provenance as the SDK stamps it: the access report's event_sources reads these
        "sent_via": pa.repeat(pa.scalar("sdk"), rows),
        "sent_via_name": pa.repeat(pa.scalar("0.1.0"), rows),
        "sent_via_run": pa.nulls(rows, pa.string()),
    }
    return pa.table([columns[f.name] for f in COLUMNS], schema=COLUMNS)


def bulk() -> pa.Table:
    """Nightly exports for a week: app -> warehouse -> ads-agency, one event per hop (partition 1)."""
    rows = []
    for d in range(7):
        for hop in range(2):
            as_of = datetime(2026, 2, 5 + d, hop, tzinfo=UTC)
            rows.append({
                "event_id": f"b{d}-{hop}", "event_type": "SHARED",
                "occurred_at": as_of + timedelta(hours=2), "system": "app", "system_region": "CN",
                "scope": "BULK", "linked_subject_ids": [], "age_band": "UNKNOWN",
                "categories": ["user.behavior"], "purpose": "marketing.advertising",
                "holder_name": "warehouse" if hop else "app", "holder_role": "internal", "holder_region": "CN",
                "recipient_name": "ads-agency" if hop else "warehouse",
                "recipient_role": "third_party" if hop else "internal", "recipient_region": "CN",
                "bulk_as_of": as_of, "origin": "bench", "kafka_partition": 1, "kafka_offset": d * 2 + hop,
            })  # fmt: skip
    return pa.Table.from_pylist(rows, schema=COLUMNS)


def chunks(subjects: int) -> Iterator[pa.Table]:
    """The history in subject order, one file's worth at a time, then the bulk exports."""
    for first in range(0, subjects, CHUNK):
        yield chunk(first, min(first + CHUNK, subjects))
    yield bulk()


def write(stores: list[StoreShape], subjects: int) -> int:
    """Append the history to each store's events table (one commit per file); return the rows written."""
    tables = []
    with private_files():
        tables = [s.location.load(create=True) for s in stores]
        written = 0
        for part in chunks(subjects):
            for table in tables:
                table.append(part)
            written += part.num_rows
    return written


def _covers(category: str, keys: list[str]) -> bool:
    return any(category == k or category.startswith(k + ".") for k in keys)


def naive_breach(store: Store, node: str, t1: datetime, t2: datetime) -> set[tuple[str, str]]:
    """Affected (subject, category) pairs by walking every arrival through a networkx graph of bulk flows."""
    params = {"t2": t2}
    graph = nx.MultiDiGraph()
    for b in store.sql(
        "SELECT holder_name, recipient_name, categories, bulk_as_of, occurred_at FROM events "
        "WHERE subject_id IS NULL AND event_type IN ('SHARED', 'TRANSFERRED') AND occurred_at <= $t2",
        params,
    ):
        graph.add_edge(b["holder_name"], b["recipient_name"], keys=b["categories"], as_of=b["bulk_as_of"],
                       at=b["occurred_at"])  # fmt: skip
    erasures: dict[tuple[str, str], list[tuple[datetime, list[str]]]] = {}
    for x in store.sql(
        "SELECT subject_id, holder_name, categories, occurred_at FROM events WHERE event_type = 'ERASED' "
        "AND erasure_outcome IN ('ERASED', 'ANONYMISED') AND subject_id IS NOT NULL AND occurred_at <= $t2",
        params,
    ):
        erasures.setdefault((x["subject_id"], x["holder_name"]), []).append((x["occurred_at"], x["categories"]))

    def erased(subject: str, category: str, holder: str, start: datetime, end: datetime) -> datetime | None:
        times = [
            at for at, keys in erasures.get((subject, holder), ()) if start <= at <= end and _covers(category, keys)
        ]
        return min(times) if times else None

    affected: set[tuple[str, str]] = set()
    with store.connect() as con:
        reader = con.sql(
            "SELECT subject_id, categories, occurred_at, "
            "CASE WHEN event_type = 'COLLECTED' THEN holder_name ELSE recipient_name END AS holder FROM events "
            "WHERE subject_id IS NOT NULL AND event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED') "
            "AND occurred_at <= $t2",
            params=params,
        ).to_arrow_reader(100_000)
        for batch in reader:
            for row in batch.to_pylist():
                for category in row["categories"]:
                    stack = [(row["holder"], row["occurred_at"])]
                    seen = set()
                    while stack:
                        holder, at = stack.pop()
                        if (holder, at) in seen:
                            continue
                        seen.add((holder, at))
                        if holder == node:
                            ended = erased(row["subject_id"], category, holder, at, t2)
                            if ended is None or ended >= t1:
                                affected.add((row["subject_id"], category))
                        if holder not in graph:
                            continue
                        for _, dst, edge in graph.out_edges(holder, data=True):
                            if (
                                at <= edge["as_of"]
                                and _covers(category, edge["keys"])
                                and not erased(row["subject_id"], category, holder, at, edge["as_of"])
                            ):
                                stack.append((dst, edge["at"]))
    return affected


def full_read(store: Store, i: int) -> float:
    """Seconds to read every event (all columns) into Arrow and keep subject ``i``'s: the old "full read"."""
    start = time.perf_counter()
    with store.connect() as con:
        everything = con.sql("SELECT * FROM events").to_arrow_table()
    ids = pa.array([f"u{i:07d}", f"d{i:07d}"])
    mine = everything.filter(pc.is_in(everything["subject_id"], value_set=ids))
    elapsed = time.perf_counter() - start
    assert mine.num_rows >= KINDS, i
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--baseline-samples", type=int, default=3)
    parser.add_argument("--no-networkx", action="store_true", help="skip the (slow) networkx breach baseline")
    args = parser.parse_args()
    taxonomy = default_taxonomy()
    rng = random.Random(42)
    as_of = datetime(2026, 6, 1, tzinfo=UTC)
    t1 = datetime(2026, 1, 1, tzinfo=UTC)
    with servers() as (pg, s3), tempfile.TemporaryDirectory(prefix="bench-answers-") as tmp:
        stores = [embedded(Path(tmp) / "store"), shared(pg, s3)]
        t = time.perf_counter()
        events = write(stores, args.subjects)
        print(f"wrote {events:,} events to both stores in {time.perf_counter() - t:.0f} s; {load()}")
        for shape in stores:
            t = time.perf_counter()
            built = HoldingsMaintainer(shape.location).refresh()
            print(f"[{shape.name}] holdings built: {built.line()}; {time.perf_counter() - t:.0f} s, "
                  f"process peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024:,} MB; {load()}")
            store = Store(shape.location)
            assert store.count() == events
            fast = []
            for _ in range(args.samples):
                i = rng.randrange(args.subjects)
                ident = f"d{i:07d}" if rng.random() < 0.2 else f"u{i:07d}"
                start = time.perf_counter()
                report = access_request(store, ident, taxonomy, as_of)
                fast.append(time.perf_counter() - start)
                assert report.holdings, ident
            slow = [full_read(store, rng.randrange(args.subjects)) for _ in range(args.baseline_samples)]
            base = statistics.median(slow)
            p50, high = statistics.median(fast), p99(fast)
            print(f"\n[{shape.name}] {events:,} events, {args.subjects:,} subjects; {load()}")
            print(f"access request: median {p50 * 1000:.0f} ms, p99 {high * 1000:.0f} ms over {len(fast)} subjects "
                  "(20% asked by device id)")  # fmt: skip
            print(f"full read (every event, all columns, into Arrow, filtered): median {base * 1000:.0f} ms "
                  f"over {len(slow)}")  # fmt: skip
            print(f"access: full read / our p99 = {base / high:.1f}x (goal >= 20x)")
            t = time.perf_counter()
            report = breach_impact(store, ["ads-agency"], t1, as_of, taxonomy)
            ours = time.perf_counter() - t
            print(f"breach at ads-agency: {report.subjects:,} subjects, {len(report.records):,} records in "
                  f"{ours:.2f} s = {base / ours:.1f}x faster than a full read")  # fmt: skip
            if shape.name == "embedded" and not args.no_networkx:
                t = time.perf_counter()
                naive = naive_breach(store, "ads-agency", t1, as_of)
                base_breach = time.perf_counter() - t
                assert naive == {(r["subject"], r["category"]) for r in report.records}, "the baseline disagrees"
                print(f"breach, networkx traversal baseline: same {len(naive):,} pairs in {base_breach:.1f} s "
                      f"= {base_breach / ours:.1f}x ours (goal >= 10x)")  # fmt: skip
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
