"""The spool: events the broker did not take, kept in a private local file until it takes them again.

Enabled by ``Settings.spool_dir`` (``LINEAGE_SPOOL_DIR``). Each emitter appends to a file of its own,
``<topic>.<pid>.<random>.spool`` (mode 0600, folder 0700: the bytes hold personal data), locked with
``flock`` while the emitter lives. An emitter for the same topic and folder adopts the files no live
emitter holds (one left by a process that stopped or crashed) and sends their events first.

Records are length-prefixed: ``>HII`` (event id, key, value lengths) then the three byte strings. A
record with Kafka headers (provenance) sets the top bit of the id's length and puts ``>I`` (the
headers' length) after ``>HII`` and the headers (``>HH`` name and value lengths, then the two, each)
after the value: files written before headers existed read as they were (an event id is never
32 KiB long). A record cut short by a crash mid-write is ignored; every earlier one is intact. Resending is
at-least-once: an event may reach the topic twice (the person's answers read one copy per event id).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from lineage.errors import ConfigurationError, DeliveryError
from lineage.private import private_dir
from lineage.transport.sink import Headers

__all__ = ["SpoolEntry", "Spool", "SpooledDelivery"]

_HEADER = struct.Struct(">HII")
_HEADERS = struct.Struct(">I")  # the Kafka headers' length, present when the id's length has _WITH_HEADERS
_PAIR = struct.Struct(">HI")  # a header name's length, its value's: Kafka takes values far over 64 KiB
_WITH_HEADERS = 0x8000
_OPTION = "LINEAGE_SPOOL_DIR"


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spooled event: its id, and the key and value to send (personal data: not in ``repr``)."""

    event_id: str
    key: bytes = field(repr=False)
    value: bytes = field(repr=False)
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class SpooledDelivery:
    """The handle of an event that went to the spool instead of the broker: it resolves at once, failed."""

    event_id: str
    topic: str
    reason: str

    def result(self, timeout_s: float | None = None) -> NoReturn:
        """Raise ``DeliveryError``: the broker has not acknowledged it; the spool will send it again."""
        raise DeliveryError(self.event_id, self.topic, f"{self.reason}; kept in the spool to be sent again")


def _encode(entries: Iterable[SpoolEntry]) -> bytes:
    parts: list[bytes] = []
    for e in entries:
        eid = e.event_id.encode("utf-8")
        if not e.headers:
            parts += (_HEADER.pack(len(eid), len(e.key), len(e.value)), eid, e.key, e.value)
            continue
        pairs = [(name.encode("utf-8"), value) for name, value in e.headers]
        if any(len(n) > 0xFFFF for n, _ in pairs):  # a name is a few bytes; this one cannot be sent either
            raise ConfigurationError("headers", "a Kafka header name is over 65,535 bytes")
        headers = b"".join(_PAIR.pack(len(n), len(v)) + n + v for n, v in pairs)
        parts += (_HEADER.pack(len(eid) | _WITH_HEADERS, len(e.key), len(e.value)), _HEADERS.pack(len(headers)),
                  eid, e.key, e.value, headers)  # fmt: skip
    return b"".join(parts)


def _decode(data: bytes) -> list[SpoolEntry]:
    entries = []
    pos, size = 0, len(data)
    while pos + _HEADER.size <= size:
        n_id, n_key, n_value = _HEADER.unpack_from(data, pos)
        k = pos + _HEADER.size  # where the id starts
        n_headers = 0
        if n_id & _WITH_HEADERS:
            if k + _HEADERS.size > size:
                break
            n_id &= ~_WITH_HEADERS
            (n_headers,) = _HEADERS.unpack_from(data, k)
            k += _HEADERS.size
        end = k + n_id + n_key + n_value + n_headers
        if end > size:
            break  # cut short by a crash mid-write: nothing after it was written
        k += n_id  # where the key starts
        v = k + n_key  # where the value starts
        headers = _decode_headers(data[v + n_value : end])
        entries.append(SpoolEntry(data[k - n_id : k].decode("utf-8"), data[k:v], data[v : v + n_value], headers))
        pos = end
    return entries


def _decode_headers(data: bytes) -> Headers:
    pairs: list[tuple[str, bytes]] = []
    pos = 0
    while pos + _PAIR.size <= len(data):
        n_name, n_value = _PAIR.unpack_from(data, pos)
        name_at = pos + _PAIR.size
        value_at = name_at + n_name
        pairs.append((data[name_at:value_at].decode("utf-8"), data[value_at : value_at + n_value]))
        pos = value_at + n_value
    return tuple(pairs)


