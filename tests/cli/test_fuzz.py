"""Fuzzing every entry point: JSON lines, raw topic bytes, CLI arguments, policy files.

Whatever comes in, no raw traceback reaches the user (only ``LineageError``s, one line each, or a
clean exit) and nothing acknowledged is lost (every good line is parsed, every good message stored).
Sized for 2 cores: ``examples(100)`` per entry point, a few hundred in all under the "ci" profile.
"""

from __future__ import annotations

import contextlib
import io
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage import Codec, InputLineError, LineageError, PersonalDataEvent, default_taxonomy
from lineage.cli import INTERNAL_ERROR, main
from lineage.contract.policy import load_policy
from lineage.contract.records import make_record, to_record
from lineage.ingest.pipeline import Ingestor
from lineage.sdk.jsonlines import parse_lines
from lineage.store import Store
from tests.fixtures import GOOD_LINE, examples, sample_events, store_of

TAX = default_taxonomy()
FUZZ = settings(max_examples=examples(100), suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- JSON lines ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["event_type", "subject_id", "linked_subject_ids", "categories", "purpose", "legal_basis", "occurred_at",
          "holder", "recipient", "scope", "bulk_as_of", "retention_days", "consent_ref", "source"]  # fmt: skip


@st.composite
def bad_lines(draw: st.DrawFn) -> str:
    """A line that is garbage, hostile JSON, or a good line with one field replaced."""
    kind = draw(st.sampled_from(["text", "nested", "mutated", "digits", "surrogate"]))
    if kind == "text":
        return draw(st.text(alphabet=st.characters(exclude_characters="\n\r"), max_size=60))
    if kind == "nested":
        depth = draw(st.integers(1, 30_000))
        return "[" * depth + "]" * draw(st.integers(0, depth))
    if kind == "digits":
        return GOOD_LINE.replace("}", ', "retention_days": ' + "7" * draw(st.integers(4000, 5000)) + "}")
    if kind == "surrogate":
        return GOOD_LINE.replace('"u1"', f'"u\\ud{draw(st.integers(0x800, 0xFFF)):03x}"')
    fields = json.loads(GOOD_LINE)
    fields[draw(st.sampled_from(FIELDS))] = draw(json_values)
    return json.dumps(fields)


@FUZZ
@given(st.lists(st.tuples(st.booleans(), bad_lines(), st.text(string.ascii_letters + "@.-", min_size=1, max_size=20)),
                min_size=1, max_size=6))  # fmt: skip
def test_json_lines_never_raise_and_keep_every_good_line(lines: list[tuple[bool, str, str]]) -> None:
    """Each line yields one event or one single-line error; every good line (any subject) yields its event."""
    text = [json.dumps(json.loads(GOOD_LINE) | {"subject_id": s}) if good else bad for good, bad, s in lines]
    results = list(parse_lines(text, system="web", region="CN", taxonomy=TAX))
    assert len(results) == sum(1 for t in text if t.strip())
    numbered = iter(n for n, t in enumerate(text, start=1) if t.strip())
    for (good, _, subject), result in zip([x for x, t in zip(lines, text, strict=True) if t.strip()], results,
                                          strict=True):  # fmt: skip
        n = next(numbered)
        if good:
            assert isinstance(result, PersonalDataEvent) and result.subject_id == subject
        if isinstance(result, InputLineError):
            assert result.line == n and "\n" not in str(result)


# -- raw topic bytes ----------------------------------------------------------------------------

GOOD_MESSAGES = [Codec().encode(e) for e in sample_events()]
BASE_RECORD = to_record(sample_events()[0])  # built once: strategies must not draw on ``random``


@st.composite
def raw_messages(draw: st.DrawFn) -> bytes | None:
    """Random bytes, a truncated or bit-flipped good message, or nothing."""
    kind = draw(st.sampled_from(["random", "truncated", "flipped", "none", "invalid"]))
    good = draw(st.sampled_from(GOOD_MESSAGES))
    if kind == "random":
        return draw(st.binary(max_size=200))
    if kind == "truncated":
        return good[: draw(st.integers(0, len(good) - 1))]
    if kind == "flipped":
        i = draw(st.integers(0, len(good) - 1))
        return good[:i] + bytes([good[i] ^ draw(st.integers(1, 255))]) + good[i + 1 :]
    if kind == "invalid":
        # identifiers in letters no reason uses: any of them in a reason is a leak
        person = st.text(alphabet="βγδεζ", min_size=4, max_size=600)
        record = dict(BASE_RECORD)
        record["subject_id"] = draw(person | st.just(""))
        record["linked_subject_ids"] = draw(st.lists(person | st.just(""), max_size=2))
        record["scope"] = draw(st.sampled_from(["SUBJECT", "BULK"]))  # a BULK event naming a subject is refused
        try:
            return Codec().encode_record(record)
        except LineageError:
            return b""
    return None


@FUZZ
@given(st.lists(st.tuples(st.booleans(), raw_messages()), min_size=1, max_size=8))
def test_topic_bytes_become_dead_letters_and_every_good_message_is_stored(
    tmp_path_factory: pytest.TempPathFactory, messages: list[tuple[bool, bytes | None]]
) -> None:
    """Any bytes: a dead letter with a one-line reason, never an exception; every good message reaches the store."""
    folder = tmp_path_factory.mktemp("store")
    ing = Ingestor(folder, "events", taxonomy=TAX)
    stored = []
    for offset, (good, raw) in enumerate(messages):
        value = GOOD_MESSAGES[offset % len(GOOD_MESSAGES)] if good else raw
        letter = ing.add(0, offset, value)
        if good:
            assert letter is None
            stored.append(Codec().decode(value or b"").event_id)
        if letter is not None:
            assert "\n" not in letter.reason and letter.value == value  # the payload is kept as it came
            assert not set("βγδεζ") & set(letter.reason), letter.reason  # no identifier in the header
    ing.flush()
    assert set(stored) <= set(Store(folder).event_ids())


# -- CLI arguments ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small store the answer commands can read."""
    folder = tmp_path_factory.mktemp("cli") / "store"
    store_of([to_record(e) for e in sample_events()], folder)
    return folder


TIMES = ["2026-05-01T08:00:00+08:00", "2026-05-01", "2026-04-01T00:00Z", "2026-06-01T00:00Z",
          "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+05:00",
         "1900-01-01T00:00Z", "not a time", "", "2026-13-01T00:00Z"]  # fmt: skip
WORDS = ["user-1", "device-9", "", " ", "checkout", "crash-sdk", "x" * 600, "\x00", "../../evil", "-", "--"]


@st.composite
def cli_args(draw: st.DrawFn, store: Path, out: Path) -> list[str]:
    """A command that reads the store, with random options and values (outputs go under ``out``)."""
    command = draw(
        st.sampled_from(["access", "erasure", "breach", "transfers", "retention", "ropa", "check", "map", "graph"])
    )
    argv = [command]
    if command in ("access", "erasure"):
        argv.append(draw(st.sampled_from(WORDS)))
    if draw(st.booleans()):
        argv += ["--store", str(store)]
    options = {
        "--as-of": st.sampled_from(TIMES), "--now": st.sampled_from(TIMES), "--aware": st.sampled_from(TIMES),
        "--from": st.sampled_from(TIMES), "--to": st.sampled_from(TIMES), "--node": st.sampled_from(WORDS),
        "--format": st.sampled_from(["json", "csv", "markdown", "xml"]),
        "--policy": st.sampled_from([str(out / "missing.toml"), str(out), "policies/mochat.toml"]),
        "--out": st.sampled_from([str(out / "map.html"), str(out), str(out / "no" / "x")]),
        "--subjects-out": st.sampled_from([str(out / "s.csv"), str(out), str(out / "link")]),
        "--json": st.sampled_from([str(out / "g.json"), str(out)]),
        "--graphml": st.sampled_from([str(out / "g.xml"), str(out / "link")]),
    }  # fmt: skip
    if command == "breach":  # its required options, mostly valid, so the run gets past argparse
        argv += [
            "--node",
            draw(st.sampled_from(["checkout", "crash-sdk", "nobody"])),
            "--from",
            draw(st.sampled_from(TIMES[:1] + TIMES)),
            "--to",
            draw(st.sampled_from(TIMES[:1] + TIMES)),
        ]
    if command == "check":
        argv += ["--policy", draw(options["--policy"])]
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=4)):
        argv += [name, draw(options[name])]
    return argv


