"""Access requests, breach impact and erasure plans: exact against the reference, and bad inputs."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lineage import InvalidEventError, Party, UnknownValueError, default_taxonomy
from lineage.answers import access_request, breach_impact, erasure_plan, transfers_register
from lineage.answers.rows import TransferRow
from lineage.contract.law import PIPL_ZONE, pipl_tier
from lineage.contract.records import Record, make_record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.present.reports import access_document
from lineage.store import Store, StoreLocation
from tests import reference
from tests.fixtures import (
    EXTERNAL,
    HISTORY_T0,
    INTERNAL,
    MAX_RETENTION_DAYS,
    examples,
    histories,
    micros,
    store_of,
)

TAX = default_taxonomy()


def _at(minute: int) -> datetime:
    return HISTORY_T0 + timedelta(minutes=minute)


@settings(max_examples=examples(40))
@given(histories(), st.sampled_from(["s1", "s2", "dev-1", "mail-1"]), st.integers(0, 35), st.booleans())
def test_access_request_matches_the_reference(records: list[Record], identifier: str, minute: int, then: bool) -> None:
    """What is held, by category and holder, follows identifier links (known now, or then) and --as-of exactly."""
    as_of = _at(minute)
    ids = reference.identifiers(records, identifier, micros(as_of) if then else None)
    expected: dict[tuple[str, str], bool] = {}
    for _s, c, h, _, _, ended in reference.holdings(records, ids, micros(as_of) or 0):
        expected[(c, h)] = expected.get((c, h), False) or ended is None
    with tempfile.TemporaryDirectory() as folder:
        report = access_request(store_of(records, Path(folder)), identifier, TAX, as_of, links_as_known_then=then)
    assert {(r["category"], r["holder"]): r["still_held"] for r in report.holdings} == expected
    assert report.identifiers == sorted(ids)


@settings(max_examples=examples(40))
@given(histories(), st.data(), st.integers(0, 35), st.integers(0, 10))
def test_breach_impact_matches_the_reference(
    records: list[Record], data: st.DataObject, start: int, length: int
) -> None:
    """Affected (subject, category) pairs: reached a node by T2 over chained hops, not erased before T1."""
    t1, t2 = _at(start), _at(start + length)
    with tempfile.TemporaryDirectory() as folder:
        store = store_of(records, Path(folder))
        known = sorted(r["name"] for r in store.rows("holders"))
        nodes = data.draw(st.lists(st.sampled_from(known), min_size=1, max_size=2, unique=True))
        report = breach_impact(store, nodes, t1, t2, TAX)
    expected = reference.breach(records, set(nodes), micros(t1) or 0, micros(t2) or 0)
    assert {(r["subject"], r["category"]) for r in report.records} == expected
    assert report.subjects == len({s for s, _ in expected})


def _two_hop_store(folder: Path) -> Store:
    """A subject in the EEA and a child in CN, exported nightly app -> crm -> ads (two bulk hops)."""
    party = {
        n: Party(name=n, role="internal" if n in INTERNAL else "processor", region="CN") for n in INTERNAL + EXTERNAL
    }

    def rec(kind: str, minute: int, holder: str, **fields: object) -> Record:
        return make_record(
            kind, system="app", system_region="CN", occurred_at=_at(minute), holder=party[holder], **fields
        )

    collect = {"purpose": "essential.service", "legal_basis": "CONSENT"}
    records = [
        rec("COLLECTED", 0, "app", subject_id="eu-1", subject_jurisdiction="DE", categories=["user.contact.email"],
            **collect),
        rec("COLLECTED", 1, "app", subject_id="kid-1", subject_jurisdiction="CN", age_band="CHILD_UNDER_14",
            categories=["user.contact.email", "user.location.precise"], linked_subject_ids=["dev-9"], **collect),
        rec("SHARED", 3, "app", subject_id=None, bulk_as_of=_at(2), categories=["user.contact", "user.location"],
            purpose="essential.service", recipient=party["crm"]),
        rec("SHARED", 5, "crm", subject_id=None, bulk_as_of=_at(4), categories=["user.contact"],
            purpose="essential.service", recipient=party["ads"]),
        rec("ERASED", 10, "ads", subject_id="eu-1", categories=["user.contact"], erasure_outcome="ERASED"),
        rec("ERASED", 11, "crm", subject_id="kid-1", categories=["user.contact.email"], erasure_outcome="HOLD",
            hold_reason="litigation hold"),
    ]  # fmt: skip
    return store_of(records, folder)


def test_breach_report_counts_and_notifications(tmp_path: Path) -> None:
    """A two-hop breach at 'ads' finds both subjects, the minor, and GDPR and PIPL duties with due times."""
    store = _two_hop_store(tmp_path)
    aware = _at(60)
    report = breach_impact(store, ["ads"], _at(6), _at(20), TAX, aware_at=aware)
    assert {(r["subject"], r["category"]) for r in report.records} == {("eu-1", "user.contact.email"),
                                                                        ("kid-1", "user.contact.email")}  # fmt: skip
    assert report.subjects == 2 and report.minors == 1 and report.by_jurisdiction == {"CN": 1, "DE": 1}
    plan = {n.regime: n for n in report.notifications}
    assert plan["GDPR"].applies and plan["GDPR"].due_by == aware + timedelta(hours=72)
    assert plan["PIPL"].applies and plan["PIPL"].due_by == aware and "Art. 57" in plan["PIPL"].rule
    assert not plan["PDPA-SG"].applies and not plan["California"].applies
    # erased at ads (minute 10) before the window opens at minute 11: eu-1 is out
    later = breach_impact(store, ["ads"], _at(11), _at(20), TAX, aware_at=aware)
    assert {r["subject"] for r in later.records} == {"kid-1"}


def test_access_request_follows_linked_identifiers(tmp_path: Path) -> None:
    """A request on a device id covers the account it is linked to, with recipients and jurisdiction."""
    store = _two_hop_store(tmp_path)
    report = access_request(store, "dev-9", TAX, as_of=_at(20))
    assert report.identifiers == ["dev-9", "kid-1"] and report.jurisdiction == "CN"
    assert report.age_band == "CHILD_UNDER_14"
    held = {(r["category"], r["holder"]) for r in report.holdings}
    assert ("user.location.precise", "crm") in held and ("user.contact.email", "ads") in held
    assert {r["recipient"] for r in report.recipients} == {"crm", "ads"}
    before = access_request(store, "dev-9", TAX, as_of=_at(0))
    assert not before.holds_data


def test_access_as_of_uses_links_known_now_unless_asked_for_then(tmp_path: Path) -> None:
    """A link learned later covers data held before it by default; --links-as-known-then keeps the audit view."""
    store = _two_hop_store(tmp_path)  # eu-1's e-mail collected at app at minute 0
    later_app = Party(name="app", role="internal", region="CN")
    link = make_record("COLLECTED", system="app", system_region="CN", occurred_at=_at(30), holder=later_app,
                       subject_id="dev-7", linked_subject_ids=["eu-1"], categories=["user.device.device_id"],
                       purpose="essential.service", legal_basis="CONSENT")  # fmt: skip
    ing = Ingestor(tmp_path, "late", taxonomy=TAX)
    assert ing.add_record(0, 0, link) is None
    ing.flush()
    HoldingsMaintainer(StoreLocation.embedded(tmp_path)).refresh()
    now = access_request(store, "dev-7", TAX, as_of=_at(5))
    assert now.identifiers == ["dev-7", "eu-1"] and ("user.contact.email", "app") in {
        (r["category"], r["holder"]) for r in now.holdings
    }
    then = access_request(store, "dev-7", TAX, as_of=_at(5), links_as_known_then=True)
    assert then.identifiers == ["dev-7"] and not then.holds_data and then.links == "as known then"
    assert access_document(now)[1]["identifier_links"].startswith("known now")
    assert access_document(then)[1]["identifier_links"].startswith("as known then")
    assert {h["holder"] for h in erasure_plan(store, "dev-7", TAX, as_of=_at(5)).holders} == {"app", "crm", "ads"}
    assert erasure_plan(store, "dev-7", TAX, as_of=_at(5), links_as_known_then=True).holders == []
    cli_now = _cli(tmp_path, "access", "dev-7", "--as-of", _at(5).isoformat())
    cli_then = _cli(tmp_path, "access", "dev-7", "--as-of", _at(5).isoformat(), "--links-as-known-then")
    assert cli_now.returncode == 0 and "eu-1" in cli_now.stdout and "known now" in cli_now.stdout, cli_now.stderr
    assert cli_then.returncode == 0 and "No data held" in cli_then.stdout, cli_then.stderr


def test_erasure_plan_statuses(tmp_path: Path) -> None:
    """Done where erased, on hold where a hold covers what is kept, pending elsewhere; recipients are told."""
    store = _two_hop_store(tmp_path)
    eu = {h["holder"]: h for h in erasure_plan(store, "eu-1", TAX, as_of=_at(20)).holders}
    assert eu["ads"]["status"] == "done" and eu["crm"]["status"] == "pending"
    assert eu["ads"]["action"].startswith("tell the recipient")
    kid = {h["holder"]: h for h in erasure_plan(store, "kid-1", TAX, as_of=_at(20)).holders}
    assert kid["crm"]["status"] == "pending"  # the hold covers the e-mail, not the location also kept there
    assert kid["ads"]["status"] == "pending"


def test_unknown_subject_is_no_data_not_an_error(tmp_path: Path) -> None:
    """An identifier nobody emitted gives an empty report, and the CLI says 'No data held'."""
    store = _two_hop_store(tmp_path)
    assert not access_request(store, "nobody", TAX).holds_data
    out = _cli(tmp_path, "access", "nobody")
    assert out.returncode == 0 and "No data held about 'nobody'" in out.stdout


def test_identifier_with_quotes_and_sql_is_harmless(tmp_path: Path) -> None:
    """An identifier holding quotes and SQL is a bound parameter: no data, and the store is intact."""
    store = _two_hop_store(tmp_path)
    evil = "x'); DROP TABLE events; SELECT ('"
    assert not access_request(store, evil, TAX).holds_data
    assert not erasure_plan(store, evil, TAX).holders
    assert store.count() == 6


def test_bad_breach_inputs(tmp_path: Path) -> None:
    """An unknown node suggests close names; T1 after T2 and naive times are refused naming the option."""
    store = _two_hop_store(tmp_path)
    with pytest.raises(UnknownValueError, match="did you mean 'ads'"):
        breach_impact(store, ["adds"], _at(0), _at(1), TAX)
    with pytest.raises(InvalidEventError, match="from=.*is after"):
        breach_impact(store, ["ads"], _at(5), _at(1), TAX)
    out = _cli(tmp_path, "breach", "--node", "ads", "--from", "yesterday", "--to", "2026-01-02T00:00:00Z")
    assert out.returncode == 2 and "--from='yesterday'" in out.stderr
    out = _cli(tmp_path, "breach", "--node", "ads", "--from", "2026-01-01T00:00:00", "--to", "2026-01-02T00:00:00Z")
    assert out.returncode == 2 and "needs a UTC offset" in out.stderr


def test_breach_cli_writes_the_affected_subjects_privately(tmp_path: Path) -> None:
    """`lineage breach --subjects-out` writes one CSV row per affected record, file mode 0600."""
    _two_hop_store(tmp_path)
    target = tmp_path / "affected.csv"
    out = _cli(tmp_path, "breach", "--node", "ads", "--from", _at(6).isoformat(), "--to", _at(20).isoformat(),
               "--subjects-out", str(target), "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert '"subjects": 2' in out.stdout and '"regime": "PIPL"' in out.stdout
    lines = target.read_text().splitlines()
    assert lines[0].startswith("subject,jurisdiction") and len(lines) == 3
    assert (target.stat().st_mode & 0o777) == 0o600


def _cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lineage.cli", *args, "--store", str(store)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_markdown_access_report_names_the_sections(tmp_path: Path) -> None:
    """The Markdown access report has the sections an analyst sends: data held, recipients, consent, erasures."""
    _two_hop_store(tmp_path)
    out = _cli(tmp_path, "access", "kid-1", "--as-of", _at(20).isoformat())
    assert out.returncode == 0, out.stderr
    for heading in ("## Data held", "## Recipients", "## Consent history", "## Erasures", "not legal advice"):
        assert heading in out.stdout
    assert datetime.now(UTC).year >= 2026


def test_transfers_register_counts_individuals_and_flags_weak_mechanisms(tmp_path: Path) -> None:
    """Cross-border flows are listed with their individuals; a volume exemption with sensitive data is flagged.

    A CN->HK transfer and a bulk CN->SG export; the in-zone share to an SMS vendor is not listed.
    """
    app = Party(name="app", role="internal", region="CN")

    def rec(kind: str, minute: int, **fields: object) -> Record:
        return make_record(kind, system="app", system_region="CN", occurred_at=_at(minute), holder=app, **fields)

    records = [
        rec("COLLECTED", 0, subject_id="a", categories=["user.contact.email", "user.location.precise"],
            purpose="essential.service", legal_basis="CONTRACT"),
        rec("COLLECTED", 0, subject_id="b", categories=["user.contact.email"], purpose="essential.service",
            legal_basis="CONTRACT"),
        rec("TRANSFERRED", 1, subject_id="a", categories=["user.contact.email"], purpose="essential.service",
            recipient=Party(name="hk-chat", role="affiliate", region="HK"), mechanism="gba.standard_contract",
            transfer_kind="CROSS_BORDER"),
        rec("TRANSFERRED", 2, subject_id=None, bulk_as_of=_at(1), categories=["user"], purpose="analytics.reporting",
            recipient=Party(name="sg-bi", role="processor", region="SG"), mechanism="pipl.exemption.volume",
            transfer_kind="CROSS_BORDER"),
        rec("SHARED", 3, subject_id="b", categories=["user.contact.email"], purpose="essential.service",
            recipient=Party(name="sms", role="processor", region="CN")),
    ]  # fmt: skip
    rows = {r["recipient"]: r for r in transfers_register(store_of(records, tmp_path), TAX, as_of=_at(10))}
    assert set(rows) == {"hk-chat", "sg-bi"}
    assert rows["sg-bi"]["individuals"] == 2 and rows["sg-bi"]["sensitive_individuals"] == 1
    assert rows["hk-chat"]["individuals"] == 1 and rows["hk-chat"]["flag"] == ""
    assert rows["sg-bi"]["pipl_year_individuals"] == 2 and rows["sg-bi"]["pipl_tier"].startswith("standard contract")
    assert "pipl.exemption.volume is weaker" in rows["sg-bi"]["flag"] and "CAC Provisions" in rows["sg-bi"]["flag"]


def test_retention_register_lists_only_overdue_data_still_held(tmp_path: Path) -> None:
    """Data kept past its retention days is listed; erased data and data still within its period are not."""
    app = Party(name="app", role="internal", region="CN")

    def rec(kind: str, minute: int, **fields: object) -> Record:
        return make_record(kind, system="app", system_region="CN", occurred_at=_at(minute), holder=app, **fields)

    collect = {"purpose": "essential.service", "legal_basis": "CONTRACT", "retention_days": 180}
    records = [
        rec("COLLECTED", 0, subject_id="a", categories=["user.behavior.access_log"], **collect),
        rec("COLLECTED", 0, subject_id="b", categories=["user.behavior.access_log"], **collect),
        rec("ERASED", 5, subject_id="b", categories=["user.behavior"], erasure_outcome="ANONYMISED"),
        rec("COLLECTED", 0, subject_id="c", categories=["user.contact.email"], **{**collect, "retention_days": 365}),
    ]
    from lineage.answers import retention_register

    store = store_of(records, tmp_path)
    [row] = retention_register(store, now=_at(0) + timedelta(days=200))
    assert (row["holder"], row["category"], row["subjects"]) == ("app", "user.behavior.access_log", 1)
    assert row["overdue_since"] == _at(0) + timedelta(days=180)
    assert retention_register(store, now=_at(0) + timedelta(days=100)) == []


def _on_hold_history() -> list[Record]:
    """s1's e-mail kept at app under a hold, and shared to pay, which erased it: on hold, done."""
    party = {n: Party(name=n, role="internal" if n in INTERNAL else "processor", region="CN") for n in ("app", "pay")}

    def rec(kind: str, minute: int, holder: str, **fields: object) -> Record:
        return make_record(kind, system="app", system_region="CN", occurred_at=_at(minute), holder=party[holder],
                           subject_id="s1", categories=["user.contact.email"], **fields)  # fmt: skip

    return [
        rec("COLLECTED", 0, "app", purpose="essential.service", legal_basis="CONTRACT"),
        rec("SHARED", 1, "app", purpose="essential.service", recipient=party["pay"]),
        rec("ERASED", 2, "pay", erasure_outcome="ERASED"),
        rec("ERASED", 3, "app", erasure_outcome="HOLD", hold_reason="tax law"),
    ]


