"""The guide's curl example runs as written against a real gateway on a real broker, and the events reach the topic."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from lineage import Settings
from tests.gateway.conftest import VENV_BIN, running_gateway, topic_ids

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).parents[2] / "docs" / "guide.md"


def _curl_block() -> str:
    """The guide's shell block that runs curl against the gateway (the one marked as run by this test)."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.search(r"<!-- not-run: [^>]*test_docs_curl\.py[^>]*-->\n```sh\n(.*?)\n```", text, re.S)
    assert found, "docs/guide.md lost its curl example (marked as run by tests/gateway/test_docs_curl.py)"
    return found.group(1)


def test_the_guide_curl_example_sends_its_events_to_the_topic(kafka_settings: Settings, tmp_path: Path) -> None:
    """Token made by the CLI, batch posted by curl: 202 with both acknowledged; `lineage tail` prints both."""
    block = _curl_block()
    assert "curl" in block and "Bearer" in block
    with running_gateway(kafka_settings, tmp_path, "--rate", "0") as gateway:
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "GATEWAY": gateway.url}
        env |= {"LINEAGE_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers, "LINEAGE_TOPIC": kafka_settings.topic}
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"acknowledged":2' in done.stdout.replace(" ", "")
    ids = re.findall(r'"event_id": "([0-9a-f-]{36})"', block)
    assert len(ids) == 2
    tailed = [line for line in done.stdout.splitlines() if line.startswith('{"event_id"')]
    assert [i for i in ids if any(i in line for line in tailed)] == ids
    assert Counter(topic_ids(kafka_settings)) == Counter(ids)
