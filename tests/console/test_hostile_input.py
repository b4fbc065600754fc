"""Hostile values in the console's newer parameters: one line naming the field and a 400, never an internal error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from lineage.console.app import Console
from tests.console.conftest import HOSTILE_SYSTEM, csrf_of

Clients = Callable[[str | None], TestClient]
# "²" passes str.isdigit but not int(); 5,000 digits pass neither int() (its 4,300 digit cap) nor a 64-bit column
WINDOW = {"start": "2026-01-01T00:00", "end": "2026-12-01T00:00"}
NOT_NUMBERS = ("\u00b2", "\u0663", "9" * 5000, str(2**63), "-1", "1.5", " 2")


def _bearer(console: Console, name: str) -> dict[str, str]:
    _, token = console.accounts.new_token(name)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("page", NOT_NUMBERS)
def test_a_register_page_number_that_is_not_one_is_a_400(client_for: Clients, page: str) -> None:
    """A register's page parameter in other digits or past 64 bits is refused by name, not a 500."""
    r = client_for("analyst").get("/registers", params={"transfers.page": page})
    assert r.status_code == 400 and "transfers.page" in r.text


@pytest.mark.parametrize("before", NOT_NUMBERS)
def test_an_audit_page_key_that_is_not_a_number_is_a_400(client_for: Clients, before: str) -> None:
    """The audit search's ``before`` in other digits or past 64 bits is refused by name, not a 500."""
    auditor = client_for("auditor")
    r = auditor.post("/audit", data={"csrf": csrf_of(auditor.get("/audit").text), "before": before})
    assert r.status_code == 400 and "before" in r.text


def test_the_api_audit_page_key_past_64_bits_is_refused(console: Console, client_for: Clients) -> None:
    """The JSON twin's ``before`` past a 64-bit integer is a 422 naming it, not an overflow in the database."""
    r = client_for(None).post("/api/audit", headers=_bearer(console, "auditor"), json={"before": 10**30})
    assert r.status_code == 422 and r.json() == {"error": "before: missing or not valid"}


@pytest.mark.parametrize("window", [{"start": "", "end": ""}, {"start": "2026-01-01T00:00Z", "end": ""}, {}])
def test_the_api_breach_window_without_an_end_is_a_400(
    console: Console, client_for: Clients, window: dict[str, str]
) -> None:
    """The JSON twin's breach query missing an end of its window says so in one line (it was an AssertionError 500)."""
    body = {"case_reference": "INC-1", "holders": [HOSTILE_SYSTEM], "start": "", "end": "", **window}
    r = client_for(None).post("/api/breach", headers=_bearer(console, "responder"), json=body)
    assert r.status_code == 400 and r.json() == {"error": "start/end: both ends of the window are required"}


@pytest.mark.parametrize("route", ["page", "api"])
def test_an_unknown_or_huge_breach_holder_is_refused_before_anything_is_kept(
    console: Console, client_for: Clients, route: str
) -> None:
    """A holder the store does not know (here 500,000 characters) is a 400 at once and no assessment row keeps it."""
    huge = "x" * 500_000
    if route == "api":
        body = {"case_reference": "INC-2", "holders": [HOSTILE_SYSTEM, huge], **WINDOW}
        r = client_for(None).post("/api/breach", headers=_bearer(console, "responder"), json=body)
        assert r.status_code == 400 and r.json()["error"].startswith("holders='xxxx")
    else:
        responder = client_for("responder")
        form = {"csrf": csrf_of(responder.get("/breach").text), "case_reference": "INC-2",
                "holders": [HOSTILE_SYSTEM, huge], **WINDOW}  # fmt: skip
        r = responder.post("/breach", data=form, follow_redirects=False)
        assert r.status_code == 400 and "unknown holder" in r.text
    assert len(r.text) < 20_000  # the name is cut in the message, never echoed whole
    with console.service.db.tx() as tx:
        assert tx.rows("SELECT id FROM console_breaches") == []


def test_a_link_cannot_write_its_own_text_into_the_breach_page(client_for: Clients) -> None:
    """``/breach?holder=`` preselects the store's holders only: any other text is not shown as ours (phishing)."""
    lure = "Your session expired: call +1 555 0100 to restore access"
    page = client_for("responder").get("/breach", params={"holder": [lure, HOSTILE_SYSTEM]}).text
    assert "call +1 555 0100" not in page and "Preselected" in page


@pytest.mark.parametrize("field", ["actor", "action"])
def test_audit_search_parts_are_as_long_as_what_they_can_match(
    console: Console, client_for: Clients, field: str
) -> None:
    """An audit search by a 5,000-character part is a 400 naming it, and nothing of it is kept in the trail."""
    long = "a" * 5000
    r = client_for(None).post("/api/audit", headers=_bearer(console, "auditor"), json={field: long})
    assert r.status_code == 400 and r.json()["error"].startswith(f"{field}=") and "at most" in r.json()["error"]
    auditor = client_for("auditor")
    r = auditor.post("/audit", data={"csrf": csrf_of(auditor.get("/audit").text), field: long})
    assert r.status_code == 400 and f"{field}=" in r.text
    assert not any(long in str(e["detail"]) for e in console.audit.search())


@pytest.mark.parametrize("until", ["9999-12-31T23:59:59-23:59", "1900-01-01T00:00+23:59"])
def test_a_time_past_the_last_year_in_utc_is_a_400(console: Console, client_for: Clients, until: str) -> None:
    """A time whose offset takes it past 9999 (or before 1900) in UTC is refused by name, not an OverflowError 500."""
    r = client_for(None).post("/api/audit", headers=_bearer(console, "auditor"), json={"until": until})
    assert r.status_code == 400 and r.json()["error"].startswith("until=")
