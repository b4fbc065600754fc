"""Many writers committing into one events table at once (PostgreSQL + S3): commits/s as writers are added.

For each writer count N, a fresh events table (its own catalog namespace and S3 prefix) and N writer
processes, each a ``TableWriter`` of one topic owning its own partitions (``--partitions``, one by
default), claimed as a consumer claims them on assignment. Once every writer is ready they start
together and, for ``--seconds``, commit pre-built batches of ``--batch`` decoded rows with fake,
consecutive offsets: ``TableWriter.commit`` exactly as the consumer calls it (rows and offsets in one
commit, each commit asserting the snapshot it read, a lost race re-read and retried with backoff).
No Kafka: the batches are CPU-light, so what is measured is the commit path and its contention.

Per writer: commits, rows, lost races (``TableWriter.conflicts``: each is one ``CommitFailedException``
then a backoff sleep), commit latency (a ``commit`` call, retries included), its CPU time, and
where a commit's time goes, by timing the store's own steps in the child (wrapped, behaviour
unchanged): reading the table (catalog SELECT + metadata.json GET), writing the Parquet file,
writing the manifests and manifest list (a merge append), the catalog commit (re-load,
metadata.json PUT, UPDATE) and the backoff sleeps. Per N: commits/s, rows/s, lost races per commit,
fairness (min/max commits over writers, Jain's index), p50/p99 latency, speedup over the first N.
At the end of each N the table's row count must equal the rows the writers reported and each
partition's stored offset their last one (exit 1 if not).

    ./run bench writers_contention [--writers 1,2,4,8,16] [--seconds 20] [--batch 50]
        [--partitions 1] [--profile DIR]

``--writers 1 --partitions 16`` is one commit carrying many partitions' rows, as one committing
coordinator's would. ``--profile DIR`` runs writer 0 of each N under pyinstrument and writes its
text report to DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _stores import REPO, StoreShape, load, p99, servers, shared  # noqa: E402

from lineage import Settings  # noqa: E402
from lineage.contract.records import make_record  # noqa: E402
from lineage.errors import StoreConflictError  # noqa: E402
from lineage.store import PartitionRows, Store, StoreLocation, TableWriter  # noqa: E402
from lineage.store import writer as writer_module  # noqa: E402

ORIGIN = "bench.writers"
PHASES = ("read table", "parquet", "manifests", "catalog commit", "backoff")


def _records(n: int) -> list[Any]:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    return [
        make_record(
            "COLLECTED",
            system="web",
            system_region="CN",
            subject_id=f"user-{i}",
            occurred_at=t0 + timedelta(seconds=i),
            categories=["user.contact.email"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            subject_jurisdiction="CN",
            retention_days=365,
        )
        for i in range(n)
    ]


def _timed(phases: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] += time.perf_counter() - start

    return wrapper


class _TimedSleep:
    """Stands in for the ``time`` module inside ``lineage.store.writer``: its backoff sleeps are added up."""

    def __init__(self, phases: dict[str, float]) -> None:
        self._phases = phases

    def sleep(self, seconds: float) -> None:
        self._phases["backoff"] += seconds
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _wrap(owner: Any, name: str, phases: dict[str, float], label: str, *, static: bool = False) -> None:
    """Replace ``owner.name`` by the same callable, timed into ``phases[label]``."""
    timed = _timed(phases, label, getattr(owner, name))
    setattr(owner, name, staticmethod(timed) if static else timed)


def _instrument(writer: TableWriter, phases: dict[str, float]) -> None:
    """Time the store's steps of a commit (class attributes wrapped in this child process only)."""
    catalog_cls = type(writer._fresh().catalog)  # pyiceberg's SqlCatalog (this script imports no pyiceberg)
    _wrap(catalog_cls, "_write_metadata", phases, "metadata.json put", static=True)
    _wrap(TableWriter, "_fresh", phases, "read table")
    _wrap(TableWriter, "_write_files", phases, "parquet")
    _wrap(TableWriter, "_new_snapshot", phases, "manifests", static=True)
    _wrap(vars(writer_module)["Transaction"], "commit_transaction", phases, "catalog commit")
    vars(writer_module)["time"] = _TimedSleep(phases)  # the backoff's time.sleep


def child(index: int, partitions: int, seconds: float, batch: int, profile: str | None, group: bool) -> int:
    """One writer: claim its partitions, say ready, wait for go, commit for ``seconds``, print JSON."""
    location = StoreLocation.from_settings(Settings.from_env(dict(os.environ)))
    writer = TableWriter(location, ORIGIN, member=f"writer-{index}", group_commit=group)
    phases: dict[str, float] = defaultdict(float)
    mine = range(index * partitions, (index + 1) * partitions)
    next_offset = max(writer.claim(mine).values(), default=0)  # the same in each (fresh table: 0)
    records = _records(batch)
    _instrument(writer, phases)
    phases.clear()
    conflicts_before, gave_up = writer.conflicts, 0
    print("ready", flush=True)
    sys.stdin.readline()  # go
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    commits = rows = 0
    latencies: list[float] = []
    start, cpu = time.perf_counter(), time.process_time()
    deadline = start + seconds
    pending: dict[int, PartitionRows] | None = None
    while time.perf_counter() < deadline:
        if pending is None:
            pending = {p: PartitionRows(next_offset, next_offset + batch - 1) for p in mine}
            for rows_of in pending.values():
                for i, record in enumerate(records):
                    rows_of.rows.append(record, next_offset + i)
        t = time.perf_counter()
        try:
            stored = writer.commit(pending)
        except StoreConflictError:
            gave_up += 1  # lost commit_retries times in a row: the consumer would try the same rows again
            continue
        latencies.append(time.perf_counter() - t)
        commits += 1
        rows += sum(s.rows for s in stored)
        next_offset += batch
        pending = None
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if profiler is not None:
        profiler.stop()
        Path(profile or ".").write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    out = {
        "index": index,
        "commits": commits,
        "rows": rows,
        "partitions": list(mine),
        "last": next_offset - 1,
        "conflicts": writer.conflicts - conflicts_before,
        "carried": writer.carried,
        "gave_up": gave_up,
        "elapsed": elapsed,
        "cpu": cpu,
        "latencies": latencies,
        "phases": dict(phases),
    }
    print(json.dumps(out), flush=True)
    return 0