class Spool:
    """An append-only file of undelivered events, owned by one emitter; read back in the order written."""

    def __init__(self, folder: Path, topic: str) -> None:
        """Open a new spool file for ``topic`` in ``folder`` (created 0700), adopting orphaned ones."""
        self.topic = topic
        try:
            self.folder = private_dir(folder)
        except OSError as exc:
            raise ConfigurationError(_OPTION, f"cannot create {folder}: {exc.strerror}") from None
        self._prefix = re.sub(r"[^A-Za-z0-9._-]", "_", topic) + "."
        self.path = self.folder / f"{self._prefix}{os.getpid()}.{uuid.uuid4().hex[:12]}.spool"
        self._fd = -1  # the file is made on the first append: most emitters never need one
        self._closed = False
        self._ids: list[str] = []  # the ids in the file, in order (the bytes stay on disk, not in memory)
        self._members: set[str] = set()
        self._adopt_orphans()

    @staticmethod
    def _create(path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            os.fchmod(fd, 0o600)  # the umask must not loosen it
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigurationError(_OPTION, f"cannot write {path}: {exc.strerror}") from None
        return fd

    def _adopt_orphans(self) -> None:
        """Take over spool files of this topic that no live emitter holds, oldest first."""
        own = re.compile(re.escape(self._prefix) + r"\d+\.[0-9a-f]{12}\.spool")  # not topic "a.b"'s for "a"
        orphans = sorted(
            (p for p in self.folder.iterdir() if own.fullmatch(p.name) and p != self.path),
            key=lambda p: p.stat().st_mtime,
        )
        for path in orphans:
            try:
                fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)  # a spool is a file of ours, never a link
            except OSError:
                continue  # gone meanwhile: another emitter adopted it
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live emitter owns it
                if not path.exists():
                    continue  # adopted and removed between our glob and our lock
                with open(fd, "rb", closefd=False) as f:
                    entries = _decode(f.read())
                self.append(entries)
                if self._fd >= 0:  # ours is on disk before theirs goes: a crash leaves duplicates, not losses
                    os.fsync(self._fd)
                path.unlink()
            finally:
                os.close(fd)

    def __len__(self) -> int:
        """How many events wait in the spool."""
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        """Whether the event waits in the spool."""
        return event_id in self._members

    @property
    def event_ids(self) -> tuple[str, ...]:
        """The ids of the waiting events, in the order they will be sent."""
        return tuple(self._ids)

    def append(self, entries: Sequence[SpoolEntry]) -> None:
        """Add events at the end, in one write (survives this process crashing, not the machine)."""
        if not entries:
            return
        if self._closed:
            raise ConfigurationError(_OPTION, f"the spool {self.path} is closed")
        if self._fd < 0:
            self._fd = self._create(self.path)
        data = _encode(entries)
        try:
            written = os.write(self._fd, data)
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            raise ConfigurationError(_OPTION, f"cannot write {self.path}: {exc.strerror}") from None
        for e in entries:
            self._ids.append(e.event_id)
            self._members.add(e.event_id)

    def head(self, limit: int) -> list[SpoolEntry]:
        """The first ``limit`` waiting events."""
        if not self._ids:
            return []
        return _decode(os.pread(self._fd, os.fstat(self._fd).st_size, 0))[:limit]

    def drop(self, count: int) -> None:
        """Forget the first ``count`` events (the broker acknowledged them)."""
        if count <= 0:
            return
        dropped, self._ids = self._ids[:count], self._ids[count:]
        self._members.difference_update(dropped)
        if not self._ids:
            os.ftruncate(self._fd, 0)  # kept (and locked) for the next backlog; removed by close()
            return
        # The rest go to a new file before the old one goes, so a crash between the two leaves
        # duplicates, never a loss.
        rest = _decode(os.pread(self._fd, os.fstat(self._fd).st_size, 0))[count:]
        old_path, old_fd = self.path, self._fd
        self.path = self.folder / f"{self._prefix}{os.getpid()}.{uuid.uuid4().hex[:12]}.spool"
        self._fd = self._create(self.path)
        data = _encode(rest)
        os.write(self._fd, data)
        os.fsync(self._fd)
        old_path.unlink()
        os.close(old_fd)

    def close(self) -> None:
        """Release the file: removed if empty, else synced to disk and left for the next emitter."""
        self._closed = True
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            if self._ids:
                os.fsync(fd)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            os.close(fd)
