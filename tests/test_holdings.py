"""The holdings macro (multi-hop, time-respecting, with erasures) matches the brute-force reference."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lineage import Codec, Party, default_taxonomy
from lineage.contract.records import Record, make_record
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store
from tests import reference

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SUBJECTS = ["s1", "s2", "s3"]
INTERNAL = ["app", "crm"]
EXTERNAL = ["pay", "ads", "hk"]
CATEGORIES = ["user.contact", "user.contact.email", "user.contact.phone_number", "user.device.device_id"]
PARTY = {
    name: Party(name=name, role="internal" if name in INTERNAL else "processor", region="HK" if name == "hk" else "CN")
    for name in INTERNAL + EXTERNAL
}


def _flow(holder: Party, recipient: Party) -> dict[str, Any]:
    """What a flow between two parties needs: a mechanism when it leaves the holder's zone."""
    crossing = (holder.region == "HK") != (recipient.region == "HK")
    return {"mechanism": "gba.standard_contract"} if crossing else {}


def _at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


@st.composite
def histories(draw: st.DrawFn) -> list[Record]:
    """Random small histories: collections, subject and bulk flows (chained), erasures, links."""
    records = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["collect", "collect", "share", "bulk", "bulk", "erase", "bulk_erase"]))
        minute = draw(st.integers(0, 30))
        cats = draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True))
        common: dict[str, Any] = {
            "system": "app",
            "system_region": "CN",
            "occurred_at": _at(minute),
            "categories": cats,
            "event_id": str(draw(st.uuids())),
        }
        holder = PARTY[draw(st.sampled_from(INTERNAL + EXTERNAL))]
        others = [p for n, p in PARTY.items() if n != holder.name]
        if kind == "collect":
            linked = draw(st.lists(st.sampled_from(["dev-1", "mail-1"]), max_size=1))
            records.append(
                make_record(
                    "COLLECTED",
                    subject_id=draw(st.sampled_from(SUBJECTS)),
                    holder=PARTY[draw(st.sampled_from(INTERNAL))],
                    purpose="essential.service",
                    legal_basis="CONTRACT",
                    linked_subject_ids=linked,
                    retention_days=draw(st.sampled_from([None, 0, 1])),
                    **common,
                )
            )
        elif kind == "share":
            recipient = draw(st.sampled_from(others))
            records.append(
                make_record(
                    "SHARED",
                    subject_id=draw(st.sampled_from(SUBJECTS)),
                    holder=holder,
                    recipient=recipient,
                    purpose="essential.service",
                    **_flow(holder, recipient),
                    **common,
                )
            )
        elif kind == "bulk":
            recipient = draw(st.sampled_from(others))
            records.append(
                make_record(
                    "TRANSFERRED",
                    subject_id=None,
                    bulk_as_of=_at(minute - draw(st.integers(0, 5))),
                    holder=holder,
                    recipient=recipient,
                    transfer_kind="CROSS_BORDER" if _flow(holder, recipient) else "CONTROLLER_CHANGE",
                    purpose="essential.service",
                    **_flow(holder, recipient),
                    **common,
                )
            )
        elif kind == "erase":
            records.append(
                make_record(
                    "ERASED",
                    subject_id=draw(st.sampled_from(SUBJECTS)),
                    holder=PARTY[draw(st.sampled_from(INTERNAL))],  # where collected data sits
                    erasure_outcome=draw(st.sampled_from(["ERASED", "ANONYMISED", "HOLD", "HOLD"])),
                    hold_reason="tax law",
                    **common,
                )
            )
        else:
            records.append(
                make_record(
                    "ERASED",
                    subject_id=None,
                    bulk_as_of=_at(minute - draw(st.integers(0, 5))),
                    holder=holder,
                    erasure_outcome="ERASED",
                    **common,
                )
            )
    return records


def _store(records: list[Record], folder: Path) -> Store:
    ing = Ingestor(folder, "events", taxonomy=default_taxonomy())
    codec = Codec()
    for offset, r in enumerate(records):
        assert ing.add(0, offset, codec.encode_record(r)) is None
    ing.flush()
    return Store(folder)


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@settings(max_examples=60, deadline=None)
@given(histories(), st.integers(0, 35))
def test_holdings_match_the_reference(records: list[Record], as_of_minute: int) -> None:
    """For random histories with chained bulk flows and erasures, SQL holdings equal the reference."""
    as_of = _at(as_of_minute)
    with tempfile.TemporaryDirectory() as folder:
        store = _store(records, Path(folder))
        with store.connect() as con:
            rows = con.sql("SELECT * FROM holdings(NULL, $as_of)", params={"as_of": as_of}).to_arrow_table().to_pylist()
    got = {
        (r["subject"], r["category"], r["holder"], _micros(r["arrived_at"]), r["via"], _micros(r["ended_at"]))
        for r in rows
    }
    assert got == reference.holdings(records, None, _micros(as_of) or 0)
