"""The record of processing activities: each field and flag of a hand-made history, the reference, the CLI."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage import Party, default_taxonomy
from lineage.answers.ropa import EXAMPLES, ropa
from lineage.contract.law import ENTRUSTED_ROLES
from lineage.contract.records import Record, make_record
from lineage.errors import InvalidEventError
from lineage.store import Store
from tests import reference
from tests.fixtures import HISTORY_T0, examples, histories, micros, one_line_failure, run_cli, store_of

TAX = default_taxonomy()
APP = Party(name="app", role="internal", region="CN")
PAY = Party(name="pay", role="processor", region="CN")
SUB = Party(name="sub", role="sub_processor", region="CN")
GROUP = Party(name="group-co", role="affiliate", region="CN")
ADS_HK = Party(name="ads-hk", role="third_party", region="HK")
SHOP_HK = Party(name="shop-hk", role="internal", region="HK")
LATE = Party(name="late-co", role="controller", region="CN")
AS_OF = HISTORY_T0 + timedelta(minutes=30)
PAYMENT = "essential.service.payment_processing"
TARGETED = "marketing.advertising.third_party.targeted"


def _at(minute: int) -> datetime:
    return HISTORY_T0 + timedelta(minutes=minute)


def _rec(kind: str, minute: int, holder: Party, **fields: Any) -> Record:
    return make_record(kind, system=holder.name, system_region=holder.region, occurred_at=_at(minute), holder=holder,
                       event_id=f"00000000-0000-4000-8000-{minute:012d}", **fields)  # fmt: skip


def _history() -> list[Record]:
    """An adult in DE and a child in CN at app; a payment chain app > pay > sub; a bulk export to HK; HK > CN."""
    return [
        _rec("COLLECTED", 1, APP, subject_id="a1", subject_jurisdiction="DE", age_band="ADULT",
             categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
             retention_days=365),
        _rec("COLLECTED", 2, APP, subject_id="k1", subject_jurisdiction="CN", age_band="CHILD_UNDER_14",
             categories=["user.contact.email"], purpose="essential.service", legal_basis="CONSENT", retention_days=30),
        _rec("COLLECTED", 3, APP, subject_id="a1", categories=["user.location.precise"], purpose="essential.service",
             legal_basis="CONSENT"),
        _rec("SHARED", 4, APP, subject_id="k1", categories=["user.contact.email"], purpose=PAYMENT, recipient=PAY),
        _rec("SHARED", 5, PAY, subject_id="k1", categories=["user.contact.email"], purpose=PAYMENT, recipient=SUB),
        _rec("TRANSFERRED", 6, APP, subject_id=None, bulk_as_of=_at(6), categories=["user.contact"], purpose=TARGETED,
             recipient=ADS_HK, transfer_kind="CROSS_BORDER", mechanism="pipl.standard_contract"),
        _rec("SHARED", 7, APP, subject_id="a1", categories=["user.contact.email"],
             purpose="essential.service.operations.support", recipient=GROUP),
        _rec("COLLECTED", 8, SHOP_HK, subject_id="h1", subject_jurisdiction="HK", categories=["user.contact.email"],
             purpose="essential.service", legal_basis="CONTRACT"),
        _rec("SHARED", 9, SHOP_HK, subject_id="h1", categories=["user.contact.email"], purpose="essential.service",
             recipient=APP, mechanism="gba.standard_contract"),
        _rec("CONSENT", 10, APP, subject_id="a1", categories=["user.contact.email"], purpose="essential.service",
             consent_status="GRANTED", consent_kind="GENERAL"),
        _rec("SHARED", 40, APP, subject_id="a1", categories=["user.contact.email"], purpose="essential.service",
             recipient=LATE),  # after AS_OF
    ]  # fmt: skip


def _id(minute: int) -> str:
    return f"00000000-0000-4000-8000-{minute:012d}"


@pytest.fixture
def history_store(tmp_path: Path) -> Path:
    """The hand-made history in an embedded store."""
    store_of(_history(), tmp_path / "store")
    return tmp_path / "store"


def test_each_field_and_flag_of_a_hand_made_history(history_store: Path) -> None:
    """Every activity's Art. 30 fields and every PIPL Art. 55 flag, with the events and flows behind it."""
    record = ropa(Store(history_store), TAX, AS_OF)
    acts = {(a["controller"], a["purpose"]): a for a in record.activities}
    assert list(acts) == [("app", "essential.service"), ("app", "essential.service.operations.support"),
                          ("app", PAYMENT), ("app", TARGETED), ("pay", PAYMENT),
                          ("shop-hk", "essential.service")]  # fmt: skip
    service = acts[("app", "essential.service")]
    assert {k: v for k, v in service.items() if k not in ("first_seen", "last_seen")} == {
        "controller": "app", "purpose": "essential.service", "controller_roles": ["internal"],
        "controller_regions": ["CN"], "legal_bases": ["CONSENT", "CONTRACT"], "subjects": 2, "minors": 1,
        "children_under_14": 1, "subject_jurisdictions": ["CN", "DE"],
        "categories": ["user.contact.email", "user.location.precise"],
        "sensitive_categories": ["user.location.precise"],
        "recipients": [], "recipient_roles": [], "third_countries": [], "transfer_mechanisms": [],
        "retention_days": [30, 365], "events": 3, "bulk_events": 0, "impact_assessment": ["sensitive data"],
    }  # fmt: skip
    assert (service["first_seen"], service["last_seen"]) == (_at(1), _at(3))
    export = acts[("app", TARGETED)]
    assert export["subjects"] == 0 and export["bulk_events"] == 1 and export["recipients"] == ["ads-hk"]
    assert export["third_countries"] == ["HK"] and export["transfer_mechanisms"] == ["pipl.standard_contract"]
    assert export["impact_assessment"] == ["automated decision-making", "disclosure to other handlers",
                                           "transfer abroad"]  # fmt: skip
    assert acts[("app", PAYMENT)]["impact_assessment"] == ["sensitive data", "entrusted processing"]  # a child's data
    assert acts[("pay", PAYMENT)]["impact_assessment"] == ["sensitive data", "entrusted processing"]  # sub-processor
    assert acts[("pay", PAYMENT)]["controller_roles"] == ["processor"]
    support = acts[("app", "essential.service.operations.support")]
    assert support["impact_assessment"] == ["disclosure to other handlers"]  # an affiliate is another handler
    assert support["recipient_roles"] == ["affiliate"] and support["subject_jurisdictions"] == ["DE"]
    inbound = acts[("shop-hk", "essential.service")]  # HK to CN crosses a border but is not PIPL's "abroad"
    assert inbound["impact_assessment"] == [] and inbound["third_countries"] == ["CN"]
    assert inbound["transfer_mechanisms"] == ["gba.standard_contract"] and inbound["subject_jurisdictions"] == ["HK"]
    flags = {(f["controller"], f["purpose"], f["flag"]): f for f in record.assessments}
    assert len(flags) == 9
    sensitive = flags[("app", "essential.service", "sensitive data")]
    assert sensitive["events"] == 2 and sensitive["first_events"] == [_id(2), _id(3)]
    assert sensitive["flows"] == ["data subjects > app (internal, CN)"] and "Art. 55(1)" in sensitive["rule"]
    abroad = flags[("app", TARGETED, "transfer abroad")]
    assert abroad["flows"] == ["app > ads-hk (third_party, HK) under pipl.standard_contract"]
    assert abroad["first_events"] == [_id(6)] and "Art. 55(4)" in abroad["rule"]
    assert flags[("pay", PAYMENT, "entrusted processing")]["flows"] == ["pay > sub (sub_processor, CN)"]
    later = ropa(Store(history_store), TAX, _at(40))
    assert "late-co" in next(a for a in later.activities if a["purpose"] == "essential.service")["recipients"]


