"""The console's answers carry the same stamp as the command line's: pages, downloads and the JSON API."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lineage.console.app import Console
from lineage.console.db import ConsoleDB
from lineage.console.server import build_console
from lineage.store.holdings import load_holdings, read_state
from tests.console.conftest import PASSWORD, TAXONOMY, csrf_of
from tests.fixtures import LAGGING_SUBJECT, lagging_store

Clients = Callable[[str | None], TestClient]


@pytest.fixture
def lagging(tmp_path: Path) -> tuple[int, int]:
    """The lagging store's folder is ``tmp_path / "s"``; its holdings' events snapshot, and their lag."""
    store, behind = lagging_store(tmp_path / "s")
    snapshot = read_state(load_holdings(store.location)).source
    assert snapshot is not None
    return snapshot, behind


@pytest.fixture
def console(lagging: tuple[int, int], tmp_path: Path) -> Iterator[Console]:
    """A console over the lagging store (this module's, in place of the shared world's), one account per role."""
    from lineage.store import Store

    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    c = build_console(Store(tmp_path / "s"), TAXONOMY, db)
    for role in ("analyst", "responder"):
        c.accounts.add(role, role, PASSWORD)
    yield c
    c.service.close()
    db.close()


def _stamped(doc: dict[str, object], snapshot: int, behind: int, *, warned: bool = True) -> None:
    """``doc`` (JSON) names the snapshot, the lag, and (``warned``) the event stamped in 2100."""
    assert doc["store_snapshot"] == snapshot and doc["holdings_behind"] == behind, doc
    assert f"the holdings are {behind} event(s) behind" in str(doc["lag"])
    assert ("2100-01-01" in str(doc.get("warning", ""))) is warned


def test_person_page_and_its_downloads_carry_the_stamp(client_for: Clients, lagging: tuple[int, int]) -> None:
    """The person page shows the snapshot, the lag and the future event; its JSON download holds the same facts."""
    snapshot, behind = lagging
    client = client_for("analyst")
    form = {"csrf": csrf_of(client.get("/person").text), "case_reference": "DSAR-1", "identifier": LAGGING_SUBJECT}
    page = html.unescape(client.post("/person", data=form).text)
    assert "store snapshot" in page and str(snapshot) in page and "holdings behind" in page
    assert f"the holdings are {behind} event(s) behind" in page and "2100-01-01" in page
    download = client.post("/person/download", data={**form, "format": "json"})
    _stamped(json.loads(download.text), snapshot, behind)
    for path in ("/registers", "/map"):
        shown = html.unescape(client.get(path).text)
        assert str(snapshot) in shown and f"the holdings are {behind} event(s) behind" in shown, path


def test_api_answers_carry_the_stamp(console: Console, client_for: Clients, lagging: tuple[int, int]) -> None:
    """The API's person, registers, map and breach report name the snapshot and the lag, as the CLI's do."""
    snapshot, behind = lagging
    client = client_for(None)
    analyst = {"authorization": f"Bearer {console.accounts.new_token('analyst')[1]}"}
    person = client.post("/api/person", json={"case_reference": "DSAR-1", "identifier": LAGGING_SUBJECT},
                         headers=analyst)  # fmt: skip
    assert person.status_code == 200, person.text
    _stamped(person.json(), snapshot, behind)
    registers = client.get("/api/registers", headers=analyst).json()
    _stamped(registers, snapshot, behind, warned=False)
    _stamped(registers["transfers"], snapshot, behind)  # judged as of now: events after it are named
    _stamped(registers["ropa"], snapshot, behind)
    _stamped(client.get("/api/map", headers=analyst).json(), snapshot, behind, warned=False)
    responder = {"authorization": f"Bearer {console.accounts.new_token('responder')[1]}"}
    body = {"case_reference": "INC-1", "holders": ["app"], "start": "2026-01-01T00:00", "end": "2026-12-01T00:00"}
    started = client.post("/api/breach", json=body, headers=responder)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while (job := client.get(f"/api/breach/{started.json()['job']}", headers=responder).json())["status"] == "running":
        assert time.monotonic() < deadline, "the breach query did not finish in 120 s"
        time.sleep(0.2)
    assert job["status"] == "done", job
    _stamped(job["report"], snapshot, behind, warned=False)
    plan = client.get(f"/api/breach/{job['job']}/plan.json", headers=responder)
    _stamped(plan.json(), snapshot, behind, warned=False)  # the plan downloaded names the read it came from