@settings(max_examples=examples(60))
@example(_on_hold_history(), "s1", 10, False)
@given(histories(), st.sampled_from(["s1", "s2", "dev-1"]), st.integers(0, 35), st.booleans())
def test_erasure_plan_matches_the_reference(records: list[Record], identifier: str, minute: int, then: bool) -> None:
    """Every holder that ever held the subject's data (links known now, or then), with its status, exactly."""
    as_of = _at(minute)
    expected = reference.erasure_plan(records, identifier, micros(as_of) or 0, links_as_known_then=then)
    with tempfile.TemporaryDirectory() as folder:
        plan = erasure_plan(store_of(records, Path(folder)), identifier, TAX, as_of, links_as_known_then=then)
    assert {h["holder"]: (h["status"], frozenset(h["still_held"])) for h in plan.holders} == expected


# one category per regime flag: only GDPR-special, only CPRA-sensitive, only PIPL-sensitive, all three
BY_REGIME = {
    "gdpr_special": "user.demographic.political_opinion",
    "cpra_sensitive": "user.demographic.citizenship_or_immigration_status",
    "pipl_sensitive": "user.criminal_history",
    "all": "user.health",
}


@st.composite
def _sensitive_histories(draw: st.DrawFn) -> list[Record]:
    """Random histories whose phone numbers and device ids may be categories sensitive under some regimes."""
    records = draw(histories())
    phone = draw(st.sampled_from(["user.contact.phone_number", *BY_REGIME.values()]))
    device = draw(st.sampled_from(["user.device.device_id", *(c for c in BY_REGIME.values() if c != phone)]))
    swap = {"user.contact.phone_number": phone, "user.device.device_id": device}
    return [{**r, "categories": [swap.get(c, c) for c in r["categories"]]} for r in records]


