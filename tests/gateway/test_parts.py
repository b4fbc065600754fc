"""The gateway's parts without a broker: tokens kept hashed and scoped, the rate bound, reading a body."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from lineage import default_taxonomy
from lineage.codec.avro import Codec
from lineage.contract.validation import Validator
from lineage.errors import ConfigurationError
from lineage.gateway.intake import RequestError, read_events
from lineage.gateway.limits import RateLimit
from lineage.gateway.tokens import ServiceTokens, TokenError
from lineage.sdk.jsonlines import has_no_surrogates
from lineage.sdk.prepared import MAX_EVENT_BYTES, Preparer

TAXONOMY = default_taxonomy()
DATA = Path(__file__).parent / "data"
CODEC = Codec()


def _prepare(validator: Validator | None = None) -> Preparer:
    return Preparer(validator or Validator(TAXONOMY), CODEC, max_bytes=MAX_EVENT_BYTES)


def _event(**changes: object) -> dict[str, object]:
    event: dict[str, object] = {"event_type": "collected", "system": "checkout", "system_region": "CN"}
    event |= {"subject_id": "user-42", "categories": ["user.contact.email"], "purpose": "essential.service"}
    return event | {"legal_basis": "CONTRACT"} | changes


def test_a_token_is_kept_only_as_a_digest_in_a_private_file(tmp_path: Path) -> None:
    """The token file is 0600 and holds the SHA-256 of the token, never the token; find() knows its systems."""
    tokens = ServiceTokens(tmp_path / "t.json")
    token_id, token = tokens.add("checkout-svc", ["checkout", "web"])
    text = (tmp_path / "t.json").read_text()
    assert token not in text and token.removeprefix("lin_") not in text
    assert stat.S_IMODE(os.stat(tmp_path / "t.json").st_mode) == 0o600
    found = tokens.find(token)
    assert found is not None and (found.id, found.systems) == (token_id, frozenset({"checkout", "web"}))
    assert tokens.find(token + "x") is None


def test_a_revoked_token_is_not_found_by_a_reader_that_read_the_file_before(tmp_path: Path) -> None:
    """A gateway's reader notices the file changed: a token revoked by another process is no longer found."""
    reader = ServiceTokens(tmp_path / "t.json")
    _, token = ServiceTokens(tmp_path / "t.json").add("svc", ["checkout"])
    assert reader.find(token) is not None
    assert ServiceTokens(tmp_path / "t.json").revoke("svc") == 1
    assert reader.find(token) is None


@pytest.mark.parametrize("mode", [0o622, 0o644], ids=["others-write", "others-read"])
def test_a_token_file_others_can_write_or_read_or_a_symlink_is_refused(tmp_path: Path, mode: int) -> None:
    """A file another user could write (a token for themselves) or read (0644, a copy) is refused, as is a symlink."""
    path = tmp_path / "t.json"
    _, token = ServiceTokens(path).add("svc", ["checkout"])
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match="--tokens: .* no one else can read or write"):
        ServiceTokens(path).find(token)
    path.chmod(0o600)
    assert ServiceTokens(path).find(token) is not None
    (tmp_path / "link.json").symlink_to(path)
    with pytest.raises(ConfigurationError, match="--tokens"):
        ServiceTokens(tmp_path / "link.json").find(token)


def test_a_token_needs_a_plain_name_and_a_system(tmp_path: Path) -> None:
    """A bad service name or no system is refused with the option named."""
    with pytest.raises(TokenError, match="name:"):
        ServiceTokens(tmp_path / "t.json").add("Bad Name", ["checkout"])
    with pytest.raises(TokenError, match="--system"):
        ServiceTokens(tmp_path / "t.json").add("svc", [])


