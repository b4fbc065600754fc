"""`lineage demo` on a real broker: the four reports, exact policy findings, the dead letter and the map."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from lineage import Settings
from lineage.store import Store


def _demo(settings: Settings, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LINEAGE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "LINEAGE_TOPIC": settings.topic,
        "LINEAGE_DEAD_LETTER_TOPIC": settings.dead_letter_topic,
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
    """The demo prints access, breach, transfer and violation reports, finds exactly the injected breaches."""
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
    page = out / "map.html"
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert "mochat-app@HK" in page.read_text(encoding="utf-8")
    accepted = int(re.search(r"accepted=(\d+)", text).group(1))  # type: ignore[union-attr]
    assert Store(out / "store").count() == accepted > 0


def test_demo_refuses_to_clear_a_folder_it_did_not_make(kafka_settings: Settings, tmp_path: Path) -> None:
    """Pointing --out at a folder with someone else's files fails, naming the option, and deletes nothing."""
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    done = _demo(kafka_settings, tmp_path, "--subjects", "5", "--days", "5")
    assert done.returncode != 0
    assert "--out" in done.stderr and "not a demo folder" in done.stderr
    assert precious.read_text() == "keep me"
