"""Holdings: who holds which of a person's data, from when until when, kept as events arrive.

- ``model``   the rows: runs (a pair held at a holder over an interval), flow events, links
- ``engine``  ``HoldingsEngine``: events in event-time order in, runs out; late events by rollback
- ``shards``  the same engine on subject shards (every bulk event to each): routing, and merging outputs

Pure Python and no I/O: the store keeps the engine's output as a table beside the events
(``lineage.store.holdings``), and the maintenance job (``lineage.ingest.holdings``) feeds it.
"""

from lineage.holdings.engine import HoldingsEngine, LateEventError, flow_id
from lineage.holdings.model import (
    Changes,
    Event,
    FlowEvent,
    FlowInfo,
    Link,
    Provenance,
    Run,
    event_from_record,
    event_from_row,
)

__all__ = [
    "Changes",
    "Event",
    "FlowEvent",
    "FlowInfo",
    "HoldingsEngine",
    "LateEventError",
    "Link",
    "Provenance",
    "Run",
    "event_from_record",
    "event_from_row",
    "flow_id",
]
