"""`lineage emit` against a real broker: every good line is sent, every bad one named by number, one line each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lineage import Codec, Settings
from lineage.cli import main
from lineage.errors import shown
from lineage.transport.kafka import read_messages
from tests.fixtures import GOOD_LINE, one_line_failure


def _emit(capsys: pytest.CaptureFixture[str], settings: Settings, path: Path) -> tuple[int, str]:
    code = main(["emit", str(path), "--system", "web", "--region", "CN",
                 "--bootstrap-servers", settings.bootstrap_servers, "--topic", settings.topic])  # fmt: skip
    return code, capsys.readouterr().err


def _sent(settings: Settings) -> list[str]:
    codec = Codec()
    messages = read_messages(settings, settings.topic, idle_timeout_s=3)
    return [codec.decode(m.value or b"").subject_id or "" for m in messages]


def _good(subject: str) -> str:
    return GOOD_LINE.replace('"u1"', json.dumps(subject))


def test_hostile_and_oversized_lines_are_named_and_the_rest_sent(
    capsys: pytest.CaptureFixture[str], kafka_settings: Settings, tmp_path: Path
) -> None:
    """Deep nesting, a huge number, a lone surrogate, bad bytes, a >1 MB event: each named by line; good ones sent."""
    big = json.loads(_good("big")) | {"source": "x" * 1_100_000}
    lines = [
        _good("first").encode(),
        b"[" * 100_000,
        _good("n").replace("}", ', "retention_days": ' + "9" * 5000 + "}").encode(),
        GOOD_LINE.replace('"u1"', '"\\ud800"').encode(),  # JSON text: "\ud800"
        _good("bad").encode().replace(b"bad", b"b\xffd"),
        json.dumps(big).encode(),
        _good("last").encode(),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, err = _emit(capsys, kafka_settings, path)
    assert code == 1, err
    assert "Traceback" not in err
    named = sorted(int(line.split("line ")[1].split(":")[0]) for line in err.splitlines() if ": line " in line)
    assert named == [2, 3, 4, 5, 6], err
    assert "sent 2 event(s); 5 bad line(s) refused" in err
    assert sorted(_sent(kafka_settings)) == ["first", "last"]


def test_a_broker_that_is_down_stops_with_one_line_saying_where(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With no broker, emit fails as one line (exit 2), no traceback."""
    path = tmp_path / "events.jsonl"
    path.write_text(_good("a") + "\n")
    settings = Settings(bootstrap_servers="127.0.0.1:1", connect_timeout_s=1)
    code, err = _emit(capsys, settings, path)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.integration
def test_a_topic_the_broker_lacks_is_named_not_read_as_empty(
    capsys: pytest.CaptureFixture[str], kafka_settings: Settings, tmp_path: Path
) -> None:
    """`tail` and a one-off `ingest` on a mistyped topic fail naming --topic, instead of reading nothing and passing."""
    missing = kafka_settings.topic + "-typo"
    server = ["--bootstrap-servers", kafka_settings.bootstrap_servers, "--topic", missing]
    for argv in (["tail", *server], ["ingest", "--store", str(tmp_path / "s"), "--exit-when-idle", "2", *server]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and "--topic" in err and missing in err, err


def test_crafted_field_names_cannot_forge_output_lines(
    capsys: pytest.CaptureFixture[str], kafka_settings: Settings, tmp_path: Path
) -> None:
    """Field names with a newline, ESC or U+202E give one escaped stderr line per bad input line."""
    names = ["x\nlineage emit: line 99: forged", "\x1b[1A\x1b[2Kgone", "r\u202etl"]
    lines = [json.dumps(json.loads(_good("bad")) | {name: 1}) for name in names] + [_good("ok")]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, err = _emit(capsys, kafka_settings, path)
    assert code == 1, err
    assert err.splitlines() == [
        *(f"lineage emit: line {n}: {shown(name)}: unknown event field" for n, name in enumerate(names, start=1)),
        "sent 1 event(s); 3 bad line(s) refused",
    ]


def test_an_unknown_kafka_client_stops_with_one_line_naming_the_setting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LINEAGE_KAFKA_CLIENT naming no client: exit 2, one line naming kafka_client and the choices, nothing sent."""
    path = tmp_path / "events.jsonl"
    path.write_text(_good("a") + "\n")
    monkeypatch.setenv("LINEAGE_KAFKA_CLIENT", "rdkafka")
    code = main(["emit", str(path), "--system", "web", "--region", "CN", "--bootstrap-servers", "127.0.0.1:1"])
    line = one_line_failure(code, capsys.readouterr().err)
    assert line == "lineage: kafka_client: must be one of kafka-python, confluent, got 'rdkafka'"
