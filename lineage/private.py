"""Files and folders that hold personal data or facts about people: readable by their owner only.

``os.open(..., 0o600)`` only sets the mode of a file it creates; a file that already existed keeps
its mode, so ``open_private`` also sets it on the open descriptor before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Literal, overload

from lineage.errors import ConfigurationError

__all__ = ["open_private", "private_dir"]


@overload
def open_private(path: Path | str, option: str, mode: Literal["w"] = "w", newline: str | None = None) -> IO[str]: ...
@overload
def open_private(path: Path | str, option: str, mode: Literal["wb"], newline: None = None) -> IO[bytes]: ...


def open_private(path: Path | str, option: str, mode: str = "w", newline: str | None = None) -> IO[str] | IO[bytes]:
    """Open ``path`` for writing, mode 0600; a failure names ``option`` (the setting that gave the path)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
    except OSError as exc:
        raise ConfigurationError(option, f"cannot write {path}: {exc.strerror}") from None
    if mode == "wb":
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline=newline)


def private_dir(folder: Path) -> Path:
    """Create ``folder`` and any missing parent as 0700: the store is personal data.

    ``mkdir(parents=True, mode=...)`` would apply the mode to the last folder only.
    """
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        p.mkdir(mode=0o700, exist_ok=True)
        os.chmod(p, 0o700)  # the umask must not loosen it
    return folder
