"""The seed-world simulator: reproducible, scalable, and `check` finds exactly the breaches it injects."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from lineage import Settings, default_taxonomy
from lineage.answers.policy_check import check
from lineage.codec.avro import Codec
from lineage.contract.policy import CLAUSES, Policy
from lineage.errors import ConfigurationError, UnknownValueError
from lineage.ingest.consumer import IngestConsumer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store
from lineage.testing import MemorySink
from lineage.world.organisations import ORGANISATIONS, build
from lineage.world.sim import Injected, Plan, WorldSize, emit

TAXONOMY = default_taxonomy()
KEYS = [o.key for o in ORGANISATIONS]


def _stored(plans: list[Plan], folder: Path) -> tuple[Store, MemorySink]:
    """Emit through the SDK into memory, then ingest every message into a store in ``folder``."""
    sink = MemorySink()
    emit(plans, sink, TAXONOMY)
    ingestor = Ingestor(folder, "events", taxonomy=TAXONOMY)
    for offset, message in enumerate(sink.messages):
        assert ingestor.add(0, offset, message.value) is None
    ingestor.flush()
    return Store(folder), sink


def _found(store: Store, policy: Policy, size: WorldSize) -> Counter[tuple[str, str]]:
    return Counter((v.clause, v.event_id) for v in check(store, policy, size.end))


def _injected(injected: list[Injected], key: str) -> Counter[tuple[str, str]]:
    return Counter((i.clause, i.event_id) for i in injected if i.organisation == key)


SIZES = [
    WorldSize(subjects=60, days=400, seed=1, violations=2),
    WorldSize(subjects=25, days=10, seed=2, violations=1),
    WorldSize(subjects=40, days=1100, seed=3, violations=3),
]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s.subjects}x{s.days}d-seed{s.seed}")
@pytest.mark.parametrize("key", KEYS)
def test_check_reports_exactly_the_injected_breaches(key: str, size: WorldSize, tmp_path: Path) -> None:
    """For every organisation, `check` reports the injected (clause, event) pairs: no more, no fewer."""
    plans, injected = build(size, TAXONOMY, [key])
    store, _ = _stored(plans, tmp_path)
    expected = _injected(injected, key)
    assert sum(expected.values()) > 0
    assert _found(store, plans[0].policy, size) == expected


@pytest.mark.parametrize("key", KEYS)
def test_every_declared_rule_gets_its_breaches(key: str) -> None:
    """Each rule of each clause in an organisation's policy is broken ``violations`` times; nothing else is."""
    plans, injected = build(WorldSize(subjects=30, days=200, violations=2), TAXONOMY, [key])
    policy = plans[0].policy
    rules = {
        "storage_region": 1 if policy.storage_regions is not None else 0,
        "transfer_region": 1 if policy.transfer_regions is not None else 0,
        "recipient": 1 if policy.recipients is not None else 0,
        "never_share": len(policy.never_share),
        "retention": len(policy.retention_days),
        "minimum_age": 1 if policy.minimum_age is not None else 0,
        "consent": len(policy.consent_purposes),
    }
    assert Counter(i.clause for i in injected) == Counter({k: 2 * n for k, n in rules.items() if n})
    assert len({i.what for i in injected if i.clause == "retention"}) == rules["retention"]


def test_a_world_without_injections_keeps_every_promise(tmp_path: Path) -> None:
    """With no injected breaches, every organisation's check comes back empty."""
    size = WorldSize(subjects=80, days=500, seed=11, violations=0)
    plans, injected = build(size, TAXONOMY)
    store, _ = _stored(plans, tmp_path)
    assert injected == []
    assert {p.org.key: sum(_found(store, p.policy, size).values()) for p in plans} == dict.fromkeys(KEYS, 0)


def test_same_seed_gives_the_same_bytes() -> None:
    """Two runs with one seed emit identical messages; another seed emits different ones."""

    def messages(seed: int) -> list[bytes]:
        sink = MemorySink()
        emit(build(WorldSize(subjects=20, days=60, seed=seed), TAXONOMY)[0], sink, TAXONOMY)
        return [m.value for m in sink.messages]

    first = messages(5)
    assert first == messages(5)
    assert first != messages(6)