def run(
    store: StoreShape, n: int, partitions: int, seconds: float, batch: int, profile: Path | None, group: bool
) -> list[dict[str, Any]]:
    """N writer processes on a fresh table; their reports once all have finished."""
    TableWriter(store.location, ORIGIN).stored()  # creates the table, as a consumer's first open does
    env = {**os.environ, **store.env}
    procs = []
    for i in range(n):
        command = [sys.executable, __file__, "--child", str(i), "--partitions", str(partitions)]
        command += ["--seconds", str(seconds), "--batch", str(batch), "--modes", "group" if group else "solo"]
        if profile is not None and i == 0:
            command += ["--profile", str(profile / f"writers-{n}-{'group' if group else 'solo'}.txt")]
        procs.append(
            subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"a writer did not start: {line!r}")
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    reports = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a writer failed ({p.returncode})")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def jain(xs: list[float]) -> float:
    """Jain's fairness index: 1 when every writer did the same, 1/N when one did everything."""
    total = sum(xs)
    return total * total / (len(xs) * sum(x * x for x in xs)) if total else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", default="1,2,4,8,16", help="writer counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each writer commits, per count")
    parser.add_argument("--batch", type=int, default=50, help="rows per partition per commit")
    parser.add_argument(
        "--partitions", type=int, default=1, help="partitions each writer owns (a batch of each per commit)"
    )
    parser.add_argument(
        "--modes",
        default="group,solo",
        help="group: a commit carries batches other writers staged (the default); solo: each its own (the baseline)",
    )
    parser.add_argument("--profile", type=Path, help="write writer 0's pyinstrument report for each count here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        group = args.modes == "group"
        return child(args.child, args.partitions, args.seconds, args.batch, args.profile and str(args.profile), group)

    counts = [int(x) for x in args.writers.split(",")]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    summary: list[str] = []
    failed = False
    base: dict[str, float] = {}
    modes = [m.strip() for m in args.modes.split(",")]
    if not modes or any(m not in ("group", "solo") for m in modes):
        parser.error("--modes: group, solo or both, comma-separated")
    with servers() as (pg, s3):
        print(f"servers up: PostgreSQL {pg.port}, SeaweedFS {s3.endpoint}; {load()}")
        for n, mode in ((n, mode) for n in counts for mode in modes):
            store = shared(pg, s3)
            reports = run(store, n, args.partitions, args.seconds, args.batch, args.profile, mode == "group")
            wall = max(r["elapsed"] for r in reports)
            commits = [r["commits"] for r in reports]
            total_commits, total_rows = sum(commits), sum(r["rows"] for r in reports)
            conflicts = sum(r["conflicts"] for r in reports)
            gave_up = sum(r["gave_up"] for r in reports)
            latencies = [x for r in reports for x in r["latencies"]]
            rate = total_commits / wall
            base.setdefault(mode, rate)  # the first count (N=1 by default) of each mode
            carried = sum(r["carried"] for r in reports)
            stored_rows = Store(store.location).count()
            offsets = TableWriter(store.location, ORIGIN).stored()
            offsets_ok = all(offsets.get(p, -1) == r["last"] for r in reports for p in r["partitions"])
            ok = stored_rows == total_rows and offsets_ok
            failed |= not ok
            phases: dict[str, float] = defaultdict(float)
            for r in reports:
                for k, v in r["phases"].items():
                    phases[k] += v
            spent = sum(latencies)
            split = ", ".join(f"{k} {phases[k] / spent:.0%}" for k in PHASES if spent)
            tries = max(1, total_commits + conflicts)
            inner = (
                f"(per try: catalog commit {phases['catalog commit'] / tries * 1000:.0f} ms, of which "
                f"metadata.json put {phases['metadata.json put'] / tries * 1000:.0f} ms)"
            )
            p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
            p99_ms = p99(latencies) * 1000 if latencies else float("nan")
            line = (
                f"{mode} N={n:>2}: {rate:6.1f} batches/s, {total_rows / wall:7,.0f} rows/s, "
                f"{carried / max(1, total_commits):.0%} carried by another's commit, "
                f"{conflicts / max(1, total_commits):.2f} lost races/commit, gave up {gave_up}, "
                f"commits/writer min {min(commits)} max {max(commits)} Jain {jain(commits):.2f}, "
                f"latency p50 {p50:.0f} ms p99 {p99_ms:.0f} ms, speedup x{rate / base[mode]:.2f}; {load()}"
            )
            print(line)
            cpu = sum(r["cpu"] for r in reports) / max(1, total_commits) * 1000
            print(f"       time in commit: {split} {inner}; writer CPU {cpu:.0f} ms per commit")
            print(
                f"       check: table holds {stored_rows:,} rows, writers reported {total_rows:,}; "
                f"stored offsets {'match' if offsets_ok else 'DIFFER from'} the writers' last "
                f"({'ok' if ok else 'FAILED'})"
            )
            summary.append(line)
    print(
        f"\nsummary (PostgreSQL + S3; each writer {args.partitions} partition(s), {args.batch} rows of each "
        f"per commit; {args.seconds:g} s per count)"
    )
    for line in summary:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
