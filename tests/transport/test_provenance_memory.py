"""What the consumer remembers of headers read stays small, whatever a producer sends (issue 23 item 3)."""

from __future__ import annotations

from lineage.transport import provenance
from lineage.transport.provenance import VIA, read_provenance


def test_headers_remembered_stay_small_whatever_else_a_producer_sends() -> None:
    """Messages with a good lineage.via and many large other headers: what is remembered stays under 1 MB."""
    provenance._READ.clear()
    for n in range(40):  # 40 messages of ~80 KB of headers each (Kafka takes 1 MB a message by default)
        headers = [(VIA, b"sdk")] + [(f"x-{i}", b"%06d" % n + b"a" * 794) for i in range(100)]
        assert read_provenance(headers).via == "sdk"
    kept = sum(len(k) + len(v or b"") for key in provenance._READ for k, v in key)
    provenance._READ.clear()
    assert kept < 1_000_000, kept  # as merged: 3.2 MB here; 4096 messages of 1 MB would keep ~4 GB
