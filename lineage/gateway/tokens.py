"""Service tokens: who may send events to the gateway, and as which systems.

A token is made by ``lineage gateway token add NAME --system S...``, shown once, and kept only as
its SHA-256 digest (``lineage.tokens``, as the console keeps its API tokens) in a private JSON file
(0600, written fresh and renamed into place, never through a symlink). The gateway reads the file
again whenever it changes, so a token added or revoked takes effect without a restart. A file others
could write is refused (whoever writes it could grant themselves a token), and so is one others could
read: it names every service and its systems, and our files are private.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lineage.errors import ConfigurationError, LineageError
from lineage.private import open_private
from lineage.tokens import new_token, token_hash

__all__ = ["ServiceToken", "ServiceTokens", "TokenError"]

_OPTION = "--tokens"
_NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
_SYSTEM_CHARS = 200


class TokenError(LineageError):
    """A token operation was refused (bad name, no such token...)."""


@dataclass(frozen=True, slots=True)
class ServiceToken:
    """A live token: its id, the service's name, and the systems it may emit as."""

    id: str
    name: str
    systems: frozenset[str]


class ServiceTokens:
    """The token file: add, revoke and list tokens; find the live token a bearer presents."""

    def __init__(self, path: Path) -> None:
        """Use the token file at ``path`` (created on the first ``add``)."""
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime) of the file last read
        self._live: dict[str, ServiceToken] = {}  # digest -> token

    # -- the command line's side -------------------------------------------------------------

    def add(self, name: str, systems: list[str]) -> tuple[str, str]:
        """A new token for service ``name`` scoped to ``systems``: (its id, the token, shown once)."""
        if not _NAME.fullmatch(name):
            raise TokenError("name: must be 1 to 64 of a-z 0-9 . _ - starting with a letter")
        if not systems:
            raise TokenError("--system: name at least one system the token may emit as")
        for system in systems:
            if not system.strip() or len(system) > _SYSTEM_CHARS or not system.isprintable():
                raise TokenError(f"--system: must be printable text of 1 to {_SYSTEM_CHARS} characters")
        token = new_token()
        entries = self._entries()
        token_id = os.urandom(4).hex()
        entries.append({"id": token_id, "name": name, "hash": token_hash(token), "systems": sorted(set(systems)),
                        "created_at": time.time(), "revoked_at": None})  # fmt: skip
        self._write(entries)
        return token_id, token

    def revoke(self, name: str, token_id: str | None = None) -> int:
        """Revoke one token of service ``name``, or all of them; how many were revoked."""
        entries = self._entries()
        revoked = 0
        for e in entries:
            if e["name"] == name and e["revoked_at"] is None and token_id in (None, e["id"]):
                e["revoked_at"] = time.time()
                revoked += 1
        if revoked:
            self._write(entries)
        return revoked

    def listing(self) -> list[dict[str, Any]]:
        """Every token: id, name, systems, created, revoked (never the digest)."""
        return [{k: v for k, v in e.items() if k != "hash"} for e in self._entries()]

    # -- the gateway's side ------------------------------------------------------------------

    def find(self, token: str) -> ServiceToken | None:
        """The live token ``token`` is, reading the file again if it changed since last time."""
        with self._lock:
            self._refresh()
            return self._live.get(token_hash(token))

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._live = None, {}
            return
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            self._live = {
                e["hash"]: ServiceToken(e["id"], e["name"], frozenset(e["systems"]))
                for e in self._entries()
                if e["revoked_at"] is None
            }
            self._seen = seen

    # -- the file ----------------------------------------------------------------------------

    def _entries(self) -> list[dict[str, Any]]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigurationError(_OPTION, f"cannot read {self.path}: {exc.strerror}") from None
        with open(fd, encoding="utf-8") as f:
            st = os.fstat(f.fileno())
            # others may not write it (they could grant themselves a token), nor read it: the store's files are private
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
                raise ConfigurationError(
                    _OPTION, f"{self.path} must be a regular file of this user that no one else can read or write "
                    "(chmod 600)",
                )
            try:
                data = json.load(f)
                entries: list[dict[str, Any]] = data["tokens"]
                for e in entries:
                    _ = (e["id"], e["name"], e["hash"], e["systems"], e["revoked_at"])
            except (ValueError, KeyError, TypeError):
                raise ConfigurationError(_OPTION, f"{self.path} is not a token file") from None
        return entries

    def _write(self, entries: list[dict[str, Any]]) -> None:
        with open_private(self.path, _OPTION) as f:
            json.dump({"tokens": entries}, f, indent=1)
            f.write("\n")
