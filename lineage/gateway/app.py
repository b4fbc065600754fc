"""The gateway's web app: ``POST /v1/events`` (a bearer token, then the body), ``GET /schema``, ``GET /health``.

With a dataset mapping, ``POST /api/v1/lineage`` (the path OpenLineage clients post to) takes run
events, made into flow events by ``lineage.gateway.openlineage`` and sent the same way.

The token is checked before a byte of the body is read, and the body is bounded while it streams
in (``max_body``): a client without a token, or with a huge body, costs the gateway no memory. The
body of a refused request is read and dropped up to a bound (``max_body``, ``DRAIN_FACTOR`` times
it for a 413), so that its client hears why; past that the connection closes (``_answered``).
Every answer is JSON; a refusal says why in one line per problem (``error`` and
``errors``), never echoing the input's values that identify a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from lineage.codec.json_schema import json_schema
from lineage.contract.records import to_record
from lineage.contract.validation import Validator
from lineage.errors import BrokerError, ConfigurationError, InputLineError, LineageError, shown
from lineage.gateway.intake import RequestError, read_events
from lineage.gateway.limits import RateLimit
from lineage.gateway.mapping import DatasetMap
from lineage.gateway.openlineage import Counters, read_run_event
from lineage.gateway.relay import Relay, Unacknowledged
from lineage.gateway.tokens import ServiceToken, ServiceTokens
from lineage.sdk.prepared import MAX_EVENT_BYTES, Prepared, Preparer
from lineage.transport.provenance import gateway_headers
from lineage.transport.sink import Headers

__all__ = ["MAX_BODY", "Gateway", "create_app"]

#: the largest request body read, as the console's: about 3,000 events of a few hundred bytes
MAX_BODY = 1024 * 1024
#: a body past the bound up to this many times it is read and dropped, so that its client hears the 413
DRAIN_FACTOR = 8
DRAIN_S = 10.0  # how long a refused body may take to arrive: uvicorn bounds no body's read in time
_TICK_S = 1.0  # how often the spool's resending moves on while no request comes
_log = logging.getLogger("lineage.gateway")
_UNUSABLE = "Authorization: the gateway cannot use its token file now (its operator is told in its log); retry later"


@dataclass
class Gateway:
    """Everything a request needs: the tokens, the rate bound, the relay to Kafka, the OpenLineage mapping."""

    tokens: ServiceTokens
    relay: Relay
    limit: RateLimit
    max_body: int = MAX_BODY
    mapping: DatasetMap | None = None  # None: no OpenLineage door


def _refusal(status: int, errors: list[str], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": errors[0], "errors": errors}, status_code=status, headers=headers)


def create_app(gateway: Gateway) -> FastAPI:
    """The app over ``gateway``."""
    schema = json_schema()
    emitter = gateway.relay.emitter
    validator = Validator(emitter.taxonomy)
    prepare = Preparer(validator, emitter.codec, max_bytes=MAX_EVENT_BYTES)
    counters = Counters()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def tick() -> None:
            while True:
                await asyncio.sleep(_TICK_S)
                try:
                    await run_in_threadpool(gateway.relay.tick)
                except Exception as exc:  # a failed round is tried again next second; the loop must not die
                    _log.warning("moving the spool on failed (%s); trying again", type(exc).__name__)

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(title="lineage gateway", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    too_large = [f"body: larger than the {gateway.max_body:,} bytes allowed; send smaller batches"]

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        try:
            response: Response = await call_next(request)
        except Exception as exc:  # noqa: BLE001 - a bug: caught here, since past this the server logs a traceback
            # by its type only, in the answer and the log: its message or the traceback's may hold an identifier
            _log.error("internal error (%s) answering %s %s", type(exc).__name__, request.method, request.url.path)
            response = _refusal(500, [f"internal error ({type(exc).__name__}); please report it"])
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/schema")
    def get_schema() -> JSONResponse:
        return JSONResponse(schema, media_type="application/schema+json")

    @app.get("/health")
    def health() -> JSONResponse:
        state: dict[str, Any] = {"status": "ok", "spooled": emitter.spooled}
        if gateway.mapping is not None:
            state["openlineage"] = counters.as_json()
        return JSONResponse(state)

    drain = gateway.max_body * DRAIN_FACTOR

    @app.post("/v1/events")
    async def post_events(request: Request) -> Response:
        token = await _bearer(gateway, request)
        if not isinstance(token, ServiceToken):
            return await _answered(request, token, gateway.max_body)
        body, read = await _bounded_body(request, gateway.max_body)
        if body is None:
            return await _answered(request, _refusal(413, too_large), drain, read)
        try:
            return await run_in_threadpool(_accept, gateway, token, body, prepare)
        except RequestError as exc:
            return _refusal(exc.status, exc.errors)

    @app.post("/api/v1/lineage")
    async def post_lineage(request: Request) -> Response:
        token = await _bearer(gateway, request)
        if not isinstance(token, ServiceToken):
            return await _answered(request, token, gateway.max_body)
        if gateway.mapping is None:
            off = ["OpenLineage: not enabled here; start the gateway with --openlineage MAPPING.toml"]
            return await _answered(request, _refusal(404, off), gateway.max_body)
        body, read = await _bounded_body(request, gateway.max_body)
        try:
            plain = _decoded(body, request.headers.get("content-encoding", ""), gateway.max_body)
            if plain is None:  # past the bound as sent (the rest to drop), or once inflated (read whole)
                refused = _refusal(413, too_large)
                return refused if body is not None else await _answered(request, refused, drain, read)
            return await run_in_threadpool(_accept_run, gateway, gateway.mapping, token, plain, prepare, counters)
        except RequestError as exc:
            return _refusal(exc.status, exc.errors)

    return app


async def _bearer(gateway: Gateway, request: Request) -> ServiceToken | Response:
    """The live token the request presents, or the refusal: 401, or 503 while the token file is unusable.

    Checked before a byte of the body is read.
    """
    kind, _, presented = request.headers.get("authorization", "").partition(" ")
    if kind.lower() != "bearer" or not presented.strip():
        return _refusal(401, ["Authorization: a bearer token is required ('Authorization: Bearer <token>')"])
    try:
        token = await run_in_threadpool(gateway.tokens.find, presented.strip())
    except ConfigurationError as exc:  # made unsafe or unreadable while serving: no token is trusted
        _log.error("refusing every request until the token file is fixed: %s", exc)
        return _refusal(503, [_UNUSABLE], {"Retry-After": "30"})
    if token is None:
        return _refusal(401, ["Authorization: the bearer token is not valid (unknown or revoked)"])
    return token


def _decoded(body: bytes | None, encoding: str, limit: int) -> bytes | None:
    """The body without its ``Content-Encoding`` (gzip, as OpenLineage clients may send), still bounded by ``limit``."""
    encoding = encoding.strip().lower()
    if body is None or encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise RequestError(415, [f"Content-Encoding: {encoding[:40]!r} is not supported (gzip or none)"])
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        plain = inflate.decompress(body, limit + 1)  # a small body that inflates hugely stops here
    except zlib.error:
        raise RequestError(400, ["body: not valid gzip data"]) from None
    if len(plain) > limit:
        return None
    if not inflate.eof:
        raise RequestError(400, ["body: the gzip data ends early"])
    return plain


async def _bounded_body(request: Request, limit: int) -> tuple[bytes | None, int]:
    """The body, or None once it is past ``limit`` bytes (kept no further: a huge body costs no memory); bytes read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None, 0
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None, size
        chunks.append(chunk)
    return b"".join(chunks), size


