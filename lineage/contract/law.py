"""The legal rules lineage's reports apply, in one place: notification duties, deadlines, PIPL tiers.

Indicative only, not legal advice: each rule cites its source (``../shared/reference/privacy-law.md``
summarises them), and every report that uses one says so. Kept apart from the queries so a lawyer
can review this one file, and a change in the law is a change here only.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

__all__ = [
    "ACCESS_DEADLINES",
    "REQUEST_DUE_RULE",
    "ANY_VOLUME_MECHANISMS",
    "AUTOMATED_DECISION_PURPOSES",
    "ENTRUSTED_ROLES",
    "ERASURE_RULE",
    "GBA_ZONES",
    "INDICATIVE",
    "PIPL_RULE",
    "PIPL_ZONE",
    "PIA_RULES",
    "ROPA_RULE",
    "Notification",
    "RegimeExposure",
    "mechanisms_for_tier",
    "notification_plan",
    "pipl_tier",
    "recipient_erasure_action",
    "request_due",
]

INDICATIVE = "Indicative only, not legal advice: check each rule cited against the facts of the case."

ACCESS_DEADLINES = (
    "Deadlines: GDPR 1 month (Art. 12(3)); PIPL timely (15 working days promised by the seed "
    "policies); CCPA 45 days; HK PDPO 40 days. "
)

ERASURE_RULE = "GDPR Art. 17 and 19 (tell every recipient); PIPL Art. 47; CCPA 1798.105"

PIPL_RULE = "2024 CAC Provisions on cross-border data flows, Art. 7-8 (counted from 1 January; non-CII operators)"

# Mainland China, Hong Kong and Macao: the Greater Bay Area standard contract covers flows among them
GBA_ZONES = frozenset({"CN", "HK", "MO"})

_TIER_MECHANISMS = {
    "security assessment": frozenset({"pipl.security_assessment"}),
    "standard contract or certification": frozenset({
        "pipl.security_assessment", "pipl.standard_contract", "pipl.certification", "gba.standard_contract",
    }),
}  # fmt: skip
# the contract, HR and emergency exemptions hold at any volume
ANY_VOLUME_MECHANISMS = frozenset({"pipl.exemption.contract", "pipl.exemption.hr", "pipl.exemption.emergency"})

# the transfer zone PIPL guards: data leaving it for another zone (HK and MO included) goes abroad
PIPL_ZONE = "CN"

ROPA_RULE = "GDPR Art. 30(1) (record of processing activities); PIPL Art. 55-56 (impact assessments, kept 3 years)"

# Recipient roles that process on our instructions: sending data to one is entrusted processing
# (PIPL Art. 21); every other external role is another handler receiving a disclosure (PIPL Art. 23),
# an affiliate included: a group company is a separate legal person unless it is entrusted.
ENTRUSTED_ROLES = frozenset({"processor", "sub_processor"})

# Purposes that are automated decision-making (PIPL Art. 73(2): programs that assess a person's
# habits, interests or standing and decide), a purpose key covering the keys below it: profiling,
# using profiles, and targeted pushes (PIPL Art. 24(2)).
AUTOMATED_DECISION_PURPOSES = (
    "marketing.advertising.profiling",
    "marketing.advertising.first_party.targeted",
    "marketing.advertising.third_party.targeted",
    "personalize.content.profiling",
    "personalize.content.profiled",
    "personalize.profiling",
)

# the situations in which PIPL Art. 55 asks for a personal information protection impact
# assessment before processing, by the flag name the record of processing uses
PIA_RULES = {
    "sensitive data": "PIPL Art. 55(1) with Art. 28 (sensitive PI; any PI of a child under 14)",
    "automated decision-making": "PIPL Art. 55(2) with Art. 24 and 73(2)",
    "entrusted processing": "PIPL Art. 55(3) with Art. 21 (entrusting a processor)",
    "disclosure to other handlers": "PIPL Art. 55(3) with Art. 23 (providing PI to another handler)",
    "transfer abroad": "PIPL Art. 55(4) with Art. 38-39 (providing PI outside mainland China)",
}


REQUEST_DUE_RULE = (
    "Due date of an access or erasure request: the earliest deadline among the person's regimes, counted from "
    "the day it was received: GDPR 1 month (Art. 12(3); the same day next month, or that month's last day); "
    "PIPL 15 working days (Monday to Friday, public holidays not counted; the seed policies' promise); "
    "CCPA 45 days (1798.130); HK PDPO 40 days (s.19). With none of these regimes known, the earliest of all four. "
)


def _one_month(received: date) -> date:
    year, month = (received.year + 1, 1) if received.month == 12 else (received.year, received.month + 1)
    return date(year, month, min(received.day, calendar.monthrange(year, month)[1]))


def _working_days(received: date, days: int) -> date:
    due = received
    while days:
        due += timedelta(days=1)
        if due.weekday() < 5:  # Monday to Friday
            days -= 1
    return due


def _pipl(received: date) -> date:
    return _working_days(received, 15)


def _ccpa(received: date) -> date:
    return received + timedelta(days=45)


def _pdpo(received: date) -> date:
    return received + timedelta(days=40)


# the statutory answer deadline per regime, from the day a request is received
_REQUEST_DEADLINES = {"GDPR": _one_month, "PIPL": _pipl, "CCPA": _ccpa, "PDPO-HK": _pdpo}


def request_due(received: date, regimes: Iterable[str]) -> tuple[date, list[str]]:
    """The due date of an access or erasure request and the regimes it was counted from (REQUEST_DUE_RULE)."""
    applied = sorted({r for r in regimes if r in _REQUEST_DEADLINES}) or sorted(_REQUEST_DEADLINES)
    return min(_REQUEST_DEADLINES[r](received) for r in applied), applied


def pipl_tier(individuals: int, sensitive_individuals: int) -> str:
    """The mechanism the 2024 CAC Provisions ask for, by the year's individuals leaving mainland China."""
    if individuals > 1_000_000 or sensitive_individuals > 10_000:
        return "security assessment"
    if individuals >= 100_000 or sensitive_individuals > 0:
        return "standard contract or certification"
    return "exempt (under 100,000 individuals, no sensitive data)"


