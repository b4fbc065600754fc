"""The registers of one read are computed once: every page, sort, download and request at once reuses them."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import lineage.console.service as console_service
import lineage.service.answers as service_answers  # where every door's registers are answered
import lineage.store.forget as store_forget
from lineage import Party
from lineage.answers.forget import forget_person
from lineage.codec import Codec
from lineage.console import kept
from lineage.console.app import Console, create_app
from lineage.console.db import ConsoleDB
from lineage.console.server import build_console
from lineage.console.service import Service
from lineage.contract.records import Record, make_record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.certificate import STARTED, record_certificate
from lineage.store.forget import column_in, delete_rows
from lineage.store.retention import retire_events
from lineage.store.tables import EVENTS
from tests.console.conftest import TAXONOMY, World, sign_in
from tests.fixtures import T0, run_cli
from tests.services import Postgres


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the transfer registers computed from now on (one per computation of the registers)."""
    calls: list[int] = []
    real = service_answers.transfers

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(service_answers, "transfers", counting)
    return calls


def test_pages_and_requests_at_once_on_an_unchanged_store_share_one_computation(
    console: Console, client_for: Callable[[str | None], TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pages, a sort, a download and four requests at once: the registers are computed once."""
    calls = _counted(monkeypatch)
    analyst = client_for("analyst")
    for params in ({}, {"transfers.page": "2"}, {"transfers.sort": "year", "transfers.desc": "1"}):
        assert analyst.get("/registers", params=params).status_code == 200
    assert analyst.get("/registers/transfers.csv").status_code == 200
    threads = [threading.Thread(target=console.service.registers) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(calls) == 1


def _shared(subject: str, minute: int) -> Record:
    return make_record("SHARED", system="app", system_region="CN", subject_id=subject,
                       categories=["user.contact.email"], purpose="essential.service",
                       recipient=Party(name="pay", role="processor", region="US"),
                       mechanism="pipl.standard_contract", occurred_at=T0 + timedelta(minutes=minute))  # fmt: skip


def _store(location: StoreLocation, records: list[Record], first: int) -> None:
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    codec = Codec()
    for offset, record in enumerate(records, start=first):
        assert ingestor.add(0, offset, codec.encode_record(record)) is None
    ingestor.flush()
    HoldingsMaintainer(location).refresh()


def _individuals(service: Service) -> int:
    return sum(int(r["individuals"]) for r in service.registers()["transfers"][2]["transfers"])


def _renewed(service: Service) -> None:
    """Wait for the registers being computed behind the kept ones (if any) to be done."""
    renewing = service._renewing  # noqa: SLF001 - the test waits on the condition, never on a sleep
    if renewing is not None:
        renewing.result(timeout=300)


def test_new_events_are_shown_once_computed_behind_the_kept_registers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new read shows the kept registers at once, marked updating, and its own once computed; an old answer too."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    service = Service(Store(location), TAXONOMY, db=db)
    try:
        calls = _counted(monkeypatch)
        assert _individuals(service) == 1 and _individuals(service) == 1 and len(calls) == 1
        first = service.registers()["stamp"]
        assert "updating" not in first
        _store(location, [_shared("b", 1)], first=1)
        shown = service.registers()
        assert shown["stamp"]["store_snapshot"] == first["store_snapshot"] and "updating" in shown["stamp"]
        assert sum(int(r["individuals"]) for r in shown["transfers"][2]["transfers"]) == 1  # the kept ones, whole
        _renewed(service)
        now = service.registers()
        assert "updating" not in now["stamp"] and now["stamp"]["store_snapshot"] != first["store_snapshot"]
        assert _individuals(service) == 2 and len(calls) == 2
        monkeypatch.setattr(console_service, "REGISTERS_KEPT_S", 0.0)  # the same read, but an answer too old
        assert _individuals(service) == 2
        _renewed(service)
        assert len(calls) == 3
    finally:
        service.close()
        db.close()


def test_a_failed_computation_behind_the_kept_registers_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The store failing while newer registers are computed: the kept ones stay shown, one log line says why."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    service = Service(Store(location), TAXONOMY, db=db)
    try:
        assert _individuals(service) == 1
        _store(location, [_shared("b", 1)], first=1)

        def failing(*args: Any, **kwargs: Any) -> Any:
            raise console_service.LineageError("store: the catalog did not answer")

        monkeypatch.setattr(service_answers, "transfers", failing)
        assert _individuals(service) == 1
        _renewed(service)
        assert _individuals(service) == 1 and "updating" in service.registers()["stamp"]
        assert "registers: could not compute newer ones: store: the catalog did not answer" in caplog.text
    finally:
        service.close()
        db.close()


def test_after_rows_are_removed_the_kept_registers_are_never_shown_again(tmp_path: Path) -> None:
    """A delete in the store (as another worker's forget makes): the next view computes anew, never shows the kept."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    service = Service(Store(location), TAXONOMY, db=db)
    try:
        assert _individuals(service) == 2
        delete_rows(location, EVENTS, column_in("subject_id", ["a"]))  # not an append: rows may be a person's
        HoldingsMaintainer(location).refresh(rebuild=True)
        shown = service.registers()
        assert "updating" not in shown["stamp"] and _individuals(service) == 1
        _store(location, [_shared("c", 2)], first=2)  # only added: the kept ones may be shown while renewed
        assert "updating" in service.registers()["stamp"]
    finally:
        service.close()
        db.close()


def test_another_worker_shows_the_registers_kept_in_the_database_without_computing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second worker (or a restart) shows the first one's registers: as they are on the same read, updating after."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    first = Service(Store(location), TAXONOMY, db=db)
    try:
        computed = first.registers()
    finally:
        first.close()
    calls = _counted(monkeypatch)
    second = Service(Store(location), TAXONOMY, db=db)
    try:
        assert second.registers() == computed and len(calls) == 0  # same read: shown as computed, not computed
    finally:
        second.close()
    _store(location, [_shared("b", 1)], first=1)  # only added since
    third = Service(Store(location), TAXONOMY, db=db)
    try:
        shown = third.registers()
        assert "updating" in shown["stamp"] and shown["stamp"]["store_snapshot"] == computed["stamp"]["store_snapshot"]
        _renewed(third)
        assert _individuals(third) == 2 and len(calls) == 1
    finally:
        third.close()
        db.close()


def test_registers_kept_in_the_database_are_never_shown_after_rows_were_removed(tmp_path: Path) -> None:
    """After a delete in the store (a forget, retention) a new worker computes anew; a forget deletes them."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    first = Service(Store(location), TAXONOMY, db=db)
    try:
        assert _individuals(first) == 2
    finally:
        first.close()
    delete_rows(location, EVENTS, column_in("subject_id", ["a"]))  # not an append: rows may be a person's
    HoldingsMaintainer(location).refresh(rebuild=True)
    second = Service(Store(location), TAXONOMY, db=db)
    try:
        shown = second.registers()
        assert "updating" not in shown["stamp"] and _individuals(second) == 1
        with db.tx() as tx:
            assert tx.one("SELECT count(*) AS n FROM console_registers") == {"n": 1}
        second.forget_registers()  # as the console's forget does
        with db.tx() as tx:
            assert tx.one("SELECT count(*) AS n FROM console_registers") == {"n": 0}
    finally:
        second.close()
        db.close()


def test_the_registers_page_of_kept_registers_reads_as_the_computed_one(
    world: World, console: Console, client_for: Callable[[str | None], TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every organisation's registers, kept in the database and read back by another worker: the same page and API."""
    found = console.service.registers()
    assert kept.decode(kept.encode(found)) == found  # tuples and times come back as they were
    analyst = client_for("analyst")
    page, api = analyst.get("/registers").text, analyst.get("/api/registers").json()
    calls = _counted(monkeypatch)
    other = build_console(world.store, TAXONOMY, console.service.db, policies=world.policies)  # type: ignore[arg-type]
    try:
        with TestClient(create_app(other), base_url="http://127.0.0.1") as client:
            sign_in(client, "analyst")
            assert _without_csrf(client.get("/registers").text) == _without_csrf(page)
            assert client.get("/api/registers").json() == api
        assert len(calls) == 0  # read from the database, not computed
    finally:
        other.service.close()


def _without_csrf(html: str) -> str:
    return re.sub(r'name="csrf" value="[^"]+"', "", html)


def _forget(location: StoreLocation, subject: str, case_ref: str) -> None:
    """``lineage forget`` of one subject, as the command line runs it (no console involved)."""
    forget_person(Store(location), [subject], case_ref=case_ref, digest=lambda s: f"digest-{s}", kafka_bound="-",
                  refresh_holdings=HoldingsMaintainer(location).refresh, grace_s=0)  # fmt: skip


def test_a_forget_of_holdings_alone_never_shows_the_kept_registers(tmp_path: Path) -> None:
    """A person whose events were retired, forgotten: only the holdings change; the kept registers go all the same."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    retire_events(location, T0 + timedelta(days=1), refresh_holdings=HoldingsMaintainer(location).refresh)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    first, second = Service(Store(location), TAXONOMY, db=db), Service(Store(location), TAXONOMY, db=db)
    try:
        assert _individuals(first) == 2 and _individuals(second) == 2  # the holdings keep both
        _forget(location, "a", "C-1")  # the events table is not changed: it holds none of theirs
        third = Service(Store(location), TAXONOMY, db=db)  # another worker, or a restart
        try:
            assert _individuals(third) == 1 and _individuals(second) == 1  # from the database, and in memory
        finally:
            third.close()
    finally:
        first.close()
        second.close()
        db.close()


def test_registers_computed_across_a_forget_are_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another worker's forget during a computation: what it computed (counting the person) is not kept or saved."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    service = Service(Store(location), TAXONOMY, db=db)
    real = service._compute_registers  # noqa: SLF001 - the forget is run inside the computation

    def across_a_forget(held: Store, stop: threading.Event | None = None) -> dict[str, Any]:
        found = real(held, stop)
        _forget(location, "a", "C-2")
        kept.drop(db)  # as the other worker's forget does
        return found

    monkeypatch.setattr(service, "_compute_registers", across_a_forget)
    try:
        service.registers()
        assert kept.load(db, service._registers_key) is None  # noqa: SLF001
        monkeypatch.setattr(service, "_compute_registers", real)
        assert _individuals(service) == 1
    finally:
        service.close()
        db.close()


def test_the_command_lines_forget_deletes_the_kept_registers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lineage forget` rewrites the console database without the kept registers: no event id of the person is left."""
    for name in ("LINEAGE_CONSOLE_DB", "LINEAGE_STORE"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "store"
    location = StoreLocation.embedded(folder)
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    theirs = Store(location).event_ids()[0]
    db = ConsoleDB(f"sqlite:///{(folder / 'console.db').resolve()}")
    service = Service(Store(location), TAXONOMY, db=db)
    try:
        assert theirs in kept.encode(service.registers())  # a RoPA flag names the event
    finally:
        service.close()
        db.close()
    code, _, err = run_cli(capsys, "forget", "a", "--case", "C-3", "--store", str(folder), "--grace", "0")
    assert code == 0, err
    assert theirs not in Store(location).event_ids()  # it was the forgotten person's
    assert theirs.encode() not in (folder / "console.db").read_bytes()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_database_keeps_the_newest_registers_per_key(tmp_path: Path, postgres: Postgres, backend: str) -> None:
    """Saved, read back equal, never replaced by ones computed earlier (a slower worker's), and dropped."""
    db = (ConsoleDB(postgres.sqlalchemy_uri(), postgres.password) if backend == "postgresql"
          else ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}"))  # fmt: skip
    key = f"test-{uuid.uuid4().hex}"  # PostgreSQL's database is the session's: this run's key alone
    newer = kept.KeptRegisters((2, 3, "v2"), 200.0, {"doc": ("title", {"at": T0}, {"rows": [{"n": 1}]})})
    older = kept.KeptRegisters((1, None, None), 100.0, {"doc": ()})
    try:
        kept.save(db, key, newer)
        kept.save(db, key, older)
        assert kept.load(db, key) == newer
        kept.drop(db)
        assert kept.load(db, key) is None
    finally:
        db.close()


class _Killed(BaseException):
    """The forget killed midway (Ctrl-C while it waits out the grace)."""


def test_registers_computed_while_a_forget_is_unfinished_are_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forget of holdings alone killed after removing them: registers computed meanwhile are never shown again."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    retire_events(location, T0 + timedelta(days=1), refresh_holdings=HoldingsMaintainer(location).refresh)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    worker = Service(Store(location), TAXONOMY, db=db)
    real = store_forget.forget_rows

    def computed_then_killed(*args: Any, **kwargs: Any) -> Any:
        assert _individuals(worker) == 2  # 'started' is written: another worker computes from this read

        def killed(*_: Any, **__: Any) -> Any:
            raise _Killed

        monkeypatch.setattr(store_forget, "drop_history", killed)  # after the rows are removed
        return real(*args, **kwargs)

    monkeypatch.setattr(store_forget, "forget_rows", computed_then_killed)  # as forget_person imports it
    try:
        with pytest.raises(_Killed):
            _forget(location, "a", "C-9")
        assert kept.load(db, worker._registers_key) is None  # noqa: SLF001
        fresh = Service(Store(location), TAXONOMY, db=db)  # another worker, or a restart
        try:
            assert _individuals(fresh) == 1 and _individuals(worker) == 1
        finally:
            fresh.close()
    finally:
        worker.close()
        db.close()


def test_while_a_forget_is_unfinished_views_of_one_read_share_one_computation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not kept while a forget runs, but computed once per read: a later view of the same read waits on no one."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    record_certificate(location, ["digest-a"], case_ref="C-10", status=STARTED, erased_at=T0, removed=None,
                       kafka_bound="-")  # fmt: skip  (a forget begun, its rows not yet removed)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    service = Service(Store(location), TAXONOMY, db=db)
    calls = _counted(monkeypatch)
    try:
        assert _individuals(service) == 2 and _individuals(service) == 2 and len(calls) == 1
        assert kept.load(db, service._registers_key) is None  # noqa: SLF001 - never saved
        _store(location, [_shared("c", 2)], first=2)  # a new read: computed anew, never the last one shown
        assert _individuals(service) == 3 and len(calls) == 2
    finally:
        service.close()
        db.close()


def test_a_served_console_computes_the_registers_before_any_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warmed as it starts (as `lineage serve` does), and again after a forget: no view waits for them."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    calls = _counted(monkeypatch)
    service = Service(Store(location), TAXONOMY, db=db, digest=lambda s: f"digest-{s}")
    app = create_app(Console(service, *[None] * 4), on_start=service.warm_registers)  # type: ignore[arg-type]
    try:
        with TestClient(app):  # runs the app's start, as the server does
            _renewed(service)
            assert len(calls) == 1 and kept.load(db, service._registers_key) is not None  # noqa: SLF001
            assert _individuals(service) == 2 and len(calls) == 1  # the view computed nothing
            service.forget(["a"], "C-9")
            kept.drop(db)  # as the console's redaction does after the forget
            service.forgotten()
            _renewed(service)
            assert len(calls) == 2
            again = kept.load(db, service._registers_key)  # noqa: SLF001
            assert again is not None and again.read[2] is not None  # of the read after the forget
            assert _individuals(service) == 1 and len(calls) == 2
    finally:
        service.close()
        db.close()


def test_kept_registers_from_before_rows_left_are_computed_anew_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept ones of a read before another process's forget: never shown, so the warm-up computes the current ones."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    first = Service(Store(location), TAXONOMY, db=db)
    try:
        assert _individuals(first) == 2
    finally:
        first.close()
    _forget(location, "a", "C-11")  # by another process: the kept ones stay in the database
    calls = _counted(monkeypatch)
    service = Service(Store(location), TAXONOMY, db=db)
    try:
        service.warm_registers()
        _renewed(service)
        assert len(calls) == 1
        assert _individuals(service) == 1 and len(calls) == 1  # the view shows those computed ahead
    finally:
        service.close()
        db.close()


def test_a_worker_finding_gone_registers_leaves_another_workers_claim_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers starting together after a forget: the one without the claim computes nothing and drops nothing."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0), _shared("b", 1)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    first = Service(Store(location), TAXONOMY, db=db)
    try:
        assert _individuals(first) == 2
    finally:
        first.close()
    _forget(location, "a", "C-12")  # by another process: the kept ones stay in the database, gone
    calls = _counted(monkeypatch)
    service = Service(Store(location), TAXONOMY, db=db)
    key = service._registers_key  # noqa: SLF001
    try:
        assert kept.claim(db, key, 600.0, "the other worker")  # it computes them
        service.warm_registers()
        _renewed(service)
        assert len(calls) == 0
        assert not kept.claim(db, key, 600.0, "a third")  # the other worker's claim stands
    finally:
        service.close()
        db.close()


def test_closing_the_console_ends_a_computation_ahead_between_two_registers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop during the warm-up waits for one register at most, keeps nothing and leaves no claim."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    service = Service(Store(location), TAXONOMY, db=db)
    started, closing = threading.Event(), threading.Event()
    real = service_answers.transfers

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert closing.wait(120)  # until close has begun
        return real(*args, **kwargs)

    monkeypatch.setattr(service_answers, "transfers", slow)
    monkeypatch.setattr(service, "_closing", _Signalling(closing))
    try:
        service.warm_registers()
        assert started.wait(120)
    finally:
        service.close()  # returns: the computation gave up after the transfers
    try:
        assert kept.load(db, service._registers_key) is None  # noqa: SLF001
        assert kept.claim(db, service._registers_key, 600.0, "another")  # noqa: SLF001 - released
    finally:
        db.close()


class _Signalling(threading.Event):
    """An event that also sets ``also`` when it is set (the test learns that close has begun)."""

    def __init__(self, also: threading.Event) -> None:
        super().__init__()
        self.also = also

    def set(self) -> None:
        super().set()
        self.also.set()


def test_of_several_workers_only_the_one_holding_the_claim_computes_them_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker's claim: nothing is computed ahead here; a claim gone stale (its worker killed) is taken over."""
    location = StoreLocation.embedded(tmp_path / "store")
    _store(location, [_shared("a", 0)], first=0)
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    calls = _counted(monkeypatch)
    service = Service(Store(location), TAXONOMY, db=db)
    key = service._registers_key  # noqa: SLF001
    try:
        assert kept.claim(db, key, 600.0, "another worker")
        service.warm_registers()
        _renewed(service)
        assert len(calls) == 0 and kept.load(db, key) is None
        monkeypatch.setattr(console_service, "WARM_CLAIM_S", -1.0)  # the other worker's claim is now stale
        service.warm_registers()
        _renewed(service)
        assert len(calls) == 1 and kept.load(db, key) is not None
        assert kept.claim(db, key, 600.0, "another worker")  # released once computed
    finally:
        service.close()
        db.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_claim_is_held_once_until_released_or_stale(tmp_path: Path, postgres: Postgres, backend: str) -> None:
    """One claim at a time per key, on both databases; released by its holder alone, or stale, it is taken again."""
    db = (ConsoleDB(postgres.sqlalchemy_uri(), postgres.password) if backend == "postgresql"
          else ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}"))  # fmt: skip
    key = uuid.uuid4().hex
    try:
        assert kept.claim(db, key, 600.0, "a") and not kept.claim(db, key, 600.0, "b")
        assert kept.claim(db, uuid.uuid4().hex, 600.0, "b")  # another key's is its own
        kept.release(db, key, "b")  # not b's to release
        assert not kept.claim(db, key, 600.0, "b")
        kept.release(db, key, "a")
        assert kept.claim(db, key, 600.0, "b") and not kept.claim(db, key, 600.0, "a")
        assert kept.claim(db, key, -1.0, "a")  # stale: taken over
        kept.release(db, key, "b")  # b's was taken over: a's stays
        assert not kept.claim(db, key, 600.0, "c")
        assert kept.load(db, key) is None  # a claim is never read as registers
        kept.drop(db)
        assert kept.claim(db, key, 600.0, "c")
    finally:
        kept.drop(db)
        db.close()
