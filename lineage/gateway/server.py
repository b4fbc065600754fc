"""Building the gateway from settings, and serving it with uvicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lineage.errors import LineageError, UndeliveredError
from lineage.gateway.app import MAX_BODY, Gateway, create_app
from lineage.gateway.limits import RateLimit
from lineage.gateway.mapping import load_mapping
from lineage.gateway.relay import Relay
from lineage.gateway.tokens import ServiceTokens
from lineage.sdk.emitter import Emitter
from lineage.settings import Settings

__all__ = ["build_gateway", "serve"]

# the emitter's own name and region: never sent, since every event names its own system
_SELF, _REGION = "lineage-gateway", "CN"


def build_gateway(
    settings: Settings, tokens: Path, *, rate: float, max_body: int = MAX_BODY, openlineage: Path | None = None
) -> Gateway:
    """A gateway sending to the settings' broker and topic (connecting now), with the token file ``tokens``.

    ``openlineage``: the dataset mapping that opens ``POST /api/v1/lineage`` (read and checked now).
    """
    service_tokens = ServiceTokens(tokens)
    service_tokens.listing()  # a token file others could write, or not a token file: refused now, not per request
    emitter = Emitter(system=_SELF, region=_REGION, settings=settings)
    try:
        mapping = None if openlineage is None else load_mapping(openlineage, emitter.taxonomy)
    except LineageError:
        emitter.close()
        raise
    return Gateway(service_tokens, Relay(emitter), RateLimit(rate), max_body, mapping)


def serve(gateway: Gateway, host: str, port: int) -> None:
    """Serve until interrupted, then flush what is in flight (a spool keeps what the broker did not take)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from lineage.logs import configure_logging
    from lineage.process import hear_stop_signals

    configure_logging(logging.INFO, "%(asctime)s %(name)s %(message)s")
    try:
        # log_config=None: uvicorn's records go through lineage.logs (one line each, never a traceback)
        config = uvicorn.Config(create_app(gateway), host=host, port=port, server_header=False, log_config=None,
                                log_level="info")  # fmt: skip
        server = uvicorn.Server(config)
        hear_stop_signals(lambda: setattr(server, "should_exit", True))
        try:
            server.run()
        except KeyboardInterrupt:
            pass  # Ctrl-C: uvicorn has shut down and raised it again; stopped as on SIGTERM (as uvicorn.run does)
        if not server.started:
            sys.exit(STARTUP_FAILURE)  # as uvicorn.run does: the address is taken, say
    finally:
        try:
            gateway.relay.close()
        except UndeliveredError as exc:
            logging.getLogger("lineage.gateway").warning("%s", str(exc).splitlines()[0])
        else:
            logging.getLogger("lineage.gateway").info("stopped: the producer flushed and closed")
