"""Building the console from settings, and serving it with uvicorn (the only uvicorn module)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from lineage.console.accounts import Accounts
from lineage.console.app import Console, create_app
from lineage.console.audit import Audit, AuditSink
from lineage.console.cases import Cases
from lineage.console.db import ConsoleDB
from lineage.console.service import Service
from lineage.console.sessions import Sessions
from lineage.contract.policy import Policy
from lineage.contract.taxonomy import Taxonomy
from lineage.errors import ConfigurationError
from lineage.settings import Settings
from lineage.store import Store, StoreLocation

__all__ = ["audit_sink", "build_console", "console_db", "serve"]


def console_db(settings: Settings, location: StoreLocation) -> ConsoleDB:
    """The console database the settings name: ``console_db``, or ``console.db`` in the embedded store's folder."""
    if settings.console_db is not None:
        return ConsoleDB(settings.console_db, settings.console_db_password)
    if location.root is None:
        raise ConfigurationError(
            "console_db", "is required with a shared catalog: postgresql+psycopg2://user@host/db (LINEAGE_CONSOLE_DB)"
        )
    root = Path(location.root)
    if not root.is_dir():
        raise ConfigurationError("--store", f"{root} is not a folder (no lineage store there)")
    return ConsoleDB(f"sqlite:///{(root / 'console.db').resolve()}")


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
) -> Console:
    """The console's parts over one store and database."""
    audit = Audit(db, sink, audit_topic)
    return Console(
        Service(store, taxonomy, policies, db=db),
        Accounts(db),
        Sessions(db, idle_timeout_s),
        audit,
        Cases(db, audit.subject_digest),
    )


def serve(console: Console, host: str, port: int, forwarded_allow_ips: str = "") -> None:
    """Serve until interrupted; ``X-Forwarded-*`` is believed only from the proxies in ``forwarded_allow_ips``.

    None by default: any local process could otherwise claim any client address in the audit trail.
    """
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    trusted = forwarded_allow_ips.strip()
    try:
        uvicorn.run(
            create_app(console),
            host=host,
            port=port,
            proxy_headers=bool(trusted),  # off: the headers are ignored, whoever sends them
            forwarded_allow_ips=trusted or None,
            server_header=False,
            log_level="info",
        )
    finally:
        console.service.close()
        console.audit.close()
        console.accounts.db.close()
