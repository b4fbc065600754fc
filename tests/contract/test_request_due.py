"""The statutory due date of an access or erasure request, per regime and for a person under several."""

from __future__ import annotations

from datetime import date

import pytest

from lineage.contract.law import REQUEST_DUE_RULE, request_due


@pytest.mark.parametrize(
    ("received", "regimes", "due"),
    [
        (date(2026, 3, 10), ["GDPR"], date(2026, 4, 10)),  # one calendar month
        (date(2026, 1, 31), ["GDPR"], date(2026, 2, 28)),  # no 31 February: that month's last day
        (date(2026, 12, 15), ["GDPR"], date(2027, 1, 15)),  # across the year's end
        (date(2026, 3, 6), ["PIPL"], date(2026, 3, 27)),  # a Friday: 15 working days skip three weekends
        (date(2026, 3, 7), ["PIPL"], date(2026, 3, 27)),  # a Saturday counts from the Monday after
        (date(2026, 3, 10), ["CCPA"], date(2026, 4, 24)),  # 45 days
        (date(2026, 3, 10), ["PDPO-HK"], date(2026, 4, 19)),  # 40 days
    ],
)
def test_each_regime_counts_its_own_deadline(received: date, regimes: list[str], due: date) -> None:
    """GDPR one month (clamped to the month's end), PIPL 15 working days, CCPA 45 days, HK PDPO 40 days."""
    assert request_due(received, regimes) == (due, regimes)


def test_the_earliest_deadline_of_several_regimes_applies() -> None:
    """A person under GDPR and PDPO is due by the GDPR month, the earlier; regimes without a rule are ignored."""
    assert request_due(date(2026, 3, 10), ["PDPO-HK", "GDPR", "APPI"]) == (date(2026, 4, 10), ["GDPR", "PDPO-HK"])


def test_with_no_known_regime_the_earliest_of_all_applies() -> None:
    """An unknown jurisdiction gets the strictest deadline (PIPL's 15 working days here), and says it used all four."""
    due, applied = request_due(date(2026, 3, 10), [])
    assert due == date(2026, 3, 31)
    assert applied == ["CCPA", "GDPR", "PDPO-HK", "PIPL"]
    assert "15 working days" in REQUEST_DUE_RULE and "earliest" in REQUEST_DUE_RULE
