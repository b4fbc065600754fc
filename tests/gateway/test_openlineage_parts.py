"""OpenLineage run events into flow events without a broker: the mapping file, tags, pairs, ids, refusals."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage import default_taxonomy
from lineage.contract.validation import Validator
from lineage.errors import LineageError
from lineage.gateway.app import _decoded
from lineage.gateway.intake import RequestError
from lineage.gateway.mapping import load_mapping
from lineage.gateway.openlineage import Counters, read_run_event
from tests.fixtures import examples

DATA = Path(__file__).parent / "data"
TAXONOMY = default_taxonomy()
MAPPING = load_mapping(DATA / "openlineage-mapping.toml", TAXONOMY)


def _run(**changes: Any) -> dict[str, Any]:
    run: dict[str, Any] = json.loads((DATA / "run-complete.json").read_text(encoding="utf-8"))
    return run | changes


def _read(run: object) -> Any:
    return read_run_event(json.dumps(run).encode(), MAPPING, Validator(TAXONOMY))


def test_a_complete_run_becomes_a_transfer_abroad_and_a_share_at_home() -> None:
    """CN to SG is TRANSFERRED with the mapping's mechanism; CN to CN is SHARED; same-holder and unmapped make none."""
    reading = _read(_run())
    flows = {e.recipient.name: e for e in reading.events if e.recipient is not None}
    assert set(flows) == {"mailer", "crm-cn"} and reading.ignored is None
    abroad, home = flows["mailer"], flows["crm-cn"]
    assert (abroad.event_type, abroad.transfer_kind, abroad.mechanism) == ("TRANSFERRED", "CROSS_BORDER",
                                                                           "pipl.standard_contract")  # fmt: skip
    assert abroad.categories == ("user.contact.email",)  # the output's tag, held by the input too
    assert abroad.purpose == "marketing.communications.email" and abroad.system == "shop"
    assert (home.event_type, home.transfer_kind, home.mechanism) == ("SHARED", None, None)
    assert home.categories == ("user.contact.email", "user.contact.phone_number")  # narrower than the mapping's
    assert home.purpose == "essential.service"  # the mapping's default
    assert all(e.scope == "BULK" and e.bulk_as_of == e.occurred_at for e in reading.events)
    assert reading.unknown == ["s3://unmapped-bucket/scratch/customers"]


def test_event_ids_come_from_the_run_and_the_dataset_pair() -> None:
    """The same run event read twice gives the same ids; another run id gives others."""
    first, again = _read(_run()), _read(_run())
    assert [e.event_id for e in first.events] == [e.event_id for e in again.events]
    other = _read(_run(run={"runId": "0193a1f2-7c4e-7d2a-9b1e-000000000000"}))
    assert not {e.event_id for e in first.events} & {e.event_id for e in other.events}


@pytest.mark.parametrize("kind", ["START", "RUNNING", "FAIL", "ABORT", None])
def test_a_run_event_that_is_not_complete_makes_no_event(kind: str | None) -> None:
    """Only a COMPLETE run is a finished flow: the others are read, checked and ignored with the reason."""
    run = _run(eventType=kind) if kind else {k: v for k, v in _run().items() if k != "eventType"}
    reading = _read(run)
    assert reading.events == [] and "only COMPLETE" in (reading.ignored or "")