def test_subjects_knob_scales_the_event_count() -> None:
    """Four times the subjects gives roughly four times the events."""

    def events(subjects: int) -> int:
        return sum(len(p.events) for p in build(WorldSize(subjects=subjects, days=180), TAXONOMY)[0])

    assert 3.0 < events(200) / events(50) < 5.0


def test_events_are_emitted_in_time_order() -> None:
    """The sink sees each event no earlier than the one before it, as services would send them."""
    sink = MemorySink()
    emit(build(WorldSize(subjects=20, days=90), TAXONOMY)[0], sink, TAXONOMY)
    codec = Codec()
    times = [codec.decode(m.value).occurred_at for m in sink.messages]
    assert times == sorted(times)


def test_unknown_organisation_is_refused_with_suggestions() -> None:
    """Naming an organisation that is not modelled raises an error naming the field and the near miss."""
    with pytest.raises(UnknownValueError, match="organisation.*'mochatt'.*mochat"):
        build(WorldSize(subjects=1, days=1), TAXONOMY, ["mochatt"])


def test_sim_through_kafka_then_check_matches_injected(kafka_settings: Settings, tmp_path: Path) -> None:
    """`lineage sim` into a real broker, consumed by the ingest consumer: `check` finds what was injected."""
    injected_file = tmp_path / "injected.jsonl"
    env = {
        "PATH": "/usr/bin:/bin",
        "LINEAGE_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "LINEAGE_TOPIC": kafka_settings.topic,
        "LINEAGE_DEAD_LETTER_TOPIC": kafka_settings.dead_letter_topic,
    }
    args = ["--subjects", "40", "--days", "120", "--seed", "9", "--injected-out", str(injected_file)]
    done = subprocess.run(
        [sys.executable, "-m", "lineage.cli", "sim", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert oct(injected_file.stat().st_mode & 0o777) == "0o600"
    injected = [Injected(**json.loads(line)) for line in injected_file.read_text().splitlines()]
    assert {i.organisation for i in injected} == set(KEYS)
    assert "--now 2026-11-01T00:00:00+00:00" in done.stdout
    store_dir = tmp_path / "store"
    consumer = IngestConsumer(kafka_settings, store_dir=store_dir, group_id="sim-test", taxonomy=TAXONOMY)
    stats = consumer.run(threading.Event(), idle_exit_s=4)
    assert stats.dead_letters == 0
    size = WorldSize(subjects=40, days=120, seed=9)
    plans, _ = build(size, TAXONOMY)
    assert stats.accepted == sum(len(p.events) for p in plans)
    store = Store(store_dir)
    for p in plans:
        assert _found(store, p.policy, size) == _injected(injected, p.org.key), p.org.key


def test_violations_come_grouped_by_clause(tmp_path: Path) -> None:
    """`check` lists violations clause by clause, in the order a policy file declares clauses."""
    size = WorldSize(subjects=30, days=300, violations=2)
    plans, _ = build(size, TAXONOMY, ["mochat"])
    store, _ = _stored(plans, tmp_path)
    order = [CLAUSES.index(v.clause) for v in check(store, plans[0].policy, size.end)]
    assert len(set(order)) > 3
    assert order == sorted(order)


@pytest.mark.parametrize("seed", range(8))
def test_a_one_subject_world_still_gets_exactly_its_breaches(seed: int, tmp_path: Path) -> None:
    """With one subject (often a minor, or no adult to pick), injection makes its own subjects; check agrees."""
    size = WorldSize(subjects=1, days=3, seed=seed, violations=1)
    plans, injected = build(size, TAXONOMY)
    store, _ = _stored(plans, tmp_path)
    for p in plans:
        assert _found(store, p.policy, size) == _injected(injected, p.org.key), p.org.key


@pytest.mark.parametrize(("field", "value"), [("subjects", 0), ("days", -3), ("violations", -1)])
def test_a_size_that_cannot_make_a_world_is_refused(field: str, value: int) -> None:
    """Zero subjects, negative days or violations raise ConfigurationError naming the field and value."""
    with pytest.raises(ConfigurationError, match=rf"^{field}: .*got {value}"):
        WorldSize(**{field: value})


def test_naming_an_organisation_twice_plans_it_once() -> None:
    """`--org mochat --org mochat` gives one MoChat, not two copies with the same event ids."""
    plans, _ = build(WorldSize(subjects=5, days=10), TAXONOMY, ["mochat", "mochat"])
    assert [p.org.key for p in plans] == ["mochat"]