def _transfer_history(category: str, to: Party, mechanism: str) -> list[Record]:
    """Subject a's ``category`` and subject b's e-mail collected in CN, then both transferred to ``to``."""
    app = Party(name="app", role="internal", region="CN")

    def rec(kind: str, minute: int, subject: str, categories: list[str], **fields: object) -> Record:
        return make_record(kind, system="app", system_region="CN", occurred_at=_at(minute), holder=app,
                           subject_id=subject, categories=categories, purpose="essential.service",
                           **fields)  # fmt: skip

    return [
        rec("COLLECTED", 0, "a", [category], legal_basis="CONTRACT"),
        rec("COLLECTED", 0, "b", ["user.contact.email"], legal_basis="CONTRACT"),
        rec("TRANSFERRED", 1, "a", [category], recipient=to, mechanism=mechanism, transfer_kind="CROSS_BORDER"),
        rec("TRANSFERRED", 1, "b", ["user.contact.email"], recipient=to, mechanism=mechanism,
            transfer_kind="CROSS_BORDER"),
    ]  # fmt: skip


def _expected_transfers(records: list[Record], as_of: datetime) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The reference register: per route its counts, PIPL's year counts, and the tier they ask for."""
    zones = {k: r.zone for k, r in TAX.regions.items()}
    sensitive = {k for k, c in TAX.categories.items() if c.sensitive}
    pipl = {k for k, c in TAX.categories.items() if c.pipl_sensitive}
    found = reference.transfers(records, micros(as_of) or 0, zones, sensitive, pipl, PIPL_ZONE)
    return {k: (*v, None if v[2] is None else pipl_tier(v[2], v[3] or 0)) for k, v in found.items()}


