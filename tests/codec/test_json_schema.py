"""The contract as JSON Schema: generated from the newest .avsc, and the copy in docs/ kept up to date."""

from __future__ import annotations

import json
from pathlib import Path

from lineage.codec.json_schema import json_schema
from lineage.contract.records import FIELDS
from lineage.sdk.jsonlines import event_to_json
from tests.fixtures import sample_events

DOCS_COPY = Path(__file__).parents[2] / "docs" / "event.schema.json"


def test_the_docs_copy_is_the_generated_schema() -> None:
    """docs/event.schema.json is what `lineage gateway schema` prints today (regenerate it after a schema change)."""
    assert json.loads(DOCS_COPY.read_text(encoding="utf-8")) == json_schema()


def test_the_schema_has_every_field_and_requires_only_what_the_reader_cannot_fill() -> None:
    """Every event field is a property, no other is allowed, and only the four the reader cannot fill are required."""
    schema = json_schema()
    assert list(schema["properties"]) == list(FIELDS)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["event_type", "system", "system_region", "categories"]
    assert schema["$defs"]["Party"]["required"] == ["name", "role", "region"]
    assert schema["properties"]["recipient"]["anyOf"] == [{"type": "null"}, {"$ref": "#/$defs/Party"}]
    assert schema["properties"]["occurred_at"]["format"] == "date-time"


def test_every_sample_event_as_json_fits_the_schema_shape() -> None:
    """The JSON the reader takes back (event_to_json) uses only the schema's properties and its enum values."""
    schema = json_schema()
    for event in sample_events():
        as_json = event_to_json(event)
        assert set(as_json) <= set(schema["properties"])
        for name, prop in schema["properties"].items():
            value = as_json.get(name)
            options = prop.get("anyOf", [prop])
            enums = [o["enum"] for o in options if "enum" in o]
            if value is not None and enums:
                assert value in enums[0], (name, value)
