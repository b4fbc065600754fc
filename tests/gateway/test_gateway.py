"""The gateway over a real broker: good events land on the topic once; every bad request is refused whole."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from lineage import Settings
from lineage.codec.json_schema import json_schema
from lineage.sdk.jsonlines import event_to_json
from tests.fixtures import sample_events
from tests.gateway.conftest import VENV_BIN, Running, free_port, post, post_json, running_gateway, topic_ids

pytestmark = pytest.mark.integration


def _event(system: str = "checkout", **changes: object) -> dict[str, object]:
    """A valid event as JSON, with a fresh id."""
    out: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "COLLECTED",
        "occurred_at": "2026-05-01T08:00:00+08:00",
        "system": system,
        "system_region": "CN",
        "subject_id": "user-42",
        "categories": ["user.contact.phone_number"],
        "purpose": "essential.service",
        "legal_basis": "CONTRACT",
    }
    return out | changes


def test_single_and_batches_are_acknowledged_and_on_the_topic_once(gateway: Running, kafka_settings: Settings) -> None:
    """One object, an array and {"events": [...]} each answer 202 after the broker has them, each id once."""
    token = gateway.token("checkout-svc", "checkout")
    single = _event()
    status, answer = post_json(gateway.url, single, token)
    assert (status, answer["acknowledged"], answer["event_ids"]) == (202, 1, [single["event_id"]])
    array = [_event() for _ in range(50)]
    status, answer = post_json(gateway.url, array, token)
    assert (status, answer["acknowledged"], answer["spooled"]) == (202, 50, 0)
    wrapped = [event_to_json(e) for e in sample_events() if e.system == "checkout"]
    status, answer = post_json(gateway.url, {"events": wrapped}, token)
    assert (status, answer["acknowledged"]) == (202, len(wrapped))
    sent = [single["event_id"], *(e["event_id"] for e in array), *(e["event_id"] for e in wrapped)]
    on_topic = Counter(topic_ids(kafka_settings))
    assert set(on_topic) == set(sent)
    assert max(on_topic.values()) == 1


def test_the_schema_is_served_without_a_token(gateway: Running) -> None:
    """GET /schema answers the JSON Schema generated from the contract, to anyone (it holds no data)."""
    with urllib.request.urlopen(gateway.url + "/schema", timeout=60) as answer:
        assert answer.headers["Content-Type"] == "application/schema+json"
        assert json.loads(answer.read()) == json_schema()


def test_a_retried_batch_is_not_sent_again(gateway: Running, kafka_settings: Settings) -> None:
    """The same batch posted twice (a client retry) answers 202 both times and reaches the topic once."""
    token = gateway.token("checkout-svc", "checkout")
    batch = [_event() for _ in range(20)]
    first = post_json(gateway.url, batch, token)
    again = post_json(gateway.url, batch + batch[:1], token)  # and an id twice in one request
    assert (first[0], first[1]["acknowledged"]) == (202, 20)
    assert (again[0], again[1]["acknowledged"], again[1]["duplicates"]) == (202, 0, 21)
    on_topic = Counter(topic_ids(kafka_settings))
    assert sorted(on_topic) == sorted(e["event_id"] for e in batch)
    assert set(on_topic.values()) == {1}


def _bad_requests(token: str, other: str) -> list[tuple[str, bytes, str | None, int, str]]:
    """(what, body, token, the status, words the first error holds) of each bad request; each holds good events."""
    good = _event()
    big = json.dumps([_event() for _ in range(4000)]).encode()  # about 1.3 MB
    return [
        ("malformed JSON", b'[{"event_type": "COLLECTED",', token, 400, "not valid JSON"),
        ("not UTF-8", b'{"system": "\xff\xfe"}', token, 400, "UTF-8"),
        ("a string", b'"hello"', token, 400, "expected an event object"),
        ("an empty batch", b"[]", token, 400, "no event"),
        ("wrong type", json.dumps([good, _event(categories="user.contact.email")]).encode(), token, 400,
         "events[1]: categories"),
        ("wrong type of time", json.dumps([_event(occurred_at=12)]).encode(), token, 400, "events[0]: occurred_at"),
        ("unknown field", json.dumps({"events": [good, _event(subjectid="user-1")]}).encode(), token, 400,
         "events[1]: subjectid: unknown event field"),
        ("unknown category", json.dumps(_event(categories=["user.phone"])).encode(), token, 400, "user.phone"),
        ("a huge body", big, token, 413, "body: larger than"),
        ("no token", json.dumps(good).encode(), None, 401, "bearer token is required"),
        ("a wrong token", json.dumps(good).encode(), "lin_" + "x" * 43, 401, "not valid"),
        ("a token for another system", json.dumps([good, _event(system="billing")]).encode(), other, 403,
         "events[0]: system='checkout': this token may not emit as that system"),
    ]  # fmt: skip


def test_each_bad_request_is_a_clear_4xx_and_nothing_is_produced(gateway: Running, kafka_settings: Settings) -> None:
    """Malformed JSON, wrong types, unknown fields, huge body, no/wrong/foreign token: a 4xx naming it, none sent."""
    token = gateway.token("checkout-svc", "checkout")
    other = gateway.token("billing-svc", "billing")
    for what, body, bearer, status, words in _bad_requests(token, other):
        got, answer = post(gateway.url, body, bearer)
        assert got == status, (what, answer)
        assert words in answer["error"], (what, answer)
        assert "user-42" not in json.dumps(answer) and "user-1" not in json.dumps(answer), what  # never an identifier
    assert topic_ids(kafka_settings) == []


def test_a_revoked_token_is_refused_without_a_restart(gateway: Running, kafka_settings: Settings) -> None:
    """`lineage gateway token revoke` takes effect on the running gateway: 401, nothing sent."""
    import subprocess

    from tests.gateway.conftest import VENV_BIN

    token = gateway.token("checkout-svc", "checkout")
    assert post_json(gateway.url, _event(), token)[0] == 202
    subprocess.run([str(VENV_BIN / "lineage"), "gateway", "token", "revoke", "checkout-svc", "--tokens",
                    str(gateway.tokens)], check=True, capture_output=True, timeout=60)  # fmt: skip
    late = _event()
    status, answer = post_json(gateway.url, late, token)
    assert status == 401, answer
    assert late["event_id"] not in topic_ids(kafka_settings)


def test_a_token_file_made_unsafe_while_serving_is_a_503_and_one_log_line(
    gateway: Running, kafka_settings: Settings
) -> None:
    """A token file others can write, found while serving: 503 naming it, one log line, not a 500 and a traceback."""
    token = gateway.token("checkout-svc", "checkout")
    os.chmod(gateway.tokens, 0o666)
    os.utime(gateway.tokens)  # as if written by someone else: the gateway reads it again
    status, answer = post_json(gateway.url, _event(), token)
    assert status == 503 and "token file" in answer["error"], answer
    os.chmod(gateway.tokens, 0o600)
    os.utime(gateway.tokens)
    good = _event()
    assert post_json(gateway.url, good, token)[0] == 202
    assert topic_ids(kafka_settings) == [good["event_id"]]
    log = "".join(p.read_text() for p in gateway.tokens.parent.glob("gateway-*.log"))
    assert "--tokens:" in log and "Traceback" not in log


def test_over_the_rate_bound_is_429_with_retry_after_and_nothing_sent(kafka_settings: Settings, tmp_path: Path) -> None:
    """A token bound to 100 events a second: 100 pass, the next batch is 429 with Retry-After, and it is not sent."""
    with running_gateway(kafka_settings, tmp_path, "--rate", "100") as gw:
        token = gw.token("checkout-svc", "checkout")
        first = [_event() for _ in range(100)]
        assert post_json(gw.url, first, token)[0] == 202
        late = [_event() for _ in range(50)]
        request = urllib.request.Request(gw.url + "/v1/events", data=json.dumps(late).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 429
        assert int(refused.value.headers["Retry-After"]) >= 1
        assert "over this token's bound of 100 a second" in json.loads(refused.value.read())["error"]
        too_big = post_json(gw.url, [_event() for _ in range(101)], token)
        assert too_big[0] == 429 and "send smaller batches" in too_big[1]["error"]
    assert sorted(topic_ids(kafka_settings)) == sorted(e["event_id"] for e in first)


def test_a_chunked_body_is_refused_as_it_passes_the_bound(gateway: Running, kafka_settings: Settings) -> None:
    """A body with no Content-Length is counted as it streams: 413 once past 1 MiB, and nothing is sent."""
    token = gateway.token("checkout-svc", "checkout")
    host, port = gateway.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    chunk = b" " * 65536
    try:
        conn.putrequest("POST", "/v1/events")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for _ in range(40):  # 2.5 MiB of JSON whitespace, then an event: read and dropped, never kept
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        body = json.dumps(_event()).encode()
        conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        answer = conn.getresponse()
        status, text = answer.status, answer.read()
    except (BrokenPipeError, ConnectionResetError):  # the server may answer and close before all is sent
        answer = conn.getresponse()
        status, text = answer.status, answer.read()
    finally:
        conn.close()
    assert status == 413
    assert "body: larger than the 1,048,576 bytes allowed" in json.loads(text)["error"]
    assert topic_ids(kafka_settings) == []


def test_a_body_declared_far_past_the_bound_is_answered_before_a_byte_of_it_is_sent(gateway: Running) -> None:
    """Content-Length past 8 MiB: the 413 comes at once (nothing is drained), the client sends no body."""
    token = gateway.token("checkout-svc", "checkout")
    host, port = gateway.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.putrequest("POST", "/v1/events")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Length", str(8 * 1024 * 1024 + 1))
        conn.endheaders()
        answer = conn.getresponse()
        status, text, connection = answer.status, answer.read(), answer.getheader("Connection")
    finally:
        conn.close()
    assert status == 413 and "body: larger than" in json.loads(text)["error"]
    assert connection == "close"  # the server closes rather than read what the client may still send


def _answer_to_a_head(gateway: Running, token: str, headers: str) -> bytes:
    """What the gateway sends, to the close, for a POST's head (``headers``: CRLF-separated) and no body."""
    host, port = gateway.url.removeprefix("http://").split(":")
    head = (f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{headers}\r\n\r\n")  # fmt: skip
    got = b""
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(head.encode())
        while chunk := sock.recv(65536):  # to the end: a refusal that takes no body closes
            got += chunk
    return got


def test_a_client_waiting_for_100_continue_is_refused_before_it_sends_the_body(gateway: Running) -> None:
    """As curl sends past 1 MiB (Expect: 100-continue, 3 MB declared): the 413 comes first, no 100 Continue."""
    token = gateway.token("checkout-svc", "checkout")
    got = _answer_to_a_head(gateway, token, "Content-Length: 3000000\r\nExpect: 100-continue")
    assert got.startswith(b"HTTP/1.1 413 ") and b"connection: close" in got.lower()


def test_a_refused_client_that_never_sends_its_body_is_answered_and_closed(gateway: Running) -> None:
    """A wrong token and 900 kB declared, then silence: the 401 still comes (after the drain's wait), then the close."""
    got = _answer_to_a_head(gateway, "lin_" + "x" * 43, "Content-Length: 900000")
    assert got.startswith(b"HTTP/1.1 401 ") and b"connection: close" in got.lower()


@pytest.mark.parametrize(("size", "authorised", "status", "words"), [
    (3_000_000, True, 413, "send smaller batches"),
    (900_000, False, 401, "bearer token is not valid"),
])  # fmt: skip
def test_a_refused_body_is_read_to_its_end_so_the_client_hears_why(
    gateway: Running, kafka_settings: Settings, size: int, authorised: bool, status: int, words: str
) -> None:
    """A client that sends all before it reads, through a small buffer: 3 MB gets its 413, a wrong token its 401."""
    token = gateway.token("checkout-svc", "checkout") if authorised else "lin_" + "x" * 43
    event = json.dumps(_event()).encode()
    big = b"[" + b",".join([event] * (size // len(event))) + b"]"
    host, port = gateway.url.removeprefix("http://").split(":")
    for _ in range(2):
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            conn.connect()
            assert conn.sock is not None
            # still sending when the gateway decides: what a client far from it meets
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            # Connection: close, as urllib sends it: the server closes once it has answered
            headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
            conn.request("POST", "/v1/events", body=big, headers=headers)
            answer = conn.getresponse()
            got, text = answer.status, answer.read()
        finally:
            conn.close()
        assert got == status and words in json.loads(text)["error"]
    assert topic_ids(kafka_settings) == []


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_gateway_started_with_the_stop_signals_held_still_stops_on_sigterm_or_ctrl_c(
    kafka_settings: Settings, tmp_path: Path, stop: signal.Signals
) -> None:
    """A launcher held the stop signals while starting the gateway (the child keeps the mask): each stops it, exit 0."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        serving = running_gateway(kafka_settings, tmp_path, "--rate", "0")
        running = serving.__enter__()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    try:
        running.proc.send_signal(stop)
        code = running.proc.wait(180)  # held, it never ends: the wait runs out and the test fails
    finally:
        serving.__exit__(None, None, None)
    assert code == 0


def test_a_sigterm_held_since_the_gateway_s_launch_stops_it_through_its_cleanup(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """SIGTERM sent while the launcher still held it: the gateway starts, stops, flushes its producer, exits 0."""
    args = [str(VENV_BIN / "lineage"), "gateway", "serve", "--port", str(free_port()), "--tokens", str(tmp_path / "t"),
            "--bootstrap-servers", kafka_settings.bootstrap_servers, "--topic", kafka_settings.topic]  # fmt: skip
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        proc.send_signal(signal.SIGTERM)  # pending in the child until it unblocks the signal
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert "stopped: the producer flushed and closed" in out
