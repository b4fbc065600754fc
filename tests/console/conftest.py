"""The console's test world: a small simulated store with hostile names, a console over it, signed-in clients."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lineage import Party, default_taxonomy
from lineage.codec import Codec
from lineage.console.app import Console, create_app
from lineage.console.db import ConsoleDB
from lineage.console.server import build_console
from lineage.contract.policy import policy_dir
from lineage.contract.records import make_record
from lineage.devtools.ports import free_port
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store
from lineage.testing import MemorySink
from lineage.world.organisations import build
from lineage.world.sim import WorldSize, emit

TAXONOMY = default_taxonomy()
SIZE = WorldSize(subjects=25, days=60, seed=5, violations=1)
PASSWORD = "correct-horse-battery-staple"
#: names built to break out of HTML text, attributes, scripts, SVG and links
HOSTILE_SYSTEM = "<svg onload=alert(1)>\"'sys"
HOSTILE_PARTY = "javascript:alert(2)//</script><script>alert(3)</script><img src=x onerror=alert(4)>"
HOSTILE_SUBJECT = "hostile-subject-1"
LINKED = ("acct-7", "device-7")  # one person known by two identifiers


@dataclass(frozen=True)
class World:
    """The stored world: its folder, the policies, a subject with data, and the hostile holder names."""

    folder: Path
    store: Store
    policies: list[object]
    subject: str


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Every seed organisation (small), plus a hostile-named system and party, and two linked identifiers."""
    folder = tmp_path_factory.mktemp("console") / "store"
    plans, _ = build(SIZE, TAXONOMY)
    sink = MemorySink()
    emit(plans, sink, TAXONOMY)
    at = SIZE.end - timedelta(days=2)
    extra = [
        make_record("COLLECTED", system=HOSTILE_SYSTEM, system_region="CN", subject_id=LINKED[0],
                    linked_subject_ids=[LINKED[1]], subject_jurisdiction="CN", categories=["user.contact.email"],
                    purpose="essential.service", legal_basis="CONTRACT", source="direct", occurred_at=at),
        make_record("SHARED", system=HOSTILE_SYSTEM, system_region="CN", subject_id=LINKED[0],
                    categories=["user.contact.email"], purpose="essential.service",
                    recipient=Party(name=HOSTILE_PARTY, role="third_party", region="US"), occurred_at=at,
                    mechanism="pipl.standard_contract"),
        make_record("COLLECTED", system=HOSTILE_SYSTEM, system_region="CN", subject_id=HOSTILE_SUBJECT,
                    categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                    source="direct", occurred_at=at),
    ]  # fmt: skip
    ingestor = Ingestor(folder, "events", taxonomy=TAXONOMY)
    codec = Codec()
    offset = 0
    for message in sink.messages:
        assert ingestor.add(0, offset, message.value) is None
        offset += 1
    for record in extra:
        assert ingestor.add(0, offset, codec.encode_record(record)) is None
        offset += 1
    ingestor.flush()
    from lineage.contract.policy import load_policy

    policies = [load_policy(p, TAXONOMY) for p in sorted(policy_dir().glob("*.toml"))]
    return World(folder, Store(folder), policies, LINKED[1])


@pytest.fixture
def console(world: World, tmp_path: Path) -> Iterator[Console]:
    """A console over the world with a fresh SQLite database and one account per role (password PASSWORD)."""
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    c = build_console(world.store, TAXONOMY, db, policies=world.policies)  # type: ignore[arg-type]
    for role in ("analyst", "responder", "auditor", "admin"):
        c.accounts.add(role, role, PASSWORD)
    yield c
    c.service.close()
    db.close()


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    """Sign in through the real form (its pre-session CSRF token included)."""
    form = client.get("/login")
    r = client.post("/login", data={"name": name, "password": password, "csrf": csrf_of(form.text)},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text[:300]
    return client


@pytest.fixture
def client_for(console: Console) -> Iterator[Callable[[str | None], TestClient]]:
    """A test client per role, signed in (None: anonymous)."""
    app = create_app(console)
    made: list[TestClient] = []

    def make(role: str | None) -> TestClient:
        client = TestClient(app, base_url="http://127.0.0.1")
        made.append(client)
        return sign_in(client, role) if role else client

    yield make
    for client in made:
        client.close()


def lineage(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``lineage`` command (a real process)."""
    return subprocess.run([sys.executable, "-m", "lineage.cli", *args], input=stdin, capture_output=True, text=True,
                          check=False, timeout=120, env=None if env is None else {**os.environ, **env})  # fmt: skip


@contextmanager
def serving(store: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None) -> Iterator[str]:
    """``lineage serve`` as a real process on a loopback port (free if not given; no audit copy on Kafka); its URL."""
    port = port or free_port()
    log_path = store.parent / f"serve-{port}.log"
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lineage.cli", "serve", "--store", str(store), "--port", str(port),
             "--no-audit-kafka", *args],
            stdout=log, stderr=subprocess.STDOUT, env=None if env is None else {**os.environ, **env},
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120  # a loaded CI machine starts it slowly
            while True:
                try:
                    with urllib.request.urlopen(url + "/login", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None:
                        pytest.fail(f"lineage serve exited: {log_path.read_text()[-2000:]}", pytrace=False)
                    if time.monotonic() > deadline:
                        pytest.fail("lineage serve did not answer within 120 s", pytrace=False)
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
