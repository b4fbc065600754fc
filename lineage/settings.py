"""Settings: one frozen object built from arguments or ``LINEAGE_*`` variables, passed in explicitly.

Nothing else in lineage reads the environment; ``Settings.from_env`` is the one place that does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lineage.errors import ConfigurationError

__all__ = ["Settings"]

_PREFIX = "LINEAGE_"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Where Kafka is, which topics to use, and how long to wait for it."""

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
    spool_dir: Path | None = None
    """Where an emitter keeps events the broker did not take, to send them again (off when None).

    Off by default: the spool holds personal data on local disk, so its place is the operator's choice."""

    def __post_init__(self) -> None:
        """Refuse values that cannot work, naming the setting."""
        if not self.bootstrap_servers.strip():
            raise ConfigurationError("bootstrap_servers", "must name at least one host:port")
        for name in ("connect_timeout_s", "delivery_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(name, f"must be positive, got {getattr(self, name)!r}")
        if self.linger_ms < 0:
            raise ConfigurationError("linger_ms", f"must be 0 or more, got {self.linger_ms!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build settings from ``LINEAGE_<FIELD>`` variables; explicit ``overrides`` win."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _convert(name: str, annotation: object, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind == "float":
            return float(raw)
        if kind == "int":
            return int(raw)
    except ValueError:
        raise ConfigurationError(_PREFIX + name.upper(), f"expected a number, got {raw!r}") from None
    if "Path" in kind:
        return Path(raw)
    return raw
