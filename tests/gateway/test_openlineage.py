"""OpenLineage in, end to end: real clients post run events to a real gateway, a real broker and ingest take them."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lineage import Settings
from tests.gateway.conftest import VENV_BIN, Running, post, post_json, running_gateway, topic_ids

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
MAPPING = DATA / "openlineage-mapping.toml"
RUN = DATA / "run-complete.json"
LINEAGE = "/api/v1/lineage"


def _collected(subject: str, categories: list[str], n: int) -> dict[str, Any]:
    return {"event_id": f"0b7e4c52-6d1f-4c1e-9a53-2f7a61c1e00{n}", "event_type": "COLLECTED", "system": "shop",
            "system_region": "CN", "subject_id": subject, "categories": categories, "purpose": "essential.service",
            "legal_basis": "CONTRACT", "subject_jurisdiction": "CN",
            "occurred_at": "2026-05-01T08:00:00+08:00"}  # fmt: skip


def _cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINEAGE_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LINEAGE_TOPIC": settings.topic,
           "LINEAGE_DEAD_LETTER_TOPIC": settings.dead_letter_topic}  # fmt: skip
    return subprocess.run([str(VENV_BIN / "lineage"), *argv], capture_output=True, text=True, timeout=300, env=env)


def _health(gateway: Running) -> dict[str, Any]:
    with urllib.request.urlopen(gateway.url + "/health", timeout=30) as answer:
        state: dict[str, Any] = json.loads(answer.read())
        return state


def test_curl_posts_a_run_whose_bulk_flows_reach_the_store_and_the_answers(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Curl posts the sample run twice: 2 flows stored once; access and breach answers include the pipeline's flows."""
    with running_gateway(kafka_settings, tmp_path, "--rate", "0", "--openlineage", str(MAPPING)) as gateway:
        token = gateway.token("shop-etl", "shop")
        status, answer = post_json(gateway.url, {"events": [
            _collected("user-42", ["user.contact.email", "user.contact.phone_number"], 1),
            _collected("user-7", ["user.contact.email"], 2),
        ]}, token)  # fmt: skip
        assert status == 202, answer
        (tmp_path / "shop.header").write_text(f"Authorization: Bearer {token}\n", encoding="utf-8")
        curl = ["curl", "-sS", "-w", "\n%{http_code}\n", "-H", "@shop.header", "-H", "Content-Type: application/json",
                "--data-binary", f"@{RUN}", gateway.url + LINEAGE]  # fmt: skip
        answers = []
        for _ in range(2):
            done = subprocess.run(curl, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True)
            body, code = done.stdout.strip().rsplit("\n", 1)
            answers.append((int(code), json.loads(body)))
        assert [(code, a["acknowledged"], a["duplicates"], a["unknown_datasets"]) for code, a in answers] == [
            (202, 2, 0, 1), (202, 0, 2, 1)]  # fmt: skip
        assert _health(gateway)["openlineage"] == {"runs": 2, "flows": 4, "ignored": 0, "unknown_datasets": 1}
    flow_ids = answers[0][1]["event_ids"]
    assert Counter(topic_ids(kafka_settings)) == Counter([*answer["event_ids"], *flow_ids])
    store = str(tmp_path / "store")
    ingest = _cli(kafka_settings, "ingest", "--store", store, "--exit-when-idle", "5", "--group", kafka_settings.topic)
    assert ingest.returncode == 0, ingest.stderr
    access = _cli(kafka_settings, "access", "user-42", "--store", store, "--format", "json")
    assert access.returncode == 0, access.stderr
    held = {(h["holder"], h["category"]) for h in json.loads(access.stdout)["data_held"]}
    assert {("mailer", "user.contact.email"), ("crm-cn", "user.contact.email"),
            ("crm-cn", "user.contact.phone_number")} <= held, held  # fmt: skip
    assert ("mailer", "user.contact.phone_number") not in held  # the export carries only what its tags say
    breach = _cli(kafka_settings, "breach", "--node", "mailer", "--from", "2026-05-02T00:00Z", "--to",
                  "2026-05-03T00:00Z", "--store", store, "--format", "json")  # fmt: skip
    assert breach.returncode == 0, breach.stderr
    impact = json.loads(breach.stdout)
    assert (impact["subjects"], [c["category"] for c in impact["by_category"]]) == (2, ["user.contact.email"])


