"""Forgetting one person in the console database: the redaction's time beside rewriting the file alone.

A SQLite console database with a trail of ``--entries`` look-ups (default 200,000) over a quarter as
many distinct identifiers, one of which is forgotten with ``redact_person`` (every distinct subject
hashed, the person's entries rewritten, ``audit.redacted`` recorded, VACUUM and a TRUNCATE checkpoint).
The baseline, in the same run on the same file: ``ConsoleDB.reclaim`` alone (VACUUM and checkpoint),
the floor any redaction that leaves no freed bytes behind pays.

    ./run bench console_forget [--entries 200000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import load  # noqa: E402

from lineage.console.audit import Audit  # noqa: E402
from lineage.console.db import ConsoleDB  # noqa: E402
from lineage.console.erasure import redact_person  # noqa: E402

_INSERT = (
    "INSERT INTO console_audit (at, actor, role, action, detail, subject, case_ref, client, outcome) "
    "VALUES ('2026-01-01T00:00:00.000000+00:00', 'ana', 'analyst', 'person.view', 'json', :subject, 'C-1', "
    "'127.0.0.1', 'ok')"
)


def main() -> int:
    """Fill the trail, time the reclaim alone, then the redaction of one person; print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    args = parser.parse_args()
    people = max(1, args.entries // 4)
    with tempfile.TemporaryDirectory(prefix="lineage-console-forget-") as tmp:
        db = ConsoleDB(f"sqlite:///{Path(tmp) / 'console.db'}")
        audit = Audit(db)
        for start in range(0, args.entries, 50_000):  # in batches: a list of every row at once is memory for nothing
            with db.tx() as tx:
                tx.run_many(_INSERT, [{"subject": f"user-{i % people}"} for i in range(start,
                                      min(start + 50_000, args.entries))])  # fmt: skip
        started = time.perf_counter()
        db.reclaim(["console_audit"])
        floor = time.perf_counter() - started
        size = (Path(tmp) / "console.db").stat().st_size
        started = time.perf_counter()
        done = redact_person(audit, [audit.subject_digest("user-7")], "ER-1", actor="bench", role="cli",
                             client="command line")  # fmt: skip
        took = time.perf_counter() - started
        print(f"console forget: {took:.2f} s for {args.entries:,} entries over {people:,} identifiers "
              f"({size / 1e6:.1f} MB); {done.audit_entries} entries hashed; reclaim alone {floor:.2f} s "
              f"({took / floor:.1f}x); {load()}")  # fmt: skip
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
