"""Brute-force reference answers, computed in plain Python from a list of records.

Slow and obvious on purpose: the SQL in queries/ must agree with these on random histories.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Arrival = tuple[str, str, str, int, str]  # subject, category, holder, arrived_at (micros), via event id


def covers(category: str, keys: Iterable[str]) -> bool:
    """A key covers itself and every category below it."""
    return any(category == k or category.startswith(k + ".") for k in keys)


def _ends(x: dict[str, Any], subject: str, category: str, holder: str, arrived_at: int) -> bool:
    if x["holder"]["name"] != holder or not covers(category, x["categories"]) or x["occurred_at"] < arrived_at:
        return False
    if x["scope"] == "SUBJECT":
        return bool(x["subject_id"] == subject)
    return bool(arrived_at <= x["bulk_as_of"])


def identifiers(records: list[dict[str, Any]], identifier: str, links_as_of: int | None) -> set[str]:
    """The identifier and every identifier linked to it, transitively, by events up to links_as_of.

    ``None``: every link in the history (a link is a fact about the person, true before it was
    learned); a time: only the links declared by then ("as known then", for audits).
    """
    edges: dict[str, set[str]] = {}
    for r in records:
        if r["scope"] == "SUBJECT" and (links_as_of is None or r["occurred_at"] <= links_as_of):
            for other in r["linked_subject_ids"]:
                edges.setdefault(r["subject_id"], set()).add(other)
                edges.setdefault(other, set()).add(r["subject_id"])
    seen, todo = {identifier}, [identifier]
    while todo:
        for n in edges.get(todo.pop(), ()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def holdings(records: list[dict[str, Any]], subjects: set[str] | None, as_of: int) -> set[tuple[Any, ...]]:
    """Every (subject, category, holder, arrived_at, via, ended_at) the history implies as of as_of."""
    ev = [r for r in records if r["occurred_at"] <= as_of]
    erasures = [r for r in ev if r["event_type"] == "ERASED" and r["erasure_outcome"] in ("ERASED", "ANONYMISED")]
    arrivals: set[Arrival] = set()
    for r in ev:
        if r["scope"] != "SUBJECT" or r["event_type"] not in ("COLLECTED", "SHARED", "TRANSFERRED"):
            continue
        if subjects is not None and r["subject_id"] not in subjects:
            continue
        holder = r["holder"]["name"] if r["event_type"] == "COLLECTED" else r["recipient"]["name"]
        for c in r["categories"]:
            arrivals.add((r["subject_id"], c, holder, r["occurred_at"], r["event_id"]))
    bulks = [r for r in ev if r["scope"] == "BULK" and r["event_type"] in ("SHARED", "TRANSFERRED")]
    changed = True
    while changed:
        changed = False
        for s, c, h, at, _ in list(arrivals):
            for b in bulks:
                if b["holder"]["name"] != h or at > b["bulk_as_of"] or not covers(c, b["categories"]):
                    continue
                if any(_ends(x, s, c, h, at) and x["occurred_at"] <= b["bulk_as_of"] for x in erasures):
                    continue
                new = (s, c, b["recipient"]["name"], b["occurred_at"], b["event_id"])
                if new not in arrivals:
                    arrivals.add(new)
                    changed = True
    out = set()
    for s, c, h, at, via in arrivals:
        ends = [x["occurred_at"] for x in erasures if _ends(x, s, c, h, at)]
        out.add((s, c, h, at, via, min(ends) if ends else None))
    return out


def breach(records: list[dict[str, Any]], nodes: set[str], t1: int, t2: int) -> set[tuple[str, str]]:
    """(subject, category) pairs whose data reached a node by t2 and was not erased there before t1."""
    return {
        (s, c)
        for s, c, h, at, _, ended in holdings(records, None, t2)
        if h in nodes and at <= t2 and (ended is None or ended >= t1)
    }


def erasure_plan(
    records: list[dict[str, Any]], identifier: str, as_of: int, *, links_as_known_then: bool = False
) -> dict[str, tuple[str, frozenset[str]]]:
    """Holder -> (status, categories still held): done, on hold (a HOLD covers all kept), or pending."""
    ids = identifiers(records, identifier, as_of if links_as_known_then else None)
    still: dict[str, set[str]] = {}
    for _s, c, h, _at, _via, ended in holdings(records, ids, as_of):
        still.setdefault(h, set())
        if ended is None:
            still[h].add(c)
    hold_keys: dict[str, list[str]] = {}
    for r in records:
        if (r["event_type"] == "ERASED" and r["erasure_outcome"] == "HOLD" and r["scope"] == "SUBJECT"
                and r["subject_id"] in ids and r["occurred_at"] <= as_of):  # fmt: skip
            hold_keys.setdefault(r["holder"]["name"], []).extend(r["categories"])
    out = {}
    for h, kept in still.items():
        if not kept:
            status = "done"
        elif h in hold_keys and all(covers(c, hold_keys[h]) for c in kept):
            status = "on hold"
        else:
            status = "pending"
        out[h] = (status, frozenset(kept))
    return out


def transfers(
    records: list[dict[str, Any]],
    as_of: int,
    zone_of: dict[str, str],
    sensitive: set[str],
    pipl_sensitive: set[str],
    pipl_zone: str,
) -> dict[tuple[Any, ...], tuple[int, int, int | None, int | None]]:
    """(year, from, to, recipient, mechanism) -> individuals, those with sensitive data, and PIPL's year.

    ``sensitive`` is any regime's; the PIPL year (everything leaving ``pipl_zone`` that calendar year:
    individuals, and those with data in ``pipl_sensitive``) is None for a route from another zone.
    """
    from datetime import UTC, datetime, timedelta

    by_id = {r["event_id"]: r for r in records}
    people: dict[tuple[Any, ...], set[str]] = {}
    sensitive_people: dict[tuple[Any, ...], set[str]] = {}
    pipl_people: dict[int, set[str]] = {}
    pipl_sensitive_people: dict[int, set[str]] = {}
    for s, c, _h, at, via, _ended in holdings(records, None, as_of):
        e = by_id[via]
        if e["event_type"] not in ("SHARED", "TRANSFERRED"):
            continue
        src, dst = e["holder"]["region"], e["recipient"]["region"]
        if zone_of[src] == zone_of[dst]:
            continue
        year = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=at)).year
        key = (year, src, dst, e["recipient"]["name"], e["mechanism"])
        people.setdefault(key, set()).add(s)
        sensitive_people.setdefault(key, set())
        if c in sensitive:
            sensitive_people[key].add(s)
        if zone_of[src] == pipl_zone:
            pipl_people.setdefault(year, set()).add(s)
            pipl_sensitive_people.setdefault(year, set())
            if c in pipl_sensitive:
                pipl_sensitive_people[year].add(s)
    out: dict[tuple[Any, ...], tuple[int, int, int | None, int | None]] = {}
    for k, v in people.items():
        year, src = k[0], k[1]
        pipl = zone_of[src] == pipl_zone
        out[k] = (
            len(v),
            len(sensitive_people[k]),
            len(pipl_people[year]) if pipl else None,
            len(pipl_sensitive_people[year]) if pipl else None,
        )
    return out


def retention(records: list[dict[str, Any]], now: int) -> dict[tuple[str, str], tuple[int, int]]:
    """(holder, category) -> (subjects held past retention, earliest due time)."""
    by_id = {r["event_id"]: r for r in records}
    out: dict[tuple[str, str], tuple[set[str], int]] = {}
    for s, c, h, at, via, ended in holdings(records, None, now):
        days = by_id[via]["retention_days"]
        if ended is not None or days is None:
            continue
        due = at + days * 86_400_000_000
        if due < now:
            subjects, earliest = out.get((h, c), (set(), due))
            subjects.add(s)
            out[(h, c)] = (subjects, min(earliest, due))
    return {k: (len(v[0]), v[1]) for k, v in out.items()}


def ropa(
    records: list[dict[str, Any]], as_of: int, zone_of: dict[str, str], sensitive: set[str], roles: dict[str, str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """(controller, purpose) -> the record's facts and, per PIPL Art. 55 flag, the ids of the events behind it.

    ``roles`` maps a recipient role to "entrusted" or "disclosure" (absent: our own). The controller
    is the holder of the event: the collector, or the sender. Transfer abroad: the sender's zone is
    CN and the recipient's another one.
    """
    ev = [r for r in records if r["occurred_at"] <= as_of]
    bands: dict[str, set[str]] = {}
    for r in ev:
        if r["scope"] == "SUBJECT":
            bands.setdefault(r["subject_id"], set()).add(r["age_band"])
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in ev:
        if r["event_type"] not in ("COLLECTED", "SHARED", "TRANSFERRED"):
            continue
        holder, recipient, subject = r["holder"], r["recipient"], r["subject_id"]
        a = out.setdefault((holder["name"], r["purpose"]), {
            "events": 0, "subjects": set(), "minors": set(), "recipients": set(), "third_countries": set(),
            "flags": {},
        })  # fmt: skip
        a["events"] += 1
        flags = []
        child = subject is not None and "CHILD_UNDER_14" in bands[subject]
        if subject is not None:
            a["subjects"].add(subject)
            if bands[subject] & {"CHILD_UNDER_14", "MINOR"}:
                a["minors"].add(subject)
        if any(c in sensitive for c in r["categories"]) or child:
            flags.append("sensitive data")
        if covers(r["purpose"], ["personalize.content.profiling"]):
            flags.append("automated decision-making")
        if r["event_type"] != "COLLECTED":
            a["recipients"].add(recipient["name"])
            kind = roles.get(recipient["role"])
            if kind == "entrusted":
                flags.append("entrusted processing")
            elif kind == "disclosure":
                flags.append("disclosure to other handlers")
            src, dst = zone_of[holder["region"]], zone_of[recipient["region"]]
            if src != dst:
                a["third_countries"].add(recipient["region"])
                if src == "CN":
                    flags.append("transfer abroad")
        for flag in flags:
            a["flags"].setdefault(flag, set()).add(r["event_id"])
    return out