async def _answered(request: Request, response: Response, bound: int, read: int = 0) -> Response:
    """``response`` to a request whose body is not taken, once the rest of it (``read`` bytes read) is dropped.

    A server that answers and closes while its client still sends resets the connection, and most
    clients then report a broken pipe, never the answer saying why (CI saw it from urllib, which
    sends ``Connection: close``). So the rest is read and dropped while the whole stays within
    ``bound`` bytes and comes within ``DRAIN_S``. A body declared or found past ``bound``, one that
    stalls, or one its client holds back until told to go on (``Expect: 100-continue``, curl's way
    past 1 MiB, when nothing was read yet) is not waited for: the answer says ``Connection: close``
    and the server closes at once, whatever the client asked for.
    """
    declared = request.headers.get("content-length", "")
    waiting = read == 0 and "100-continue" in request.headers.get("expect", "").lower()
    if not waiting and not (declared.isdigit() and int(declared) > bound):
        size = read
        try:
            async with asyncio.timeout(DRAIN_S):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > bound:
                        break
                else:
                    return response
        except TimeoutError:
            pass
        except ClientDisconnect:  # gone: no one to answer, and nothing wrong with the gateway
            return response
    response.headers["Connection"] = "close"
    return response


def _accept(gateway: Gateway, token: ServiceToken, body: bytes, prepare: Preparer) -> Response:
    """Read, bound, send and answer one request (in a worker thread: parsing and waiting block)."""
    events = read_events(body, prepare=prepare, systems=token.systems)
    return _send(gateway, token, events, gateway_headers(token.name))


