"""The gateway's test world: ``lineage gateway serve`` run as a process on a free port, over a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lineage import Settings
from lineage.codec.avro import Codec
from lineage.devtools.ports import free_port
from lineage.transport.kafka import read_messages
from tests.fixtures import wait_until

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Running:
    """A gateway process: its URL, and the token file it reads."""

    url: str
    tokens: Path
    proc: subprocess.Popen[str]

    def token(self, name: str, *systems: str) -> str:
        """A new token for ``name`` scoped to ``systems``, made by the CLI as an operator would."""
        args = [str(VENV_BIN / "lineage"), "gateway", "token", "add", name, "--tokens", str(self.tokens)]
        for s in systems:
            args += ["--system", s]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.splitlines()[-1]


def post(
    url: str, body: bytes, token: str | None, timeout_s: float = 120, path: str = "/v1/events"
) -> tuple[int, dict[str, Any]]:
    """POST ``body`` to ``path`` (with a bearer token unless None); (status, the JSON answer)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_json(url: str, value: object, token: str | None) -> tuple[int, dict[str, Any]]:
    """POST ``value`` as JSON."""
    return post(url, json.dumps(value).encode(), token)


def topic_ids(settings: Settings, idle_s: float = 5.0) -> list[str]:
    """The event ids on the settings' topic, in the order read (a repeat is a duplicate)."""
    codec = Codec()
    return [codec.decode(m.value).event_id for m in read_messages(settings, settings.topic, idle_timeout_s=idle_s)
            if m.value is not None]  # fmt: skip


@contextmanager
def running_gateway(
    settings: Settings, folder: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[Running]:
    """``lineage gateway serve`` to the settings' broker and topic, until the block ends (SIGTERM, then wait)."""
    port = free_port()
    tokens = folder / "gateway-tokens.json"
    args = [str(VENV_BIN / "lineage"), "gateway", "serve", "--port", str(port), "--tokens", str(tokens),
            "--bootstrap-servers", settings.bootstrap_servers, "--topic", settings.topic, *extra]  # fmt: skip
    log = (folder / f"gateway-{port}.log").open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "LINEAGE_CONNECT_TIMEOUT_S": "20",
                                 "LINEAGE_KAFKA_CLIENT": settings.kafka_client, **(env or {})})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    running = Running(url, tokens, proc)
    try:
        wait_until(lambda: _answers(url), "gateway answering /health", proc)
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def gateway(client_settings: Settings, tmp_path: Path) -> Iterator[Running]:
    """A gateway on this test's fresh topic, with no rate bound: once on each Kafka client."""
    with running_gateway(client_settings, tmp_path, "--rate", "0") as running:
        yield running
