"""The holdings maintenance split by subject: which events each shard runs, and one state from all shards.

A subject's runs depend only on its own subject-level events and on the bulk events (flows and bulk
erasures): a flow carries each (subject, category) the sender holds on its own, counted per pair, and
a bulk erasure ends each covered run on its own. So ``HoldingsEngine`` runs unchanged on K shards,
each fed the subject-level events of its subjects and every bulk event, and the outputs add up:

- runs: disjoint by subject, their union is the whole;
- flow events: made from bulk events alone, the same in every shard (one copy is kept);
- links: each shard has the edges its subjects' events declared; an edge declared in two shards
  keeps its first time, and person keys are recomputed from all edges (they join identifiers
  across subjects, so no shard can name them alone).

Bulk events are few (one per export per night, not per person), so sending each to every shard
costs K times little. ``tests/holdings/test_shards.py`` holds this to one engine over everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from zlib import crc32

from lineage.holdings.engine import HoldingsEngine
from lineage.holdings.model import Event, Link

__all__ = ["merge", "merge_links", "persons", "shard_of", "shards_for", "split"]


def shard_of(subject: str, shards: int) -> int:
    """The shard that keeps ``subject``'s runs: a hash that is the same in every process (not ``hash``)."""
    return crc32(subject.encode("utf-8")) % shards


def shards_for(scope: str, subject_id: str | None, shards: int) -> range:
    """The shards an event goes to: a subject-level event to its subject's, a bulk event to all."""
    if shards < 1:
        raise ValueError(f"shards: {shards} is not a positive number")
    if scope == "SUBJECT" and subject_id is not None:
        home = shard_of(subject_id, shards)
        return range(home, home + 1)
    return range(shards)


def split(events: Iterable[Event], shards: int) -> list[list[Event]]:
    """The events of each shard, in the order given."""
    out: list[list[Event]] = [[] for _ in range(shards)]
    for e in events:
        for shard in shards_for(e.scope, e.subject_id, shards):
            out[shard].append(e)
    return out


def merge_links(links: Iterable[Link]) -> list[Link]:
    """One link per pair of identifiers, at the first time any shard saw it declared."""
    first: dict[tuple[str, str], int] = {}
    for a, b, at in links:
        pair = (a, b) if a < b else (b, a)
        known = first.get(pair)
        if known is None or at < known:
            first[pair] = at
    return [Link(a, b, at) for (a, b), at in first.items()]


def persons(links: Iterable[Link]) -> list[tuple[str, str]]:
    """(identifier, person key) for every linked identifier, from every shard's links."""
    return list(HoldingsEngine.restore((), (), merge_links(links), None).persons())


def merge(engines: Sequence[HoldingsEngine]) -> HoldingsEngine:
    """One engine whose state is the shards' together (the shards' engines are consumed: runs are shared)."""
    if not engines:
        return HoldingsEngine()
    marks = [e.watermark for e in engines if e.watermark is not None]
    return HoldingsEngine.restore(
        chain.from_iterable(e.runs() for e in engines),
        engines[0].flow_events(),
        merge_links(chain.from_iterable(e.links() for e in engines)),
        max(marks) if marks else None,
    )