def test_openlineage_python_http_transport_posts_to_the_gateway(kafka_settings: Settings, tmp_path: Path) -> None:
    """The OpenLineage client's HttpTransport (plain, then gzip) is answered 202 and its flows reach the topic once."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import schema_dataset, tags_dataset
    from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport

    def tag(category: str, column: str) -> tags_dataset.TagsDatasetFacetFields:
        return tags_dataset.TagsDatasetFacetFields(key="lineage.category", value=category, source="CONFIG",
                                                   field=column)  # fmt: skip

    source = InputDataset("postgres://shop-db:5432", "shop.public.customers", facets={
        "tags": tags_dataset.TagsDatasetFacet(tags=[tag("user.contact.email", "email")]),
        "schema": schema_dataset.SchemaDatasetFacet(fields=[schema_dataset.SchemaDatasetFacetFields("email", "text")]),
    })  # fmt: skip
    target = OutputDataset("s3://mailer-sg", "exports/customers")
    runs = ["0193a1f2-7c4e-7d2a-9b1e-00000000000a", "0193a1f2-7c4e-7d2a-9b1e-00000000000b"]
    with running_gateway(kafka_settings, tmp_path, "--rate", "0", "--openlineage", str(MAPPING)) as gateway:
        token = gateway.token("shop-etl", "shop")
        for run_id, compression in zip(runs, [None, HttpCompression.GZIP], strict=True):
            config = HttpConfig(url=gateway.url, auth=ApiKeyTokenProvider({"apiKey": token}), compression=compression,
                                timeout=60)  # fmt: skip
            client = OpenLineageClient(transport=HttpTransport(config))
            for state in (RunState.START, RunState.COMPLETE):
                client.emit(RunEvent(eventType=state, eventTime="2026-05-02T02:30:00+00:00", run=Run(runId=run_id),
                                     job=Job(namespace="airflow", name="export"), producer="tests",
                                     inputs=[source], outputs=[target]))  # fmt: skip
            client.transport.close()
        assert _health(gateway)["openlineage"] == {"runs": 2, "flows": 2, "ignored": 2, "unknown_datasets": 0}
    assert len(Counter(topic_ids(kafka_settings))) == 2 and set(Counter(topic_ids(kafka_settings)).values()) == {1}


def test_bad_runs_are_a_clear_4xx_unknown_datasets_are_counted_and_nothing_is_produced(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Not JSON, not a run, no token, another system's token: 4xx each; unmapped datasets: 200, counted, logged once."""
    run = json.loads(RUN.read_text(encoding="utf-8"))
    # an unmapped input, and the sample's 4th output is unmapped too
    unmapped = run | {"inputs": [{"namespace": "s3://raw-bucket", "name": "signups"}]}
    with running_gateway(kafka_settings, tmp_path, "--rate", "0", "--openlineage", str(MAPPING)) as gateway:
        shop, crm = gateway.token("shop-etl", "shop"), gateway.token("crm-etl", "crm-cn")
        answers = {
            "not json": post(gateway.url, b"{not json", shop, path=LINEAGE),
            "not a run": post_json_to(gateway.url, {"job": run["job"], "eventTime": run["eventTime"]}, shop),
            "no token": post_json_to(gateway.url, run, None),
            "another system": post_json_to(gateway.url, run, crm),
            "unmapped": post_json_to(gateway.url, unmapped, shop),
            "unmapped again": post_json_to(gateway.url, unmapped, shop),
            "a gzip bomb": _post_gzip(gateway.url, gzip.compress(b" " * 2_000_000), shop),
        }
        state = _health(gateway)["openlineage"]
    statuses = {what: status for what, (status, _) in answers.items()}
    assert statuses == {"not json": 400, "not a run": 400, "no token": 401, "another system": 403,
                        "unmapped": 200, "unmapped again": 200, "a gzip bomb": 413}, answers  # fmt: skip
    assert "body: larger than" in answers["a gzip bomb"][1]["error"]  # 2 MB once inflated, 2 kB as sent
    assert "system='shop': this token may not emit as that system" in answers["another system"][1]["error"]
    assert answers["unmapped"][1]["unknown_datasets"] == 2 and answers["unmapped"][1]["stored"] == 0
    assert state == {"runs": 0, "flows": 0, "ignored": 2, "unknown_datasets": 2}
    log = next(tmp_path.glob("gateway-*.log")).read_text(encoding="utf-8")
    for name in ("s3://raw-bucket/signups", "s3://unmapped-bucket/scratch/customers"):
        assert log.count(f"unknown dataset '{name}'") == 1, log
    assert topic_ids(kafka_settings, idle_s=3) == []


def test_without_a_mapping_the_door_is_closed(gateway: Running) -> None:
    """A gateway started without --openlineage answers 404 saying how to open it, and /health has no counters."""
    status, answer = post_json_to(gateway.url, {"run": {}}, gateway.token("shop-etl", "shop"))
    assert status == 404 and "--openlineage" in answer["error"]
    assert "openlineage" not in _health(gateway)


def _post_gzip(url: str, body: bytes, token: str) -> tuple[int, dict[str, Any]]:
    """POST ``body`` (gzip data) to the OpenLineage path with ``Content-Encoding: gzip``."""
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url + LINEAGE, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_json_to(url: str, value: object, token: str | None) -> tuple[int, dict[str, Any]]:
    """POST ``value`` as JSON to the OpenLineage path."""
    return post(url, json.dumps(value).encode(), token, path=LINEAGE)
