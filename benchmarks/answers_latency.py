"""Access-request and breach latency on a large synthetic history, beside naive baselines, same run.

The history (default 1,000,000 subjects, 20 events each = 20,000,000 events) is written straight
into store segments by DuckDB (the ingest path has its own benchmark): every subject is collected
by `app` and `crm`, shared with `pay` and `sms`, transferred to `hk-store`, gives consent, and has
an erasure; 10% have purchase history, which nightly bulk exports carry app -> warehouse ->
ads-agency (two bulk hops), so `ads-agency` ends up holding about 10% of subjects.

- access: median and p99 over random subjects of `access_request` on the compacted store (segments
  sorted by subject), beside a full scan: every event read (all columns, as the events view gives
  them) and filtered for the subject's identifiers, the naive way to answer without a query plan.
- breach: `breach_impact` for ads-agency, beside a networkx traversal: the bulk flows as a holder
  graph, and every subject-level arrival walked forward through it, time-respecting, in Python.

    ./run bench answers_latency [--subjects 1000000] [--samples 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import networkx as nx
import pyarrow as pa
import pyarrow.compute as pc

from lineage import default_taxonomy
from lineage.answers import access_request, breach_impact
from lineage.private import private_dir
from lineage.store import Store
from lineage.store.segments import COLUMNS

KINDS = 20  # events per subject

_EVENTS = """
SELECT
    uuid()::VARCHAR AS event_id,
    CASE WHEN k <= 6 THEN 'COLLECTED' WHEN k <= 14 THEN 'SHARED' WHEN k <= 16 THEN 'TRANSFERRED'
         WHEN k <= 18 THEN 'CONSENT' ELSE 'ERASED' END AS event_type,
    TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_days((i % 365)::INT) + to_hours(k::INT) AS occurred_at,
    'app' AS system, 'CN' AS system_region, 'SUBJECT' AS scope,
    printf('u%07d', i) AS subject_id,
    CASE WHEN k = 3 THEN [printf('d%07d', i)] ELSE []::VARCHAR[] END AS linked_subject_ids,
    CASE WHEN i % 50 = 0 THEN 'DE' ELSE 'CN' END AS subject_jurisdiction,
    CASE WHEN i % 40 = 0 THEN 'CHILD_UNDER_14' ELSE 'ADULT' END AS age_band,
    CASE k WHEN 0 THEN ['user.contact.email'] WHEN 1 THEN ['user.contact.phone_number'] WHEN 2 THEN ['user.name']
           WHEN 3 THEN ['user.device.device_id']
           WHEN 4 THEN CASE WHEN i % 10 = 0 THEN ['user.behavior.purchase_history'] ELSE ['user.account.settings'] END
           WHEN 5 THEN ['user.contact.email'] WHEN 6 THEN ['user.demographic.age_range']
           ELSE CASE WHEN k <= 10 THEN ['user.financial.credit_card'] WHEN k <= 14 THEN ['user.contact.phone_number']
                     WHEN k <= 16 THEN ['user.contact.email'] WHEN k <= 18 THEN ['user.contact.email']
                     ELSE ['user.contact.phone_number'] END END AS categories,
    CASE WHEN k = 19 THEN NULL WHEN k >= 17 THEN 'marketing.communications.email'
         ELSE 'essential.service' END AS purpose,
    CASE WHEN k <= 6 THEN 'CONTRACT' END AS legal_basis,
    NULL::VARCHAR AS consent_ref,
    CASE WHEN k IN (17, 18) THEN 'GENERAL' END AS consent_kind,
    CASE WHEN k = 17 THEN 'GRANTED' WHEN k = 18 THEN 'WITHDRAWN' END AS consent_status,
    CASE WHEN k <= 6 THEN 'direct' END AS source,
    CASE WHEN k IN (5, 6) THEN 'crm' WHEN k = 19 THEN 'sms' ELSE 'app' END AS holder_name,
    CASE WHEN k = 19 THEN 'processor' ELSE 'internal' END AS holder_role,
    'CN' AS holder_region,
    CASE WHEN k BETWEEN 7 AND 10 THEN 'pay' WHEN k BETWEEN 11 AND 14 THEN 'sms'
         WHEN k IN (15, 16) THEN 'hk-store' END AS recipient_name,
    CASE WHEN k BETWEEN 7 AND 14 THEN 'processor' WHEN k IN (15, 16) THEN 'affiliate' END AS recipient_role,
    CASE WHEN k BETWEEN 7 AND 14 THEN 'CN' WHEN k IN (15, 16) THEN 'HK' END AS recipient_region,
    CASE WHEN k IN (15, 16) THEN 'CROSS_BORDER' END AS transfer_kind,
    CASE WHEN k IN (15, 16) THEN 'gba.standard_contract' END AS mechanism,
    NULL::TIMESTAMPTZ AS bulk_as_of,
    CASE WHEN k <= 6 THEN 365 END::INTEGER AS retention_days,
    CASE WHEN k IN (15, 16) THEN true END AS encrypted,
    CASE WHEN k = 19 THEN 'ERASED' END AS erasure_outcome,
    NULL::VARCHAR AS hold_reason,
    0::INTEGER AS kafka_partition,
    (i * {kinds} + k)::BIGINT AS kafka_offset
