"""`lineage demo` on a real broker: the four reports, exact policy findings, the dead letter and the map."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from lineage import Settings, default_taxonomy
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.holdings import load_holdings, read_state
from lineage.testing import MemorySink
from lineage.transport.kafka import read_messages
from lineage.world.demo import demo_reports
from lineage.world.organisations import build
from lineage.world.sim import WorldSize, emit


def _demo(settings: Settings, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LINEAGE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "LINEAGE_TOPIC": settings.topic,  # the demo must not use it: it makes its own topics
    }
    return subprocess.run(
        [sys.executable, "-m", "lineage.cli", "demo", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def test_demo_prints_the_four_reports_and_writes_the_map(kafka_settings: Settings, tmp_path: Path) -> None:
    """The demo prints the four reports, stores every event sent, and finds exactly the injected breaches."""
    out = tmp_path / "demo"
    done = _demo(kafka_settings, out, "--subjects", "60", "--days", "200")
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    text = done.stdout
    for heading in ("# Access request: mochat-", "# Breach impact", "# Cross-border transfers",
                    "# Policy violations: injected and found", "# Policy check: MoChat"):  # fmt: skip
        assert heading in text, heading
    assert "- **exact match**: True" in text
    rows = re.findall(r"^\| (.+?) \| .+? \| (\d+) \| (\d+) \| (yes|NO) \|$", text, re.M)
    assert len(rows) == 5 and all(r[3] == "yes" and r[1] == r[2] != "0" for r in rows), rows
    assert "dead_letters=1" in text
    assert "- **compromised**: amap-location-sdk" in text
    assert text.count("- **store snapshot**: ") == 3 + 5 and "- **holdings behind**: 0" in text  # each report stamped
    page = out / "map.html"
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert 'data-name="mochat-app" data-region="HK"' in page.read_text(encoding="utf-8")
    size = WorldSize(subjects=60, days=200)
    planned = sum(len(p.events) for p in build(size, default_taxonomy())[0])
    assert f"accepted={planned} dead_letters=1" in text
    assert Store(out / "store").count() == planned
    assert "events applied, reflecting events snapshot" in text and Store(out / "store").behind == 0  # refreshed
    assert list(read_messages(kafka_settings, kafka_settings.topic, idle_timeout_s=2)) == [], "LINEAGE_TOPIC written to"


def test_demo_refuses_to_clear_a_folder_it_did_not_make(kafka_settings: Settings, tmp_path: Path) -> None:
    """Pointing --out at a folder with others' files, or at a file, fails naming the option; nothing is deleted."""
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    done = _demo(kafka_settings, tmp_path, "--subjects", "5", "--days", "5")
    assert done.returncode != 0
    assert "--out" in done.stderr and "not a demo folder" in done.stderr
    assert precious.read_text() == "keep me"
    done = _demo(kafka_settings, precious, "--subjects", "5", "--days", "5")
    assert done.returncode != 0 and "--out" in done.stderr and "is a file" in done.stderr
    assert precious.read_text() == "keep me"


def test_a_bad_out_fails_before_any_broker_starts(tmp_path: Path) -> None:
    """Without a configured broker, a bad --out is refused before jars are fetched or a broker started."""
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGE_")}
    env["LINEAGE_CACHE_DIR"] = str(tmp_path / "no-cache")
    done = subprocess.run(
        [sys.executable, "-m", "lineage.cli", "demo", "--out", str(precious)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode != 0 and "--out" in done.stderr
    assert "broker" not in done.stdout
    assert not (tmp_path / "no-cache").exists()


def test_demo_reports_carry_the_stamp_of_their_read(tmp_path: Path) -> None:
    """Each report the demo prints names its store snapshot and how far the holdings lag, as the CLI's do."""
    taxonomy = default_taxonomy()
    size = WorldSize(subjects=8, days=40, seed=3, violations=1)
    plans, injected = build(size, taxonomy)
    sink = MemorySink()
    emit(plans, sink, taxonomy)
    values = [m.value for m in sink.messages]
    location = StoreLocation.embedded(tmp_path / "store")
    ingestor = Ingestor(location, "events", taxonomy=taxonomy)
    for offset, value in enumerate(values[:-3]):
        assert ingestor.add(0, offset, value) is None
    ingestor.flush()
    HoldingsMaintainer(location).refresh()
    for offset, value in enumerate(values[-3:], len(values) - 3):  # stored after the refresh: the holdings lag
        assert ingestor.add(0, offset, value) is None
    ingestor.flush()
    snapshot = read_state(load_holdings(location)).source
    said: list[str] = []
    demo_reports(Store(location), plans, injected, size, taxonomy, said.append)
    reports = [text for text in said if not text.startswith("# Policy violations: injected")]
    assert len(reports) == 3 + len(plans), [r.splitlines()[0] for r in said]
    for text in reports:
        assert f"- **store snapshot**: {snapshot}\n- **holdings behind**: 3\n" in text, text[:400]
        assert "- **lag**: the holdings are 3 event(s) behind the store" in text, text[:400]