def test_a_run_without_personal_data_makes_no_event() -> None:
    """No tag and no mapped category on the input: nothing flows, and the reason says so."""
    run = _run()
    run["inputs"][0]["facets"] = {}
    reading = _read(run)
    assert reading.events == [] and "no personal data" in (reading.ignored or "")


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        (lambda r: [1, 2], 400, "expected an OpenLineage run event"),
        (lambda r: {"eventType": "COMPLETE", "job": r["job"]}, 400, "run: is missing"),
        (lambda r: r | {"run": {"runId": "run-1"}}, 400, "run.runId='run-1': must be a UUID"),
        (lambda r: r | {"eventTime": "yesterday"}, 400, "eventTime: must be an ISO 8601 time"),
        (lambda r: r | {"eventType": "DONE"}, 400, "eventType='DONE': must be one of"),
        (lambda r: r | {"eventTime": "0001-01-01T00:00:00Z"}, 400, "eventTime='0001-01-01T00:00:00+00:00': is out of"),
        (lambda r: r | {"inputs": [{"namespace": "x"}]}, 400, "inputs[0].name: must be a non-empty string"),
        (lambda r: r | {"job": {"namespace": "spark"}}, 400, "job.name: must be a non-empty string"),
    ],
)
def test_a_bad_run_event_is_one_clear_line(change: Any, status: int, words: str) -> None:
    """Not a run event, or a field of the wrong kind: a 4xx naming the field."""
    with pytest.raises(RequestError) as caught:
        _read(change(_run()))
    assert caught.value.status == status and len(caught.value.errors) == 1
    assert words in caught.value.errors[0], caught.value.errors


def test_an_unknown_category_tag_is_refused_with_close_matches() -> None:
    """A lineage.category tag naming no category: 400 naming the dataset's place and a suggestion."""
    run = _run()
    run["inputs"][0]["facets"]["tags"]["tags"][0]["value"] = "user.contact.phone"
    with pytest.raises(RequestError) as caught:
        _read(run)
    assert caught.value.status == 400
    assert "inputs[0]: lineage.category" in caught.value.errors[0] and "did you mean" in caught.value.errors[0]


def test_a_crossing_flow_the_mapping_gives_no_mechanism_is_422(tmp_path: Path) -> None:
    """A mapping without the mechanism a cross-border flow needs: 422 naming the pair and the field."""
    text = (DATA / "openlineage-mapping.toml").read_text(encoding="utf-8")
    path = tmp_path / "no-mechanism.toml"
    path.write_text(text.replace('mechanism = "pipl.standard_contract"\n', ""), encoding="utf-8")
    mapping = load_mapping(path, TAXONOMY)
    with pytest.raises(RequestError) as caught:
        read_run_event(json.dumps(_run()).encode(), mapping, Validator(TAXONOMY))
    assert caught.value.status == 422
    assert caught.value.errors[0].startswith("inputs[0] to outputs[0]: mechanism")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[[datasets]]\nnamespace='a'\nname='b'\nholder={name='h', role='internal', region='CN'}\npurpos='x'\n",
         "datasets[1].purpos: is not a mapping key (expected namespace, name, holder, categories, purpose, mechanism); "
         "did you mean 'datasets[1].purpose'?"),
        ("[[datasets]]\nnamespace='a'\nname='b'\nholder={name='h', role='internal', region='CN'}\n",
         "datasets[1].purpose: is missing"),
        ("[defaults]\npurpose='essential.service'\n[[datasets]]\nnamespace='a'\nname='b'\n"
         "holder={name='h', role='internal', region='XX'}\n", "datasets[1].holder.region='XX': unknown region"),
        ("[defaults]\npurpose='essential.service'\n[[datasets]]\nnamespace='a'\nname='b'\n"
         "holder={name='h', role='internal', region='CN'}\ncategories='user'\n",
         "datasets[1].categories: must be a list"),
        ("datasets = 3\n", "datasets: must be one or more tables"),
        ("[defaults]\npurpose='essential.service'\n" + "[[datasets]]\nnamespace='a'\nname='b'\n"
         "holder={name='h', role='internal', region='CN'}\n" * 2, "datasets[2]: names a dataset"),
    ],
)
def test_a_bad_mapping_file_is_one_line_naming_file_and_key(tmp_path: Path, text: str, words: str) -> None:
    """Unknown keys, missing purpose, taxonomy misses, wrong types, repeats: one line with the file and key."""
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LineageError) as caught:
        load_mapping(path, TAXONOMY)
    message = str(caught.value)
    assert "mapping.toml: " in message and words in message and "\n" not in message, message


