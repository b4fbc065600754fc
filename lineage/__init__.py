"""lineage: an event-driven tracker of where personal data goes.

The path of an event, and the package that owns each step::

    service ─▶ sdk.Emitter ─▶ contract (validate) ─▶ codec (Avro) ─▶ transport (kafka | confluent) ─▶ Kafka
    Kafka ─▶ ingest (decode, validate; bad ones to the dead-letter topic) ─▶ store (an Iceberg table)
    store ─▶ answers (DuckDB SQL in queries/) ─▶ present (reports, data map) ─▶ cli

Packages, lowest layer first (each imports only from those below; ``lint-imports`` checks it):

- ``errors``, ``settings``, ``private``, ``resources``  the exception tree, settings, private files, shipped files
- ``contract``   events, records, taxonomy, validation, the domain rules and the legal rules
- ``codec``      Avro single-object encoding; the only package importing fastavro
- ``transport``  the sink protocol, the Kafka adapters (confluent-kafka, the default; kafka-python;
                 chosen by ``settings.kafka_client``), an in-memory sink
- ``store``      an Apache Iceberg table (pyiceberg, pyarrow only here) read through DuckDB (duckdb only here)
- ``sdk``        the ``Emitter`` services use, and ``lineage emit``'s JSON-lines reader
- ``ingest``     the consumer that fills the store, and the Avro-file backfill
- ``answers``    access, breach, erasure, registers, policy check, flow graph (networkx only here)
- ``present``    report documents, their formats, the HTML data map
- ``world``      the five seed organisations simulated, and the demo
- ``cli``        the ``lineage`` command, one module per command group

This package exports the SDK and the domain; import ``lineage.store``, ``lineage.answers`` and
``lineage.answers.graph`` for the query side (they load DuckDB, pyarrow and networkx, which an
emitting service does not need). ``docs/architecture.md`` tells the whole story.
"""

from typing import TYPE_CHECKING, Any

from lineage.errors import (
    AuthenticationError,
    AuthorizationError,
    BrokerError,
    BrokerUnavailableError,
    ConfigurationError,
    DecodeError,
    DeliveryError,
    InputLineError,
    InvalidEventError,
    LineageError,
    StoreAccessError,
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    UndeliveredError,
    UnknownSchemaError,
    UnknownValueError,
)
from lineage.settings import Settings

if TYPE_CHECKING:
    from lineage.codec.avro import Codec
    from lineage.contract.events import (
        AgeBand,
        ConsentKind,
        ConsentStatus,
        ErasureOutcome,
        EventType,
        LegalBasis,
        Party,
        PersonalDataEvent,
        Scope,
        TransferKind,
    )
    from lineage.contract.taxonomy import Taxonomy, default_taxonomy
    from lineage.contract.validation import is_cross_border, validate
    from lineage.sdk.emitter import Emitter

__all__ = [
    "__version__",
    "AgeBand",
    "AuthenticationError",
    "AuthorizationError",
    "BrokerError",
    "BrokerUnavailableError",
    "Codec",
    "ConfigurationError",
    "ConsentKind",
    "ConsentStatus",
    "DecodeError",
    "DeliveryError",
    "Emitter",
    "ErasureOutcome",
    "EventType",
    "InputLineError",
    "InvalidEventError",
    "LegalBasis",
    "LineageError",
    "Party",
    "PersonalDataEvent",
    "Scope",
    "Settings",
    "StoreAccessError",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "Taxonomy",
    "TransferKind",
    "UndeliveredError",
    "UnknownSchemaError",
    "UnknownValueError",
    "default_taxonomy",
    "is_cross_border",
    "validate",
]

#: where each exported name lives; loaded on first use (PEP 562), so a command that needs none of
#: them (``lineage access --console``, ``lineage --help``) does not pay for fastavro and the SDK
_LAZY = {
    "Codec": "lineage.codec.avro",
    "Emitter": "lineage.sdk.emitter",
    "Taxonomy": "lineage.contract.taxonomy",
    "default_taxonomy": "lineage.contract.taxonomy",
    "is_cross_border": "lineage.contract.validation",
    "validate": "lineage.contract.validation",
    **dict.fromkeys(("AgeBand", "ConsentKind", "ConsentStatus", "ErasureOutcome", "EventType", "LegalBasis",
                     "Party", "PersonalDataEvent", "Scope", "TransferKind"), "lineage.contract.events"),
}  # fmt: skip


__version__: str  # the SDK's version, read from the installed package's metadata on first use

if not TYPE_CHECKING:  # to mypy every name is imported above, so a misspelt one stays an error

    def __getattr__(name: str) -> Any:
        """An exported name, imported from its module on first use and kept here after."""
        if name == "__version__":
            from lineage.sdk.emitter import sdk_version

            value: Any = sdk_version()
        elif name in _LAZY:
            import importlib

            value = getattr(importlib.import_module(_LAZY[name]), name)
        else:
            raise AttributeError(f"module 'lineage' has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    """Every exported name, loaded or not (``help()`` and tab completion list them)."""
    return sorted({*globals(), *__all__})
