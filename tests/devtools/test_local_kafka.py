"""The local broker: its helpers, and `lineage broker` restarting a dead or stopped broker as it was."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lineage import Settings
from lineage.devtools.local_broker import LocalBroker, fetch_jars, new_cluster_id
from lineage.transport.kafka import KafkaEventSink, RawMessage, create_topics, read_messages
from tests.fixtures import wait_until


def test_cluster_ids_are_22_url_safe_characters_never_starting_with_a_dash() -> None:
    """A cluster id is a base64 UUID that the storage tool cannot mistake for an option."""
    ids = [new_cluster_id() for _ in range(5000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len({base64.urlsafe_b64decode(i + "==") for i in ids}) == 5000


def _lineage(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINEAGE_CACHE_DIR": str(cache)}
    lineage = Path(sys.executable).parent / "lineage"
    return subprocess.run([str(lineage), *args], env=env, capture_output=True, text=True, timeout=180, check=False)


def _gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (no process, or a zombie: dead, its port released)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _saved_pid(cache: Path) -> int:
    return int(json.loads((cache / "broker.json").read_text(encoding="utf-8"))["pid"])


def _kept(settings: Settings) -> list[RawMessage]:
    """Topic ``kept``'s messages: it holds the one the test wrote."""
    return list(read_messages(settings, "kept", idle_timeout_s=120, max_messages=1))


@pytest.mark.integration
def test_broker_start_revives_a_dead_jvm_and_stop_start_keeps_port_and_topics(tmp_path: Path) -> None:
    """`broker start` after a killed JVM, and `stop` then `start`, come back on the same port with the topics."""
    cache = tmp_path / "cache"
    cache.mkdir()
    jars = fetch_jars(Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parents[2] / ".cache")))
    (cache / jars.parent.name).symlink_to(jars.parent)  # the shared jars, our own broker folder
    started = _lineage(cache, "broker", "start")
    assert started.returncode == 0, started.stderr
    address = started.stdout.strip()
    settings = Settings(bootstrap_servers=address, topic="kept", client_id="test-restart", connect_timeout_s=20)
    try:
        create_topics(settings, ["kept"], partitions=1)
        sink = KafkaEventSink(settings)
        sink.send("kept", b"k", b"survives", "e1").result(30)
        sink.close(10)

        pid = _saved_pid(cache)
        os.kill(pid, signal.SIGKILL)  # the JVM dies; broker.json stays behind
        wait_until(lambda: _gone(pid), "the killed JVM gone")
        again = _lineage(cache, "broker", "start")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == address
        # a JVM just started (after kill -9: recovering its log) can take more than a few seconds to
        # serve the first fetch at load 10; the one message written ends the read as soon as it comes
        assert [m.value for m in _kept(settings)] == [b"survives"]

        assert _lineage(cache, "broker", "stop").returncode == 0
        restarted = _lineage(cache, "broker", "start")
        assert restarted.stdout.strip() == address, restarted.stderr
        assert [m.value for m in _kept(settings)] == [b"survives"]

        reset = _lineage(cache, "broker", "reset")
        assert reset.returncode == 0, reset.stderr
        assert not (cache / "broker" / "data").exists() and not (cache / "broker.json").exists()
    finally:
        _lineage(cache, "broker", "stop")


@pytest.mark.integration
def test_broker_start_replaces_a_frozen_broker_that_still_accepts_connections(tmp_path: Path) -> None:
    """`broker start` with the saved JVM frozen (SIGSTOP) starts a serving broker on the same port, not "up"."""
    cache = tmp_path / "cache"
    cache.mkdir()
    jars = fetch_jars(Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parents[2] / ".cache")))
    (cache / jars.parent.name).symlink_to(jars.parent)
    started = _lineage(cache, "broker", "start")
    assert started.returncode == 0, started.stderr
    frozen = _saved_pid(cache)
    try:
        os.kill(frozen, signal.SIGSTOP)  # the kernel still completes TCP connects to its port
        again = _lineage(cache, "broker", "start")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == started.stdout.strip()
        assert _saved_pid(cache) != frozen
        settings = Settings(bootstrap_servers=again.stdout.strip(), topic="after", client_id="t", connect_timeout_s=20)
        create_topics(settings, ["after"], partitions=1)  # the new broker serves
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen, signal.SIGKILL)  # SIGKILL ends a stopped process too
        _lineage(cache, "broker", "stop")


def test_extra_server_properties_override_the_defaults_and_must_be_one_line(tmp_path: Path) -> None:
    """``properties`` replace a default's line (num.partitions) or add one; a key or value with a newline is refused."""
    broker = LocalBroker(tmp_path / "lib", tmp_path / "kafka", properties={"num.partitions": "1", "x.y": "2"})
    text = broker._server_properties({"port": 1, "controller_port": 2, "admin_port": 3})
    lines = text.splitlines()
    assert "num.partitions=1" in lines and "num.partitions=3" not in lines and "x.y=2" in lines
    for bad in ({"a\nb": "1"}, {"a": "1\nsuper.users=User:x"}, {"a=b": "1"}):
        with pytest.raises(ValueError, match="server property"):
            LocalBroker(tmp_path / "lib", tmp_path / "kafka", properties=bad)
