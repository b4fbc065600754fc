"""The command line: one line and exit code 2 on any failure, JSON that parses, honest "now", safe outputs."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lineage import Party
from lineage.contract.records import Record, make_record
from lineage.store.holdings import load_holdings, read_state
from tests.fixtures import lagging_store, one_line_failure, store_of
from tests.fixtures import run_cli as run

T = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
APP = Party(name="app", role="internal", region="CN")
PAY = Party(name="pay", role="processor", region="CN")
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def _collected(subject: str, at: datetime = T, **extra: Any) -> Record:
    return make_record(
        "COLLECTED", system="app", system_region="CN", occurred_at=at, subject_id=subject, holder=APP,
        categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT", **extra,
    )  # fmt: skip


def _shared(subject: str, at: datetime = T) -> Record:
    return make_record(
        "SHARED", system="app", system_region="CN", occurred_at=at, subject_id=subject, holder=APP,
        recipient=PAY, categories=["user.contact.email"], purpose="essential.service",
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store where s1's e-mail reached app and then pay; s2's only app."""
    folder = tmp_path / "store"
    store_of([_collected("s1"), _shared("s1"), _collected("s2")], folder)
    return folder


def test_graph_is_a_command_module_of_its_own(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    """``lineage graph`` is served by ``lineage.cli.graph`` (not the ingest group) and prints the flow summary."""
    from lineage.cli import _parser, graph, ingest

    assert _parser().parse_args(["graph"]).func is graph.cmd_graph
    assert not hasattr(ingest, "cmd_graph")
    code, out, _ = run(capsys, "graph", "--store", str(store))
    assert code == 0 and "app -> pay: 1 events, 1 subjects" in out, out


def test_the_command_table_names_what_each_group_adds() -> None:
    """``GROUPS`` lists each group's commands exactly, and a command's parser holds its own group's alone."""
    import importlib

    from lineage.cli import GROUPS, _parser

    def commands(p: argparse.ArgumentParser) -> set[str]:
        return set(next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices)

    for group, names in GROUPS.items():
        p = argparse.ArgumentParser()
        importlib.import_module(f"lineage.cli.{group}").register(p.add_subparsers())
        assert commands(p) == set(names), group
        assert commands(_parser([names[0], "--help"])) == set(names)
    assert commands(_parser()) == {n for names in GROUPS.values() for n in names}
    assert commands(_parser(["acess"])) == commands(_parser())  # a typo: every command, for argparse's message


# -- item 9: failures are one line, exit 2 ------------------------------------------------------


def test_graph_json_onto_a_folder_is_one_line(capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path) -> None:
    """`lineage graph --json` naming a folder fails with one line naming --json."""
    code, _, err = run(capsys, "graph", "--store", str(store), "--json", str(tmp_path))
    assert "--json" in one_line_failure(code, err)


def test_ingest_store_that_cannot_be_made_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`lineage ingest --store` under a file fails at once with one line naming --store (before any broker)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "ingest", "--store", str(blocker / "store"), "--bootstrap-servers", "127.0.0.1:1")
    assert "--store" in one_line_failure(code, err)


def test_demo_out_that_cannot_be_made_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`lineage demo --out` under a file fails with one line naming --out, before a broker starts."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "demo", "--out", str(blocker / "out"))
    assert "--out" in one_line_failure(code, err)


@pytest.mark.parametrize("topic", ["../../evil", "a b", "x" * 250, ".", ""])
def test_illegal_topic_names_are_refused(capsys: pytest.CaptureFixture[str], topic: str) -> None:
    """A topic name Kafka cannot hold is refused as one line naming the setting."""
    code, _, err = run(capsys, "tail", "--topic", topic, "--bootstrap-servers", "127.0.0.1:1")
    assert "topic" in one_line_failure(code, err)


