"""Every answer is the same on the shared store (PostgreSQL catalog, S3 warehouse) as on the embedded one."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from lineage import Settings, default_taxonomy
from lineage.answers import access_request, breach_impact, erasure_plan, retention_register, transfers_register
from lineage.answers.policy_check import check
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.testing import MemorySink
from lineage.world.organisations import build
from lineage.world.sim import WorldSize, emit
from tests.services import Postgres, SeaweedS3

TAXONOMY = default_taxonomy()
SIZE = WorldSize(subjects=40, days=200, seed=5, violations=2)
REPO = Path(__file__).parents[2]


def _shared_settings(postgres: Postgres, s3: SeaweedS3) -> Settings:
    return Settings(
        catalog_uri=postgres.sqlalchemy_uri(),
        catalog_password=postgres.password,
        namespace=f"t_{uuid.uuid4().hex[:12]}",
        warehouse=f"s3://{s3.bucket}/{uuid.uuid4().hex}",
        s3_endpoint=s3.endpoint,
        s3_access_key_id=s3.access_key,
        s3_secret_access_key=s3.secret_key,
        s3_region=s3.region,
    )


def test_answers_on_postgres_and_s3_equal_the_embedded_store(postgres: Postgres, s3: SeaweedS3, tmp_path: Path) -> None:
    """Access, erasure, breach, transfers, retention and policy checks agree on both stores, and the CLI reads S3."""
    plans, _ = build(SIZE, TAXONOMY, ["mall"])
    sink = MemorySink()
    emit(plans, sink, TAXONOMY)
    settings = _shared_settings(postgres, s3)
    shared_location = StoreLocation.from_settings(settings)
    for location in (StoreLocation.embedded(tmp_path / "local"), shared_location):
        ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
        for offset, message in enumerate(sink.messages):
            assert ingestor.add(offset % 3, offset, message.value) is None
        ingestor.flush()
    local, shared = Store(tmp_path / "local"), Store(shared_location)
    assert shared.location.on_s3 and local.count() == shared.count() == len(sink.messages)
    subject = local.sql("SELECT subject_id FROM events WHERE subject_id IS NOT NULL LIMIT 1")[0]["subject_id"]
    holder = local.sql("SELECT holder_name FROM events LIMIT 1")[0]["holder_name"]
    end = SIZE.end
    for ask in (
        lambda s: access_request(s, subject, TAXONOMY, end),
        lambda s: erasure_plan(s, subject, TAXONOMY, end),
        lambda s: breach_impact(s, [holder], end.replace(year=end.year - 1), end, TAXONOMY, aware_at=end),
        lambda s: transfers_register(s, TAXONOMY, end),
        lambda s: retention_register(s, end),
    ):
        assert ask(local) == ask(shared)
    assert access_request(shared, subject, TAXONOMY, end).holds_data  # answers with something in them
    assert breach_impact(shared, [holder], end.replace(year=end.year - 1), end, TAXONOMY, aware_at=end).records
    policy = plans[0].policy
    assert check(local, policy, end) == check(shared, policy, end)

    # the CLI on the shared store: settings from the environment, no secret on its command line
    env = {
        **os.environ,
        "LINEAGE_CATALOG_URI": settings.catalog_uri or "",
        "LINEAGE_CATALOG_PASSWORD": postgres.password,
        "LINEAGE_NAMESPACE": settings.namespace,
        "LINEAGE_WAREHOUSE": settings.warehouse or "",
        "LINEAGE_S3_ENDPOINT": s3.endpoint,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    out = subprocess.run(
        [sys.executable, "-m", "lineage.cli", "access", subject, "--format", "json", "--as-of", end.isoformat()],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert '"holds_data": true' in out.stdout and f'"store_snapshot": {shared.snapshot_id}' in out.stdout
    assert postgres.password not in out.stdout + out.stderr and s3.secret_key not in out.stdout + out.stderr
    assert not (tmp_path / "lineage-store").exists()  # nothing made in the working folder