FROM range({first}, {last}) AS s(i), range({kinds}) AS t(k)
"""

_BULK = """
SELECT
    uuid()::VARCHAR AS event_id, 'SHARED' AS event_type,
    TIMESTAMPTZ '2026-02-05 02:00:00+00' + to_days(d::INT) + to_hours(hop::INT) AS occurred_at,
    'app' AS system, 'CN' AS system_region, 'BULK' AS scope, NULL::VARCHAR AS subject_id,
    []::VARCHAR[] AS linked_subject_ids, NULL::VARCHAR AS subject_jurisdiction, 'UNKNOWN' AS age_band,
    ['user.behavior'] AS categories, 'marketing.advertising' AS purpose, NULL::VARCHAR AS legal_basis,
    NULL::VARCHAR AS consent_ref, NULL::VARCHAR AS consent_kind, NULL::VARCHAR AS consent_status,
    NULL::VARCHAR AS source,
    CASE hop WHEN 0 THEN 'app' ELSE 'warehouse' END AS holder_name, 'internal' AS holder_role, 'CN' AS holder_region,
    CASE hop WHEN 0 THEN 'warehouse' ELSE 'ads-agency' END AS recipient_name,
    CASE hop WHEN 0 THEN 'internal' ELSE 'third_party' END AS recipient_role, 'CN' AS recipient_region,
    NULL::VARCHAR AS transfer_kind, NULL::VARCHAR AS mechanism,
    TIMESTAMPTZ '2026-02-05 00:00:00+00' + to_days(d::INT) + to_hours(hop::INT) AS bulk_as_of,
    NULL::INTEGER AS retention_days, NULL::BOOLEAN AS encrypted, NULL::VARCHAR AS erasure_outcome,
    NULL::VARCHAR AS hold_reason, 1::INTEGER AS kafka_partition, (d * 2 + hop)::BIGINT AS kafka_offset
FROM range(7) AS n(d), range(2) AS h(hop)
"""


def generate(root: Path, subjects: int, files: int, sort_by_subject: bool) -> None:
    """Write the history as segments: by subject (compacted) or in arrival order (as ingested)."""
    part = private_dir(root / "segments" / "bench" / "p0")
    private_dir(root / "segments" / "bench" / "p1")
    per_file = subjects // files
    with duckdb.connect(":memory:") as con:
        con.execute("SET TimeZone = 'UTC'")
        order = "subject_id, occurred_at" if sort_by_subject else "occurred_at, kafka_offset"
        for f in range(files):
            first, last = f * per_file, (f + 1) * per_file if f < files - 1 else subjects
            sql = _EVENTS.format(first=first, last=last, kinds=KINDS)
            target = part / f"{first * KINDS:020d}-{last * KINDS - 1:020d}.parquet"
            con.execute(
                f"COPY (SELECT * FROM ({sql}) ORDER BY {order}) TO '{target}' "  # our own paths, no user input
                "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)"
            )
        bulk_segment = root / "segments" / "bench" / "p1" / f"{0:020d}-{13:020d}.parquet"
        con.execute(f"COPY ({_BULK}) TO '{bulk_segment}' (FORMAT parquet)")
    names = duckdb.sql(f"SELECT * FROM read_parquet('{part}/*.parquet') LIMIT 0").columns
    assert names == COLUMNS.names, names


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--baseline-samples", type=int, default=10)
    args = parser.parse_args()
    taxonomy = default_taxonomy()
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="bench-answers-") as tmp:
        sorted_root = Path(tmp) / "sorted"
        t = time.perf_counter()
        generate(sorted_root, args.subjects, 20, sort_by_subject=True)
        print(f"generated {args.subjects * KINDS + 14:,} events (sorted by subject) in {time.perf_counter() - t:.0f} s")
        as_of = datetime(2026, 6, 1, tzinfo=UTC)
        store = Store(sorted_root)

        def access_times(store: Store, n: int) -> list[float]:
            out = []
            for _ in range(n):
                i = rng.randrange(args.subjects)
                ident = f"d{i:07d}" if rng.random() < 0.2 else f"u{i:07d}"
                start = time.perf_counter()
                report = access_request(store, ident, taxonomy, as_of)
                out.append(time.perf_counter() - start)
                assert report.holdings, ident
            return out

        fast = access_times(store, args.samples)
        slow = []
        for _ in range(args.baseline_samples):
            i = rng.randrange(args.subjects)
            start = time.perf_counter()
            with store.connect() as con:
                everything = con.sql("SELECT * FROM events").to_arrow_table()
            ids = pa.array([f"u{i:07d}", f"d{i:07d}"])
            mine = everything.filter(pc.is_in(everything["subject_id"], value_set=ids))
            slow.append(time.perf_counter() - start)
            assert mine.num_rows >= KINDS
            del everything
        p50, p99 = statistics.median(fast), statistics.quantiles(fast, n=100)[98]
        base = statistics.median(slow)
        print(f"access request, compacted store: median {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
              f"over {len(fast)} subjects (20% asked by device id)")  # fmt: skip
        print(f"full scan (read every event, filter for the subject): median {base * 1000:.0f} ms over {len(slow)}")
        print(f"access: full-scan median / our p99 = {base / p99:.1f}x (goal >= 20x)")

        t1 = datetime(2026, 1, 1, tzinfo=UTC)
        t = time.perf_counter()
        report = breach_impact(store, ["ads-agency"], t1, as_of, taxonomy)
        ours = time.perf_counter() - t
        print(f"breach at ads-agency: {report.subjects:,} subjects, {len(report.records):,} records in {ours:.2f} s")
        t = time.perf_counter()
        naive = naive_breach(store, "ads-agency", t1, as_of)
        base_breach = time.perf_counter() - t
        assert naive == {(r["subject"], r["category"]) for r in report.records}, "the baseline disagrees"
        print(f"breach, networkx traversal baseline: same {len(naive):,} pairs in {base_breach:.1f} s")
        print(f"breach: baseline / ours = {base_breach / ours:.1f}x (goal >= 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
