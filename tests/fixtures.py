"""Shared test data: sample events, random histories, encoded messages. The one module tests share.

Pytest fixtures (the broker, settings per test, the Hypothesis profile) live in ``conftest.py``; test
files import plain helpers from here and never from each other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from lineage import Codec, Party, PersonalDataEvent, default_taxonomy
from lineage.contract.records import Record, build_event, make_record, to_record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.transport.sink import Headers

# the Kafka clients a setting chooses (settings.kafka_client): the client-facing tests run on each
KAFKA_CLIENTS = ("kafka-python", "confluent")

# the Hypothesis profile: "ci" (set by .ci/run) runs each property test's full example count, "dev" a quarter
HYPOTHESIS_PROFILE = os.environ.get("LINEAGE_HYPOTHESIS_PROFILE", "dev")


def examples(full: int) -> int:
    """A property test's example count under the current profile: ``full`` in CI, a quarter in dev."""
    return full if HYPOTHESIS_PROFILE == "ci" else max(10, full // 4)


# Playwright's default of 30 s per action: a page the console renders at load 10 can take longer
BROWSER_TIMEOUT_MS = 120_000

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)  # the sample events' time
PROCESSOR_HK = Party(name="crash-sdk", role="processor", region="HK")


def sample_events() -> list[PersonalDataEvent]:
    """One valid event of every type and scope, with most optional fields set."""
    common = {"system": "checkout", "system_region": "CN", "occurred_at": T0}
    return [
        build_event(
            "COLLECTED",
            subject_id="user-1",
            linked_subject_ids=["device-9"],
            subject_jurisdiction="CN",
            age_band="ADULT",
            categories=["user.contact.phone_number"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            source="direct",
            retention_days=365,
            encrypted=True,
            **common,
        ),
        build_event(
            "SHARED",
            subject_id="user-1",
            categories=["user.device.device_id"],
            purpose="essential.service",
            recipient=PROCESSOR_HK,
            mechanism="gba.standard_contract",
            **common,
        ),
        build_event(
            "TRANSFERRED",
            subject_id=None,
            bulk_as_of=T0,
            categories=["user.contact.email", "user.name"],
            purpose="essential.service",
            recipient=Party(name="sg-warehouse", role="affiliate", region="SG"),
            transfer_kind="CROSS_BORDER",
            mechanism="pipl.standard_contract",
            **common,
        ),
        build_event(
            "TRANSFERRED",
            subject_id="user-2",
            categories=["user.contact.email"],
            purpose="essential.service",
            recipient=Party(name="acquirer-co", role="controller", region="CN"),
            transfer_kind="CONTROLLER_CHANGE",
            **common,
        ),
        build_event(
            "ERASED",
            subject_id="user-1",
            categories=["user.contact.phone_number"],
            erasure_outcome="HOLD",
            hold_reason="tax records kept 10 years",
            **common,
        ),
        build_event(
            "ERASED",
            subject_id="user-3",
            categories=["user.contact.phone_number"],
            erasure_outcome="ANONYMISED",
            **common,
        ),
        build_event(
            "CONSENT",
            subject_id="child-1",
            age_band="CHILD_UNDER_14",
            categories=["user.childrens"],
            purpose="essential.service",
            consent_status="GRANTED",
            consent_kind="GUARDIAN",
            consent_ref="form-1",
            **common,
        ),
    ]


def invalid_but_decodable() -> bytes:
    """An encoded event that decodes but breaks the contract (an unknown category)."""
    record = to_record(sample_events()[0])
    record["categories"] = ["user.no_such_thing"]
    return Codec().encode_record(record)


# a valid ``lineage emit`` line
GOOD_LINE = json.dumps(
    {
        "event_type": "collected",
        "subject_id": "u1",
        "categories": ["user.contact.email"],
        "purpose": "essential.service",
        "legal_basis": "contract",
        "occurred_at": "2026-05-01T08:00:00+08:00",
    }
)


HISTORY_T0 = datetime(2026, 1, 1, tzinfo=UTC)  # the random histories' start
MAX_RETENTION_DAYS = 2**31 - 1  # the contract's own maximum: ends far past any date a timestamp holds
SUBJECTS = ["s1", "s2", "s3"]
INTERNAL = ["app", "crm"]
EXTERNAL = ["pay", "ads", "hk"]
CATEGORIES = ["user.contact", "user.contact.email", "user.contact.phone_number", "user.device.device_id"]
PARTY = {
    name: Party(name=name, role="internal" if name in INTERNAL else "processor", region="HK" if name == "hk" else "CN")
    for name in INTERNAL + EXTERNAL
}


def flow_fields(holder: Party, recipient: Party) -> dict[str, Any]:
    """What a flow between two parties needs: a mechanism when it leaves the holder's zone."""
    crossing = (holder.region == "HK") != (recipient.region == "HK")
    return {"mechanism": "gba.standard_contract"} if crossing else {}


def at_minute(minute: int) -> datetime:
    """A time ``minute`` minutes into the random histories."""
    return HISTORY_T0 + timedelta(minutes=minute)


@st.composite
def histories(draw: st.DrawFn) -> list[Record]:
    """Random small histories: collections, subject and bulk flows (chained), erasures, links."""
    records = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["collect", "collect", "share", "bulk", "bulk", "erase", "bulk_erase"]))
        minute = draw(st.integers(0, 30))
        cats = draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True))
        common: dict[str, Any] = {
            "system": "app",
            "system_region": "CN",
            "occurred_at": at_minute(minute),
            "categories": cats,
            "event_id": str(draw(st.uuids())),
        }
        holder = PARTY[draw(st.sampled_from(INTERNAL + EXTERNAL))]
        others = [p for n, p in PARTY.items() if n != holder.name]
        if kind == "collect":
            linked = draw(st.lists(st.sampled_from(["dev-1", "mail-1"]), max_size=1))
            records.append(
                make_record(
                    "COLLECTED",
                    subject_id=draw(st.sampled_from(SUBJECTS)),
                    holder=PARTY[draw(st.sampled_from(INTERNAL))],
                    purpose="essential.service",
                    legal_basis="CONTRACT",
                    linked_subject_ids=linked,
                    retention_days=draw(st.sampled_from([None, 0, 1, MAX_RETENTION_DAYS])),
                    **common,
                )
            )
        elif kind == "share":
            recipient = draw(st.sampled_from(others))
            records.append(
                make_record(
                    "SHARED",
                    subject_id=draw(st.sampled_from(SUBJECTS)),
                    holder=holder,
                    recipient=recipient,
                    purpose="essential.service",
                    **flow_fields(holder, recipient),
                    **common,
                )
            )
        elif kind == "bulk":
            recipient = draw(st.sampled_from(others))
            records.append(
                make_record(
                    "TRANSFERRED",
                    subject_id=None,
                    bulk_as_of=at_minute(minute - draw(st.integers(0, 5))),
                    holder=holder,
                    recipient=recipient,
                    transfer_kind="CROSS_BORDER" if flow_fields(holder, recipient) else "CONTROLLER_CHANGE",
                    purpose="essential.service",
                    **flow_fields(holder, recipient),
                    **common,
                )
            )
        elif kind == "erase":
            records.append(
                make_record(
                    "ERASED",
                    subject_id=draw(st.sampled_from(SUBJECTS)),
                    holder=PARTY[draw(st.sampled_from(INTERNAL))],  # where collected data sits
                    erasure_outcome=draw(st.sampled_from(["ERASED", "ANONYMISED", "HOLD", "HOLD"])),
                    hold_reason="tax law",
                    **common,
                )
            )
        else:
            records.append(
                make_record(
                    "ERASED",
                    subject_id=None,
                    bulk_as_of=at_minute(minute - draw(st.integers(0, 5))),
                    holder=holder,
                    erasure_outcome="ERASED",
                    **common,
                )
            )
    return records


