"""A person's holdings from their stored rows, as ``queries/subject_holdings.sql`` gives them.

The query's rules in Python, for the rows ``point_read`` reads of one person (tens): the macro
``holdings`` over ``runs`` and ``holding_runs`` (queries/_macros.sql). Through DuckDB the query cost
12 ms a person with their linked ids at 1M subjects, most of it planning and decoding whole row
groups; reading the person's rows by row group and applying the rules here costs ~7 ms (2026-12-07).
``tests/store/test_person_holdings.py`` checks the two give the same rows, as of any time.

- A run is dropped by a reset of its subject of a later generation (``gen``; None: 0).
- A run counts from its ``arrived_at`` (none after ``as_of``); its end only if by ``as_of``.
- A run of a bulk flow expands over the flow's events ``first_seq`` .. ``last_seq`` (None: every
  later one) sent by ``as_of``: one row each, arriving when the event was sent; a run none of whose
  events is stored keeps its own arrival.
- ``retention_ends``: of a row still held, ``lineage.contract.rules.retention_end``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from lineage.contract.rules import retention_end

__all__ = ["FLOW_COLUMNS", "RESET_COLUMNS", "RUN_COLUMNS", "expand"]

Row = dict[str, Any]

#: what the rules read of each kind of row (the holdings table's columns)
RUN_COLUMNS = [
    "subject", "category", "holder", "arrived_at", "via", "flow", "first_seq", "last_seq", "ended_at",
    "via_type", "via_bulk", "holder_role", "holder_region", "source", "source_region", "purpose",
    "legal_basis", "mechanism", "retention_days", "encrypted", "bucket", "gen",
]  # fmt: skip
RESET_COLUMNS = ["gen"]
FLOW_COLUMNS = ["first_seq", "arrived_at", "via"]

_LAST_SEQ = 2147483647  # a run of every later event of its flow: its last_seq is None
_SHOWN = [
    "subject", "category", "holder", "arrived_at", "via", "via_type", "via_bulk", "holder_role", "holder_region",
    "source", "source_region", "purpose", "legal_basis", "mechanism", "retention_days", "encrypted",
]  # fmt: skip


def expand(
    runs: Iterable[Row],
    resets: Mapping[str, list[int | None]],
    flows: Mapping[str, list[Row]],
    as_of: datetime,
    buckets: set[int],
) -> list[Row]:
    """The holdings rows of ``runs`` as of ``as_of``: each arrival, when it ended, when it is due.

    ``resets``: the generations of each subject's resets; ``flows``: each flow's event rows
    (``FLOW_COLUMNS``); ``buckets``: the holdings buckets of the person's identifiers (a run in
    another is not theirs, as the query's ``$buckets`` says).
    """
    out: list[Row] = []
    for run in runs:
        arrived = run["arrived_at"]
        if arrived is None or arrived > as_of or run["bucket"] not in buckets or _reset(run, resets):
            continue
        ended = run["ended_at"] if run["ended_at"] is not None and run["ended_at"] <= as_of else None
        shown = {c: run[c] for c in _SHOWN}
        sent = _sent(run, flows.get(run["flow"], ()) if run["flow"] is not None else (), as_of)
        for at, via in sent or [(arrived, run["via"])]:
            out.append({
                **shown, "arrived_at": at, "via": via, "ended_at": ended,
                "retention_ends": retention_end(at, run["retention_days"]) if ended is None else None,
            })  # fmt: skip
    return out


def _reset(run: Row, resets: Mapping[str, list[int | None]]) -> bool:
    """Whether a reset of the run's subject of a later generation drops it."""
    gen = run["gen"] or 0
    return any(g is not None and g > gen for g in resets.get(run["subject"], ()))


def _sent(run: Row, events: Iterable[Row], as_of: datetime) -> list[tuple[datetime, Any]]:
    """When each event of the run's flow in its range was sent (by ``as_of``), and the event's id."""
    first, last = run["first_seq"], run["last_seq"]
    if first is None:
        return []
    last = _LAST_SEQ if last is None else last
    return [
        (e["arrived_at"], run["via"] if e["via"] is None else e["via"])
        for e in events
        if e["first_seq"] is not None and first <= e["first_seq"] <= last
        and e["arrived_at"] is not None and e["arrived_at"] <= as_of
    ]  # fmt: skip