def test_the_rate_bound_refills_and_refuses_whole_requests() -> None:
    """Bursts of one second's worth pass; past it a request waits for the refill; a batch over the rate never does."""
    now = [0.0]
    limit = RateLimit(100, clock=lambda: now[0])
    assert limit.take("a", 100) == 0.0
    assert limit.take("a", 10) == pytest.approx(0.1)
    assert limit.take("b", 10) == 0.0  # per token
    now[0] = 0.1
    assert limit.take("a", 10) == 0.0
    assert limit.take("a", 101) == float("inf")
    assert RateLimit(0).take("a", 10**9) == 0.0


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{", "body: not valid JSON"),
        (b"[" * 100_000, "body: not valid JSON"),
        (b"12", "expected an event object"),
        (b'{"events": {}}', "events: must be a JSON array"),
        (b'{"events": [], "x": 1}', 'holds only "events"'),
        (json.dumps([_event(), _event(legal_basis="MAYBE")]).encode(), "events[1]: legal_basis='MAYBE'"),
        (json.dumps([_event(), 7]).encode(), "events[1]: expected a JSON object"),
        (json.dumps(_event(subject_id=None)).encode(), "subject_id"),
        (json.dumps(_event(categories=["user.contact.email"] * 200_000)).encode(), "over Kafka's"),
    ],
)
def test_a_bad_body_names_the_event_and_field_never_the_identifier(body: bytes, words: str) -> None:
    """Each bad body is a 400 naming the index and field; the subject's identifier is never in it."""
    with pytest.raises(RequestError) as caught:
        read_events(body, prepare=_prepare(), systems=frozenset({"checkout"}))
    assert caught.value.status == 400
    assert words in caught.value.errors[0]
    assert "user-42" not in str(caught.value.errors)


def test_an_event_of_a_system_outside_the_scope_is_403_naming_system() -> None:
    """An event whose system the token may not emit as refuses the whole request with 403."""
    body = json.dumps([_event(), _event(system="billing")]).encode()
    with pytest.raises(RequestError) as caught:
        read_events(body, prepare=_prepare(), systems=frozenset({"checkout"}))
    assert caught.value.status == 403
    assert caught.value.errors == ["events[1]: system='billing': this token may not emit as that system"]


def test_two_different_events_with_one_id_in_a_batch_are_refused() -> None:
    """Two different events sharing an event_id are a 400 naming both indexes (one would be silently dropped)."""
    event_id = "0b7e4c52-6d1f-4c1e-9a53-2f7a61c1e001"
    same = _event(event_id=event_id)
    body = json.dumps([same, same, _event(event_id=event_id, subject_id="user-43")]).encode()
    with pytest.raises(RequestError) as caught:
        read_events(body, prepare=_prepare(), systems=frozenset({"checkout"}))
    assert caught.value.status == 400
    assert caught.value.errors == [
        "events[2]: event_id: the same as events[0]'s, for a different event; give each its own"
    ]
    body = json.dumps([same, same]).encode()
    repeated = read_events(body, prepare=_prepare(), systems=frozenset({"checkout"}))
    assert [e.event_id for e in repeated] == [event_id, event_id]  # the same event twice: a retry, sent once


class _CountingValidator(Validator):
    """A validator that counts the events it was asked to check."""

    checked = 0

    def check(self, r: Mapping[str, Any]) -> None:
        """Count, then check as the validator does."""
        self.checked += 1
        super().check(r)


def test_many_bad_events_are_listed_up_to_a_bound_and_the_rest_not_read() -> None:
    """A batch of 500 bad events lists 20 and stops there (each costs ms: 5,000 cost 14 s of CPU before)."""
    body = json.dumps([_event(purpose="nope")] * 500).encode()
    validator = _CountingValidator(TAXONOMY)
    with pytest.raises(RequestError) as caught:
        read_events(body, prepare=_prepare(validator), systems=frozenset({"checkout"}))
    assert len(caught.value.errors) == 21 and validator.checked == 20
    assert caught.value.errors[-1] == "... and 480 more events not checked: reading stops at 20 refused ones"


