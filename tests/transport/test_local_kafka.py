"""The local broker's helpers."""

from __future__ import annotations

import base64

from lineage.transport.local_broker import new_cluster_id


def test_cluster_ids_are_22_url_safe_characters_never_starting_with_a_dash() -> None:
    """A cluster id is a base64 UUID that the storage tool cannot mistake for an option."""
    ids = [new_cluster_id() for _ in range(5000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len({base64.urlsafe_b64decode(i + "==") for i in ids}) == 5000