def email_collected(subject: str, at: datetime, **fields: object) -> Record:
    """``app`` (CN) collected ``subject``'s e-mail at ``at`` for the service, under contract (``fields`` added)."""
    return make_record("COLLECTED", system="app", system_region="CN", subject_id=subject, subject_jurisdiction="CN",
                       categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                       source="direct", occurred_at=at, **fields)  # fmt: skip


def store_of(records: list[Record], folder: Path, headers: Sequence[Headers] = ()) -> Store:
    """A store holding ``records`` in one partition, through the real ingest pipeline (``headers[i]``: the i-th's)."""
    ing = Ingestor(folder, "events", taxonomy=default_taxonomy())
    codec = Codec()
    for offset, r in enumerate(records):
        assert ing.add(0, offset, codec.encode_record(r), None, headers[offset] if headers else ()) is None
    ing.flush()
    HoldingsMaintainer(StoreLocation.embedded(folder)).refresh()
    return Store(folder)


#: the lagging store's subject, holders and the year of its one future-stamped event
LAGGING_SUBJECT, LAGGING_FUTURE = "s1", datetime(2100, 1, 1, tzinfo=UTC)


def lagging_store(folder: Path) -> tuple[Store, int]:
    """A store whose answers have every note to stamp; the store, and how many events its holdings lack.

    s1's e-mail collected by app (CN) and shared with pay (US), and one event stamped in 2100, all in
    the holdings; then two more events stored after the holdings' last refresh (the maintainer lags).
    """
    at = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    app = Party(name="app", role="internal", region="CN")

    def collected(when: datetime, source: str = "direct") -> Record:
        return make_record("COLLECTED", system="app", system_region="CN", occurred_at=when, holder=app,
                           subject_id=LAGGING_SUBJECT, categories=["user.contact.email"], purpose="essential.service",
                           legal_basis="CONTRACT", source=source)  # fmt: skip

    shared = make_record("SHARED", system="app", system_region="CN", occurred_at=at, subject_id=LAGGING_SUBJECT,
                         holder=app, recipient=Party(name="pay", role="processor", region="US"),
                         categories=["user.contact.email"], purpose="essential.service",
                         mechanism="pipl.standard_contract")  # fmt: skip
    store_of([collected(at), shared, collected(LAGGING_FUTURE, "later")], folder)
    late = [collected(at + timedelta(days=1), "again"), collected(at + timedelta(days=2), "again")]
    ing = Ingestor(folder, "events", taxonomy=default_taxonomy())
    for offset, r in enumerate(late, 3):
        assert ing.add(0, offset, Codec().encode_record(r)) is None
    ing.flush()
    return Store(folder), len(late)


