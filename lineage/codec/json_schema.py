"""The event contract as JSON Schema (draft 2020-12), generated from the newest ``.avsc`` file.

It describes an event in the JSON shape that ``lineage emit`` and the HTTP gateway read
(``lineage.sdk.jsonlines``): times as ISO 8601 text with an offset, parties as objects, enum
values in upper or lower case. Fields the reader fills when absent (``event_id``, ``occurred_at``,
``scope``, ``holder``) are optional here. The schema says the shape; the taxonomy's rules (known
categories, a recipient on a share...) are checked by the same validation as the SDK's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lineage.codec.avro import Codec

__all__ = ["json_schema"]

# filled by the reader when absent (lineage.contract.records.make_record)
_FILLED = frozenset({"event_id", "occurred_at", "scope", "holder"})
_SCHEMA_ID = "https://lineage.invalid/schemas/personal_data_event.json"
_INT = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}


def json_schema(avsc: Path | None = None) -> dict[str, Any]:
    """The JSON Schema of one event, from ``avsc`` (default: the codec's current version)."""
    path = avsc or Codec().current.path
    record = json.loads(path.read_text(encoding="utf-8"))
    defs: dict[str, Any] = {}
    event = _record(record, defs)
    event["required"] = [f["name"] for f in record["fields"] if "default" not in f and f["name"] not in _FILLED]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _SCHEMA_ID,
        "title": record["name"],
        "description": f"{record.get('doc', '')} Generated from {path.name}.".strip(),
        **event,
        "$defs": defs,
    }


def _record(record: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in record["fields"]:
        prop = _type(f["type"], defs)
        if "doc" in f:
            prop = {"description": f["doc"], **prop}
        props[f["name"]] = prop
    return {
        "type": "object",
        "properties": props,
        "required": [f["name"] for f in record["fields"]],
        "additionalProperties": False,
    }


def _type(node: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node, list):  # a union: ["null", X] is an optional X
        options = [_type(n, defs) for n in node]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if isinstance(node, str):
        if node.startswith("lineage."):  # a named type declared earlier
            return {"$ref": f"#/$defs/{node.removeprefix('lineage.')}"}
        return dict(_PRIMITIVES[node])
    kind, logical = node["type"], node.get("logicalType")
    if logical == "timestamp-micros":
        return {"type": "string", "format": "date-time", "description": "ISO 8601 with an offset (or Z)"}
    if logical == "uuid":
        return {"type": "string", "format": "uuid"}
    if kind == "enum":
        symbols = node["symbols"]
        return {"enum": symbols + [s.lower() for s in symbols]}
    if kind == "array":
        return {"type": "array", "items": _type(node["items"], defs)}
    if kind == "record":
        defs[node["name"]] = _record(node, defs)
        return {"$ref": f"#/$defs/{node['name']}"}
    return _type(kind, defs)


_PRIMITIVES: dict[str, dict[str, Any]] = {
    "null": {"type": "null"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "int": _INT,
    "long": {"type": "integer"},
}
