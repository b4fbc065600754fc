"""The holdings-maintainer benchmark's staleness: the age of the oldest stored event the holdings miss."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import holdings_maintainer as bench  # noqa: E402


def test_staleness_is_the_age_of_the_oldest_stored_event_the_holdings_miss() -> None:
    """Missing the events stored since t=1: 1 s behind at t=2; since t=2: 1 s at t=3; none missed: 0."""
    samples = [(0.0, 0, 0), (1.0, 100, 100), (2.0, 300, 300), (3.0, 500, 400), (4.0, 500, 0)]
    assert bench._staleness(samples) == [0.0, 0.0, 1.0, 1.0, 0.0]
