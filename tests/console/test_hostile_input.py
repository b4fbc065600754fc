"""Hostile values in the console's newer parameters: one line naming the field and a 400, never an internal error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from lineage.console.app import Console
from tests.console.conftest import csrf_of

Clients = Callable[[str | None], TestClient]
# "²" passes str.isdigit but not int(); 5,000 digits pass neither int() (its 4,300 digit cap) nor a 64-bit column
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
