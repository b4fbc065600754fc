"""The exception tree: every error lineage raises is a ``LineageError``.

::

    LineageError
    ├── ConfigurationError (ValueError)     a setting or taxonomy file is wrong
    ├── ConsoleError                        a running console did not answer, or refused a request
    ├── InvalidEventError (ValueError)      an event breaks the contract; names field and value
    │   └── UnknownValueError               the value is not in the taxonomy; lists close matches
    ├── InputLineError (ValueError)         a JSON line given to ``lineage emit`` is bad; names the line
    ├── DecodeError (ValueError)            bytes that are not a decodable event; names topic/partition/offset
    │   └── UnknownSchemaError              the writer schema's fingerprint is not one we know
    ├── StoreError                          the store could not be read, written or queried
    │   ├── StoreNotFoundError              no store (no table, or a table with no data) where named
    │   ├── StoreUnavailableError           the catalog or the object store did not answer (transient)
    │   ├── StoreAccessError                the catalog or the object store refused our credentials
    │   ├── StoreConflictError              commits kept losing to other writers (transient)
    │   └── StoreCorruptError               a data or metadata file of the table cannot be read
    └── BrokerError                         Kafka could not be reached or refused a message
        ├── BrokerUnavailableError          no broker answered within the bound
        ├── DeliveryError                   a sent event was not acknowledged
        │   └── UndeliveredError            ``close()``/``flush()``: every event not delivered, by id
        ├── AuthenticationError             bad credentials, or a broker certificate we do not trust
        └── AuthorizationError              the broker's ACLs refuse this principal an operation

Third-party exceptions (fastavro, kafka-python, duckdb) are translated at the boundary and
chained with ``raise ... from exc``; none reaches a caller untranslated.

Every error carries its context as attributes (``field``, ``value``, ``topic``, ``offset``, ``path``...)
and says whether retrying can help: ``retryable`` is true only for the transient kinds (a broker
that did not answer, a delivery not acknowledged, a store file busy or briefly unreadable); bad
input, bad settings and undecodable bytes stay bad however often they are tried.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "IDENTIFIER_FIELDS",
    "WITHHELD",
    "BrokerError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "ConsoleError",
    "DecodeError",
    "DeliveryError",
    "InputLineError",
    "InvalidEventError",
    "LineageError",
    "StoreAccessError",
    "StoreClaimedError",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "UndeliveredError",
    "UnknownSchemaError",
    "UnknownValueError",
    "is_identifier_field",
    "shown",
    "shown_name",
]


class LineageError(Exception):
    """Root of every error lineage raises."""

    #: whether the same call may succeed if tried again later (transient) or never will (terminal)
    retryable: bool = False


class ConfigurationError(LineageError, ValueError):
    """A setting, environment variable or taxonomy file is wrong."""

    def __init__(self, setting: str, message: str) -> None:
        """Name the setting at fault."""
        self.setting = setting
        super().__init__(f"{setting}: {message}")


#: fields whose values identify a person: an error names the field and the problem, never the value
#: (messages reach stderr, logs and the dead-letter ``lineage.reason`` header)
IDENTIFIER_FIELDS = frozenset({"subject_id", "linked_subject_ids", "identifier", "consent_ref"})
_SHOWN_CHARS = 80  # a longer value is cut: a message is one readable line


class _Withheld:
    """What an error shows in place of a person's identifier."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<withheld>"


#: stands in an error's ``value`` for a person's identifier
WITHHELD = _Withheld()