@contextlib.contextmanager
def _captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


@FUZZ
@given(data=st.data())
def test_cli_arguments_never_give_a_traceback(
    cli_store: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Any mix of options: exit 0, 1 or 2; a failure is one line on stderr; never an internal error."""
    out = tmp_path_factory.mktemp("out")
    (out / "link").symlink_to(out / "elsewhere")
    argv = data.draw(cli_args(cli_store, out))
    with _captured() as (stdout, stderr):
        try:
            code: Any = main(argv)
        except SystemExit as exc:  # argparse: usage errors exit 2
            code = exc.code
    err = stderr.getvalue()
    assert code in (0, 1, 2), (argv, err)
    assert code != INTERNAL_ERROR and "Traceback" not in err
    if code == 2 and not err.startswith("usage:"):
        assert len(err.strip().splitlines()) == 1, (argv, err)
    if code == 0 and "--format" in argv and argv[argv.index("--format") + 1] == "json" and stdout.getvalue():
        json.loads(stdout.getvalue())
    assert not (out / "elsewhere").exists()  # no output went through the symlink


# -- policy files -------------------------------------------------------------------------------

POLICY_KEYS = ["organisation.name", "organisation.systems", "storage.regions", "transfers.regions", "age.minimum",
               "consent.purposes", "retention.\"user.contact\"", "organisation.sistems", "ages.minimum"]  # fmt: skip


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, "nan" if value != value else repr(value))
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(_toml(v) for v in value) + "]"


# the values a hurried analyst writes: a string for a list, inf, a huge number, a list of numbers
SPECIAL = st.sampled_from([float("inf"), float("nan"), -1, 2**40, 14, 14.5, True, "adv-web", "CN", "", [],
                           ["CN"], ["adv-web"], [1], ["user.contact"], ["marketing.communications.email"]])  # fmt: skip
toml_values = SPECIAL | st.recursive(
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=15),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(st.dictionaries(st.sampled_from(POLICY_KEYS), toml_values, max_size=5))
def test_policy_files_load_or_fail_as_one_line(
    tmp_path_factory: pytest.TempPathFactory, entries: dict[str, Any]
) -> None:
    """Any values for any policy keys: the policy loads, or one LineageError line names the file."""
    tables: dict[str, list[str]] = {"organisation": ['name = "X"', 'systems = ["app"]']}
    for key, value in entries.items():
        table, name = key.split(".", 1)
        tables.setdefault(table, [])
        tables[table] = [line for line in tables[table] if not line.startswith(name + " ")]
        tables[table].append(f"{name} = {_toml(value)}")
    path = tmp_path_factory.mktemp("policy") / "fuzz.toml"
    path.write_text("\n".join(f"[{t}]\n" + "\n".join(lines) for t, lines in tables.items()) + "\n")
    try:
        policy = load_policy(path, TAX)
    except LineageError as exc:
        assert "fuzz.toml" in str(exc) and "\n" not in str(exc)
        return
    # loaded: then it means what was written (a string is not read as its characters, no inf age)
    assert list(policy.systems) == entries.get("organisation.systems", ["app"])
    assert policy.minimum_age is None or (type(policy.minimum_age) is int and 0 <= policy.minimum_age <= 150)
    for regions in (policy.storage_regions, policy.transfer_regions):
        assert regions is None or all(isinstance(r, str) and len(r) > 1 for r in regions)


def test_make_record_fuzz_helpers_are_valid() -> None:
    """The good messages and line the fuzzers mix in are themselves valid (else the tests prove nothing)."""
    [event] = parse_lines([GOOD_LINE], system="web", region="CN", taxonomy=TAX)
    assert isinstance(event, PersonalDataEvent)
    assert make_record("COLLECTED", system="web", system_region="CN", subject_id="s", categories=["user.contact"],
                       purpose="essential.service", legal_basis="CONTRACT")  # fmt: skip