def _register(rows: list[TransferRow]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {
        (r["year"], r["from_region"], r["to_region"], r["recipient"], r["mechanism"]): (
            r["individuals"],
            r["sensitive_individuals"],
            r["pipl_year_individuals"],
            r["pipl_year_sensitive_individuals"],
            r["pipl_tier"],
        )
        for r in rows
    }


@settings(max_examples=examples(30))
@example(_transfer_history(BY_REGIME["gdpr_special"], Party(name="hk", role="processor", region="HK"),
                           "gba.standard_contract"), 10)  # fmt: skip
@given(_sensitive_histories(), st.integers(0, 35))
def test_transfers_register_matches_the_reference(records: list[Record], minute: int) -> None:
    """Cross-border flows (CN <-> HK here), subject-level and bulk, with individuals per year and PIPL tier, exactly."""
    as_of = _at(minute)
    with tempfile.TemporaryDirectory() as folder:
        rows = transfers_register(store_of(records, Path(folder)), TAX, as_of)
    assert _register(rows) == _expected_transfers(records, as_of)


EXEMPT = "exempt (under 100,000 individuals, no sensitive data)"
CONTRACT = "standard contract or certification"


@pytest.mark.parametrize(
    ("flag", "any_regime", "pipl", "tier"),
    [
        ("gdpr_special", 1, 0, EXEMPT),
        ("cpra_sensitive", 1, 0, EXEMPT),
        ("pipl_sensitive", 1, 1, CONTRACT),
        ("all", 1, 1, CONTRACT),
    ],
)
def test_pipl_tier_counts_only_pipl_sensitive_data(
    flag: str, any_regime: int, pipl: int, tier: str, tmp_path: Path
) -> None:
    """A CN -> US transfer's PIPL tier counts PIPL-sensitive data only; the route counts any regime's."""
    records = _transfer_history(BY_REGIME[flag], Party(name="us-cloud", role="processor", region="US"),
                                "pipl.exemption.volume")  # fmt: skip
    [row] = transfers_register(store_of(records, tmp_path), TAX, as_of=_at(10))
    route = (row["from_region"], row["to_region"], row["individuals"], row["sensitive_individuals"])
    assert route == ("CN", "US", 2, any_regime)
    assert (row["pipl_year_individuals"], row["pipl_year_sensitive_individuals"], row["pipl_tier"]) == (2, pipl, tier)
    assert ("pipl.exemption.volume is weaker" in row["flag"]) == (tier == CONTRACT)
    assert _register([row]) == _expected_transfers(records, _at(10))


def test_pipl_year_counts_what_leaves_the_zone_law_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PIPL year counts flows leaving the zone lineage.contract.law names, not a zone written in the SQL."""
    import lineage.answers.registers as registers

    records = _transfer_history(BY_REGIME["pipl_sensitive"], Party(name="us-cloud", role="processor", region="US"),
                                "pipl.standard_contract")  # fmt: skip
    store = store_of(records, tmp_path)
    monkeypatch.setattr(registers, "PIPL_ZONE", "US")
    [row] = transfers_register(store, TAX, as_of=_at(10))
    assert (row["from_region"], row["pipl_year_individuals"], row["pipl_tier"]) == ("CN", None, None)


@settings(max_examples=examples(30))
@given(histories(), st.integers(0, 3 * 24 * 60))
def test_retention_register_matches_the_reference(records: list[Record], minute: int) -> None:
    """Data held past the retention its arrival declared, by holder and category, exactly."""
    from lineage.answers import retention_register

    now = _at(minute)
    expected = reference.retention(records, micros(now) or 0)
    with tempfile.TemporaryDirectory() as folder:
        rows = retention_register(store_of(records, Path(folder)), now)
    assert {(r["holder"], r["category"]): (r["subjects"], micros(r["overdue_since"])) for r in rows} == expected


def test_retention_past_the_representable_range_is_never_due(tmp_path: Path) -> None:
    """A retention of 2^31-1 days (the contract's maximum) breaks no answer: never due, shown as such."""
    from lineage.answers import retention_register
    from lineage.answers.rows import RETENTION_NEVER
    from lineage.present.reports import access_document

    app = Party(name="app", role="internal", region="CN")
    records = [
        make_record("COLLECTED", system="app", system_region="CN", occurred_at=_at(0), holder=app, subject_id="a",
                    categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                    retention_days=MAX_RETENTION_DAYS),
    ]  # fmt: skip
    store = store_of(records, tmp_path)
    assert retention_register(store, now=_at(0) + timedelta(days=365 * 100)) == []
    report = access_request(store, "a", TAX, as_of=_at(5))
    [held] = report.holdings
    assert held["retention_days"] == MAX_RETENTION_DAYS and held["retention_ends"] == RETENTION_NEVER
    _title, _facts, tables = access_document(report)
    assert "never" in str(tables["data_held"][0]["retention_ends"])
    out = _cli(tmp_path, "access", "a", "--as-of", _at(5).isoformat())
    assert out.returncode == 0 and "never" in out.stdout, out.stderr


def test_an_event_stored_twice_is_listed_once(tmp_path: Path) -> None:
    """A resent event (at-least-once delivery) stored twice before compaction shows once in an access report."""
    consent = make_record(
        "CONSENT",
        system="web",
        system_region="CN",
        subject_id="u1",
        categories=["user.contact.email"],
        purpose="essential.service",
        consent_status="GRANTED",
        consent_kind="GENERAL",
        occurred_at=_at(1),
    )
    erased = make_record("ERASED", system="web", system_region="CN", subject_id="u1", categories=["user.contact.email"],
                         erasure_outcome="ERASED", occurred_at=_at(2))  # fmt: skip
    store = store_of([consent, erased, dict(consent), dict(erased)], tmp_path / "store")
    report = access_request(store, "u1", TAX, _at(3))
    assert len(report.consents) == 1 and len(report.erasures) == 1
