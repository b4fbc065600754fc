"""Kept plans: a new process reading an unchanged embedded store uses the last plan of its files, never a stale one."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import lineage.store.holdings as holdings_module
from lineage.answers.forget import forget_person
from lineage.codec.avro import Codec
from lineage.contract.records import Party, make_record
from lineage.contract.taxonomy import default_taxonomy
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation, plans
from lineage.store.catalog import PLANS_FILE
from tests.fixtures import access_processes, store_of

AT = datetime(2026, 5, 1, tzinfo=UTC)
APP = Party(name="app", role="internal", region="CN")


def _collected(subject: str, day: int) -> object:
    return make_record("COLLECTED", system="app", system_region="CN", subject_id=subject, holder=APP,
                       categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                       occurred_at=AT + timedelta(days=day))  # fmt: skip


def _store(folder: Path) -> Store:
    return store_of([_collected(f"s{i}", i) for i in range(3)], folder)  # type: ignore[list-item]


def _add(folder: Path, subject: str, offset: int) -> None:
    """One more event stored at ``offset`` and the holdings brought up to date (both tables change)."""
    ingestor = Ingestor(StoreLocation.embedded(folder), "events", taxonomy=default_taxonomy())
    assert ingestor.add(0, offset, Codec().encode_record(_collected(subject, 9))) is None  # type: ignore[arg-type]
    ingestor.flush()
    HoldingsMaintainer(StoreLocation.embedded(folder)).refresh()


def _subjects(store: Store) -> list[str]:
    """The subjects the store's pinned read holds."""
    return [r["subject_id"] for r in store.sql("SELECT DISTINCT subject_id FROM events ORDER BY 1")]


def _planned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the plans made from here on (``holdings.pinned_state`` calls)."""
    calls: list[int] = []
    real = holdings_module.pinned_state

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(holdings_module, "pinned_state", counted)
    return calls


def test_a_new_reader_of_an_unchanged_store_plans_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan one reader made is read by the next from a private file, and both see the same rows."""
    first = _store(tmp_path / "store")
    seen = _subjects(first)
    kept = tmp_path / "store" / PLANS_FILE
    assert kept.is_file() and kept.stat().st_mode & 0o777 == 0o600
    planned = _planned(monkeypatch)
    again = Store(tmp_path / "store")
    assert _subjects(again) == seen == ["s0", "s1", "s2"] and again.snapshot_id == first.snapshot_id
    assert planned == []


def test_a_commit_to_either_table_makes_the_kept_pin_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After new events and a holdings refresh, a new reader plans again and sees them."""
    first = _store(tmp_path / "store")
    assert _subjects(first) == ["s0", "s1", "s2"]
    _add(tmp_path / "store", "s9", 3)
    planned = _planned(monkeypatch)
    after = Store(tmp_path / "store")
    assert _subjects(after) == ["s0", "s1", "s2", "s9"] and after.snapshot_id != first.snapshot_id
    assert planned == [1]
    assert _subjects(Store(tmp_path / "store")) == ["s0", "s1", "s2", "s9"] and planned == [1]  # kept again


def _garbled(kept: dict[str, object]) -> list[dict[str, object]]:
    """``kept`` (a good plans file) made wrong in each way a reader must survive by planning."""
    (key, plan), = kept["plans"].items()  # type: ignore[attr-defined]
    one = (lambda **change: {**kept, "plans": {key: {**plan, **change}}})  # noqa: E731
    return [
        {**kept, "format": 0}, {**kept, "plans": []}, {**kept, "facts": []},
        one(event_files=None), one(event_rows=[]), one(events_snapshot="1"), one(reset_files=["elsewhere"]),
        one(base={}), one(reflects=[1]), one(reflects={"t": {"x": 1}}), one(stray=1),
        one(reflects={"t": {"0": 1e400}}), one(reflects={"t": {"0": 1.5}}), one(behind=-3), one(behind=True),
        one(event_rows=[2**70] * len(plan["event_rows"])),
    ]


def test_a_garbled_plans_file_is_planned_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plans file not of our shape (not JSON, another format, a field of the wrong kind) is ignored and replaced."""
    _subjects(_store(tmp_path / "store"))
    kept = tmp_path / "store" / PLANS_FILE
    good = json.loads(kept.read_text())
    for garbage in ["{not json", "[" * 100_000, *map(json.dumps, _garbled(good))]:
        kept.write_text(garbage)
        planned = _planned(monkeypatch)
        assert _subjects(Store(tmp_path / "store")) == ["s0", "s1", "s2"] and planned == [1], garbage
        assert json.loads(kept.read_text()) == good