def test_policy_with_infinite_minimum_age_is_one_line(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    """A policy with minimum = inf fails with one line naming the file and age.minimum."""
    policy = tmp_path / "p.toml"
    policy.write_text('[organisation]\nname = "X"\nsystems = ["app"]\n[age]\nminimum = inf\n')
    code, _, err = run(capsys, "check", "--store", str(store), "--policy", str(policy))
    line = one_line_failure(code, err)
    assert "p.toml" in line and "age.minimum" in line


def test_breach_aware_at_the_end_of_time_is_one_line(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    """`lineage breach` --aware 9999-12-31T23:59:59Z fails with one line naming --aware, not an OverflowError."""
    code, _, err = run(capsys, "breach", "--store", str(store), "--node", "app", "--from", "2026-01-01T00:00Z",
                       "--to", "2026-12-01T00:00Z", "--aware", "9999-12-31T23:59:59Z")  # fmt: skip
    assert "aware" in one_line_failure(code, err)


def test_times_outside_the_contract_are_one_line(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    """A time option in year 1 (which overflows in UTC) fails as one line naming the option."""
    code, _, err = run(capsys, "access", "s1", "--store", str(store), "--as-of", "0001-01-01T00:00:00+05:00")
    assert "--as-of" in one_line_failure(code, err)


# -- item 10: JSON outputs ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["access", "erasure"])
def test_json_with_nothing_found_is_json(capsys: pytest.CaptureFixture[str], store: Path, command: str) -> None:
    """`access`/`erasure --format json` for an unknown identifier print a JSON document saying nothing is held."""
    code, out, _ = run(capsys, command, "nobody", "--store", str(store), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["holds_data"] is False
    assert out.endswith("}\n")


def test_json_output_ends_with_a_newline(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    """Every JSON output ends with a newline."""
    code, out, _ = run(capsys, "transfers", "--store", str(store), "--format", "json")
    assert code == 0 and out.endswith("\n")
    json.loads(out)


def test_breach_json_lists_pairs_and_counts_each_once(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    """`lineage breach` JSON has the affected (subject, category) pairs with holders; records counts pairs once."""
    code, out, _ = run(capsys, "breach", "--store", str(store), "--node", "app", "--node", "pay",
                       "--from", "2026-01-01T00:00Z", "--to", "2026-12-01T00:00Z",
                       "--aware", "2026-12-01T00:00Z", "--format", "json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["records"] == 2  # (s1, email) at app and pay is one pair; (s2, email) the other
    assert doc["by_category"][0]["records"] == 2
    pairs = {(a["subject"], a["category"]): sorted(h["holder"] for h in a["holders"]) for a in doc["affected"]}
    assert pairs == {("s1", "user.contact.email"): ["app", "pay"], ("s2", "user.contact.email"): ["app"]}


# -- item 11: the wall clock as "now" -----------------------------------------------------------


@pytest.fixture
def future_store(tmp_path: Path) -> Path:
    """A store with one event now-ish and one stamped in 2100."""
    folder = tmp_path / "future"
    store_of([_collected("s1"), _collected("s1", FUTURE, source="later")], folder)
    return folder


def test_access_without_as_of_warns_of_later_events(capsys: pytest.CaptureFixture[str], future_store: Path) -> None:
    """`lineage access` with no --as-of says how many events are after now and the latest, in report and stderr."""
    code, out, err = run(capsys, "access", "s1", "--store", str(future_store), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert "1 event" in doc["warning"] and "2100-01-01" in doc["warning"]
    assert "warning" in err and "2100-01-01" in err


def _breach_json(capsys: pytest.CaptureFixture[str], store: Path, to: str, *extra: str) -> tuple[dict[str, Any], str]:
    code, out, err = run(capsys, "breach", "--store", str(store), "--node", "app", "--from", "2026-01-01T00:00Z",
                         "--to", to, "--format", "json", *extra)  # fmt: skip
    assert code == 0, err
    return json.loads(out), err


def test_breach_counts_future_stamped_events_in_its_window_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A subject known only from a future-stamped event in the window is affected; the note says it is counted."""
    folder = tmp_path / "ahead"
    store_of([_collected("s1"), _collected("s9", FUTURE)], folder)
    for extra in ((), ("--aware", "2026-06-01T00:00Z")):  # --aware sets deadlines, not what is counted
        doc, err = _breach_json(capsys, folder, "2100-06-01T00:00Z", *extra)
        assert {a["subject"] for a in doc["affected"]} == {"s1", "s9"}
        assert "1 event(s) inside the window are stamped after now" in doc["warning"]
        assert "they are counted" in doc["warning"] and "left out" not in doc["warning"]
        assert "2100-01-01" in err and "give --aware" not in err


def test_breach_says_nothing_of_future_events_outside_its_window(
    capsys: pytest.CaptureFixture[str], future_store: Path
) -> None:
    """Events stamped after now but after --to play no part in the answer: no note claims otherwise."""
    doc, err = _breach_json(capsys, future_store, "2026-12-01T00:00Z")
    assert "warning" not in doc and "warning" not in err.lower()


def test_an_explicit_as_of_needs_no_warning(capsys: pytest.CaptureFixture[str], future_store: Path) -> None:
    """With --as-of given there is no warning."""
    code, out, err = run(capsys, "access", "s1", "--store", str(future_store), "--as-of", "2030-01-01T00:00Z")
    assert code == 0 and "warning" not in err.lower() and "warning" not in out.lower()


# -- item 12: outputs never through symlinks ----------------------------------------------------


def test_subjects_out_through_a_symlink_is_refused(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    """`lineage breach` --subjects-out naming a symlink fails as one line; the linked file keeps content and mode."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.chmod(victim, 0o644)
    link = tmp_path / "subjects.csv"
    link.symlink_to(victim)
    code, _, err = run(capsys, "breach", "--store", str(store), "--node", "app", "--from", "2026-01-01T00:00Z",
                       "--to", "2026-12-01T00:00Z", "--subjects-out", str(link))  # fmt: skip
    assert "--subjects-out" in one_line_failure(code, err)
    assert victim.read_text() == "precious" and (victim.stat().st_mode & 0o777) == 0o644


# -- found by a review after the fixes above ------------------------------------------------------


@pytest.mark.parametrize("command", [["access", "s1"], ["erasure", "s1"], ["retention"], ["transfers"], ["compact"]])
def test_a_folder_that_is_not_a_store_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    """A mistyped --store is an error naming it, never a confident "no data held" or "nothing overdue"."""
    for folder in (tmp_path / "no-such-store", tmp_path):  # missing, and a folder with no segments
        code, out, err = run(capsys, *command, "--store", str(folder))
        assert "--store" in one_line_failure(code, err) and out == ""


def test_a_policy_whose_systems_are_not_in_the_store_is_refused(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    """A policy naming only systems the store has never seen gives no verdict (exit 2), not "(none)"."""
    policy = tmp_path / "p.toml"
    policy.write_text('[organisation]\nname = "X"\nsystems = ["ap"]\n')
    code, _, err = run(capsys, "check", "--store", str(store), "--policy", str(policy))
    assert "none of its systems" in one_line_failure(code, err)


def test_a_policy_with_one_unseen_system_warns(capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path) -> None:
    """A policy naming one system the store lacks still checks the others, and says which is missing."""
    policy = tmp_path / "p.toml"
    policy.write_text('[organisation]\nname = "X"\nsystems = ["app", "webb"]\n')
    code, out, err = run(capsys, "check", "--store", str(store), "--policy", str(policy), "--format", "json")
    assert code == 0 and "webb" in err
    assert "webb" in json.loads(out)["warning"]


def test_a_policy_with_no_systems_is_refused(capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path) -> None:
    """`systems = []` would make every clause hold vacuously: refused naming organisation.systems."""
    policy = tmp_path / "p.toml"
    policy.write_text('[organisation]\nname = "X"\nsystems = []\n')
    code, _, err = run(capsys, "check", "--store", str(store), "--policy", str(policy))
    assert "organisation.systems" in one_line_failure(code, err)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["ingest", "--segment-rows", "0"], "--segment-rows"),
        (["ingest", "--commit-rows", "0"], "--commit-rows"),
        (["ingest", "--exit-when-idle", "nan"], "--exit-when-idle"),
        (["ingest", "--exit-when-idle", "-1"], "--exit-when-idle"),
        (["tail", "--idle", "nan"], "--idle"),
        (["tail", "--max", "0"], "--max"),
        (["sim", "--subjects", "-3"], "--subjects"),
    ],
)
def test_numbers_out_of_range_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], option: str
) -> None:
    """A count below 1 or a duration that is nan or negative is refused by the parser (exit 2), not a crash."""
    code, _, err = run(capsys, *argv)
    assert code == 2 and "Traceback" not in err and option in err.strip().splitlines()[-1]


# -- the answer service: every document stamped alike ----------------------------------------------


def test_each_answer_document_carries_its_stamp(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Each answer's JSON names its snapshot, the holdings' lag and events after now (as-of-now ones), as stderr."""
    store, behind = lagging_store(tmp_path / "s")
    snapshot = read_state(load_holdings(store.location)).source
    window = ("--from", "2026-01-01T00:00Z", "--to", "2026-12-01T00:00Z")
    warned = {("access", "s1"): True, ("erasure", "s1"): True, ("transfers",): True, ("ropa",): True,
              ("retention",): False, ("breach", "--node", "app", *window): False}  # fmt: skip
    for argv, warns in warned.items():
        code, out, err = run(capsys, *argv, "--store", str(tmp_path / "s"), "--format", "json")
        doc = json.loads(out)
        assert code == 0 and doc["store_snapshot"] == snapshot and doc["holdings_behind"] == behind, (argv, err)
        assert f"the holdings are {behind} event(s) behind" in doc["lag"] and doc["lag"] in err, argv
        assert ("2100-01-01" in doc.get("warning", "")) is warns and ("2100-01-01" in err) is warns, argv
    outs = []
    for argv in (("graph",), ("map", "--out", str(tmp_path / "map.html"))):
        code, out, err = run(capsys, *argv, "--store", str(tmp_path / "s"))
        assert code == 0 and f"{behind} event(s) behind" in err, (argv, err)
        outs.append(out)
    assert f"store snapshot: {snapshot}; holdings behind: {behind}" in outs[0]  # the graph's summary line
    assert f"store snapshot: {snapshot}; holdings behind: {behind}" in (tmp_path / "map.html").read_text()
