"""Provenance through the gateway: each door's events reach the store saying which door, token, job and run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lineage import Emitter, Settings, __version__
from lineage.store import Store
from tests.gateway.conftest import VENV_BIN, post, post_json, running_gateway

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
RUN = json.loads((DATA / "run-complete.json").read_text(encoding="utf-8"))
JOB = f"{RUN['job']['namespace']}/{RUN['job']['name']}"
RUN_ID = RUN["run"]["runId"]


def _cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINEAGE_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LINEAGE_TOPIC": settings.topic,
           "LINEAGE_DEAD_LETTER_TOPIC": settings.dead_letter_topic}  # fmt: skip
    return subprocess.run([str(VENV_BIN / "lineage"), *argv], capture_output=True, text=True, timeout=600, env=env)


def test_the_sdk_the_json_door_and_the_openlineage_door_each_reach_the_store_with_their_provenance(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """SDK: its version; gateway POST: the token's name; OpenLineage run: job and run id; the access report says so."""
    with Emitter(system="shop", region="CN", settings=kafka_settings) as emit:
        emit.collected("user-42", ["user.contact.phone_number"], purpose="essential.service",
                       legal_basis="CONTRACT").result()  # fmt: skip
    mapping = str(DATA / "openlineage-mapping.toml")
    with running_gateway(kafka_settings, tmp_path, "--rate", "0", "--openlineage", mapping) as gateway:
        token = gateway.token("shop-etl", "shop")
        status, posted = post_json(gateway.url, {
            "event_type": "COLLECTED", "system": "shop", "system_region": "CN", "subject_id": "user-42",
            "categories": ["user.contact.email"], "purpose": "essential.service", "legal_basis": "CONTRACT",
            "subject_jurisdiction": "CN", "occurred_at": "2026-05-01T08:00:00+08:00"}, token)  # fmt: skip
        assert status == 202, posted
        status, ran = post(gateway.url, json.dumps(RUN).encode(), token, path="/api/v1/lineage")
        assert status == 202 and ran["acknowledged"] == 2, ran
    store = tmp_path / "store"
    ingest = _cli(kafka_settings, "ingest", "--store", str(store), "--exit-when-idle", "5",
                  "--group", kafka_settings.topic)  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    rows = Store(store).sql("SELECT event_id, sent_via, sent_via_name, sent_via_run FROM events")
    stored = {r["event_id"]: (r["sent_via"], r["sent_via_name"], r["sent_via_run"]) for r in rows}
    assert stored[posted["event_ids"][0]] == ("gateway", "shop-etl", None)
    assert token not in str(stored)  # the token's name, never the token
    assert [stored[i] for i in ran["event_ids"]] == [("openlineage", JOB, RUN_ID)] * 2
    assert sorted(stored.values()).count(("sdk", __version__, None)) == 1 and len(stored) == 4
    access = _cli(kafka_settings, "access", "user-42", "--store", str(store), "--format", "json")
    assert access.returncode == 0, access.stderr
    came = {r["came_from"] for r in json.loads(access.stdout)["event_sources"]}
    assert came == {f"SDK {__version__}", "gateway (token shop-etl)", f"OpenLineage job {JOB}, run {RUN_ID}"}