def mechanisms_for_tier(tier: str) -> frozenset[str] | None:
    """The mechanisms strong enough for a PIPL tier (``None``: any, the tier is exempt)."""
    return _TIER_MECHANISMS.get(tier)


def recipient_erasure_action(external: bool) -> str:
    """What an erasure plan asks of a holder: our systems erase, outside parties are told to."""
    return "tell the recipient to erase (GDPR Art. 19)" if external else "erase"


@dataclass(frozen=True, slots=True)
class Notification:
    """One regime's indicative notification duty."""

    regime: str
    applies: bool
    deadline: str
    due_by: datetime | None
    rule: str
    why: str


@dataclass(frozen=True, slots=True)
class RegimeExposure:
    """Who a breach touched, counted the way the notification rules ask."""

    subjects_by_regime: dict[str, int]  # affected subjects resident where each regime applies
    sensitive_exposed: bool  # any category sensitive under some regime
    california_elements: int  # California residents with unencrypted listed data elements


def notification_plan(exposure: RegimeExposure, aware_at: datetime) -> list[Notification]:
    """Indicative notification duties per regime, from the time the organisation became aware."""
    count = exposure.subjects_by_regime.get
    gdpr, pipl, sg, hk = count("GDPR", 0), count("PIPL", 0), count("PDPA-SG", 0), count("PDPO-HK", 0)
    sensitive = exposure.sensitive_exposed
    sg_applies = sg >= 500 or (sg > 0 and sensitive)
    ca = exposure.california_elements
    return [
        Notification("GDPR", gdpr > 0, "72 hours", aware_at + timedelta(hours=72) if gdpr else None,
                     "GDPR Art. 33 (authority, 72 h from awareness); "
                     "Art. 34 (individuals, without undue delay if high risk)",
                     f"{gdpr} affected subject(s) resident in the EEA"),
        Notification("PIPL", pipl > 0, "immediately", aware_at if pipl else None,
                     "PIPL Art. 57 (regulators and individuals, immediately; actual or possible leak)",
                     f"{pipl} affected subject(s) resident in mainland China"),
        Notification("PDPA-SG", sg_applies, "3 calendar days", aware_at + timedelta(days=3) if sg_applies else None,
                     "Singapore PDPA s.26B/26D (PDPC within 3 days; 500 or more individuals or significant harm)",
                     f"{sg} affected subject(s) resident in Singapore"
                     + ("; sensitive categories exposed (taken as prescribed classes)" if sg and sensitive else "")),
        Notification("California", ca > 0, "30 days", aware_at + timedelta(days=30) if ca else None,
                     "Cal. Civ. Code 1798.82 (residents within 30 days; AG sample notice if more than 500)",
                     f"{ca} California resident(s) with unencrypted listed data elements"),
        Notification("PDPO-HK", False, "voluntary", None,
                     "Hong Kong PDPO: notification to the PCPD is voluntary",
                     f"{hk} affected subject(s) resident in Hong Kong"),
    ]  # fmt: skip
