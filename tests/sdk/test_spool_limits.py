"""The SDK spool keeps header values of any size Kafka takes (issue 23 item 3)."""

from __future__ import annotations

from pathlib import Path

from lineage.errors import LineageError
from lineage.sdk.spool import Spool, SpoolEntry


def test_a_header_value_too_long_for_the_spool_is_kept_or_refused_as_a_lineage_error(tmp_path: Path) -> None:
    """A 70 KB header value (Kafka takes it): the spool keeps the entry or refuses it as a LineageError."""
    spool = Spool(tmp_path / "spool", "events")
    try:
        spool.append([SpoolEntry("e1", b"k", b"v", (("trace", b"a" * 70_000),))])
    except LineageError:
        return
    finally:
        spool.close()
    assert Spool(tmp_path / "spool", "events").head(1)[0].headers == (("trace", b"a" * 70_000),)
