"""Undelivered events: reported by id without a spool; kept privately and resent in order with one."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lineage import DeliveryError, Emitter, Settings, UndeliveredError
from lineage import __version__ as lineage_version_text
from lineage.sdk.spool import SpooledDelivery
from lineage.testing import MemoryDelivery, MemoryReceipt, MemorySink
from lineage.transport.sink import Headers

EMAIL = ["user.contact.email"]


def _emitter(sink: MemorySink, spool: Path | None = None) -> Emitter:
    # a short delivery timeout: close() tries to resend the spool for that long before giving up
    return Emitter(system="checkout", region="CN", sink=sink, settings=Settings(spool_dir=spool, delivery_timeout_s=1))


def _emit(emitter: Emitter, subject: str) -> str:
    delivery = emitter.collected(subject, EMAIL, purpose="essential.service", legal_basis="CONTRACT")
    return delivery.event_id


def test_close_names_the_undelivered_event_by_id() -> None:
    """Without a spool, close() raises an UndeliveredError whose event_ids are the failed events, counted."""
    sink = MemorySink(fail_next=1)
    emitter = _emitter(sink)
    failed = _emit(emitter, "bob@example.com")
    with pytest.raises(UndeliveredError, match=r"^1 event\(s\) were not delivered") as caught:
        emitter.close()
    assert caught.value.event_ids == (failed,)
    assert "bob@example.com" not in str(caught.value)  # counts and ids, never the subjects


def test_each_failed_event_is_reported_once() -> None:
    """A failure raised from a later call is not reported again by close(), which names only later ones."""
    sink = MemorySink(fail_next=1)
    emitter = _emitter(sink)
    first = _emit(emitter, "u1")
    with pytest.raises(UndeliveredError) as caught:
        _emit(emitter, "u2")  # raises the earlier failure; this event is not sent
    assert caught.value.event_ids == (first,)
    sink.fail_next = 1
    third = _emit(emitter, "u3")
    with pytest.raises(UndeliveredError) as at_close:
        emitter.close()
    assert at_close.value.event_ids == (third,)


def test_outage_events_are_spooled_privately_and_resent_in_order(tmp_path: Path) -> None:
    """With a spool, events the broker refuses go to a 0600 file in a 0700 folder and are resent in order."""
    sink = MemorySink(down=True)
    folder = tmp_path / "spool"
    emitter = _emitter(sink, folder)
    ids = [_emit(emitter, f"u{i}") for i in range(5)]
    handle = emitter.collected("u9", EMAIL, purpose="essential.service", legal_basis="CONTRACT")
    with pytest.raises(DeliveryError, match=f"event {handle.event_id} .*kept in the spool"):
        handle.result()  # resolves at once: not delivered, and kept
    ids.append(handle.event_id)
    [file] = folder.iterdir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(file.stat().st_mode) == 0o600
    assert sink.messages == []
    sink.down = False
    ids += [_emit(emitter, "u7"), _emit(emitter, "u8")]
    emitter.close()
    assert [m.event_id for m in sink.messages] == ids
    assert list(folder.iterdir()) == []


def test_events_still_spooled_at_close_are_named_and_sent_by_the_next_emitter(tmp_path: Path) -> None:
    """close() with the broker still down names the spooled ids; the next emitter with that spool sends them."""
    folder = tmp_path / "spool"
    emitter = _emitter(MemorySink(down=True), folder)
    ids = [_emit(emitter, f"u{i}") for i in range(3)]
    with pytest.raises(UndeliveredError, match=r"^3 event\(s\) were not delivered") as caught:
        emitter.close()
    assert caught.value.event_ids == tuple(ids) and caught.value.spooled
    sink = MemorySink()
    later = _emitter(sink, folder)
    later_id = _emit(later, "u4")
    later.close()
    assert [m.event_id for m in sink.messages] == [*ids, later_id]
    assert list(folder.iterdir()) == []


def test_a_delivery_that_fails_later_is_spooled_not_raised(tmp_path: Path) -> None:
    """A delivery found failed after sending goes to the spool; the emitter's calls go on and it is resent."""
    sink = MemorySink(fail_next=1)
    emitter = _emitter(sink, tmp_path / "spool")
    first = _emit(emitter, "u1")
    second = _emit(emitter, "u2")  # no raise: the failure of the first is spooled
    emitter.close()
    assert [m.event_id for m in sink.messages] == [first, second]


def test_an_error_leaving_the_block_also_says_what_was_not_delivered() -> None:
    """When another error leaves the with-block, it carries a note counting the undelivered events."""
    sink = MemorySink(fail_next=1)
    with pytest.raises(KeyError) as caught, _emitter(sink) as emitter:
        _emit(emitter, "u1")
        raise KeyError("the caller's own error")
    assert any("1 event(s) were not delivered" in note for note in caught.value.__notes__)


def test_an_emitter_that_never_spools_leaves_no_file(tmp_path: Path) -> None:
    """With a spool folder but no failure, no spool file is made, even if the emitter is never closed."""
    folder = tmp_path / "spool"
    emitter = _emitter(MemorySink(), folder)
    _emit(emitter, "u1")
    emitter.flush()
    assert list(folder.iterdir()) == []


def test_a_record_cut_short_by_a_crash_is_dropped_and_whole_ones_kept(tmp_path: Path) -> None:
    """An orphaned spool whose last record was cut mid-write yields every whole record to the next emitter."""
    from lineage.sdk.spool import Spool, SpoolEntry

    folder = tmp_path / "spool"
    crashed = Spool(folder, "lineage.events")
    crashed.append([SpoolEntry("e1", b"k1", b"v1"), SpoolEntry("e2", b"k2", b"v2")])
    with crashed.path.open("ab") as f:
        f.write(b"\x00\x02\x00\x00")  # the start of a third record's header, then the crash
    crashed._closed = True  # noqa: SLF001 - what a crash leaves: the file, unlocked once the process is gone
    os.close(crashed._fd)  # noqa: SLF001
    heir = Spool(folder, "lineage.events")
    assert heir.event_ids == ("e1", "e2")
    assert [(e.key, e.value) for e in heir.head(10)] == [(b"k1", b"v1"), (b"k2", b"v2")]


