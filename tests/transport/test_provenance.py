"""Provenance headers: what each door stamps, and how the consumer reads untrusted ones back."""

from __future__ import annotations

import pytest

from lineage.transport.provenance import (
    MAX_NAME,
    MAX_RUN,
    VIA,
    VIA_NAME,
    VIA_RUN,
    Provenance,
    gateway_headers,
    openlineage_headers,
    read_provenance,
    sdk_headers,
)


def test_each_door_stamps_headers_the_consumer_reads_back() -> None:
    """The SDK's, the gateway's and the OpenLineage door's headers read back as the door, its name and run."""
    assert read_provenance(sdk_headers("1.2")) == Provenance("sdk", "1.2")
    assert read_provenance(gateway_headers("shop-etl")) == Provenance("gateway", "shop-etl")
    run = "0176a8c2-fe01-7439-87e6-56a1a1b4029f"
    assert read_provenance(openlineage_headers("airflow", "nightly.export", run)) == Provenance(
        "openlineage", "airflow/nightly.export", run
    )


def test_a_long_job_name_is_cut_when_stamped_so_the_consumer_keeps_it() -> None:
    """A job name over the bound is shortened by the gateway, not dropped by the consumer."""
    read = read_provenance(openlineage_headers("ns", "j" * 1000, "r"))
    assert read.bad == 0 and read.name is not None and len(read.name) == MAX_NAME


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], Provenance()),
        ([("traceparent", b"00-abc")], Provenance()),  # someone else's headers: no provenance, nothing bad
        ([(VIA, b"sdk" * 100)], Provenance(bad=1)),  # too long
        ([(VIA, b"carrier-pigeon")], Provenance(bad=1)),  # not a door we know
        ([(VIA, b"\xff\xfe")], Provenance(bad=1)),  # not UTF-8
        ([(VIA, None)], Provenance(bad=1)),
        ([(VIA, b"gateway"), (VIA_NAME, b"\xffbad")], Provenance("gateway", None, None, 1)),
        ([(VIA, b"gateway"), (VIA_NAME, b"line\nbreak")], Provenance("gateway", None, None, 1)),
        ([(VIA, b"openlineage"), (VIA_NAME, b"ns/j"), (VIA_RUN, b"r" * (MAX_RUN + 1))],
         Provenance("openlineage", "ns/j", None, 1)),  # fmt: skip
        ([(VIA, b"sdk"), (VIA_NAME, b"x" * (4 * MAX_NAME + 1))], Provenance("sdk", None, None, 1)),
        ([(VIA_NAME, b"1.2")], Provenance(bad=1)),  # a name without a door is not trusted
        ([(VIA, b"sdk"), (VIA, b"gateway")], Provenance("sdk")),  # the first of a name counts
    ],
)
def test_unusable_headers_read_as_none_and_are_counted(
    headers: list[tuple[str, bytes | None]], expected: Provenance
) -> None:
    """Too long, not text, an unknown door: the value is None and counted in ``bad``, never an error."""
    assert read_provenance(headers) == expected


def test_headers_read_again_give_the_same_answer_and_bad_ones_count_each_time() -> None:
    """A repeated good header reads the same; a repeated bad one is counted at every message, not remembered as good."""
    good, bad = list(sdk_headers("1.2")), [(VIA, b"carrier-pigeon")]
    assert [read_provenance(good) for _ in range(3)] == [Provenance("sdk", "1.2")] * 3
    assert sum(read_provenance(bad).bad for _ in range(3)) == 3
