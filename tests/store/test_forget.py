"""``lineage forget``: a person out of every file of an embedded store, a certificate kept, everyone else unchanged."""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from lineage import Codec, Settings, default_taxonomy
from lineage.answers import access_request, transfers_register
from lineage.answers.forget import forget_person
from lineage.console.audit import Audit
from lineage.console.db import ConsoleDB
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.certificate import certificates
from lineage.store.holdings import load_holdings, read_rows
from lineage.store.snapshots import pin
from lineage.testing import MemorySink
from lineage.world.organisations import build
from lineage.world.sim import WorldSize, emit
from tests.fixtures import run_cli, wait_until
from tests.services import Postgres, SeaweedS3

REPO = Path(__file__).parents[2]
TAXONOMY = default_taxonomy()
SIZE = WorldSize(subjects=12, days=90)
CHUNKS = 4  # ingest commits, with a holdings refresh after each: several files and snapshots


@functools.cache
def _world() -> tuple[tuple[bytes, ...], tuple[str, ...], tuple[str, ...]]:
    """Encoded events of the seed organisations plus two devices linked to the person; the person; others."""
    plans, _ = build(SIZE, TAXONOMY)
    sink = MemorySink()
    emit(plans, sink, TAXONOMY)
    codec = Codec()
    values = [m.value for m in sink.messages]
    person = plans[0].adults[0]
    first = next(r for r in map(codec.decode_record, values) if r["subject_id"] == person)
    devices = tuple(f"dev-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for device in devices:  # a device linked to the person, seen collecting their data: found by resolution
        linked = first | {"event_id": str(uuid.uuid4()), "subject_id": device, "linked_subject_ids": [person]}
        values.insert(len(values) // 2, codec.encode_record(linked))
    others = tuple(p.adults[i] for p in plans for i in (1, len(p.adults) // 2))
    return tuple(values), (person, *devices), others


def _store(folder: Path | StoreLocation, values: tuple[bytes, ...]) -> StoreLocation:
    """Ingest ``values`` in ``CHUNKS`` commits, the holdings refreshed after each; a pinned snapshot too."""
    location = folder if isinstance(folder, StoreLocation) else StoreLocation.embedded(folder)
    ing = Ingestor(location, "events", taxonomy=TAXONOMY)
    size = -(-len(values) // CHUNKS)
    for start in range(0, len(values), size):
        for offset in range(start, min(start + size, len(values))):
            assert ing.add(0, offset, values[offset]) is None
        ing.flush()
        HoldingsMaintainer(location).refresh()
        if start == size:
            pin(location, "audit-2026")  # a pin on a snapshot that holds the person
    return location


def _answers(location: StoreLocation, people: tuple[str, ...]) -> dict[str, Any]:
    """Each person's access answer and the transfer register, as of the world's end."""
    store = Store(location)
    try:
        return {
            "access": {p: access_request(store, p, TAXONOMY, SIZE.end) for p in people},
            "transfers": transfers_register(store, TAXONOMY, SIZE.end),
        }
    finally:
        store.close()


def _holdings_rows(location: StoreLocation) -> list[tuple[Any, ...]]:
    table = load_holdings(location)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    rows = read_rows(location, table, snapshot.snapshot_id).to_pylist()
    return sorted((tuple(r.values()) for r in rows), key=lambda r: tuple((v is not None, str(v)) for v in r))


def _texts(value: Any) -> list[str]:
    """Every string inside a decoded value (records, lists, bytes as text)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        return [value.decode("utf-8", "replace")]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return []


def _holds(name: str, data: bytes, ids: tuple[str, ...]) -> bool:
    """Whether a file's raw bytes, or its decoded Parquet values or Avro records, hold an identifier."""
    texts: list[str] = []
    if name.endswith(".parquet"):
        texts = _texts(pq.read_table(pa.BufferReader(data)).to_pylist())
    elif name.endswith(".avro"):
        texts = _texts(list(fastavro.reader(io.BytesIO(data))))
    return any(i.encode() in data for i in ids) or any(i in t for t in texts for i in ids)


def _files_holding(folder: Path, ids: tuple[str, ...]) -> list[str]:
    """Files under ``folder`` holding an identifier: raw bytes, decoded Parquet values, decoded Avro records."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file())
    return [str(p.relative_to(folder)) for p in paths if _holds(p.name, p.read_bytes(), ids)]


def _digest(identifier: str) -> str:
    """A keyed hash as the console's (a test key)."""
    return hmac.new(b"k" * 32, identifier.encode(), hashlib.sha256).hexdigest()


def _without(values: tuple[bytes, ...], ids: tuple[str, ...]) -> tuple[bytes, ...]:
    """The events of everyone but the person (the reference store)."""
    codec = Codec()
    return tuple(v for v in values if codec.decode_record(v)["subject_id"] not in ids)


def _reference(tmp_path: Path, values: tuple[bytes, ...], ids: tuple[str, ...]) -> dict[str, Any]:
    """The answers of a store that never held the person (the register the forgetting store must equal)."""
    return _answers(_store(tmp_path / "reference", _without(values, ids)), _world()[2])


def _check_forgotten(folder: Path, ids: tuple[str, ...], reference: dict[str, Any]) -> None:
    """No file holds the person; others' answers and the register equal a store that never held them."""
    location = StoreLocation.embedded(folder)
    assert _files_holding(folder, ids) == []
    assert [p for p in folder.rglob("*") if p.stat().st_mode & 0o077] == []  # what forget wrote is private too
    assert _answers(location, _world()[2]) == reference
    kept = _holdings_rows(location)
    HoldingsMaintainer(location).refresh(rebuild=True)  # the holdings as the remaining events make them
    assert _holdings_rows(location) == kept


def test_forget_leaves_no_file_holding_the_person_and_others_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After forget no file of the store holds a linked identifier; others and the register equal a store without."""
    values, ids, others = _world()
    folder = tmp_path / "store"
    location = _store(folder, values)
    before = _answers(location, others)
    theirs = Store(location).sql(
        "SELECT count(*) AS n FROM events WHERE list_contains($ids, subject_id)", {"ids": list(ids)}
    )
    holding = _files_holding(folder, ids)
    assert any(p.endswith(".parquet") for p in holding) and holding  # the search finds them before
    reference = _reference(tmp_path, values, ids)
    assert before["access"] == reference["access"]  # the others' answers never depended on the person
    db = ConsoleDB(f"sqlite:///{folder / 'console.db'}")  # the console looked them up: its trail names them
    Audit(db).record("ana", "analyst", "person.view", "127.0.0.1", subject=ids[0], case_ref="DSAR-3")
    db.close()
    assert "console.db" in _files_holding(folder, ids)

    code, out, err = run_cli(capsys, "forget", ids[1], "--case", "C-17", "--store", str(folder), "--grace", "0")
    assert code == 0, err
    assert "forgot 3 identifier(s) under case C-17" in out and ids[0] not in out and ids[1] not in out
    assert "console database: 1 audit entries and 0 breach rows keep the keyed hash" in out
    db = ConsoleDB(f"sqlite:///{folder / 'console.db'}")
    redacted, looked_up = Audit(db).search(case_ref="C-17") + Audit(db).search(case_ref="DSAR-3")
    assert redacted["action"] == "audit.redacted" and redacted["actor"].startswith("cli:")
    assert looked_up["subject"] == Audit(db).redacted(ids[0])
    db.close()
    for rel in holding:  # each data file that held them was rewritten under a new name or dropped
        assert not (folder / rel).exists(), rel
    _check_forgotten(folder, ids, reference)
    # the register counted the person: it now equals a store that never held them
    assert before["transfers"] != reference["transfers"]

    for identifier in ids:  # any identifier of theirs: the certificate's date and case, nothing more
        code, out, err = run_cli(capsys, "access", identifier, "--store", str(folder))
        assert code == 0, err
        assert out.strip().endswith("under case C-17.") and "erased on " in out and len(out.splitlines()) == 1
    done = [c for c in certificates(location, case_ref="C-17") if c.status == "done"]
    assert len(done) == 3 and done[0].events_rows == theirs[0]["n"] > 0  # exactly their rows, not the files' rows
    assert done[0].holdings_rows > 0 and done[0].files_rewritten > 0
    assert done[0].pins_removed == "audit-2026" and "retention" in done[0].kafka_bound
    assert _files_holding(folder, ids) == []  # the access look-ups wrote nothing of theirs either


def test_forget_finds_links_the_holdings_maintainer_has_not_applied_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Devices linked by events stored after the last holdings refresh are forgotten and certified too."""
    values, ids, _ = _world()
    codec = Codec()
    links = [v for v in values if codec.decode_record(v)["subject_id"] in ids[1:]]
    folder = tmp_path / "store"
    location = _store(folder, tuple(v for v in values if v not in links))
    ingestor = Ingestor(location, "later", taxonomy=TAXONOMY)  # the links arrive; no maintainer runs after
    for offset, value in enumerate(links):
        assert ingestor.add(0, offset, value) is None
    ingestor.flush()
    code, out, err = run_cli(capsys, "forget", ids[0], "--case", "C-18", "--store", str(folder), "--grace", "0")
    assert code == 0, err
    assert "forgot 3 identifier(s) under case C-18" in out
    assert _files_holding(folder, ids) == []


@pytest.mark.parametrize("case", [" ", "ER-1\nforgot 0 identifier(s)", "E" * 65], ids=["empty", "newline", "long"])
def test_forget_refuses_a_bad_case_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    """An empty, multi-line or over-long case reference is refused naming the field, exit 2, the store untouched."""
    values, ids, _ = _world()
    folder = tmp_path / "store"
    _store(folder, values[:200] + tuple(v for v in values if ids[0].encode() in v))
    code, out, err = run_cli(capsys, "forget", ids[0], "--case", case, "--store", str(folder))
    assert code == 2 and "case" in err and ids[0] not in err and len(err.strip().splitlines()) == 1
    assert _files_holding(folder, ids[:1])


KILLS = 5


def _forget_process(folder: Path, ids: tuple[str, ...]) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "lineage.cli", "forget", ids[0], "--case", "C-9", "--store", str(folder)]
    return subprocess.Popen([*argv, "--grace", "0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_forget_killed_at_random_completes_on_rerun(tmp_path: Path) -> None:
    """Forget killed -9 at random moments 5 times, then run again: it completes, and nothing of others is lost."""
    values, ids, _ = _world()
    folder = tmp_path / "store"
    _store(folder, values)
    reference = _reference(tmp_path, values, ids)
    timing = tmp_path / "timing"  # built apart: a copy's catalog would name the original's files
    _store(timing, values)
    started = time.monotonic()
    timed = _forget_process(timing, ids)
    _, timed_err = timed.communicate(timeout=600)
    assert timed.returncode == 0, timed_err.decode()
    took = time.monotonic() - started
    rng = random.Random(int(os.environ.get("LINEAGE_TEST_SEED", "22")))
    killed_mid_run = 0
    for _ in range(KILLS):
        proc = _forget_process(folder, ids)
        deadline = time.monotonic() + rng.uniform(0.3, 1.0) * took
        wait_until(
            lambda p=proc, d=deadline: time.monotonic() >= d or p.poll() is not None,  # type: ignore[misc]
            "the kill moment",
            timeout_s=600,
        )
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid_run += 1
        proc.wait(timeout=120)
        proc.communicate()
    final = _forget_process(folder, ids)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err.decode()
    assert killed_mid_run >= 1  # at least one kill landed while forget was working
    _check_forgotten(folder, ids, reference)
    done = [c for c in certificates(StoreLocation.embedded(folder), case_ref="C-9") if c.status == "done"]
    assert {c.digest for c in done} and len({c.digest for c in done}) == 3  # every linked identifier certified


# a forget killed once its delete's manifests are written, before the catalog commit takes them
_KILLED_AT_COMMIT = """
import os, sys
from pyiceberg.table import Transaction
from lineage.cli import main
commit = Transaction.commit_transaction
def die(self):
    if any("lineage.forget" in str(update) for update in self._updates):
        os._exit(9)
    return commit(self)
Transaction.commit_transaction = die
sys.exit(main(sys.argv[1:]))
"""


def test_a_rerun_with_the_default_grace_removes_the_manifests_a_killed_forget_left(tmp_path: Path) -> None:
    """Killed between writing its manifests and committing: the re-run (grace 60 s) leaves no file holding them."""
    values, ids, _ = _world()
    folder = tmp_path / "store"
    _store(folder, values)
    argv = ["forget", ids[0], "--case", "K-1", "--store", str(folder)]
    killed = subprocess.run([sys.executable, "-c", _KILLED_AT_COMMIT, *argv], cwd=REPO, capture_output=True)
    assert killed.returncode == 9, killed.stderr.decode()
    rerun = subprocess.run([sys.executable, "-m", "lineage.cli", *argv], cwd=REPO, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert _files_holding(folder, ids) == []


def test_forgetting_someone_never_held_keeps_history_and_certifies_nothing_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never held: no snapshot expired, the pin kept, a "nothing held" certificate (never "done"), access as usual."""
    values, ids, _ = _world()
    folder = tmp_path / "store"
    location = _store(folder, values[:300])
    snapshots = len(location.load().metadata.snapshots)
    code, out, err = run_cli(capsys, "forget", "nobody-here", "--case", "C-0", "--store", str(folder), "--grace", "0")
    assert code == 0, err
    assert out.startswith("nothing held") and "nothing removed" in out and "forgot" not in out
    first = out.splitlines()[0]  # the topics may still carry events of the identifier: the bound is stated anyway
    assert first.endswith("; " + certificates(location, case_ref="C-0")[-1].kafka_bound), first
    assert len(location.load().metadata.snapshots) == snapshots and "audit-2026" in location.load().metadata.refs
    made = certificates(location, case_ref="C-0")
    assert made and "done" not in {c.status for c in made} and made[-1].status == "nothing held"
    code, out, err = run_cli(capsys, "access", "nobody-here", "--store", str(folder))
    assert code == 0, err
    assert "erased" not in out  # no claim that the store erased what it never held


def test_a_certificate_file_a_killed_forget_left_is_removed_by_the_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forget killed while writing its certificate leaves a file under the table: the next run removes it."""
    values, ids, _ = _world()
    folder = tmp_path / "store"
    _store(folder, values[:300])
    code, _, err = run_cli(capsys, "forget", ids[0], "--case", "C-1", "--store", str(folder), "--grace", "0")
    assert code == 0, err
    data = folder / "warehouse" / "lineage" / "erasures" / "data"
    left = data / "00000-0-killed-mid-write.parquet"
    left.touch(mode=0o600)  # as a kill right after the writer opened it leaves it: empty
    code, _, err = run_cli(capsys, "forget", "nobody-here", "--case", "C-2", "--store", str(folder), "--grace", "0")
    assert code == 0, err
    assert not left.exists() and list(data.glob("*.parquet"))  # the certificates' own files stay
    assert {c.case_ref for c in certificates(StoreLocation.embedded(folder), case_ref="C-1")} == {"C-1"}


@pytest.mark.integration
def test_forget_on_postgres_and_s3_leaves_no_object_holding_the_person(
    tmp_path: Path, postgres: Postgres, s3: SeaweedS3
) -> None:
    """The same proof on a PostgreSQL catalog and an S3 warehouse: no object under the prefix holds them."""
    values, ids, others = _world()
    namespace = f"f_{uuid.uuid4().hex[:12]}"
    env = {
        "LINEAGE_CATALOG_URI": postgres.sqlalchemy_uri(),
        "LINEAGE_CATALOG_PASSWORD": postgres.password,
        "LINEAGE_NAMESPACE": namespace,
        "LINEAGE_WAREHOUSE": f"s3://{s3.bucket}/{namespace}",
        "LINEAGE_S3_ENDPOINT": s3.endpoint,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    location = _store(StoreLocation.from_settings(Settings.from_env(env), tmp_path / "unused"), values)
    reference = _reference(tmp_path, values, ids)
    objects = s3.filesystem()

    def holding() -> list[str]:
        found = objects.get_file_info(pafs.FileSelector(f"{s3.bucket}/{namespace}", recursive=True))
        files = [f.path for f in found if f.type == pafs.FileType.File]
        return [p for p in files if _holds(p, objects.open_input_file(p).readall(), ids)]

    assert holding()
    forget_person(Store(location), [ids[0]], case_ref="S3-1", kafka_bound="-", grace_s=0, digest=_digest,
                  refresh_holdings=HoldingsMaintainer(location).refresh)  # fmt: skip
    assert holding() == []
    assert _answers(location, others) == reference
    assert {c.status for c in certificates(location, case_ref="S3-1")} == {"started", "done"}


def test_forget_racing_a_consumer_loses_none_of_the_others_events(tmp_path: Path) -> None:
    """A consumer commits others' events in 12 batches while forget runs: every one is stored, none of the person's."""
    values, ids, _ = _world()
    codec = Codec()
    mine = [v for v in values if codec.decode_record(v)["subject_id"] in ids]
    rest = [v for v in values if codec.decode_record(v)["subject_id"] not in ids]
    half = len(rest) // 2
    folder = tmp_path / "store"
    location = _store(folder, (*mine, *rest[:half]))
    ingestor = Ingestor(location, "late", taxonomy=TAXONOMY)
    late = rest[half:]
    failures: list[BaseException] = []

    def consume() -> None:
        try:
            step = -(-len(late) // 12)
            for start in range(0, len(late), step):
                for offset in range(start, min(start + step, len(late))):
                    assert ingestor.add(0, offset, late[offset]) is None
                ingestor.flush()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    forget_person(Store(location), [ids[0]], case_ref="R-1", kafka_bound="-", digest=_digest,
                  refresh_holdings=HoldingsMaintainer(location).refresh)  # fmt: skip
    consumer.join(timeout=600)
    assert not consumer.is_alive() and not failures, failures
    stored = Store(location, holdings=False)
    assert stored.count() == len(rest)
    assert stored.sql("SELECT count(*) AS n FROM events WHERE list_contains($ids, subject_id)", {"ids": list(ids)}) == [
        {"n": 0}
    ]