def shown(value: object) -> str:
    """A value as an error message shows it: its repr, cut short; a huge number by its size only."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4300-digit str() limit
        return "a number too large to show"
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return text


def shown_name(name: str) -> str:
    """A field name as an error message shows it: as is if short printable ASCII, else escaped as ``shown``.

    Names come from the input too (a JSON line's keys): one holding a newline, an escape sequence
    or a right-to-left override would otherwise forge or hide lines of the output it is printed to.
    """
    plain = name.isascii() and name.isprintable() and len(name) <= _SHOWN_CHARS
    return name if plain else shown(name)


def is_identifier_field(field: str) -> bool:
    """Whether ``field`` (maybe with a path: ``linked_subject_ids[2]``) holds a person's identifier."""
    return field.split("[", 1)[0].rsplit(": ", 1)[-1] in IDENTIFIER_FIELDS


class ConsoleError(LineageError):
    """A running console (``lineage serve``) did not answer, or refused or failed a request; names what to fix.

    ``status`` is the HTTP status the console gave (0 when none answered). The message is the
    console's own one line (which names the field, never a person's identifier) or says why none came.
    """

    def __init__(self, field: str, detail: str, status: int = 0) -> None:
        """Record the option, setting or field at fault and the console's status."""
        self.field = field
        self.status = status
        self.retryable = status == 0 or status >= 500  # none answered, or it failed: a refusal stays one
        super().__init__(f"{field}: {detail}")


class InvalidEventError(LineageError, ValueError):
    """An event breaks the contract: the message names the field and, unless it may identify a person, the value.

    ``personal`` (default: the field is one of ``IDENTIFIER_FIELDS``) keeps the value out of the
    message and out of the ``value`` attribute too (it reads ``WITHHELD``): error trackers and loggers
    record exceptions' attributes, and a person's identifier must not travel with them.
    """

    def __init__(self, field: str, value: object, reason: str, *, personal: bool | None = None) -> None:
        """Record the offending field and value with the reason."""
        self.field = field
        self.reason = reason
        self.personal = is_identifier_field(field) if personal is None else personal
        self.value = WITHHELD if self.personal else value
        name = shown_name(field)
        super().__init__(f"{name}: {reason}" if self.personal else f"{name}={shown(value)}: {reason}")


class UnknownValueError(InvalidEventError):
    """A value is not in the taxonomy; the message suggests the closest valid ones."""

    def __init__(self, field: str, value: object, kind: str, suggestions: Sequence[str]) -> None:
        """Record what kind of value was looked up and the close matches."""
        self.kind = kind
        self.suggestions = tuple(suggestions)
        hint = "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?" if self.suggestions else ""
        # an unknown event field may be a misspelt identifier field ("subjectid"): its value is withheld
        super().__init__(field, value, f"unknown {kind}{hint}", personal=True if kind == "event field" else None)


class InputLineError(LineageError, ValueError):
    """A line of JSON-lines input is bad; the message names the line number."""

    def __init__(self, line: int, reason: str, field: str | None = None) -> None:
        """Record the 1-based line number, and the field when one is at fault."""
        self.line = line
        self.field = field
        self.reason = reason
        super().__init__(f"line {line}: {reason}")


class DecodeError(LineageError, ValueError):
    """Bytes that do not decode to an event; names where they came from when known."""

    def __init__(
        self,
        reason: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        """Record the reason and the message's position in Kafka."""
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset
        where = f" (topic={topic} partition={partition} offset={offset})" if topic is not None else ""
        super().__init__(f"{reason}{where}")


class UnknownSchemaError(DecodeError):
    """The message's writer schema fingerprint is not among the known schema versions."""

    def __init__(self, fingerprint: bytes, **where: object) -> None:
        """Record the fingerprint that no known schema has."""
        self.fingerprint = fingerprint
        super().__init__(
            f"unknown writer schema fingerprint {fingerprint.hex()}",
            **where,  # type: ignore[arg-type]
        )


class StoreError(LineageError):
    """The store could not be read, written or queried."""

    def __init__(self, message: str, *, path: object = None, query: str | None = None) -> None:
        """Record the store (its path or catalog, never a password) and the query at fault, when known."""
        self.path = path
        self.query = query
        super().__init__(message)


class StoreNotFoundError(StoreError):
    """Nothing is stored where the settings point: no catalog, no table, or a table never written."""


class StoreUnavailableError(StoreError):
    """The catalog database or the object store did not answer, or the disk is full; retrying may help."""

    retryable = True


class StoreAccessError(StoreError):
    """The catalog or the object store refused our credentials (or a file's permissions refused us)."""


class StoreClaimedError(StoreError):
    """The warehouse belongs to another catalog: this one was copied or restored apart from it."""


class StoreConflictError(StoreError):
    """A commit lost to other writers every time it was tried; the rows stay buffered for the next try."""

    retryable = True


class StoreCorruptError(StoreError):
    """A data or metadata file of the table is missing or cannot be read."""


class BrokerError(LineageError):
    """Kafka could not be reached, or it refused or lost a message."""

    retryable = True


class BrokerUnavailableError(BrokerError):
    """No broker answered at the bootstrap servers within the configured bound."""

    def __init__(self, bootstrap_servers: str, timeout_s: float, detail: str = "") -> None:
        """Record which servers were tried and for how long."""
        self.bootstrap_servers = bootstrap_servers
        self.timeout_s = timeout_s
        extra = f": {detail}" if detail else ""
        super().__init__(f"no Kafka broker answered at {bootstrap_servers} within {timeout_s:g} s{extra}")


class DeliveryError(BrokerError):
    """A sent event was not acknowledged by the broker."""

    def __init__(self, event_id: str, topic: str, detail: str) -> None:
        """Record which event failed and why; the subject is not logged."""
        self.event_id = event_id
        self.event_ids: tuple[str, ...] = (event_id,)
        self.topic = topic
        self.detail = detail
        super().__init__(f"event {event_id} was not delivered to topic {topic}: {detail}")


class AuthenticationError(BrokerError):
    """The broker refused our credentials, or we refused its certificate; names the setting at fault.

    Terminal: the same credentials or trust store fail the same way however often they are tried.
    The message never carries the password.
    """

    retryable = False

    def __init__(self, setting: str, detail: str) -> None:
        """Record which setting to fix (``sasl_username``/``sasl_password``, ``ssl_cafile``...)."""
        self.setting = setting
        super().__init__(f"{setting}: {detail}")


class AuthorizationError(BrokerError):
    """The broker's ACLs do not let this principal do ``operation`` on ``resource``.

    Terminal until an operator grants the right; retrying will not help.
    """

    retryable = False

    def __init__(self, operation: str, resource: str, detail: str = "") -> None:
        """Record the refused operation (``write``, ``read``...) and the resource (``topic X``, ``group G``)."""
        self.operation = operation
        self.resource = resource
        extra = f" ({detail})" if detail else ""
        super().__init__(f"not authorised to {operation} {resource}{extra}")


class UndeliveredError(DeliveryError):
    """Events that were not delivered, all of them by id: what ``flush()`` or ``close()`` could not send.

    ``event_ids`` lists every one in the order sent; the message gives their count, not the ids, so
    it stays one line. ``spooled`` says they are kept in the local spool and will be sent again.
    """

    def __init__(self, topic: str, event_ids: Sequence[str], detail: str, *, spooled: bool = False) -> None:
        """Record every undelivered event id."""
        ids = tuple(event_ids)
        BrokerError.__init__(self, f"{len(ids)} event(s) were not delivered to topic {topic}: {detail}")
        self.event_id = ids[0] if ids else ""
        self.event_ids = ids
        self.topic = topic
        self.detail = detail
        self.spooled = spooled
