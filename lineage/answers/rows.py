"""The rows the answers return, typed: one ``TypedDict`` per table a report shows.

Rows come from the SQL in ``queries/`` with exactly these columns, in this order (the order a CSV
or Markdown table shows them); an answer adds the derived columns at the end by building a new row,
never by changing the query's.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from lineage.contract.rules import RETENTION_NEVER, Sensitivity

__all__ = [
    "BreachRecord",
    "CategoryImpact",
    "ConsentRow",
    "ErasureHolder",
    "ErasureRow",
    "HoldingRow",
    "RETENTION_NEVER",
    "RETENTION_NEVER_TEXT",
    "RecipientRow",
    "RetentionRow",
    "RopaActivity",
    "RopaFlag",
    "SourceRow",
    "TransferRow",
]


#: ``lineage.contract.rules.RETENTION_NEVER`` (a period past the last time we can show): reports print this instead.
RETENTION_NEVER_TEXT = "never (the retention period reaches past 9999-12-31)"


class HoldingRow(TypedDict):
    """One category at one holder in an access report."""

    category: str
    holder: str
    holder_role: str | None
    holder_region: str | None
    since: datetime
    still_held: bool
    erased_at: datetime | None
    purposes: list[str]
    legal_bases: list[str | None]
    sources: list[str | None]
    retention_days: int | None
    retention_ends: datetime | None
    sensitive: Sensitivity


class RecipientRow(TypedDict):
    """A party the subject's data went to, from one sender."""

    recipient: str
    recipient_role: str | None
    recipient_region: str | None
    sender: str | None
    sender_region: str | None
    categories: list[str]
    purposes: list[str]
    mechanisms: list[str | None]
    event_types: list[str]
    in_bulk_export: bool
    first_at: datetime
    last_at: datetime
    cross_border: bool


class ConsentRow(TypedDict):
    """One consent event of the subject."""

    occurred_at: datetime
    consent_status: str | None
    consent_kind: str | None
    consent_ref: str | None
    purpose: str
    categories: list[str]


class SourceRow(TypedDict):
    """How one event about the subject reached Kafka (its provenance headers; None where none was sent)."""

    occurred_at: datetime
    event_id: str
    event_type: str
    system: str
    holder: str | None
    sent_via: str | None
    sent_via_name: str | None
    sent_via_run: str | None


class ErasureRow(TypedDict):
    """One erasure event of the subject."""

    occurred_at: datetime
    holder: str
    erasure_outcome: str | None
    hold_reason: str | None
    categories: list[str]


class BreachRecord(TypedDict):
    """One (subject, category, holder) the breach exposed."""

    subject: str
    category: str
    holder: str
    reached_at: datetime
    encrypted: bool
    jurisdiction: str | None
    age_band: str


class CategoryImpact(TypedDict):
    """A category a breach exposed: records, distinct subjects, and its sensitivity."""

    category: str
    records: int
    subjects: int
    pipl_sensitive: bool
    gdpr_special: bool
    cpra_sensitive: bool


class ErasureHolder(TypedDict):
    """A holder in an erasure plan and where its erasure stands."""

    holder: str
    role: str | None
    region: str | None
    categories: list[str]
    still_held: list[str]
    last_erased_at: datetime | None
    status: str
    hold_reason: str | None
    action: str


class TransferRow(TypedDict):
    """One cross-border route in one year, with the PIPL tier and any flag."""

    year: int
    from_region: str | None
    to_region: str | None
    recipient: str
    mechanism: str | None
    individuals: int
    sensitive_individuals: int
    lacks_mechanism: bool
    pipl_year_individuals: int | None
    pipl_year_sensitive_individuals: int | None
    pipl_tier: str | None
    flag: str


class RetentionRow(TypedDict):
    """Data held past its retention period at one holder."""

    holder: str
    category: str
    subjects: int
    retention_days: int
    overdue_since: datetime


class RopaActivity(TypedDict):
    """One processing activity in the record of processing: a controller and a purpose (GDPR Art. 30(1))."""

    controller: str
    purpose: str
    controller_roles: list[str]
    controller_regions: list[str]
    legal_bases: list[str]
    subjects: int
    minors: int
    children_under_14: int
    subject_jurisdictions: list[str]
    categories: list[str]
    sensitive_categories: list[str]
    recipients: list[str]
    recipient_roles: list[str]
    third_countries: list[str]
    transfer_mechanisms: list[str]
    retention_days: list[int]
    events: int
    bulk_events: int
    first_seen: datetime
    last_seen: datetime
    impact_assessment: list[str]


class RopaFlag(TypedDict):
    """One reason an activity needs a PIPL Art. 55 impact assessment, with the events and flows behind it."""

    controller: str
    purpose: str
    flag: str
    rule: str
    events: int
    flows: list[str]
    first_events: list[str]
