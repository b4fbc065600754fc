"""Building the console from settings, and serving it with uvicorn (the only uvicorn module)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from lineage.console.accounts import Accounts
from lineage.console.app import Console, create_app
from lineage.console.audit import Audit, AuditSink
from lineage.console.cases import Cases
from lineage.console.db import ConsoleDB, console_db
from lineage.console.service import DEFAULT_TOPICS, Service
from lineage.console.sessions import Sessions
from lineage.contract.policy import Policy
from lineage.contract.taxonomy import Taxonomy
from lineage.logs import configure_logging
from lineage.process import hear_stop_signals, usable_cores
from lineage.settings import Settings
from lineage.store import Store

__all__ = ["ConsoleApp", "audit_sink", "build_console", "close_console", "console_db", "serve", "threads_per_worker"]


def audit_sink(settings: Settings, topic: str) -> AuditSink:
    """A Kafka producer for the audit topic, creating the topic (one partition: one order) if missing."""
    from lineage.transport.clients import event_sink
    from lineage.transport.kafka.admin import create_topics, topic_exists

    if not topic_exists(settings, topic):
        create_topics(settings, [topic], partitions=1)
    return event_sink(settings)


def build_console(
    store: Store,
    taxonomy: Taxonomy,
    db: ConsoleDB,
    *,
    policies: Sequence[Policy] = (),
    sink: AuditSink | None = None,
    audit_topic: str = "lineage.audit",
    idle_timeout_s: float = 15 * 60.0,
    topics: tuple[str, str] = DEFAULT_TOPICS,
) -> Console:
    """The console's parts over one store and database; ``topics``: the events and dead-letter topics."""
    audit = Audit(db, sink, audit_topic)
    return Console(
        Service(store, taxonomy, policies, db=db, digest=audit.subject_digest, topics=topics),
        Accounts(db),
        Sessions(db, idle_timeout_s),
        audit,
        Cases(db, audit.subject_digest),
    )


#: a worker that does not answer the supervisor's ping for this long is killed and replaced; uvicorn's
#: 5 s killed busy workers at load 10 on 2 cores, and a page or breach job is never that long silent
_HEALTHCHECK_S = 60
_LOG_FORMAT = "%(asctime)s %(name)s %(message)s"


class ConsoleApp:
    """Builds a worker's own console and its app (picklable: ``serve`` sends it to each worker process)."""

    def __init__(self, build: Callable[[], Console]) -> None:
        """``build`` makes the console's parts; it must be picklable too (a module-level function or object)."""
        self.build = build

    def __call__(self) -> Callable[..., Awaitable[Any]]:
        """The app over a new console, which it closes when the worker shuts down."""
        configure_logging(logging.INFO, _LOG_FORMAT)  # a spawned worker starts with no handlers of its own
        console = self.build()
        return create_app(console, on_start=console.service.warm_registers, on_shutdown=lambda: close_console(console))


def threads_per_worker(workers: int) -> int | None:
    """DuckDB's threads in each of ``workers`` processes: the usable cores shared out (None: one process, DuckDB's own).

    The workers' requests already keep every core busy, each lookup reading one row group; a second
    DuckDB thread in each worker cost CPU without shortening a lookup (1M subjects, 2 workers on 2
    cores: 46 -> 43 ms of server CPU a page). A breach job in a worker then runs on its share
    (100,000 subjects: 1.2 s on 2 threads, 1.45 s on 1).
    """
    return None if workers <= 1 else max(1, usable_cores() // workers)


def close_console(console: Console) -> None:
    """Wait for running breach jobs, flush the audit copy, close the database."""
    try:
        console.service.close()
    finally:
        console.audit.close()
        console.accounts.db.close()


def serve(build: Callable[[], Console], host: str, port: int, forwarded_allow_ips: str = "", workers: int = 1) -> None:
    """Serve until interrupted from ``workers`` processes, each with its own console from ``build``.

    One process answers the pages of many users at once (each request on a thread with its own
    store cursor); more processes add cores for the Python part of each page (rendering, sign-in
    hashing). Sessions, accounts, cases and breach jobs are in the console database, so any worker
    answers any signed-in user. ``X-Forwarded-*`` is believed only from the proxies in
    ``forwarded_allow_ips``: none by default, since any local process could otherwise claim any
    client address in the audit trail.
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    configure_logging(logging.INFO, _LOG_FORMAT)
    trusted = forwarded_allow_ips.strip()
    config = uvicorn.Config(
        ConsoleApp(build),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=bool(trusted),  # off: the headers are ignored, whoever sends them
        forwarded_allow_ips=trusted or None,
        server_header=False,
        log_config=None,  # uvicorn's records go through lineage.logs: one line each, never a traceback
        log_level="info",
        timeout_worker_healthcheck=_HEALTHCHECK_S,
    )
    if workers == 1:
        server = uvicorn.Server(config)
        hear_stop_signals(lambda: setattr(server, "should_exit", True))
        # bound before the app starts (as the workers' supervisor does): a taken address ends the
        # command here (exit 3), before the console computes anything (its registers, at start)
        server.run(sockets=[config.bind_socket()])
        if not server.started:
            sys.exit(STARTUP_FAILURE)  # as uvicorn.run does: the app failed to start, say
    else:
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        hear_stop_signals()  # its handlers are in place: a SIGTERM held until now reaches them
        supervisor.run()
