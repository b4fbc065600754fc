"""OpenLineage run events into bulk flow events: a pipeline's copy from one holder to another.

A COMPLETE run event reading dataset A and writing dataset B, each mapped to a holder
(``lineage.gateway.mapping``), becomes one BULK event per (input, output) pair whose holders differ
and which carries personal data: SHARED, or TRANSFERRED (CROSS_BORDER) when the two holders are in
different transfer zones (``contract.rules.crosses_border``). The event's ``system`` is the sending
holder, so a token sends only flows out of the systems it is scoped to.

A dataset's categories are its tags whose key is ``lineage.category`` (in the ``tags`` dataset
facet, for the dataset or one of its fields, or on a field of the ``schema`` facet), plus the
mapping's. A flow carries the categories both ends hold (the narrower key where one covers the
other); an output with none tagged or mapped is taken to receive all of the input's.

Event ids are derived from the run id and the two datasets: a client retrying a run event sends
the same ids, which the relay and the store keep once. Events that are not COMPLETE, and runs
with no personal data, make no event; datasets the mapping lacks are counted and named once in
the log (a dataset's name is shown escaped and cut short, as error messages show values).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lineage.contract.events import PersonalDataEvent
from lineage.contract.records import from_record, make_record, to_micros
from lineage.contract.rules import covers, crosses_border
from lineage.contract.validation import Validator
from lineage.errors import InvalidEventError, shown
from lineage.gateway.intake import RequestError, load_body
from lineage.gateway.mapping import Dataset, DatasetMap
from lineage.transport.provenance import openlineage_headers
from lineage.transport.sink import Headers

__all__ = ["TAG_KEY", "Counters", "RunReading", "read_run_event"]

#: the tag key whose value names a data category: {"key": "lineage.category", "value": "user.contact.email"}
TAG_KEY = "lineage.category"
_TYPES = frozenset({"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"})
# the namespace of the derived event ids: uuid5 of the run id and the two datasets
_IDS = uuid.UUID("6f0d3f57-3a2e-4f4e-9a51-6b1c0e7f2a10")
_MAX_NAMES = 100_000  # unknown dataset names remembered (and logged once each); past it, counted only
_log = logging.getLogger("lineage.gateway.openlineage")


@dataclass(frozen=True, slots=True)
class RunReading:
    """What a run event became: the flow events, or why none; and the datasets the mapping lacks."""

    events: list[PersonalDataEvent]
    ignored: str | None  # why no event was made (not COMPLETE, no personal data), or None
    unknown: list[str] = field(default_factory=list)  # 'namespace/name' of each unmapped dataset
    headers: Headers = ()  # the events' provenance: the job and the run they came from


@dataclass(frozen=True, slots=True)
class _Side:
    where: str  # inputs[0]: the place in the run event an error names
    dataset: Dataset
    categories: frozenset[str]


def read_run_event(body: bytes, mapping: DatasetMap, validator: Validator) -> RunReading:
    """The run event in ``body`` as validated flow events; ``RequestError`` (400/422) names the field at fault."""
    run = load_body(body)
    if not isinstance(run, dict):
        raise RequestError(400, ["body: expected an OpenLineage run event (a JSON object)"])
    if not isinstance(run.get("run"), dict):
        raise RequestError(400, ["run: is missing: not an OpenLineage run event (job and dataset events hold no flow)"])
    run_id = _text(run["run"], "run.runId")
    try:
        uuid.UUID(run_id)
    except ValueError:
        raise RequestError(400, [f"run.runId={shown(run_id)}: must be a UUID"]) from None
    job = run.get("job")
    if not isinstance(job, dict):
        raise RequestError(400, ["job: must be an object with namespace and name"])
    headers = openlineage_headers(_text(job, "job.namespace"), _text(job, "job.name"), run_id)
    at = _time(run)
    kind = run.get("eventType")
    if kind is not None and (not isinstance(kind, str) or kind not in _TYPES):
        raise RequestError(400, [f"eventType={shown(kind)}: must be one of {', '.join(sorted(_TYPES))}"])
    inputs, outputs = _datasets(run, "inputs"), _datasets(run, "outputs")
    if kind != "COMPLETE":
        return RunReading([], f"a {kind or 'typeless'} run event: only COMPLETE ones carry a finished flow")
    unknown: list[str] = []
    sources = _sides(inputs, "inputs", mapping, validator, unknown)
    targets = _sides(outputs, "outputs", mapping, validator, unknown)
    events: dict[str, PersonalDataEvent] = {}
    for source in sources:
        for target in targets:
            event = _flow(run_id, at, source, target, validator)
            if event is not None:
                events[event.event_id] = event
    if not events:
        return RunReading([], "no personal data flows between two mapped holders in this run", unknown)
    return RunReading(list(events.values()), None, unknown, headers)


def _text(obj: Mapping[str, Any], path: str) -> str:
    value = obj.get(path.rsplit(".", 1)[-1])
    if not isinstance(value, str) or not value.strip():
        raise RequestError(400, [f"{path}: must be a non-empty string"])
    return value


def _time(run: Mapping[str, Any]) -> datetime:
    value = run.get("eventTime")
    try:
        at = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise RequestError(400, ["eventTime: must be an ISO 8601 time with an offset (2026-05-01T02:00:00Z)"])
    try:
        to_micros("eventTime", at)  # within the years the contract holds (1900 to 9999)
    except InvalidEventError as exc:
        raise RequestError(400, [str(exc)]) from None
    return at


def _datasets(run: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = run.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError(400, [f"{key}: must be a list of datasets"])
    for i, d in enumerate(value):
        if not isinstance(d, dict):
            raise RequestError(400, [f"{key}[{i}]: must be an object with namespace and name"])
        _text(d, f"{key}[{i}].namespace"), _text(d, f"{key}[{i}].name")
    return value


def _sides(
    datasets: list[dict[str, Any]], key: str, mapping: DatasetMap, validator: Validator, unknown: list[str]
) -> list[_Side]:
    """The mapped datasets of one side, each once: a dataset listed again adds its tags to the first listing.

    Pairs are made of these, so a body listing one dataset thousands of times costs no more pairs.
    """
    sides: dict[tuple[str, str], _Side] = {}
    for i, d in enumerate(datasets):
        where = f"{key}[{i}]"
        found = mapping.find(d["namespace"], d["name"])
        if found is None:
            unknown.append(f"{d['namespace']}/{d['name']}")
            continue
        tagged = set(_tags(d, where))
        for category in tagged:
            try:
                validator.taxonomy.category(f"{where}: {TAG_KEY}", category)
            except InvalidEventError as exc:
                raise RequestError(400, [str(exc)]) from None
        first = sides.get((found.namespace, found.name))
        held = tagged | set(found.categories) | (first.categories if first else set())
        sides[(found.namespace, found.name)] = _Side(first.where if first else where, found, frozenset(held))
    return list(sides.values())


def _tags(dataset: Mapping[str, Any], where: str) -> Iterator[str]:
    """The values of the dataset's ``lineage.category`` tags: the tags facet, and the schema's fields."""
    facets = dataset.get("facets") or {}
    if not isinstance(facets, dict):
        raise RequestError(400, [f"{where}.facets: must be an object"])
    tags = facets.get("tags") or {}
    yield from _tag_values(tags.get("tags") if isinstance(tags, dict) else tags, f"{where}.facets.tags.tags")
    schema = facets.get("schema") or {}
    stack = [(f"{where}.facets.schema.fields", schema.get("fields") if isinstance(schema, dict) else schema)]
    while stack:
        path, fields = stack.pop()
        if fields is None:
            continue
        if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
            raise RequestError(400, [f"{path}: must be a list of field objects"])
        for n, f in enumerate(fields):
            yield from _tag_values(f.get("tags"), f"{path}[{n}].tags")
            stack.append((f"{path}[{n}].fields", f.get("fields")))


def _tag_values(tags: object, path: str) -> Iterator[str]:
    if tags is None:
        return
    if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
        raise RequestError(400, [f"{path}: must be a list of tags ({{\"key\": ..., \"value\": ...}})"])
    for n, tag in enumerate(tags):
        if tag.get("key") == TAG_KEY:
            value = tag.get("value")
            if not isinstance(value, str):
                raise RequestError(400, [f"{path}[{n}].value: a {TAG_KEY} tag's value must be a category key"])
            yield value


def _carried(sent: frozenset[str], received: frozenset[str]) -> list[str]:
    """What a flow carries: the categories both ends hold, the narrower key where one covers the other."""
    if not received:
        return sorted(sent)
    both = {b for a in sent for b in received if covers(a, b)} | {a for a in sent for b in received if covers(b, a)}
    return sorted(both)


def _flow(run_id: str, at: datetime, source: _Side, target: _Side, validator: Validator) -> PersonalDataEvent | None:
    sender, recipient = source.dataset.holder, target.dataset.holder
    if sender == recipient:
        return None  # a copy within one holder moves nothing between holders
    categories = _carried(source.categories, target.categories)
    if not categories:
        return None
    crossing = crosses_border(validator.taxonomy, sender.region, recipient.region)
    pair = "\n".join((run_id, source.dataset.namespace, source.dataset.name, target.dataset.namespace,
                      target.dataset.name))  # fmt: skip
    record = make_record(
        "TRANSFERRED" if crossing else "SHARED",
        system=sender.name,
        system_region=sender.region,
        event_id=str(uuid.uuid5(_IDS, pair)),
        occurred_at=at,
        bulk_as_of=at,
        categories=categories,
        holder=sender,
        recipient=recipient,
        purpose=target.dataset.purpose,
        transfer_kind="CROSS_BORDER" if crossing else None,
        mechanism=target.dataset.mechanism if crossing else None,
    )
    try:
        validator.check(record)
    except InvalidEventError as exc:  # the mapping lacks what the contract asks (a mechanism, say)
        raise RequestError(422, [f"{source.where} to {target.where}: {exc}; complete the mapping"]) from None
    return from_record(record)


class Counters:
    """What the OpenLineage door did since start, for ``/health``; each unknown dataset logged once.

    Unknown names are remembered by digest (a name may be as long as a body), up to ``_MAX_NAMES``
    of them; past that, every unknown dataset seen is counted and none is named.
    """

    def __init__(self) -> None:
        """Start from zero."""
        self._lock = threading.Lock()
        self.runs = 0  # run events that made flow events
        self.flows = 0  # flow events made
        self.ignored = 0  # run events that made none (not COMPLETE, no personal data)
        self.unknown = 0  # distinct dataset names the mapping lacks
        self._seen: set[bytes] = set()

    def count(self, reading: RunReading) -> None:
        """Count one run event read; log each dataset name the mapping lacks the first time it is seen."""
        with self._lock:
            if reading.ignored is None:
                self.runs += 1
                self.flows += len(reading.events)
            else:
                self.ignored += 1
            for name in reading.unknown:
                digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
                if digest in self._seen:
                    continue
                self.unknown += 1
                if len(self._seen) < _MAX_NAMES:
                    self._seen.add(digest)
                    _log.warning("unknown dataset %s: not in the OpenLineage mapping; its flows are not recorded",
                                 shown(name))  # fmt: skip
                elif len(self._seen) == _MAX_NAMES:
                    self._seen.add(b"")  # so this is said once
                    _log.warning("more than %d unknown datasets: counted from now on, no longer named", _MAX_NAMES)

    def as_json(self) -> dict[str, int]:
        """The counts."""
        with self._lock:
            return {"runs": self.runs, "flows": self.flows, "ignored": self.ignored, "unknown_datasets": self.unknown}
