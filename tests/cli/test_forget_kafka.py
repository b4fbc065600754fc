"""``lineage forget --bootstrap-servers``: the certificate states each topic's retention as a real broker reports it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from lineage.contract.records import make_record
from lineage.settings import Settings
from lineage.store import StoreLocation
from lineage.store.certificate import certificates
from tests.fixtures import run_cli, store_of

pytestmark = pytest.mark.integration


def test_the_certificate_states_the_topics_retention_read_from_the_broker(
    tmp_path: Path, kafka_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dead-letter topic set to one hour and the event topic's default are both in the certificate."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    try:
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, kafka_settings.dead_letter_topic, {"retention.ms": "3600000"})]
        )
    finally:
        admin.close()
    record = make_record("COLLECTED", system="app", system_region="CN", subject_id="acct-1",
                         categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                         source="direct", occurred_at=datetime(2026, 5, 1, tzinfo=UTC))  # fmt: skip
    store_of([record], tmp_path / "s")
    monkeypatch.setenv("LINEAGE_DEAD_LETTER_TOPIC", kafka_settings.dead_letter_topic)
    kafka = ("--bootstrap-servers", kafka_settings.bootstrap_servers, "--topic", kafka_settings.topic)
    code, out, err = run_cli(capsys, "forget", "acct-1", "--case", "K-1", "--store", str(tmp_path / "s"), *kafka)
    assert code == 0, err
    [cert] = certificates(StoreLocation.embedded(tmp_path / "s"), case_ref="K-1")[-1:]
    assert f"{kafka_settings.dead_letter_topic}: gone within 0.0416667 day(s)" in cert.kafka_bound
    assert "(retention.ms=3600000)" in cert.kafka_bound
    assert f"{kafka_settings.topic}: gone within" in cert.kafka_bound and cert.kafka_bound in out