def test_each_unknown_dataset_is_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """The same unmapped dataset in three runs: one log line, one in the count; ignored runs counted apart."""
    counters = Counters()
    with caplog.at_level(logging.WARNING, logger="lineage.gateway.openlineage"):
        for _ in range(3):
            counters.count(_read(_run()))
        counters.count(_read(_run(eventType="START")))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["unknown dataset 's3://unmapped-bucket/scratch/customers': not in the OpenLineage mapping; "
                     "its flows are not recorded"]  # fmt: skip
    assert counters.as_json() == {"runs": 3, "flows": 6, "ignored": 1, "unknown_datasets": 1}


def test_a_gzip_body_is_inflated_within_the_bound_and_a_bomb_is_stopped() -> None:
    """A gzip body (as OpenLineage clients may send) is read; one that inflates past the bound is None (413)."""
    body = json.dumps(_run()).encode()
    assert _decoded(gzip.compress(body), "gzip", 1 << 20) == body
    assert _decoded(gzip.compress(b" " * (10 << 20)), "gzip", 1 << 20) is None
    with pytest.raises(RequestError) as caught:
        _decoded(b"not gzip", "gzip", 1 << 20)
    assert caught.value.status == 400
    with pytest.raises(RequestError) as caught:
        _decoded(body, "br", 1 << 20)
    assert caught.value.status == 415



def test_a_dataset_listed_again_is_one_dataset_holding_both_listings_tags() -> None:
    """The input listed twice (email tagged once, phone the other): one flow carrying both, not the last listing's."""
    run = _run()
    first = {"namespace": "postgres://shop-db:5432", "name": "shop.public.customers"}
    run["inputs"] = [
        first | {"facets": {"tags": {"tags": [{"key": "lineage.category", "value": "user.contact.email"}]}}},
        first | {"facets": {"tags": {"tags": [{"key": "lineage.category", "value": "user.contact.phone_number"}]}}},
    ] * 500
    run["outputs"] = [{"namespace": "s3://crm-cn", "name": "imports/customers"}] * 500
    reading = _read(run)
    assert [e.categories for e in reading.events] == [("user.contact.email", "user.contact.phone_number")]


def test_past_the_bound_unknown_datasets_are_counted_and_no_longer_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Names are remembered up to a bound: past it each unknown dataset seen is counted, and that is said once."""
    monkeypatch.setattr("lineage.gateway.openlineage._MAX_NAMES", 2)
    counters = Counters()
    run = _run(outputs=[{"namespace": "s3://x", "name": n} for n in ("a", "b", "a", "c", "d")])
    with caplog.at_level(logging.WARNING, logger="lineage.gateway.openlineage"):
        counters.count(_read(run))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and "'s3://x/a'" in lines[0] and "'s3://x/b'" in lines[1]
    assert lines[2] == "more than 2 unknown datasets: counted from now on, no longer named"
    assert counters.as_json()["unknown_datasets"] == 4


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every place in a JSON value (dict keys and list indexes), the value's own place first."""
    places: list[tuple[object, ...]] = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            places += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            places += _paths(v, (*prefix, i))
    return places


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
_PLACES = _paths(_run())[1:]


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PLACES), _JSON), min_size=1, max_size=4))
def test_any_run_event_is_read_or_refused_in_one_line(changes: list[tuple[tuple[object, ...], object]]) -> None:
    """The sample with any of its parts replaced by any JSON: flow events, a reason, or a 4xx of one line each."""
    run: Any = _run()
    for place, value in changes:
        parent = run
        try:
            for step in place[:-1]:
                parent = parent[step]
            parent[place[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this place
    try:
        reading = _read(run)
    except RequestError as exc:
        assert 400 <= exc.status < 500 and all("\n" not in e for e in exc.errors), exc.errors
        return
    assert bool(reading.events) != bool(reading.ignored)