def private_file(path: Path, text: str) -> Path:
    """Write ``text`` to a new 0600 file (a secret a child process reads: never on its command line)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def micros(value: datetime | None) -> int | None:
    """Microseconds since the epoch, the unit the reference model counts in."""
    return None if value is None else (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def stored_offsets(folder: Path) -> dict[tuple[str, int], int]:
    """The next offset to read of every (origin, partition) the embedded store at ``folder`` holds, read-only."""
    from lineage.errors import StoreNotFoundError
    from lineage.store import StoreLocation

    if not (folder / "catalog.db").is_file():
        return {}  # opening a SQLite catalog would create it
    try:
        props = StoreLocation.embedded(folder).load().properties
    except StoreNotFoundError:
        return {}
    out = {}
    for key, value in props.items():
        if key.startswith("lineage.offset."):
            origin, _, partition = key.removeprefix("lineage.offset.").rpartition(".")
            out[(origin, int(partition))] = int(value) + 1
    return out


# the flows a "nightly" history re-sends: (sender, recipient, categories); ads -> app closes a cycle
_NIGHTLY_FLOWS = [
    ("app", "crm", ["user.contact"]),
    ("crm", "ads", ["user.contact.email", "user.device"]),
    ("crm", "hk", ["user"]),
    ("ads", "app", ["user.contact"]),
]


@st.composite
def nightly_histories(draw: st.DrawFn) -> list[Record]:
    """Random histories dominated by the same bulk flows re-sent, across a new year, with erasures."""
    records = []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["collect", "collect", "export", "export", "export", "erase", "bulk_erase"]))
        minute = draw(st.integers(-15, 25))  # the history starts before and ends after a new year
        common: dict[str, Any] = {"system": "app", "system_region": "CN", "occurred_at": at_minute(minute),
                                  "event_id": str(draw(st.uuids()))}  # fmt: skip
        if kind == "collect":
            records.append(make_record(
                "COLLECTED", subject_id=draw(st.sampled_from(SUBJECTS)), holder=PARTY["app"],
                categories=draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True)),
                purpose="essential.service", legal_basis="CONTRACT",
                linked_subject_ids=draw(st.lists(st.sampled_from(["dev-1", "mail-1"]), max_size=1)),
                retention_days=draw(st.sampled_from([None, 0, 1])), **common,
            ))  # fmt: skip
        elif kind == "export":
            sender, recipient, categories = draw(st.sampled_from(_NIGHTLY_FLOWS))
            holder, to = PARTY[sender], PARTY[recipient]
            records.append(make_record(
                "TRANSFERRED", subject_id=None, bulk_as_of=at_minute(minute - draw(st.integers(0, 3))),
                holder=holder, recipient=to, categories=categories, purpose="analytics.reporting",
                transfer_kind="CROSS_BORDER" if flow_fields(holder, to) else "CONTROLLER_CHANGE",
                **flow_fields(holder, to), **common,
            ))  # fmt: skip
        elif kind == "erase":
            records.append(make_record(
                "ERASED", subject_id=draw(st.sampled_from(SUBJECTS)),
                holder=PARTY[draw(st.sampled_from(["app", "crm", "ads"]))],
                categories=draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True)),
                erasure_outcome=draw(st.sampled_from(["ERASED", "ANONYMISED", "HOLD"])), hold_reason="tax law",
                **common,
            ))  # fmt: skip
        else:
            records.append(make_record(
                "ERASED", subject_id=None, bulk_as_of=at_minute(minute - draw(st.integers(0, 5))),
                holder=PARTY[draw(st.sampled_from(["app", "crm", "ads", "hk"]))],
                categories=[draw(st.sampled_from(["user", "user.contact", "user.contact.email"]))],
                erasure_outcome="ERASED", **common,
            ))  # fmt: skip
    return records


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr). An uncaught exception fails the test."""
    from lineage.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def access_processes(
    store: Path, identifier: str, runs: int = 2, heavy: tuple[str, ...] = ("pandas", "pyiceberg", "sqlalchemy")
) -> list[tuple[dict[str, Any], list[str]]]:
    """``lineage access --format json`` as ``runs`` new processes, one after another.

    Each one's answer (less ``as_of``), and which of the ``heavy`` libraries it imported.
    """
    probe = (
        "import sys\nfrom lineage.cli import main\n"
        f"rc = main(['access', '--store', {str(store)!r}, {identifier!r}, '--format', 'json'])\n"
        f"heavy = sorted(m for m in {heavy!r} if m in sys.modules)\n"
        "print('heavy:', ','.join(heavy), file=sys.stderr)\nsys.exit(rc)\n"
    )
    found = []
    for _ in range(runs):
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        heavy = [m for m in run.stderr.split("heavy:")[1].strip().split(",") if m]
        found.append(({k: v for k, v in json.loads(run.stdout).items() if k != "as_of"}, heavy))
    return found


def one_line_failure(code: int, err: str) -> str:
    """Assert a failure is exit 2 and one line on stderr, no traceback; return that line."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def child_pids(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (from /proc), sorted."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def wait_until(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[Any] | None = None, timeout_s: float = 120
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``, or at once if ``proc`` exits.

    A generous deadline, never a sleep sized for an idle machine: CI runs at load 10 on 2 cores.
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc is None or proc.poll() is None, f"the process exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} in {timeout_s:.0f} s"
        time.sleep(0.1)


def overlapping_blocks(block: Callable[[], AbstractContextManager[None]], during: Callable[[], Any]) -> Any:
    """Thread one enters ``block``, thread two too, thread one leaves: what ``during()`` gives in thread two then.

    Both threads have left when it returns (a process-wide setting must be back by then).
    """
    one_in, two_in, one_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[Any] = []

    def one() -> None:
        with block():
            one_in.set()
            two_in.wait(60)
        one_out.set()

    def two() -> None:
        one_in.wait(60)
        with block():
            two_in.set()
            one_out.wait(60)
            seen.append(during())

    threads = [threading.Thread(target=one), threading.Thread(target=two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(seen) == 1, "thread two did not finish its block"
    return seen[0]
