"""The ingest pipeline without Kafka: rows into the Iceberg table, bad messages out as dead letters."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lineage import Codec, default_taxonomy
from lineage.codec.avro import MAGIC
from lineage.contract.records import make_record, to_record
from lineage.errors import StoreNotFoundError, StoreUnavailableError
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from tests.fixtures import T0, invalid_but_decodable, sample_events

CODEC = Codec()


def _good(i: int) -> bytes:
    return CODEC.encode_record(
        make_record(
            "COLLECTED",
            system="web",
            system_region="CN",
            subject_id=f"user-{i}",
            categories=["user.contact.email"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            occurred_at=T0,
        )
    )


def _ingestor(root: Path) -> Ingestor:
    return Ingestor(root, "events", taxonomy=default_taxonomy())


def test_good_rows_are_stored_and_bad_ones_become_dead_letters(tmp_path: Path) -> None:
    """Interleaved good and bad messages: every good one stored, each bad one a dead letter with its reason."""
    ing = _ingestor(tmp_path)
    bad = {
        1: (b"\x00random bytes", "bad header"),
        3: (_good(3)[:20], "truncated or corrupt"),
        5: (MAGIC + b"\xff" * 8 + b"\x00", "unknown writer schema"),
        7: (invalid_but_decodable(), "unknown data category"),
        9: (None, "empty message"),
    }
    letters = []
    for offset in range(12):
        value = bad[offset][0] if offset in bad else _good(offset)
        letter = ing.add(0, offset, value, key=b"k", headers=(("h", b"v"),))
        if letter is not None:
            letters.append(letter)
    ing.flush()
    assert [(d.offset, bad[d.offset][1] in d.reason) for d in letters] == [(o, True) for o in sorted(bad)]
    assert letters[3].field == "categories" and letters[0].headers == (("h", b"v"),)
    ids = Store(tmp_path).event_ids()
    assert len(ids) == 12 - len(bad) == len(set(ids))
    assert _ingestor(tmp_path).stored() == {0: 12}
    with Store(tmp_path).connect() as con:
        row = con.execute("SELECT count(*) FROM events WHERE recipient_name IS NULL AND holder_name = 'web'").fetchone()
    assert row == (7,)


def test_a_batch_of_only_bad_messages_still_records_its_offsets(tmp_path: Path) -> None:
    """Offsets of dead letters count as consumed, so a restart does not resend them."""
    ing = _ingestor(tmp_path)
    ing.add(2, 40, b"junk")
    ing.flush()
    assert _ingestor(tmp_path).stored() == {2: 41}
    assert Store(tmp_path).count() == 0


def test_offsets_already_stored_are_not_stored_again(tmp_path: Path) -> None:
    """A second consumer re-reading stored offsets (a rebalance race) adds only the new ones."""
    first = _ingestor(tmp_path)
    for o in range(10):
        first.add(0, o, _good(o))
    first.flush()
    second = _ingestor(tmp_path)
    for o in range(5, 15):
        second.add(0, o, _good(o))
    [stored] = second.flush()
    assert (stored.first, stored.last, stored.rows) == (10, 14, 5)
    assert sorted(r["kafka_offset"] for r in Store(tmp_path).sql("SELECT kafka_offset FROM events")) == list(range(15))
    assert second.stored() == {0: 15}


def test_store_files_are_private(tmp_path: Path) -> None:
    """The store is personal data: every file (data, manifests, metadata, catalog) 0600, every folder 0700."""
    old = os.umask(0o022)
    try:
        ing = _ingestor(tmp_path / "store")
        ing.add(0, 0, _good(0))
        ing.flush()
        Store(tmp_path / "store").compact(grace_s=3600)
    finally:
        os.umask(old)
    modes = {}
    for folder, _dirs, files in os.walk(tmp_path / "store"):
        modes[folder] = stat.S_IMODE(os.stat(folder).st_mode)
        for name in files:
            modes[os.path.join(folder, name)] = stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)
    assert len(modes) > 6
    assert {p: m for p, m in modes.items() if m not in (0o600, 0o700)} == {}
    assert any(p.endswith(".parquet") for p in modes) and any(p.endswith("catalog.db") for p in modes)


def test_compaction_sorts_by_subject_and_keeps_every_row_and_offset(tmp_path: Path) -> None:
    """Compaction rewrites small files into one sorted by subject; a repeated event id keeps both rows."""
    ing = _ingestor(tmp_path)
    repeated = _good(99)
    for batch in range(5):
        for o in range(batch * 4, batch * 4 + 4):
            ing.add(0, o, repeated if o in (0, 17) else _good(o))
        ing.flush()
    store = Store(tmp_path)
    before = store.sql("SELECT count(*) AS n FROM events")[0]["n"]
    report = store.compact(grace_s=3600)
    assert before == 20
    assert (report.files_in, report.files_out, report.groups) == (5, 1, 1)
    assert store.count() == 20 and len(set(store.event_ids())) == 19  # never drops a row: it may be a person's
    subjects = [r["subject_id"] for r in store.sql("SELECT subject_id FROM events")]
    assert subjects == sorted(subjects)
    assert _ingestor(tmp_path).stored() == {0: 20}


def test_a_missing_store_is_an_error_and_an_unwritten_one_is_empty(tmp_path: Path) -> None:
    """No table is StoreNotFoundError (never an empty answer); a table with no commit yet holds no rows."""
    with pytest.raises(StoreNotFoundError, match="holds no lineage store"):
        Store(tmp_path).count()
    StoreLocation.embedded(tmp_path).load(create=True)
    store = Store(tmp_path)
    assert store.count() == 0 and not store.holds_events()


@pytest.mark.parametrize("version", [1, 2])
def test_avro_container_records_take_the_same_path(tmp_path: Path, version: int) -> None:
    """Records read from an Avro file (v1 or v2) are validated and stored like Kafka messages."""
    path = tmp_path / "archive.avro"
    events = sample_events()
    records = [to_record(e) for e in events]
    if version == 1:
        records = [{k: v for k, v in r.items() if k not in ("linked_subject_ids", "age_band")} for r in records]
    CODEC.write_container(path, records, version=version)
    ing = _ingestor(tmp_path / "store")
    for offset, record in enumerate(CODEC.read_container(path)):
        assert ing.add_record(0, offset, record) is None
    ing.flush()
    assert sorted(Store(tmp_path / "store").event_ids()) == sorted(e.event_id for e in events)


def test_container_written_with_the_published_schema_reads_back(tmp_path: Path) -> None:
    """A file another tool wrote with the .avsc's logical types (uuid, timestamp-micros) reads as plain records."""
    import json

    import fastavro

    from lineage.codec.avro import schema_dir
    from lineage.contract.records import from_record

    events = sample_events()
    schema = fastavro.parse_schema(json.loads((schema_dir() / "personal_data_event.v2.avsc").read_text()))
    logical = []
    for e in events:
        r = to_record(e)
        r["occurred_at"] = e.occurred_at
        r["bulk_as_of"] = e.bulk_as_of
        logical.append(r)
    path = tmp_path / "external.avro"
    with path.open("wb") as f:
        fastavro.writer(f, schema, logical)
    back = list(CODEC.read_container(path))
    assert [from_record(r) for r in back] == events
    assert len(CODEC.container_id(path)) == 32


