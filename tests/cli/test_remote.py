"""The console client (``lineage.cli.remote``) against a stand-in HTTP server: what it refuses, and how it says so."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lineage.cli.remote import ask, console_base
from lineage.errors import ConfigurationError, ConsoleError


@contextmanager
def answering(status: int, body: bytes, headers: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """A loopback server giving every POST ``status`` and ``body``; its URL and the Authorization headers it saw."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            seen.append(self.headers.get("Authorization", ""))
            self.rfile.read(int(self.headers.get("Content-Length", 0)))  # all of it: closing on unread bytes resets
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST  # noqa: N815 - a followed redirect would arrive as a GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_is_refused_and_the_token_goes_nowhere_else() -> None:
    """A 3xx is not followed (urllib would resend the token to wherever it points): one error naming --console."""
    with answering(200, b"{}") as (elsewhere, seen_elsewhere), \
            answering(302, b"", {"Location": elsewhere + "/steal"}) as (url, seen):  # fmt: skip
        with pytest.raises(ConsoleError, match="^--console: the console answered with a redirect"):
            ask(url, "lin_secret", "access", {})
    assert seen == ["Bearer lin_secret"] and seen_elsewhere == []


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b"[]", b'{"title": "x"}', b'{"title": "x", "facts": {}, "tables": {}}',
     b'{"title": "x", "facts": {"holds_data": true}, "tables": {"t": [1, 2]}}'],
)  # fmt: skip
def test_an_answer_not_shaped_as_a_document_is_refused(body: bytes) -> None:
    """Something else answering at the address gives one line naming --console, never a traceback later."""
    with answering(200, body) as (url, _), pytest.raises(ConsoleError, match="not as a lineage console"):
        ask(url, "lin_secret", "access", {})


@pytest.mark.parametrize(
    ("status", "said"),
    [(401, "console_token: the console refused the token: no"), (403, "console_token: the token's account may not"),
     (422, "case_reference: bad"), (500, "--console: the console failed (500)")],
)  # fmt: skip
def test_a_console_refusal_names_what_to_fix(status: int, said: str) -> None:
    """The console's own one-line message comes through, under the setting or field to fix."""
    message = {401: "no", 403: "role", 422: "case_reference: bad", 500: "internal error"}[status]
    with answering(status, json.dumps({"error": message}).encode()) as (url, _):
        with pytest.raises(ConsoleError) as raised:
            ask(url, "lin_secret", "access", {})
    assert str(raised.value).startswith(said) and raised.value.status == status
    assert "lin_secret" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    ["http://console.example", "http://127.0.0.1.evil.example", "http://user:pw@127.0.0.1", "ftp://127.0.0.1",
     "127.0.0.1:8000", "http://"],
)  # fmt: skip
def test_only_https_or_loopback_http_is_accepted(url: str) -> None:
    """A token never travels in clear off this machine, nor in the address itself."""
    with pytest.raises(ConfigurationError, match="^--console: "):
        console_base(url)


def test_https_anywhere_and_http_to_loopback_are_accepted() -> None:
    """The base keeps scheme, host, port and path, without a trailing slash."""
    assert console_base("https://console.example/lineage/") == "https://console.example/lineage"
    assert console_base("http://[::1]:8000") == "http://[::1]:8000"
    assert console_base("http://localhost:8000") == "http://localhost:8000"


def test_plain_http_never_goes_through_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """http_proxy set: the request still goes straight to the console on this machine, so no proxy sees the token."""
    document = {"title": "Access request", "facts": {"holds_data": False, "as_of": "t", "store_snapshot": 1},
                "tables": {}}  # fmt: skip
    with answering(200, json.dumps(document).encode()) as (url, seen), answering(200, b"{}") as (proxy, proxied):
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.setenv("no_proxy", "")
        assert ask(url, "lin_secret", "access", {})[0] == "Access request"
    assert seen == ["Bearer lin_secret"] and proxied == []


def test_an_answer_too_large_or_not_http_is_one_line() -> None:
    """Gigabytes, or bytes that are not HTTP at all: a ConsoleError naming --console, read no further."""
    with answering(200, b"[" * (64 * 2**20 + 10)) as (url, _), pytest.raises(ConsoleError, match="more than 64 MiB"):
        ask(url, "lin_secret", "access", {})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def garbage() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(60)
                received = b""
                while not received.endswith(b"\r\n\r\n{}"):  # the whole request (its body is {}), read
                    received += conn.recv(65536) or b"\r\n\r\n{}"  # before the answer: no reset
                conn.sendall(b"SSH-2.0-OpenSSH_9.0\r\n")

        thread = threading.Thread(target=garbage, daemon=True)
        thread.start()
        with pytest.raises(ConsoleError, match="not as a lineage console"):
            ask(f"http://127.0.0.1:{listener.getsockname()[1]}", "lin_secret", "access", {})
        thread.join(30)


@pytest.mark.parametrize("url", ["http://[::1", "http://localhost:abc", "http://127.0.0.1:8000/ a", "http://[evil]"])
def test_a_malformed_address_is_one_line_naming_console(url: str) -> None:
    """Addresses urllib would fail on later with its own exceptions are refused up front."""
    with pytest.raises(ConfigurationError, match="^--console: "):
        console_base(url)


def test_a_token_that_cannot_be_one_is_refused_before_sending() -> None:
    """A token with spaces or non-ASCII characters names console_token, not the console."""
    for token in ("lin_中abc", "lin_a b", "lin_\x00"):
        with pytest.raises(ConfigurationError, match="^console_token: is not an API token"):
            ask("http://127.0.0.1:9", token, "access", {})
