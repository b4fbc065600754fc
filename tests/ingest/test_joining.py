"""--exit-when-idle while the group is still forming: joining is not idleness, yet it has a bound."""

from __future__ import annotations

import time

import pytest

from lineage.errors import BrokerUnavailableError
from lineage.ingest.consumer import FIRST_ASSIGNMENT_S, IngestConsumer, IngestStats
from lineage.settings import Settings


def _joining(started_s_ago: float) -> IngestConsumer:
    """A consumer as it is between start and its first assignment (no broker: only the idle rule runs)."""
    consumer = IngestConsumer.__new__(IngestConsumer)
    consumer.settings = Settings(bootstrap_servers="127.0.0.1:9")
    consumer.stats = IngestStats(started=time.monotonic() - started_s_ago)
    consumer._last_assignment = None
    return consumer


def test_a_member_still_joining_is_not_idle() -> None:
    """Before the first assignment, however long past the idle bound, the consumer keeps waiting to join."""
    now = time.monotonic()
    assert not _joining(60)._idle_done(now, now - 60, 2.0)


def test_a_group_that_never_forms_ends_the_run_with_a_broker_error() -> None:
    """No assignment within FIRST_ASSIGNMENT_S: a BrokerUnavailableError naming the servers, not a wait for ever."""
    now = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match="127.0.0.1:9.*no assignment"):
        _joining(FIRST_ASSIGNMENT_S + 1)._idle_done(now, now - FIRST_ASSIGNMENT_S, 2.0)
