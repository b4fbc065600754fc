"""A person's rows summed up for their access report and erasure plan: grouped here, not in SQL.

The store reads the rows (``Session.subject_holdings``: the person's holdings, one row per
arrival, as ``queries/subject_holdings.sql`` gives them; ``subject_events.sql``: their own events).
A person has tens of such rows, and each grouping query over them cost DuckDB 2-8 ms of binding,
planning and scheduling, whatever the rows (a person page's four: 21 of its 61 ms at 1M subjects);
grouping them in Python costs well under a millisecond. The rules are those of the SQL they
replaced (the answers are the same): when a holding is due under its retention stays
``lineage.contract.rules.retention_end`` (the read's ``retention_ends`` column), whether a category
is covered stays ``lineage.contract.rules.covered``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lineage.contract.rules import covered

__all__ = ["first_arrived", "first_copies", "holders", "holdings", "recipients"]

Row = dict[str, Any]


def first_arrived(rows: Iterable[Row], column: str) -> Any:
    """``column`` of the earliest arrival; among arrivals at that time, the smallest value (None last).

    Not whichever row came first: the holdings table's row order changes with its deltas, and a
    holder seen in two regions would then be answered either way.
    """
    best = min(rows, key=lambda r: (r["arrived_at"], r[column] is None, r[column] or ""))
    return best[column]


def first_copies(events: list[Row]) -> list[Row]:
    """Each event once: of the copies of a resent event, the one stored first (smallest ``kafka_offset``, None last).

    The order of ``events`` is kept. Copies of one event may differ in how they reached Kafka (a
    resend from the spool names another path), so the first stored is the one the report gives.
    Copies in two partitions (or from two origins) may share an offset: the smaller partition, then
    origin, is taken, so an answer given again from its snapshot names the same copy (the window
    this replaced left that to DuckDB).
    """
    first: dict[str, Row] = {}
    for e in events:
        kept = first.get(e["event_id"])
        if kept is None or _offset_order(e) < _offset_order(kept):
            first[e["event_id"]] = e
    if len(first) == len(events):
        return events
    return [e for e in events if first[e["event_id"]] is e]


def holdings(rows: list[Row]) -> list[Row]:
    """Per (category, holder): since when, still held or erased when, purposes, bases, sources, retention."""
    out = []
    for (category, holder), group in _grouped(rows, lambda r: (r["category"], r["holder"])):
        held = [r for r in group if r["ended_at"] is None]
        ends = [r["retention_ends"] for r in held if r["retention_ends"] is not None]
        out.append({
            "category": category,
            "holder": holder,
            "holder_role": first_arrived(group, "holder_role"),
            "holder_region": first_arrived(group, "holder_region"),
            "since": min(r["arrived_at"] for r in group),
            "still_held": bool(held),
            "erased_at": None if held else _latest(r["ended_at"] for r in group),
            "purposes": _distinct(r["purpose"] for r in group),
            "legal_bases": _distinct(r["legal_basis"] for r in group),
            "sources": _distinct(r["source"] for r in group),
            "retention_days": _latest(r["retention_days"] for r in group),
            "retention_ends": max(ends) if ends else None,
        })  # fmt: skip
    out.sort(key=lambda h: (h["category"], h["holder"]))
    return out


def recipients(rows: list[Row]) -> list[Row]:
    """Every party the data was shared or transferred to, per sender, in the order it first went there."""
    shared = [r for r in rows if r["via_type"] in ("SHARED", "TRANSFERRED")]
    out = []
    for (holder, source), group in _grouped(shared, lambda r: (r["holder"], r["source"])):
        bulk = [r["via_bulk"] for r in group if r["via_bulk"] is not None]
        out.append({
            "recipient": holder,
            "recipient_role": first_arrived(group, "holder_role"),
            "recipient_region": first_arrived(group, "holder_region"),
            "sender": source,
            "sender_region": first_arrived(group, "source_region"),
            "categories": _distinct(r["category"] for r in group),
            "purposes": _distinct(r["purpose"] for r in group),
            "mechanisms": _distinct(r["mechanism"] for r in group),
            "event_types": _distinct(r["via_type"] for r in group),
            "in_bulk_export": any(bulk) if bulk else None,
            "first_at": min(r["arrived_at"] for r in group),
            "last_at": max(r["arrived_at"] for r in group),
        })  # fmt: skip
    # two senders to one recipient at one instant: by sender, a sender of None last (as SQL sorts it)
    out.sort(key=lambda r: (r["first_at"], r["recipient"], r["sender"] is None, r["sender"] or ""))
    return out


def holders(rows: list[Row], events: list[Row]) -> list[Row]:
    """Every holder that ever held the data: what it still holds, and done, on hold or pending.

    On hold: everything it still holds is covered by its HOLD erasure events (a legal duty to keep),
    whose reasons are given in the order the events occurred. ``events`` are the person's own, in time order.
    """
    reasons: dict[str, list[str]] = {}
    kept: dict[str, list[str]] = {}
    for e in events:
        if e["event_type"] == "ERASED" and e["erasure_outcome"] == "HOLD":
            kept.setdefault(e["holder"], []).extend(e["categories"] or [])
            found = reasons.setdefault(e["holder"], [])
            if e["hold_reason"] is not None and e["hold_reason"] not in found:
                found.append(e["hold_reason"])
    out = []
    for (holder,), group in _grouped(rows, lambda r: (r["holder"],)):
        still = _distinct(r["category"] for r in group if r["ended_at"] is None)
        on_hold = holder in kept and all(covered(c, kept[holder]) for c in still)
        out.append({
            "holder": holder,
            "role": first_arrived(group, "holder_role"),
            "region": first_arrived(group, "holder_region"),
            "categories": _distinct(r["category"] for r in group),
            "still_held": still,
            "last_erased_at": _latest(r["ended_at"] for r in group),
            "status": "done" if not still else "on hold" if on_hold else "pending",
            "hold_reason": ("; ".join(reasons[holder]) or None) if still and on_hold else None,
        })  # fmt: skip
    out.sort(key=lambda h: h["holder"])
    return out


def _grouped(rows: Iterable[Row], key: Callable[[Row], tuple[Any, ...]]) -> list[tuple[tuple[Any, ...], list[Row]]]:
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return list(groups.items())


def _distinct(values: Iterable[Any]) -> list[Any]:
    """The values once each, sorted, None left out (as SQL's ``list_sort(list_distinct(list(...)))``)."""
    return sorted({v for v in values if v is not None})


def _latest(values: Iterable[Any]) -> Any:
    """The greatest value, None left out; None when there is none (as SQL's ``max``)."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _offset_order(event: Row) -> tuple[bool, int, bool, int, bool, str]:
    offset, partition, origin = event["kafka_offset"], event["kafka_partition"], event["origin"]
    return (offset is None, offset or 0, partition is None, partition or 0, origin is None, origin or "")
