"""lineage: an event-driven tracker of where personal data goes.

The path of an event, and the module that owns each step::

    service ──Emitter──▶ validate ──Codec──▶ Kafka ──consumer──▶ segments ──Store──▶ answers, graph
              emitter    validation  codec   kafka_client  ingest   segments  store   answers, graph

Domain (no Kafka, DuckDB, pyarrow or networkx):
- ``events``       frozen dataclasses matching ``schemas/personal_data_event.vN.avsc``
- ``records``      the same event as a schema-shaped dict, the form the hot paths handle
- ``taxonomy``     categories, purposes, roles, regions, mechanisms, from TOML in ``lineage/data/``
- ``validation``   the contract's rules; raises ``InvalidEventError`` naming the field
- ``errors``       the exception tree rooted at ``LineageError``
Adapters, one per heavy dependency:
- ``codec`` (+ ``avro_codegen``)  Avro single-object encoding; fastavro only here
- ``kafka_client`` kafka-python only here; ``sink`` is the protocol the emitter sends through
- ``segments``     durable Parquet segments named by offsets; pyarrow only here
- ``store``        DuckDB views and queries over the segments; duckdb only here
- ``graph``        the aggregated flow graph; networkx only here
Processes and answers:
- ``emitter`` / ``jsonlines``     the SDK and ``lineage emit``
- ``ingest`` / ``consumer`` / ``backfill``  messages into segments, dead letters out
- ``answers``      access request, breach impact, erasure plan, transfer and retention registers
- ``policy``       declared policies (``policies/*.toml``) and ``check``: each event breaking a clause
- ``sim`` / ``world``  the seed organisations simulated through the SDK, with known injected breaches
- ``datamap``      the self-contained HTML data map; ``demo``: all of it end to end on a real broker
- ``local_kafka``  a real broker from the official jars; ``testing``: in-memory fakes
- ``cli`` (+ ``reports``, ``formats``)  the ``lineage`` command

This package exports the SDK and the domain; import ``lineage.store.engine``, ``lineage.answers`` and
``lineage.answers.graph`` for the query side (they load DuckDB, pyarrow and networkx, which an emitting
service does not need).
"""

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
from lineage.sdk.emitter import Emitter
from lineage.settings import Settings

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
