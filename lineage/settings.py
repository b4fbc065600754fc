"""Settings: one frozen object built from arguments or ``LINEAGE_*`` variables, passed in explicitly.

Nothing else in lineage reads the environment; ``Settings.from_env`` is the one place that does.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lineage.errors import ConfigurationError

__all__ = ["MAX_KEEP_EVENTS_DAYS", "Settings"]

# the longest retention period: 100 years (a longer one reaches past what a datetime can hold)
MAX_KEEP_EVENTS_DAYS = 36_500

_PREFIX = "LINEAGE_"
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
_CLIENTS = ("kafka-python", "confluent")
_PASSWORD_FILE = _PREFIX + "SASL_PASSWORD_FILE"
# Kafka's legal topic names: these characters, 1 to 249 of them, and not "." or ".." (a topic name
# becomes a folder name on the broker, so "../x" must never get that far)
_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_CATALOG_SCHEMES = ("postgresql", "postgresql+psycopg2", "sqlite")
# secrets read from a file when LINEAGE_<NAME>_FILE is set; the standard AWS variables count too
_SECRETS = ("sasl_password", "catalog_password", "s3_secret_access_key", "console_db_password", "console_token")
_AWS = {"s3_access_key_id": "AWS_ACCESS_KEY_ID", "s3_secret_access_key": "AWS_SECRET_ACCESS_KEY"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Where Kafka is, which topics to use, how to authenticate, and how long to wait for it."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "lineage.events"
    dead_letter_topic: str = "lineage.events.dlq"
    client_id: str = "lineage"
    kafka_client: str = "confluent"
    """Which Kafka client library produces and consumes: ``confluent`` (confluent-kafka, on librdkafka in C,
    the default: measured faster) or ``kafka-python`` (pure Python). ``lineage tail``, topic
    creation and the other admin calls use kafka-python either way."""
    connect_timeout_s: float = 10.0
    """How long an emitter waits for a broker to answer before raising ``BrokerUnavailableError``."""
    delivery_timeout_s: float = 30.0
    """How long a sent event may stay unacknowledged before its delivery fails."""
    linger_ms: int = 5
    """Producer batching delay: a few ms buys whole batches at little latency."""
    taxonomy_dir: Path | None = None
    """A folder of TOML files extending or overriding the built-in taxonomy."""
    store_dir: Path = Path("lineage-store")
    """The embedded store's folder (mode 700): its SQLite catalog and, by default, its warehouse."""
    catalog_uri: str | None = None
    """The Iceberg catalog shared by every host: ``postgresql+psycopg2://user@host:port/db`` (password from
    LINEAGE_CATALOG_PASSWORD or LINEAGE_CATALOG_PASSWORD_FILE), or ``sqlite:///file``; default a SQLite
    file in ``store_dir`` (one host only)."""
    catalog_password: str | None = field(default=None, repr=False)
    """The catalog database's password: from the environment or a file, never a command line; never in repr."""
    catalog_name: str = "lineage"
    """The catalog's name: other engines (Spark, Trino, Flink) must use the same one to see the tables."""
    namespace: str = "lineage"
    """The Iceberg namespace holding the ``events`` table."""
    warehouse: str | None = None
    """Where the table's files go: ``s3://bucket/prefix`` or a local folder; default ``store_dir/warehouse``."""
    s3_endpoint: str | None = None
    """An S3-compatible server's URL (default: AWS for the region)."""
    s3_region: str = "us-east-1"
    """The S3 region."""
    s3_access_key_id: str | None = field(default=None, repr=False)
    """The S3 access key: from AWS_ACCESS_KEY_ID or LINEAGE_S3_ACCESS_KEY_ID; never in repr."""
    s3_secret_access_key: str | None = field(default=None, repr=False)
    """The S3 secret key: from AWS_SECRET_ACCESS_KEY, LINEAGE_S3_SECRET_ACCESS_KEY or its _FILE; never in repr."""
    console_db: str | None = None
    """The console's accounts, sessions and audit trail: ``postgresql+psycopg2://user@host:port/db`` (password
    from LINEAGE_CONSOLE_DB_PASSWORD or LINEAGE_CONSOLE_DB_PASSWORD_FILE), or ``sqlite:///file``; default
    ``console.db`` in ``store_dir`` (mode 600)."""
    console_db_password: str | None = field(default=None, repr=False)
    """The console database's password: from the environment or a file, never a command line; never in repr."""
    console_url: str | None = None
    """A running console (``lineage serve``) that ``lineage access`` and ``lineage erasure`` ask instead of
    opening the store themselves (``--console`` on the command line wins): ``https://...``, or plain
    ``http://`` to this machine only."""
    console_token: str | None = field(default=None, repr=False)
    """An analyst's API token for ``console_url`` (``lineage users token NAME``): from LINEAGE_CONSOLE_TOKEN
    or LINEAGE_CONSOLE_TOKEN_FILE, never a command line; never in repr."""
    commit_retries: int = 20
    """How often a store commit that lost to another writer is tried again before giving up."""
    group_id: str = "lineage-ingest"
    """The Kafka consumer group of the ingest consumers."""
    cache_dir: Path = Path(".cache")
    """Where the local broker's jars and data live (git-ignored in the repository)."""
    security_protocol: str = "PLAINTEXT"
    """How clients talk to the brokers: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    sasl_mechanism: str = "SCRAM-SHA-512"
    """The SASL mechanism with a SASL_* protocol: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN."""
    sasl_username: str | None = None
    """The principal this client authenticates as (SASL_* protocols only)."""
    sasl_password: str | None = field(default=None, repr=False)
    """Its password: from LINEAGE_SASL_PASSWORD or LINEAGE_SASL_PASSWORD_FILE, never a command line; never in repr."""
    ssl_cafile: Path | None = None
    """PEM file of the CAs trusted to sign the brokers' certificates (default: the system's)."""
    ssl_certfile: Path | None = None
    """PEM client certificate, for brokers that require mutual TLS."""
    ssl_keyfile: Path | None = None
    """PEM private key of ``ssl_certfile`` (when not in the same file)."""
    ssl_check_hostname: bool = True
    """Whether the broker's certificate must name the host connected to."""
    keep_events_days: int | None = None
    """Store retention: ``lineage retain`` removes events that occurred more than this many days ago."""
    spool_dir: Path | None = None
    """Where an emitter keeps events the broker did not take, to send them again (off when None).

    Off by default: the spool holds personal data on local disk, so its place is the operator's choice."""

    def __post_init__(self) -> None:
        """Take a folder or file given as text as a path; refuse values that cannot work, naming the setting."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "Path" in str(f.type) and isinstance(value, str):
                object.__setattr__(self, f.name, Path(value))  # frozen: set once, here
        if not self.bootstrap_servers.strip():
            raise ConfigurationError("bootstrap_servers", "must name at least one host:port")
        for name in ("connect_timeout_s", "delivery_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(name, f"must be positive, got {getattr(self, name)!r}")
        for name in ("topic", "dead_letter_topic"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _TOPIC.fullmatch(value) or value in (".", ".."):
                raise ConfigurationError(
                    name, "must be 1 to 249 of the characters a-z A-Z 0-9 . _ - (and not '.' or '..')"
                )
        if self.kafka_client not in _CLIENTS:
            raise ConfigurationError(
                "kafka_client", f"must be one of {', '.join(_CLIENTS)}, got {self.kafka_client!r}"
            )
        if self.linger_ms < 0:
            raise ConfigurationError("linger_ms", f"must be 0 or more, got {self.linger_ms!r}")
        if self.keep_events_days is not None and not 1 <= self.keep_events_days <= MAX_KEEP_EVENTS_DAYS:
            raise ConfigurationError(
                "keep_events_days", f"must be 1 to {MAX_KEEP_EVENTS_DAYS} days, got {self.keep_events_days!r}"
            )
        if not 1 <= self.commit_retries <= 1000:
            raise ConfigurationError("commit_retries", f"must be 1 to 1000, got {self.commit_retries!r}")
        self._check_store()
        self._check_security()

    def _check_store(self) -> None:
        """Refuse store settings that would leak a secret or point somewhere else than meant."""
        for name in ("catalog_uri", "console_db"):
            _check_database_uri(name, getattr(self, name))
        if self.catalog_uri is not None and self.catalog_uri.startswith("postgresql") and self.warehouse is None:
            # a shared catalog with each host's own folder: other hosts would find files they cannot read
            raise ConfigurationError(
                "warehouse", "is required with a shared catalog_uri: s3://bucket/prefix, or a folder every host mounts"
            )
        for name in ("namespace", "catalog_name"):
            if not _NAME.fullmatch(getattr(self, name)):
                raise ConfigurationError(name, "must be 1 to 64 of the characters a-z A-Z 0-9 _")
        # the embedded catalog and warehouse are file URLs: these characters would change their meaning
        odd = sorted(set("#?%\n") & set(str(self.store_dir)))
        if odd:
            raise ConfigurationError(
                "store_dir", f"holds {odd[0]!r}, which a catalog file URL cannot; choose another folder"
            )
        if self.warehouse is not None and self.warehouse.startswith("s3://"):
            if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
                raise ConfigurationError("s3_secret_access_key", "and s3_access_key_id must be given together")
        elif self.warehouse is not None and "://" in self.warehouse and not self.warehouse.startswith("file://"):
            raise ConfigurationError("warehouse", "must be s3://bucket/prefix, file:///folder or a folder")

    def _check_security(self) -> None:
        """Refuse security settings that cannot work or would be silently ignored (never echoing a password)."""
        protocol = self.security_protocol
        if protocol not in _PROTOCOLS:
            raise ConfigurationError("security_protocol", f"must be one of {', '.join(_PROTOCOLS)}, got {protocol!r}")
        if self.sasl_mechanism not in _MECHANISMS:
            raise ConfigurationError(
                "sasl_mechanism", f"must be one of {', '.join(_MECHANISMS)}, got {self.sasl_mechanism!r}"
            )
        if protocol.startswith("SASL_"):
            if not self.sasl_username:
                raise ConfigurationError("sasl_username", f"is required with security_protocol={protocol}")
            if not self.sasl_password:
                raise ConfigurationError(
                    "sasl_password",
                    f"is required with security_protocol={protocol} (set LINEAGE_SASL_PASSWORD or {_PASSWORD_FILE})",
                )
        else:
            # credentials that would be ignored mean the operator expects a login that never happens
            for name in ("sasl_username", "sasl_password"):
                if getattr(self, name):
                    raise ConfigurationError(name, f"is set but security_protocol={protocol} does not use SASL")
        if not protocol.endswith("SSL"):
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                if getattr(self, name) is not None:
                    raise ConfigurationError(name, f"is set but security_protocol={protocol} does not use TLS")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ConfigurationError("ssl_keyfile", "is set without ssl_certfile, the certificate it belongs to")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build settings from ``LINEAGE_<FIELD>`` variables; explicit ``overrides`` win."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        for name, variable in _AWS.items():
            if name not in values and environ.get(variable):
                values[name] = environ[variable]
        for name in _SECRETS:
            file_variable = f"{_PREFIX}{name.upper()}_FILE"
            secret_file = environ.get(file_variable)
            if secret_file is not None:
                if name in values:
                    also = f"{_PREFIX}{name.upper()}" + (f" or {_AWS[name]}" if name in _AWS else "")
                    raise ConfigurationError(file_variable, f"{also} is set too; set only one")
                values[name] = _read_secret(file_variable, Path(secret_file))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _check_database_uri(name: str, uri: str | None) -> None:
    """Refuse a database URI of another kind, or one holding a password."""
    if uri is None:
        return
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in _CATALOG_SCHEMES:
        raise ConfigurationError(name, f"must start with one of {', '.join(s + '://' for s in _CATALOG_SCHEMES)}")
    userinfo = rest.split("/", 1)[0].rpartition("@")[0]
    if ":" in userinfo or "password" in rest.partition("?")[2].lower():
        # a URI is shown in process lists, shell history and logs: the password has its own setting
        variable = _PREFIX + name.upper() + "_PASSWORD"
        raise ConfigurationError(name, f"holds a password; give it by {variable} or {variable}_FILE")


def _read_secret(name: str, path: Path) -> str:
    """The first line of a secret file (a trailing newline is not part of the password)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(name, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    secret = text.splitlines()[0] if text.strip() else ""
    if not secret:
        raise ConfigurationError(name, f"{path} is empty")
    return secret


def _convert(name: str, annotation: object, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind == "float":
            return float(raw)
        if kind in ("int", "int | None"):
            return int(raw)
    except ValueError:
        raise ConfigurationError(_PREFIX + name.upper(), f"expected a number, got {raw!r}") from None
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(_PREFIX + name.upper(), f"expected true or false, got {raw!r}")
    if "Path" in kind:
        return Path(raw)
    return raw
