"""Files and folders that hold personal data or facts about people: readable by their owner only.

Every output lineage writes goes through ``open_private``, which never opens the target itself:

- it writes a new file beside the target, created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode
  0600 (so no one else's file, and no file a symlink points at, is ever opened or chmod-ed);
- on a clean close it flushes, fsyncs and ``os.replace``-s it onto the target: a rename replaces a
  symlink itself instead of following it, and a reader sees the old file or the whole new one;
- it refuses, with one line naming the option, a target that is a symlink, not a regular file, or
  a file owned by another user (whose owner could read what we would put in it);
- if the writing fails, the new file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import IO, AnyStr, Generic, Literal, overload

from lineage.errors import ConfigurationError
from lineage.process import ProcessWide

__all__ = ["PrivateFile", "fsync_dir", "open_private", "private_dir", "private_files"]


class PrivateFile(Generic[AnyStr]):
    """A private output being written: ``with`` it (or ``close()`` it) to put it in place atomically.

    ``with open_private(...) as f`` gives the underlying file object; leaving the block with an
    exception discards what was written and leaves the target untouched.
    """

    def __init__(self, target: Path, temp: Path, file: IO[AnyStr], option: str) -> None:
        """Own ``file`` (open on ``temp``), to be renamed onto ``target`` when closed."""
        self.target = target
        self.option = option
        self._temp = temp
        self._file: IO[AnyStr] = file
        self._done = False

    def write(self, data: AnyStr) -> int:
        """Write to the new file."""
        return self._file.write(data)

    def close(self) -> None:
        """Flush, fsync and move the new file onto the target (once)."""
        if self._done:
            return
        self._done = True
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            _refuse_foreign(self.target, self.option)  # it may have appeared while we wrote
            os.replace(self._temp, self.target)
        except BaseException as exc:
            self._discard()
            if isinstance(exc, OSError):
                raise ConfigurationError(self.option, f"cannot write {self.target}: {exc.strerror}") from None
            raise
        fsync_dir(self.target.parent)

    def discard(self) -> None:
        """Drop what was written; the target stays as it was."""
        if not self._done:
            self._done = True
            self._discard()

    def _discard(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # already failing: the removal below matters more
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> IO[AnyStr]:
        """The file object to write to."""
        return self._file

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Put the file in place, or discard it when the block failed."""
        if exc is None:
            self.close()
        else:
            self.discard()


@overload
def open_private(
    path: Path | str, option: str, mode: Literal["w"] = "w", newline: str | None = None
) -> PrivateFile[str]: ...
@overload
def open_private(path: Path | str, option: str, mode: Literal["wb"], newline: None = None) -> PrivateFile[bytes]: ...


def open_private(
    path: Path | str, option: str, mode: str = "w", newline: str | None = None
) -> PrivateFile[str] | PrivateFile[bytes]:
    """Start writing a fresh private (0600) ``path``; a failure names ``option`` (the setting that gave it)."""
    target = Path(path)
    _refuse_foreign(target, option)
    # a name no one can have prepared: random, and O_EXCL refuses anything already there
    temp = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temp, flags, 0o600)
    except OSError as exc:
        raise ConfigurationError(option, f"cannot write {target}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # the umask cannot widen it, but be explicit about what we promise
        if mode == "wb":
            return PrivateFile(target, temp, os.fdopen(fd, "wb"), option)
        return PrivateFile(target, temp, os.fdopen(fd, "w", encoding="utf-8", newline=newline), option)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise


def _refuse_foreign(target: Path, option: str) -> None:
    """Refuse a target that is a symlink, not a regular file, or another user's file."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigurationError(option, f"cannot write {target}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise ConfigurationError(option, f"{target} is a symbolic link; name a new file (links are never followed)")
    if stat.S_ISDIR(st.st_mode):
        raise ConfigurationError(option, f"{target} is a folder; name a file")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigurationError(option, f"{target} is not a regular file; name a new file")
    if st.st_uid != os.geteuid():
        raise ConfigurationError(option, f"{target} belongs to another user; name a new file")


def fsync_dir(folder: Path | str) -> None:
    """Make a rename or link in ``folder`` durable; a file system that cannot fsync a folder is no error here."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def private_dir(folder: Path, option: str = "store_dir") -> Path:
    """Create ``folder`` and any missing parent as 0700: the store is personal data.

    ``mkdir(parents=True, mode=...)`` would apply the mode to the last folder only. A folder that
    cannot be made (read-only parent, a file in the way) fails as one line naming ``option``.
    """
    missing = []
    p = folder
    try:
        while not p.exists():
            missing.append(p)
            p = p.parent
        for p in reversed(missing):
            p.mkdir(mode=0o700, exist_ok=True)
            # the umask must not loosen it; chmod through a descriptor opened without following a
            # symlink, so a link swapped in after mkdir cannot redirect the chmod to another folder
            fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                os.fchmod(fd, 0o700)
            finally:
                os.close(fd)
    except OSError as exc:
        raise ConfigurationError(option, f"cannot create folder {p}: {exc.strerror}") from None
    if not folder.is_dir():
        raise ConfigurationError(option, f"{folder} is not a folder")
    return folder


def private_files() -> AbstractContextManager[None]:
    """Create files 0600 and folders 0700 inside the block, whoever creates them (pyarrow, SQLite).

    The libraries writing the store's files take no mode argument: they follow the umask. The umask
    is process-wide, so another thread creating a file meanwhile gets a private one too, which is
    only stricter than it asked for. Blocks of several threads overlap: the first to enter saves
    the umask and the last to leave restores it (each restoring its own, a thread leaving first put
    back the loose umask while another still wrote the store's files).
    """
    return _PRIVATE_UMASK.held()


_PRIVATE_UMASK = ProcessWide(lambda: os.umask(0o077), os.umask)
