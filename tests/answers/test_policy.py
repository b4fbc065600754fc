"""Declared policies: each clause reports exactly the events that break it, and bad files are named."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from lineage import ConfigurationError, Party, UnknownValueError, default_taxonomy
from lineage.answers.policy_check import check
from lineage.contract.policy import load_policy
from lineage.contract.records import Record, make_record
from tests.fixtures import HISTORY_T0, store_of

TAX = default_taxonomy()
POLICY = """
[organisation]
name = "MoChat"
systems = ["chat", "im"]

[storage]
regions = ["HK"]

[transfers]
regions = ["HK", "CN"]

[[recipients]]
name = "crash-sdk"
role = "processor"

[[recipients]]
name = "pay-sdk"
role = "processor"

[[never_share]]
categories = ["user.government_id", "user.contact.phone_number"]
roles = ["processor", "third_party"]

[retention]
"user.behavior.access_log" = 180

[age]
minimum = 14

[consent]
purposes = ["marketing.communications.email"]
"""


def _history() -> tuple[list[Record], dict[str, tuple[str, ...]]]:
    """Compliant events plus one breach of each clause; returns records and the expected breaches."""
    chat = Party(name="chat", role="internal", region="HK")
    chat_cn = Party(name="im", role="internal", region="CN")
    crash = Party(name="crash-sdk", role="processor", region="CN")
    stranger = Party(name="ad-network", role="third_party", region="SG")

    def rec(kind: str, day: int, event_id: str, **fields: object) -> Record:
        return make_record(kind, system="chat", system_region="HK", occurred_at=HISTORY_T0 + timedelta(days=day),
                           event_id=event_id, **fields)  # fmt: skip

    collect = {"purpose": "essential.service", "legal_basis": "CONTRACT"}
    records = [
        rec("COLLECTED", 0, "00000000-0000-4000-8000-000000000001", subject_id="a", holder=chat,
            categories=["user.contact.email"], **collect),
        rec("COLLECTED", 0, "00000000-0000-4000-8000-000000000002", subject_id="b", holder=chat_cn,
            categories=["user.contact.email"], **collect),  # storage_region: CN, not HK
        rec("SHARED", 1, "00000000-0000-4000-8000-000000000003", subject_id="a", holder=chat, recipient=crash,
            categories=["user.device.device_id"], purpose="essential.service", mechanism="gba.standard_contract"),
        rec("SHARED", 1, "00000000-0000-4000-8000-000000000004", subject_id="a", holder=chat, recipient=crash,
            categories=["user.contact.phone_number"], purpose="essential.service",
            mechanism="gba.standard_contract"),  # never_share
        rec("SHARED", 2, "00000000-0000-4000-8000-000000000005", subject_id="a", holder=chat, recipient=stranger,
            categories=["user.contact.email"], purpose="essential.service",
            mechanism="contract.dpa"),  # recipient and transfer_region
        rec("COLLECTED", 3, "00000000-0000-4000-8000-000000000006", subject_id="kid", holder=chat,
            age_band="CHILD_UNDER_14", categories=["user.contact.email"], **collect),  # minimum_age
        rec("COLLECTED", 4, "00000000-0000-4000-8000-000000000007", subject_id="a", holder=chat,
            categories=["user.behavior.access_log"], **collect),  # retention: 180 days, judged at day 200
        rec("COLLECTED", 150, "00000000-0000-4000-8000-000000000008", subject_id="b", holder=chat,
            categories=["user.behavior.access_log"], **collect),  # within 180 days at day 200
        rec("CONSENT", 5, "00000000-0000-4000-8000-000000000009", subject_id="a", holder=chat,
            categories=["user.contact.email"], purpose="marketing.communications.email",
            consent_status="GRANTED", consent_kind="GENERAL"),
        rec("COLLECTED", 6, "00000000-0000-4000-8000-00000000000a", subject_id="a", holder=chat,
            categories=["user.contact.email"], purpose="marketing.communications.email",
            legal_basis="CONSENT"),  # consented: fine
        rec("COLLECTED", 6, "00000000-0000-4000-8000-00000000000b", subject_id="b", holder=chat,
            categories=["user.contact.email"], purpose="marketing.communications.email",
            legal_basis="CONSENT"),  # consent: b never consented
    ]  # fmt: skip
    expected = {
        "storage_region": ("00000000-0000-4000-8000-000000000002",),
        "never_share": ("00000000-0000-4000-8000-000000000004",),
        "recipient": ("00000000-0000-4000-8000-000000000005",),
        "transfer_region": ("00000000-0000-4000-8000-000000000005",),
        "minimum_age": ("00000000-0000-4000-8000-000000000006",),
        "retention": ("00000000-0000-4000-8000-000000000007",),
        "consent": ("00000000-0000-4000-8000-00000000000b",),
    }
    return records, expected


def test_each_clause_reports_exactly_its_breach(tmp_path: Path) -> None:
    """One breach of each clause among compliant events: exactly those are reported, with the clause."""
    (tmp_path / "mochat.toml").write_text(POLICY)
    policy = load_policy(tmp_path / "mochat.toml", TAX)
    records, expected = _history()
    found = check(store_of(records, tmp_path / "store"), policy, now=HISTORY_T0 + timedelta(days=200))
    got: dict[str, tuple[str, ...]] = {}
    for v in found:
        got[v.clause] = (*got.get(v.clause, ()), v.event_id)
    assert got == expected
    assert all(v.detail for v in found)


def test_bad_policy_files_name_the_entry(tmp_path: Path) -> None:
    """A policy with an unknown region or category, or without its organisation, is refused naming it."""
    path = tmp_path / "p.toml"
    path.write_text(POLICY.replace('regions = ["HK"]', 'regions = ["Hongkong"]'))
    with pytest.raises(UnknownValueError, match="p.toml: region='Hongkong'"):
        load_policy(path, TAX)
    path.write_text(POLICY.replace('"user.behavior.access_log" = 180', '"user.logs" = 180'))
    with pytest.raises(UnknownValueError, match="category"):
        load_policy(path, TAX)
    path.write_text(POLICY.replace("[organisation]", "[org]"))
    with pytest.raises(ConfigurationError, match="p.toml: org: is not a policy key .*did you mean .organisation."):
        load_policy(path, TAX)


def test_the_seed_organisations_policies_load() -> None:
    """Every shipped policy file (one per seed organisation) parses and names only known taxonomy keys."""
    files = sorted((Path(__file__).parents[2] / "policies").glob("*.toml"))
    assert len(files) == 5
    names = {load_policy(f, TAX).name for f in files}
    assert len(names) == 5


def test_sql_prefilter_drops_no_breach(tmp_path: Path) -> None:
    """The per-event clauses find the same breaches on the prefiltered rows as on every event of the systems."""
    from lineage.answers.policy_check import _event_violations
    from lineage.ingest.pipeline import Ingestor
    from lineage.store import Store
    from lineage.testing import MemorySink
    from lineage.world.organisations import build
    from lineage.world.sim import WorldSize, emit

    size = WorldSize(subjects=40, days=300, seed=4, violations=3)
    plans, _ = build(size, TAX)
    sink = MemorySink()
    emit(plans, sink, TAX)
    ingestor = Ingestor(tmp_path, "events", taxonomy=TAX)
    for offset, message in enumerate(sink.messages):
        ingestor.add(0, offset, message.value)
    ingestor.flush()
    store = Store(tmp_path)
    columns = "event_id, event_type, holder_name, holder_region, recipient_name, recipient_role, recipient_region, "
    for p in plans:
        every = store.sql(
            f"SELECT {columns} categories, age_band FROM events "
            "WHERE list_contains($s, holder_name) OR list_contains($s, system)",
            {"s": list(p.policy.systems)},
        )
        unfiltered = sorted((v.clause, v.event_id) for e in every for v in _event_violations(e, p.policy))
        per_event = {"storage_region", "transfer_region", "recipient", "never_share", "minimum_age"}
        found = sorted((v.clause, v.event_id) for v in check(store, p.policy, size.end) if v.clause in per_event)
        assert unfiltered and found == unfiltered, p.org.key


def test_a_retention_clause_past_the_representable_range_breaks_nothing(tmp_path: Path) -> None:
    """A policy keeping a category for 2^31-1 days judges data as within it, instead of failing on the date."""
    (tmp_path / "p.toml").write_text(POLICY.replace('"user.behavior.access_log" = 180', '"user.behavior" = 2147483647'))
    policy = load_policy(tmp_path / "p.toml", TAX)
    records, _expected = _history()
    found = check(store_of(records, tmp_path / "store"), policy, now=HISTORY_T0 + timedelta(days=200))
    assert "retention" not in {v.clause for v in found} and found


def test_a_share_whose_categories_another_writer_left_null_is_judged_as_sharing_none(tmp_path: Path) -> None:
    """A row of NULL categories to a stranger abroad: its region and recipient breaches, no never_share, no failure."""
    import pyarrow as pa

    from lineage.codec import Codec
    from lineage.ingest.holdings import HoldingsMaintainer
    from lineage.ingest.pipeline import Ingestor
    from lineage.store import Store, StoreLocation
    from lineage.store.tables import COLUMNS

    (tmp_path / "mochat.toml").write_text(POLICY)
    policy = load_policy(tmp_path / "mochat.toml", TAX)
    records, _expected = _history()
    store_of(records, tmp_path / "store").close()
    row = {c.name: None for c in COLUMNS}
    row.update(event_id="ext-share", event_type="SHARED", occurred_at=HISTORY_T0 + timedelta(days=5), system="chat",
               system_region="HK", scope="SUBJECT", subject_id="ext", holder_name="chat", holder_role="internal",
               holder_region="HK", recipient_name="ad-network", recipient_role="third_party", recipient_region="SG",
               purpose="essential.service", legal_basis="CONTRACT", linked_subject_ids=[])  # fmt: skip
    location = StoreLocation.embedded(tmp_path / "store")
    location.load().append(pa.Table.from_pylist([row], schema=COLUMNS))
    ingestor = Ingestor(location, "events", taxonomy=TAX)  # readers follow the consumers' commits: one more
    assert ingestor.add(0, len(records), Codec().encode_record(records[0] | {"event_id": str(uuid.uuid4())})) is None
    ingestor.flush()
    HoldingsMaintainer(location).refresh()
    found = check(Store(tmp_path / "store"), policy, now=HISTORY_T0 + timedelta(days=200))
    assert sorted(v.clause for v in found if v.event_id == "ext-share") == ["recipient", "transfer_region"]