def _accept_run(
    gateway: Gateway, mapping: DatasetMap, token: ServiceToken, body: bytes, prepare: Preparer, counters: Counters
) -> Response:
    """Read one OpenLineage run event, send its flow events, and answer (in a worker thread)."""
    reading = read_run_event(body, mapping, prepare.validator)
    foreign = sorted({e.system for e in reading.events} - token.systems)
    if foreign:
        raise RequestError(403, [f"system={shown(s)}: this token may not emit as that system (a sender of this run)"
                                 for s in foreign])  # fmt: skip
    if reading.ignored is not None:
        counters.count(reading)
        return JSONResponse({"stored": 0, "reason": reading.ignored, "unknown_datasets": len(reading.unknown)})
    try:
        events = [prepare(to_record(e)) for e in reading.events]
    except InputLineError as exc:  # validated already; an event over Kafka's bound is the one thing left
        raise RequestError(400, [f"{exc.reason} (a flow of this run)"]) from None
    response = _send(gateway, token, events, reading.headers, {"unknown_datasets": len(reading.unknown)})
    if response.status_code == 202:  # a refused or unacknowledged run is counted when it is sent again
        counters.count(reading)
    return response


def _send(
    gateway: Gateway,
    token: ServiceToken,
    events: list[Prepared],
    headers: Headers,
    more: dict[str, Any] | None = None,
) -> Response:
    """Bound by the token's rate, send with ``headers`` (their provenance), and answer 202 (with ``more``).

    202 once the broker or the spool has every event.
    """
    wait = gateway.limit.take(token.id, len(events))
    if wait == math.inf:
        raise RequestError(429, [f"events: {len(events)} in one request, over this token's bound of "
                                 f"{gateway.limit.rate:g} a second; send smaller batches"])  # fmt: skip
    if wait:
        seconds = str(math.ceil(wait))
        return _refusal(429, [f"events: over this token's bound of {gateway.limit.rate:g} a second; "
                              f"retry in {seconds} s"], {"Retry-After": seconds})  # fmt: skip
    try:
        outcome = gateway.relay.send(events, headers)
    except Unacknowledged as exc:
        return JSONResponse(
            {"error": str(exc), "errors": [str(exc)], "unacknowledged": list(exc.missing)},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    except BrokerError as exc:
        return _refusal(503, [str(exc).splitlines()[0]], {"Retry-After": "1"})
    except LineageError as exc:
        return _refusal(400, [str(exc).splitlines()[0]])
    return JSONResponse(
        {"acknowledged": outcome.acknowledged, "spooled": outcome.spooled, "duplicates": outcome.duplicates,
         "event_ids": outcome.event_ids} | (more or {}),
        status_code=202,
    )  # fmt: skip
