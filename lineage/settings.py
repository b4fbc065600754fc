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

__all__ = ["Settings"]

_PREFIX = "LINEAGE_"
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
_PASSWORD_FILE = _PREFIX + "SASL_PASSWORD_FILE"
# Kafka's legal topic names: these characters, 1 to 249 of them, and not "." or ".." (a topic name
# becomes a folder name on the broker, so "../x" must never get that far)
_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Where Kafka is, which topics to use, how to authenticate, and how long to wait for it."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "lineage.events"
    dead_letter_topic: str = "lineage.events.dlq"
    client_id: str = "lineage"
    connect_timeout_s: float = 10.0
    """How long an emitter waits for a broker to answer before raising ``BrokerUnavailableError``."""
    delivery_timeout_s: float = 30.0
    """How long a sent event may stay unacknowledged before its delivery fails."""
    linger_ms: int = 5
    """Producer batching delay: a few ms buys whole batches at little latency."""
    taxonomy_dir: Path | None = None
    """A folder of TOML files extending or overriding the built-in taxonomy."""
    store_dir: Path = Path("lineage-store")
    """The lineage store: a folder of Parquet segments (created private, mode 700)."""
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
        if self.linger_ms < 0:
            raise ConfigurationError("linger_ms", f"must be 0 or more, got {self.linger_ms!r}")
        self._check_security()

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
        password_file = environ.get(_PASSWORD_FILE)
        if password_file is not None:
            if "sasl_password" in values:
                raise ConfigurationError(_PASSWORD_FILE, "LINEAGE_SASL_PASSWORD is set too; set only one")
            values["sasl_password"] = _read_secret(_PASSWORD_FILE, Path(password_file))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


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
        if kind == "int":
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