def test_a_plans_file_others_may_write_or_not_a_file_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group-writable, or a FIFO: the reader plans (and does not hang on the FIFO)."""
    _subjects(_store(tmp_path / "store"))
    kept = tmp_path / "store" / PLANS_FILE
    kept.chmod(0o620)
    planned = _planned(monkeypatch)
    assert _subjects(Store(tmp_path / "store")) == ["s0", "s1", "s2"] and planned == [1]
    kept.unlink()
    os.mkfifo(kept, 0o600)
    answered: list[list[str]] = []
    reader = threading.Thread(target=lambda: answered.append(_subjects(Store(tmp_path / "store"))), daemon=True)
    reader.start()
    reader.join(timeout=120)
    assert answered == [["s0", "s1", "s2"]] and planned == [1, 1]


def test_plans_are_never_written_through_a_symlink(tmp_path: Path) -> None:
    """A symlink put where the plans file goes is not followed: its target is untouched and the answer right."""
    _store(tmp_path / "store")
    kept = tmp_path / "store" / PLANS_FILE
    kept.unlink(missing_ok=True)
    target = tmp_path / "elsewhere.txt"
    target.write_text("someone else's")
    kept.symlink_to(target)
    assert _subjects(Store(tmp_path / "store")) == ["s0", "s1", "s2"]
    assert target.read_text() == "someone else's" and kept.is_symlink()


def test_versions_read_from_the_catalog_file_equal_the_catalogs(tmp_path: Path) -> None:
    """The catalog file read with sqlite3 names each table's metadata file as pyiceberg's catalog does."""
    _store(tmp_path / "store")
    location = StoreLocation.embedded(tmp_path / "store")
    quick = location.versions()
    assert quick == location.versions(location.catalog())
    assert {name for name, _ in quick} >= {"events", "holdings"}


def test_a_fact_of_a_read_is_computed_once_per_state(tmp_path: Path) -> None:
    """``Store.kept``: a second process reads the fact the first computed; after a commit it is computed again."""
    first = _store(tmp_path / "store")
    assert first.kept("answer", lambda: "42", bool) == "42"
    assert Store(tmp_path / "store").kept("answer", lambda: pytest.fail("computed again"), bool) == "42"
    assert Store(tmp_path / "store").kept("answer", lambda: "40", lambda text: text != "42") == "40"  # refused
    by_id = Store(tmp_path / "store", snapshot=first.pinned().snapshot_id)
    assert by_id.kept("answer", lambda: "41", bool) == "41"  # the same state asked another way: its own fact
    _add(tmp_path / "store", "s9", 3)
    assert Store(tmp_path / "store").kept("answer", lambda: "43", bool) == "43"


def test_only_the_folder_owner_and_readers_of_holdings_keep_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's reader leaves no file the owner could not read; the maintainer's reads keep none."""
    _store(tmp_path / "store")
    kept = tmp_path / "store" / PLANS_FILE
    assert Store(tmp_path / "store", holdings=False).count() == 3 and not kept.exists()
    monkeypatch.setattr(plans.os, "geteuid", lambda: os.getuid() + 1)
    assert _subjects(Store(tmp_path / "store")) == ["s0", "s1", "s2"] and not kept.exists()


def test_forget_removes_the_kept_plans(tmp_path: Path) -> None:
    """After a forget the plans file, which may name the person's event times, is gone."""
    location = StoreLocation.embedded(tmp_path / "store")
    _subjects(_store(tmp_path / "store"))
    assert (tmp_path / "store" / PLANS_FILE).is_file()
    forget_person(Store(location), ["s1"], case_ref="P-1", kafka_bound="-", grace_s=0,
                  digest=lambda i: hashlib.sha256(i.encode()).hexdigest(),
                  refresh_holdings=HoldingsMaintainer(location).refresh)  # fmt: skip
    assert not (tmp_path / "store" / PLANS_FILE).exists()
    assert _subjects(Store(location)) == ["s0", "s2"]


def test_a_fact_computed_across_a_forget_is_not_kept(tmp_path: Path) -> None:
    """A reader whose scan spans a forget leaves no file: the forget's removal of the plans stands."""
    location = StoreLocation.embedded(tmp_path / "store")
    reader = _store(tmp_path / "store")
    reader.pinned()

    def scanned_while_forgotten() -> str:
        forget_person(Store(location), ["s1"], case_ref="P-2", kafka_bound="-", grace_s=0,
                      digest=lambda i: hashlib.sha256(i.encode()).hexdigest(),
                      refresh_holdings=HoldingsMaintainer(location).refresh)  # fmt: skip
        return "2026-05-02T00:00:00+00:00"

    assert reader.kept("latest", scanned_while_forgotten, bool) == "2026-05-02T00:00:00+00:00"
    assert not (tmp_path / "store" / PLANS_FILE).exists()


def test_a_one_off_access_imports_no_pyiceberg_once_pins_are_kept(tmp_path: Path) -> None:
    """``lineage access`` as a new process on an unchanged store answers the same without pyiceberg or SQLAlchemy."""
    _store(tmp_path / "store")
    (first, first_heavy), (second, second_heavy) = access_processes(tmp_path / "store", "s1")
    assert "pyiceberg" in first_heavy and second_heavy == []  # the first planned the pin, the second read it
    assert first == second and first["holds_data"] is True


def test_the_newest_read_asked_again_by_its_id_is_planned_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a command pins its read (the newest, then by that id), one plan serves both; another id is planned."""
    _add(tmp_path / "store", "s0", 0)
    _add(tmp_path / "store", "s1", 1)
    planned = _planned(monkeypatch)
    store = Store(tmp_path / "store")
    newest = store.pinned().snapshot_id
    store.snapshot = newest
    assert store.pinned().snapshot_id == newest and _subjects(store) == ["s0", "s1"] and planned == [1]
    first = [s for s in Store(tmp_path / "store").location.load().snapshots() if s.snapshot_id != newest][0]
    store.snapshot = first.snapshot_id
    assert _subjects(store) == ["s0"] and planned == [1, 1]
