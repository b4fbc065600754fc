"""lineage: an event-driven tracker of where personal data goes.

The path of an event, and the module that owns each step::

    service ──Emitter──▶ validate ──Codec──▶ Kafka topic ──consumer──▶ store (DuckDB) ──▶ answers
              emitter.py  validation.py codec.py  kafka_client.py

- ``events``       frozen dataclasses matching ``schemas/personal_data_event.vN.avsc``
- ``taxonomy``     categories, purposes, roles, regions, mechanisms, from TOML in ``lineage/data/``
- ``validation``   the contract's rules; raises ``InvalidEventError`` naming the field
- ``codec``        Avro single-object encoding (fastavro); decodes every schema version
- ``kafka_client`` kafka-python behind our own types; ``sink`` is the protocol it fulfils
- ``emitter``      the SDK services call; ``jsonlines`` feeds it from ``lineage emit``
- ``local_kafka``  a real broker from the official jars, for machines without Docker
- ``errors``       the exception tree rooted at ``LineageError``
- ``testing``      in-memory fakes for users' own tests
"""

from lineage.codec import Codec
from lineage.emitter import Emitter
from lineage.errors import (
    BrokerError,
    BrokerUnavailableError,
    ConfigurationError,
    DecodeError,
    DeliveryError,
    InputLineError,
    InvalidEventError,
    LineageError,
    StoreError,
    UnknownSchemaError,
    UnknownValueError,
)
from lineage.events import (
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
from lineage.settings import Settings
from lineage.taxonomy import Taxonomy, default_taxonomy
from lineage.validation import is_cross_border, validate

__all__ = [
    "AgeBand",
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
    "StoreError",
    "Taxonomy",
    "TransferKind",
    "UnknownSchemaError",
    "UnknownValueError",
    "default_taxonomy",
    "is_cross_border",
    "validate",
]
