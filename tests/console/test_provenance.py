"""The person page and /api/person say where each of the person's events came from: SDK, gateway, OpenLineage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from lineage import Party, default_taxonomy
from lineage.console.app import create_app
from lineage.console.db import ConsoleDB
from lineage.console.server import build_console
from lineage.contract.records import make_record
from lineage.transport.provenance import gateway_headers, openlineage_headers, sdk_headers
from tests.console.conftest import PASSWORD, csrf_of, sign_in
from tests.fixtures import store_of

TAXONOMY = default_taxonomy()
AT = datetime(2026, 5, 1, tzinfo=UTC)
RUN = "0193a1f2-7c4e-7d2a-9b1e-5f4c3a2b1c0d"
SOURCES = {"SDK 1.2", "gateway (token shop-etl)", f"OpenLineage job spark/nightly_export, run {RUN}",
           "not recorded (sent without provenance headers)"}  # fmt: skip


def test_the_person_page_and_its_json_show_each_events_source(tmp_path: Path) -> None:
    """An SDK event, a gateway event, an OpenLineage bulk flow carrying the person, and one without headers."""
    shop, crm = Party(name="shop", role="internal", region="CN"), Party(name="crm", role="processor", region="CN")
    common = {"system_region": "CN", "categories": ["user.contact.email"], "purpose": "essential.service"}
    records = [
        make_record("COLLECTED", system="shop", subject_id="p-1", legal_basis="CONTRACT", source="direct",
                    occurred_at=AT, **common),
        make_record("CONSENT", system="shop", subject_id="p-1", consent_status="GRANTED", consent_kind="GENERAL",
                    occurred_at=AT, **common),
        make_record("SHARED", system="shop", subject_id=None, bulk_as_of=AT, holder=shop, recipient=crm,
                    occurred_at=AT, **common),
        make_record("COLLECTED", system="shop", subject_id="p-1", legal_basis="CONTRACT", source="direct",
                    occurred_at=AT.replace(day=2), **common),
    ]  # fmt: skip
    headers = [sdk_headers("1.2"), gateway_headers("shop-etl"), openlineage_headers("spark", "nightly_export", RUN), ()]
    store = store_of(records, tmp_path / "store", headers)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    console = build_console(store, TAXONOMY, db)
    console.accounts.add("analyst", "analyst", PASSWORD)
    try:
        analyst = sign_in(TestClient(create_app(console), base_url="http://127.0.0.1"), "analyst")
        page = analyst.post("/person", data={"csrf": csrf_of(analyst.get("/person").text), "case_reference": "C-1",
                                             "identifier": "p-1"})  # fmt: skip
        assert page.status_code == 200
        assert "event sources <small>(4)</small>" in page.text
        assert all(f"<td>{s}</td>" in page.text for s in SOURCES), page.text[-3000:]
        _, token = console.accounts.new_token("analyst")
        bearer = {"Authorization": f"Bearer {token}"}
        api = TestClient(create_app(console), base_url="http://127.0.0.1").post(
            "/api/person", json={"identifier": "p-1", "case_reference": "C-2"}, headers=bearer
        )
        rows = json.loads(api.text)["event_sources"]
        assert {r["came_from"] for r in rows} == SOURCES
        assert {r["event_type"]: r["sent_via"] for r in rows if r["sent_via"]} == {
            "COLLECTED": "sdk", "CONSENT": "gateway", "SHARED": "openlineage"}  # fmt: skip
    finally:
        console.service.close()
        db.close()
