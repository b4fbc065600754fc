"""Asking a running console (``lineage serve``) for a person's answer instead of opening the store.

A command that opens the store first loads pyiceberg, pyarrow and DuckDB and reads the table's
metadata: about a second before its first query, whatever the question. A console has all of that
loaded and its reads warm, so ``lineage access --console URL`` asks it (``POST /api/access``) and
renders the document it sends back with the same ``render``: the same output, in a process that
loads the standard library alone. The console checks the analyst's token and records the look-up
with its case reference in its audit trail, as for its own pages.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from lineage.errors import ConfigurationError, ConsoleError
from lineage.present.formats import Document

__all__ = ["ask", "console_base"]

#: how long a console may take to answer one person's question (seconds): far above its usual
#: milliseconds, for a console busy with a breach job on a loaded machine
TIMEOUT_S = 120.0
#: the largest answer read: a person's answer is kilobytes; a stand-in sending gigabytes is refused
MAX_ANSWER_BYTES = 64 * 2**20
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def console_base(url: str, option: str = "--console") -> str:
    """The console's base URL, checked: ``https://``, or plain ``http://`` to this machine only.

    The analyst's bearer token travels in every request, so it never crosses a network in clear.
    """
    try:
        parts = urlsplit(url)
        hostname, _ = parts.hostname, parts.port  # each raises ValueError on a malformed host or port
    except ValueError:
        raise ConfigurationError(option, "is not a valid address, e.g. https://console.example") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise ConfigurationError(option, "must be the console's address, e.g. https://console.example")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(option, "must not hold a user or password: the token comes from its own setting")
    if not url.isascii() or any(c.isspace() for c in url):
        raise ConfigurationError(option, "must be ASCII without spaces (percent-encode anything else)")
    if parts.scheme == "http" and hostname not in _LOOPBACK:
        raise ConfigurationError(option, "plain http:// only to this machine (127.0.0.1, ::1, localhost): the token "
                                 "travels in every request; put TLS in front and give https://")  # fmt: skip
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def ask(base: str, token: str | None, answer: str, query: dict[str, Any], option: str = "--console") -> Document:
    """``answer`` (``access`` or ``erasure``) from the console at ``base``, as the document it sent.

    Every failure is a ``ConsoleError`` naming what to fix: the token (401, 403), the field the
    console named (400, 422), or ``option`` (no answer, or the console failed).
    """
    if not token:
        raise ConfigurationError("console_token", f"is required with {option}: give an analyst's API token "
                                 "(lineage users token NAME) by LINEAGE_CONSOLE_TOKEN_FILE")  # fmt: skip
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigurationError("console_token", "is not an API token (lineage users token NAME prints one)")
    request = urllib.request.Request(
        f"{base}/api/{answer}", data=json.dumps(query).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    # plain http goes to this machine only (console_base): never through a proxy named by http_proxy,
    # which would see the token; https keeps the proxies the environment names (TLS passes through them)
    direct = base.startswith("http://")
    opener = urllib.request.build_opener(*((urllib.request.ProxyHandler({}),) if direct else ()), _NoRedirects)
    try:
        with opener.open(request, timeout=TIMEOUT_S) as response:
            body = json.loads(_bounded(response, base, option))
    except urllib.error.HTTPError as refused:
        raise _refusal(refused, option) from None
    except ConsoleError:
        raise
    except (urllib.error.URLError, OSError) as unreachable:
        reason = getattr(unreachable, "reason", unreachable)
        raise ConsoleError(option, f"no console answered at {base}: {reason}") from None
    except (ValueError, RecursionError, http.client.HTTPException):  # not JSON, or not HTTP: something else
        raise ConsoleError(option, f"{base} answered, but not as a lineage console") from None
    if not _is_document(body):
        raise ConsoleError(option, f"{base} answered, but not as a lineage console")
    return body["title"], body["facts"], body["tables"]


def _bounded(response: Any, base: str, option: str) -> bytes:
    """The answer's body, refused past ``MAX_ANSWER_BYTES`` (a person's answer is far smaller)."""
    body: bytes = response.read(MAX_ANSWER_BYTES + 1)
    if len(body) > MAX_ANSWER_BYTES:
        raise ConsoleError(option, f"{base} sent more than {MAX_ANSWER_BYTES // 2**20} MiB: not a person's answer")
    return body


def _is_document(body: Any) -> bool:
    """Whether ``body`` has a document's shape: a title, facts, and tables of rows (what ``render`` reads)."""
    if not isinstance(body, dict) or not isinstance(body.get("title"), str):
        return False
    facts = body.get("facts")
    if not isinstance(facts, dict) or "holds_data" not in facts:  # every person's answer has it
        return False
    if "erased" not in facts and not {"as_of", "store_snapshot"} <= facts.keys():  # the stamp, or a certificate
        return False
    tables = body.get("tables")
    return isinstance(tables, dict) and all(
        isinstance(rows, list) and all(isinstance(row, dict) for row in rows) for rows in tables.values()
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: urllib would send the token on to wherever one points (another host, plain http)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None  # the 3xx itself is then raised as an HTTPError, and refused below





def _refusal(refused: urllib.error.HTTPError, option: str) -> ConsoleError:
    """The console's refusal as one line: its own message (which names the field), and what to fix."""
    try:
        message = str(json.loads(refused.read(64 * 1024)).get("error", ""))
    except (ValueError, AttributeError, OSError, RecursionError, http.client.HTTPException):
        message = ""
    message = " ".join(message.split())[:300]
    status = refused.code
    message = message or f"HTTP {status}"
    if status == 401:
        return ConsoleError("console_token", f"the console refused the token: {message}", status)
    if status == 403:
        return ConsoleError("console_token", f"the token's account may not ask this: {message}", status)
    if status in (400, 413, 422):  # the console's message names the field: "identifier: must be ..."
        field, sep, detail = message.partition(": ")
        return ConsoleError(field, detail, status) if sep and detail else ConsoleError(option, message, status)
    if 300 <= status < 400:
        return ConsoleError(option, f"the console answered with a redirect ({status}); give the address it "
                            "answers at (https://...), since the token is never sent on", status)  # fmt: skip
    if status == 404:
        return ConsoleError(option, "that console has no such answer (a console older than this command?)", status)
    return ConsoleError(option, f"the console failed ({status}): {message}", status)