def test_a_flag_names_at_most_the_first_events(tmp_path: Path) -> None:
    """A flag behind many events counts them all and names the earliest few."""
    records = [_rec("COLLECTED", m, APP, subject_id=f"s{m}", categories=["user.location.precise"],
                    purpose="essential.service", legal_basis="CONSENT") for m in range(EXAMPLES + 5)]  # fmt: skip
    flag = ropa(store_of(records, tmp_path), TAX, AS_OF).assessments[0]
    assert flag["events"] == EXAMPLES + 5 and flag["first_events"] == [_id(m) for m in range(EXAMPLES)]


def test_a_naive_as_of_is_refused(history_store: Path) -> None:
    """An as_of without a zone is refused naming the field, not read in the machine's zone."""
    with pytest.raises(InvalidEventError, match="as_of"):
        ropa(Store(history_store), TAX, datetime(2026, 1, 1))  # noqa: DTZ001 - naive on purpose


ROLES = ["internal", "processor", "sub_processor", "controller", "third_party", "affiliate"]


@st.composite
def _varied_histories(draw: st.DrawFn) -> list[Record]:
    """Random histories with varied recipient roles, age bands, a sensitive category and a profiling purpose."""
    out = []
    for r in draw(histories()):
        r = dict(r)
        if r["recipient"] is not None:
            r["recipient"] = {**r["recipient"], "role": draw(st.sampled_from(ROLES))}
        if r["scope"] == "SUBJECT":
            r["age_band"] = draw(st.sampled_from(["UNKNOWN", "ADULT", "MINOR", "CHILD_UNDER_14"]))
        if draw(st.booleans()):
            r["categories"] = [*r["categories"], "user.location.precise"]
        if r["purpose"] is not None and draw(st.booleans()):
            r["purpose"] = "personalize.content.profiling"
        out.append(r)
    return out