def test_serve_refuses_a_token_file_others_can_write_at_start(tmp_path: Path) -> None:
    """`lineage gateway serve` exits 2 naming --tokens before connecting to any broker, not at the first request."""
    import subprocess
    import sys

    path = tmp_path / "t.json"
    ServiceTokens(path).add("svc", ["checkout"])
    path.chmod(0o666)
    command = [Path(sys.executable).parent / "lineage", "gateway", "serve", "--tokens", str(path)]
    done = subprocess.run([*command, "--bootstrap-servers", "127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("lineage: --tokens:") and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ('"Zo\\u00eb"', True),  # an escape outside the surrogates
        ('"Zoë"', True),  # non-ASCII text: read string by string
        ('"back\\\\ud800slash"', True),  # an escaped backslash, then letters: no surrogate
        ('"\\ud800"', False),  # a lone surrogate, escaped
        ('"\\uDFFF"', False),
    ],
)
def test_a_lone_surrogate_anywhere_in_a_batch_is_refused_naming_its_field(raw: str, ok: bool) -> None:
    """Text with no UTF-8 form is a 400 naming events[i] and the field; other text, escaped or not, is read."""
    good = json.dumps(_event())
    body = f'[{good}, {good[:-1]}, "source": {raw}}}]'.encode()
    if ok:
        assert len(read_events(body, prepare=_prepare(), systems=frozenset({"checkout"}))) == 2
    else:
        with pytest.raises(RequestError) as caught:
            read_events(body, prepare=_prepare(), systems=frozenset({"checkout"}))
        assert caught.value.errors == [
            "events[1]: source: holds text that is not valid UTF-8 (bytes that are not UTF-8, or a lone surrogate "
            "such as \\ud800)"
        ]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_has_no_surrogates_is_not_fooled_by_a_bom_less_utf16_or_utf32_body(encoding: str) -> None:
    r"""json.loads reads UTF-16/32 without a BOM: such a body is ASCII bytes, NULs splitting its \ud800 escape."""
    body = json.dumps(_event(purpose="\ud800")).encode(encoding)
    assert "\ud800" in json.loads(body)["purpose"]  # the decoded body does hold a lone surrogate
    assert not has_no_surrogates(body)


def test_a_utf16_body_with_a_lone_surrogate_gets_the_same_answer_as_its_utf8_form() -> None:
    """A lone surrogate in a UTF-16 body is refused as in UTF-8: naming the field, not quoting the value."""
    prepare = _prepare()
    text = json.dumps(_event(categories=["\ud800"]))
    answers = []
    for body in (text.encode("utf-8"), text.encode("utf-16-le")):
        with pytest.raises(RequestError) as caught:
            read_events(body, prepare=prepare, systems=frozenset({"checkout"}))
        answers.append(caught.value.errors)
    assert answers[0] == answers[1]


def test_an_openlineage_flow_over_kafkas_bound_is_a_400_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose flow encodes over Kafka's bound is a 400 saying so, without the reader's "line 0"."""
    from fastapi.testclient import TestClient

    import lineage.gateway.app as app_module
    from lineage import Emitter, Settings
    from lineage.gateway.app import Gateway, create_app
    from lineage.gateway.limits import RateLimit
    from lineage.gateway.mapping import load_mapping
    from lineage.gateway.relay import Relay
    from lineage.gateway.tokens import ServiceTokens
    from lineage.testing import MemorySink

    monkeypatch.setattr(app_module, "MAX_EVENT_BYTES", 10)  # stands for a flow whose encoding is over 1 MB
    relay = Relay(Emitter(system="checkout", region="CN", sink=MemorySink(), settings=Settings()))
    tokens = ServiceTokens(tmp_path / "t.json")
    _, token = tokens.add("etl", ["shop", "crm-cn", "mailer"])
    mapping = load_mapping(DATA / "openlineage-mapping.toml", TAXONOMY)
    run = (DATA / "run-complete.json").read_bytes()
    with TestClient(create_app(Gateway(tokens, relay, RateLimit(0), mapping=mapping))) as client:
        answer = client.post("/api/v1/lineage", content=run, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "the event encodes to 204 bytes, over Kafka's 10 per message (a flow of this run)"