def test_a_live_emitters_spool_is_not_taken_over(tmp_path: Path) -> None:
    """A second emitter on the same folder and topic leaves a spool that a live emitter holds alone."""
    folder = tmp_path / "spool"
    live = _emitter(MemorySink(down=True), folder)
    _emit(live, "u1")
    other = _emitter(MemorySink(), folder)
    other.close()
    assert len(list(folder.iterdir())) == 1


@dataclass
class _Pending:
    """A delivery the fake broker has not acknowledged yet (a real broker takes milliseconds)."""

    event_id: str
    acked: bool = False

    def result(self, timeout_s: float | None = None) -> MemoryReceipt:
        """The receipt once acknowledged; until then the error a real delivery gives before its ack."""
        if not self.acked:
            raise DeliveryError(self.event_id, "t", "no acknowledgement yet (it may still arrive)")
        return MemoryReceipt("t", 0, 0)


@dataclass
class _SlowAcks(MemorySink):
    """A sink whose deliveries stay unacknowledged until ``ack()`` (or ``flush()``), as on a real broker."""

    pending: list[_Pending] = field(default_factory=list)

    def send(  # type: ignore[override]
        self, topic: str, key: bytes, value: bytes, event_id: str, headers: Headers = ()
    ) -> MemoryDelivery:
        """Store the message; its delivery waits for ``ack()``."""
        super().send(topic, key, value, event_id, headers)
        self.pending.append(_Pending(event_id))
        return self.pending[-1]  # type: ignore[return-value]

    def ack(self) -> None:
        """Acknowledge everything sent so far."""
        for delivery in self.pending:
            delivery.acked = True

    def flush(self, timeout_s: float | None = None) -> None:
        """Acknowledge everything: what a flush waits for."""
        self.ack()


def test_events_go_straight_to_the_broker_behind_the_last_round_of_the_spool(tmp_path: Path) -> None:
    """Once the whole backlog is being resent, new events go to the broker behind it, not into the spool."""
    folder = tmp_path / "spool"
    with pytest.raises(UndeliveredError):  # the broker was down: three events left in the spool
        earlier = _emitter(MemorySink(down=True), folder)
        spooled = [_emit(earlier, f"u{i}") for i in range(3)]
        earlier.close()
    sink = _SlowAcks()
    emitter = _emitter(sink, folder)
    first = emitter.collected("u3", EMAIL, purpose="essential.service", legal_basis="CONTRACT")  # a probe goes out
    sink.ack()
    second = emitter.collected("u4", EMAIL, purpose="essential.service", legal_basis="CONTRACT")  # the rest go out
    third = emitter.collected("u5", EMAIL, purpose="essential.service", legal_basis="CONTRACT")  # acks not in yet
    assert isinstance(first, SpooledDelivery) and isinstance(second, SpooledDelivery)
    assert not isinstance(third, SpooledDelivery)  # sent behind the backlog, not queued (never-ending) in the spool
    sink.ack()
    fourth = _emit(emitter, "u6")  # the backlog is acknowledged: the spool is empty again
    emitter.close()
    sent = [*spooled, first.event_id, second.event_id, third.event_id, fourth]
    assert [m.event_id for m in sink.messages] == sent  # in order, each once
    assert list(folder.iterdir()) == []


def test_spooled_events_are_resent_with_their_own_provenance_headers(tmp_path: Path) -> None:
    """An event spooled in an outage reaches the broker later with the headers it was emitted with."""
    from lineage.transport.provenance import gateway_headers

    sink = MemorySink(down=True)
    emitter = _emitter(sink, tmp_path / "spool")
    own = _emit(emitter, "u1")
    theirs = emitter.emit(emitter.event("COLLECTED", subject_id="u2", categories=EMAIL, purpose="essential.service",
                                        legal_basis="CONTRACT"), headers=gateway_headers("shop-etl"))  # fmt: skip
    sink.down = False
    emitter.close()
    sent = {m.event_id: dict(m.headers) for m in sink.messages}
    assert sent[own]["lineage.via"] == b"sdk" and sent[own]["lineage.via.name"] == lineage_version_text.encode()
    assert sent[theirs.event_id] == {"lineage.via": b"gateway", "lineage.via.name": b"shop-etl"}


def test_a_spool_file_written_before_headers_existed_is_read_as_it_was(tmp_path: Path) -> None:
    """Records of the older layout (no headers) and of the new one, in one orphaned file, all come back."""
    import struct

    from lineage.sdk.spool import Spool, SpoolEntry

    folder = tmp_path / "spool"
    crashed = Spool(folder, "lineage.events")
    crashed.append([SpoolEntry("e2", b"k2", b"v2", (("lineage.via", b"sdk"),))])
    crashed._closed = True  # noqa: SLF001 - what a crash leaves: the file, unlocked once the process is gone
    os.close(crashed._fd)  # noqa: SLF001
    old = struct.pack(">HII", 2, 2, 2) + b"e1k1v1"  # as an emitter of the previous release wrote it
    crashed.path.write_bytes(old + crashed.path.read_bytes())
    heir = Spool(folder, "lineage.events")
    assert heir.head(10) == [SpoolEntry("e1", b"k1", b"v1"), SpoolEntry("e2", b"k2", b"v2", (("lineage.via", b"sdk"),))]
