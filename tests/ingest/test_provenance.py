"""Provenance end to end on a real broker: SDK and ``lineage emit`` headers stored; bad headers stored as null."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lineage import Codec, Emitter, Settings, __version__
from lineage.contract.records import make_record
from lineage.store import Store
from lineage.transport.kafka import KafkaEventSink, read_messages
from lineage.transport.provenance import MAX_RUN, VIA, VIA_NAME, VIA_RUN
from tests.fixtures import T0

LINEAGE = str(Path(sys.executable).parent / "lineage")
EMAIL = ["user.contact.email"]


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "LINEAGE_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LINEAGE_TOPIC": settings.topic,
            "LINEAGE_DEAD_LETTER_TOPIC": settings.dead_letter_topic, "LINEAGE_CONNECT_TIMEOUT_S": "20"}  # fmt: skip


def _ingest(settings: Settings, store: Path) -> str:
    """Consume the topic into ``store`` until idle; the consumer's last stats line."""
    argv = [LINEAGE, "ingest", "--store", str(store), "--exit-when-idle", "5", "--group", settings.topic]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=_env(settings))
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stderr.splitlines() if line.startswith("ingest messages=")][-1]


def _provenance(store: Path) -> dict[str, tuple[str | None, str | None, str | None]]:
    rows = Store(store).sql("SELECT subject_id, sent_via, sent_via_name, sent_via_run FROM events")
    return {r["subject_id"]: (r["sent_via"], r["sent_via_name"], r["sent_via_run"]) for r in rows}


def test_sdk_and_lineage_emit_events_are_stored_with_the_sdk_and_its_version(
    client_settings: Settings, tmp_path: Path
) -> None:
    """On each Kafka client, an Emitter's event and a ``lineage emit`` line are stored as via=sdk with the version."""
    with Emitter(system="shop", region="CN", settings=client_settings) as emit:
        emit.collected("sdk-user", EMAIL, purpose="essential.service", legal_basis="CONTRACT").result()
    line = {"event_type": "COLLECTED", "subject_id": "cli-user", "categories": EMAIL, "purpose": "essential.service",
            "legal_basis": "CONTRACT"}  # fmt: skip
    sent = subprocess.run([LINEAGE, "emit", "--system", "shop", "--region", "CN"], input=json.dumps(line) + "\n",
                          capture_output=True, text=True, timeout=300, env=_env(client_settings))  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    store = tmp_path / "store"
    _ingest(client_settings, store)
    assert _provenance(store) == {"sdk-user": ("sdk", __version__, None), "cli-user": ("sdk", __version__, None)}


def test_bad_provenance_headers_are_stored_as_null_and_their_events_kept(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Oversized, non-text and unknown headers: every event stored (null there), none dead-lettered, each counted."""
    codec = Codec()
    cases = {
        "huge-door": [(VIA, b"sdk" * 10_000)],
        "unknown-door": [(VIA, b"carrier-pigeon")],
        "binary-name": [(VIA, b"gateway"), (VIA_NAME, b"\xff\xfe\x00")],
        "long-run": [(VIA, b"openlineage"), (VIA_NAME, b"ns/job"), (VIA_RUN, b"r" * (MAX_RUN + 1))],
        "no-headers": [],
    }
    sink = KafkaEventSink(kafka_settings)
    try:
        for subject, headers in cases.items():
            record = make_record("COLLECTED", system="shop", system_region="CN", subject_id=subject, categories=EMAIL,
                                 purpose="essential.service", legal_basis="CONTRACT", occurred_at=T0)  # fmt: skip
            sink.send(kafka_settings.topic, subject.encode(), codec.encode_record(record), record["event_id"],
                      tuple(headers)).result()  # fmt: skip
    finally:
        sink.close()
    store = tmp_path / "store"
    line = _ingest(kafka_settings, store)
    assert "dead_letters=0 " in line and "bad_headers=4 " in line, line
    assert _provenance(store) == {
        "huge-door": (None, None, None),
        "unknown-door": (None, None, None),
        "binary-name": ("gateway", None, None),
        "long-run": ("openlineage", "ns/job", None),
        "no-headers": (None, None, None),
    }
    assert list(read_messages(kafka_settings, kafka_settings.dead_letter_topic, idle_timeout_s=3)) == []