def test_a_failed_commit_keeps_the_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing the data files fails (a full disk), the rows stay buffered and the next flush stores them."""
    import errno

    import lineage.store.writer

    ing = _ingestor(tmp_path)
    ing.add(0, 0, _good(0))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lineage.store.writer, "_dataframe_to_data_files", full)
    with pytest.raises(StoreUnavailableError, match="disk of .* is full"):
        ing.flush()
    monkeypatch.undo()
    assert len(ing.flush()) == 1 and Store(tmp_path).count() == 1


def test_a_kept_session_sees_new_commits(tmp_path: Path) -> None:
    """Store.session reuses its connection, but a commit made since is in the next session's view."""
    ing = _ingestor(tmp_path)
    ing.add(0, 0, _good(0))
    ing.flush()
    store = Store(tmp_path)
    with store.session() as q:
        assert q.rows("holders") == [{"name": "web"}]
    with store.session() as q:
        first = q.rows("holders")
    ing.add(
        0, 1, CODEC.encode_record({**to_record(sample_events()[1]), "event_id": "00000000-0000-4000-8000-000000000001"})
    )
    ing.flush()
    with store.session() as q:
        names = {r["name"] for r in q.rows("holders")}
    assert first == [{"name": "web"}] and names == {"web", "checkout", "crash-sdk"}
    store.close()