@settings(max_examples=examples(40))
@given(_varied_histories(), st.integers(0, 35))
def test_ropa_matches_the_reference(records: list[Record], minute: int) -> None:
    """Activities, subjects, minors, recipients, third countries and each flag's events agree with plain Python."""
    as_of = _at(minute)
    zone_of = {k: r.zone for k, r in TAX.regions.items()}
    sensitive = {k for k, c in TAX.categories.items() if c.pipl_sensitive}
    roles = {r: "entrusted" if r in ENTRUSTED_ROLES else "disclosure" for r, v in TAX.roles.items() if v.external}
    expected = reference.ropa(records, micros(as_of) or 0, zone_of, sensitive, roles)
    with tempfile.TemporaryDirectory() as folder:
        record = ropa(store_of(records, Path(folder)), TAX, as_of)
    got = {(a["controller"], a["purpose"]): a for a in record.activities}
    assert got.keys() == expected.keys()
    for key, a in got.items():
        e = expected[key]
        assert (a["events"], a["subjects"], a["minors"]) == (e["events"], len(e["subjects"]), len(e["minors"]))
        assert (set(a["recipients"]), set(a["third_countries"])) == (e["recipients"], e["third_countries"])
        assert a["impact_assessment"] == [f for f in _FLAG_ORDER if f in e["flags"]]
    for f in record.assessments:
        ids = expected[(f["controller"], f["purpose"])]["flags"][f["flag"]]
        assert f["events"] == len(ids) and set(f["first_events"]) <= ids
        assert len(f["first_events"]) == min(len(ids), EXAMPLES)


_FLAG_ORDER = [
    "sensitive data", "automated decision-making", "entrusted processing", "disclosure to other handlers",
    "transfer abroad",
]  # fmt: skip


# -- the command ----------------------------------------------------------------------------------


@pytest.mark.parametrize("as_of", ["yesterday", "2026-05-01T08:00:00", "0001-01-01T00:00:00+05:00"])
def test_a_bad_as_of_isone_line_failure(capsys: pytest.CaptureFixture[str], history_store: Path, as_of: str) -> None:
    """`lineage ropa --as-of` that is not a time, has no offset, or lies outside the contract: one line, exit 2."""
    code, out, err = run_cli(capsys, "ropa", "--store", str(history_store), "--as-of", as_of)
    assert "--as-of" in one_line_failure(code, err) and out == ""


def test_json_and_csv_carry_both_tables(capsys: pytest.CaptureFixture[str], history_store: Path) -> None:
    """`--format json` is one document with the activities and the flags; csv has a row per activity and flag."""
    code, out, _ = run_cli(
        capsys, "ropa", "--store", str(history_store), "--as-of", AS_OF.isoformat(), "--format", "json"
    )
    doc = json.loads(out)
    assert code == 0 and len(doc["activities"]) == 6 and len(doc["impact_assessments"]) == 9
    assert doc["store_snapshot"] and doc["needing_assessment"] == 5 and out.endswith("}\n")
    code, out, _ = run_cli(
        capsys, "ropa", "--store", str(history_store), "--as-of", AS_OF.isoformat(), "--format", "csv"
    )
    tables = [line.split(",", 1)[0] for line in out.splitlines()]
    assert code == 0 and tables.count("activities") == 6 and tables.count("impact_assessments") == 9


def test_out_is_a_private_file(capsys: pytest.CaptureFixture[str], history_store: Path, tmp_path: Path) -> None:
    """`--out` writes the record to a new 0600 file and prints one line saying so."""
    target = tmp_path / "ropa.md"
    code, out, _ = run_cli(capsys, "ropa", "--store", str(history_store), "--as-of", AS_OF.isoformat(),
                        "--out", str(target))  # fmt: skip
    assert code == 0 and out.startswith(f"wrote {target}: 6 activities")
    assert target.read_text().startswith("# Record of processing activities")
    assert target.stat().st_mode & 0o777 == 0o600


def test_out_through_a_symlink_or_into_no_folder_is_refused(
    capsys: pytest.CaptureFixture[str], history_store: Path, tmp_path: Path
) -> None:
    """`--out` naming a symlink, or a file in a missing folder, fails as one line naming --out; nothing is touched."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.chmod(victim, 0o644)
    link = tmp_path / "ropa.md"
    link.symlink_to(victim)
    for target in (link, tmp_path / "missing" / "ropa.md"):
        code, _, err = run_cli(capsys, "ropa", "--store", str(history_store), "--out", str(target))
        assert "--out" in one_line_failure(code, err)
    assert victim.read_text() == "precious" and (victim.stat().st_mode & 0o777) == 0o644


def test_the_console_shows_both_tables(history_store: Path) -> None:
    """The console's registers page gets the activities and the impact-assessment flags as two named tables."""
    from lineage.console.pages import ropa_tables

    record = ropa(Store(history_store), TAX, AS_OF)
    assert ropa_tables(record) == [("activities", record.activities), ("impact_assessments", record.assessments)]
