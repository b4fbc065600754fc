"""Local accounts: roles, Argon2id password hashes, lockout after failed sign-ins, API tokens hashed at rest."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from lineage.console.db import ConsoleDB, Tx
from lineage.console.limits import NAME_CHARS
from lineage.errors import LineageError
from lineage.tokens import new_token, token_hash

__all__ = [
    "ROLES",
    "Account",
    "AccountError",
    "Accounts",
    "SignInRefused",
]

#: what each role may open; checked on the server for every page and API route
ROLES = ("analyst", "responder", "auditor", "admin")
_NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
MIN_PASSWORD = 12
#: failures allowed before the account locks; each failure past them doubles the lock, up to the cap
FREE_FAILURES = 5
_FIRST_LOCK_S = 30.0
_MAX_LOCK_S = 15 * 60.0
# a name's count is forgotten a day after its last attempt (well past the longest lock)
_FORGET_S = 24 * 3600.0
# argon2-cffi's defaults (RFC 9106's second recommendation): Argon2id, 64 MiB, 3 passes
_HASHER = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs what a wrong password does
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


class AccountError(LineageError):
    """An account operation was refused (unknown name, bad role, weak password...)."""


class SignInRefused(LineageError):
    """A sign-in failed; the message never says whether the name exists."""


@dataclass(frozen=True, slots=True)
class Account:
    """A signed-in or token-bearing user."""

    name: str
    role: str
    must_change: bool = False


class Accounts:
    """Users, their passwords and tokens in the console database."""

    def __init__(self, db: ConsoleDB) -> None:
        """Use ``db``'s tables."""
        self.db = db

    def add(self, name: str, role: str, password: str | None = None) -> str:
        """Create an account; returns its password (a new one-time password unless one is given)."""
        check_name(name)
        if role not in ROLES:
            raise AccountError(f"role: must be one of {', '.join(ROLES)}")
        one_time = password is None
        password = password if password is not None else secrets.token_urlsafe(15)
        check_password(password)
        with self.db.tx() as tx:
            if tx.one("SELECT name FROM console_users WHERE name = :name", {"name": name}):
                raise AccountError(f"name: an account {name!r} exists already")
            tx.run(
                "INSERT INTO console_users (name, role, password_hash, must_change, created_at) "
                "VALUES (:name, :role, :hash, :must, :now)",
                {"name": name, "role": role, "hash": _HASHER.hash(password), "must": int(one_time), "now": time.time()},
            )
        return password

    def listing(self) -> list[dict[str, object]]:
        """Every account with its role, state and live token count (never a hash)."""
        with self.db.tx() as tx:
            return tx.rows(
                "SELECT u.name, u.role, u.disabled, u.must_change, coalesce(s.failures, 0) AS failures, "
                "coalesce(s.locked_until, 0) AS locked_until, "
                "(SELECT count(*) FROM console_tokens t WHERE t.name = u.name AND t.revoked_at IS NULL) AS tokens "
                "FROM console_users u LEFT JOIN console_signins s ON s.name = u.name ORDER BY u.name"
            )

    def sign_in(self, name: str, password: str) -> Account:
        """The account if the password is right and it is neither locked nor disabled; else ``SignInRefused``.

        A known name and an unknown one answer alike: attempts are counted per name whether an
        account has it or not (so both lock), and a wrong name costs an Argon2 verify as a wrong
        password does; the refusal never says which it was.
        """
        now = time.time()
        with self.db.tx() as tx:
            locked_until = _count_attempt(tx, name[:NAME_CHARS], now)
            row = tx.one("SELECT * FROM console_users WHERE name = :name", {"name": name})
        if locked_until > now:
            raise SignInRefused(f"too many failed sign-ins: try again in {int(locked_until - now) + 1} s")
        right = _verify(_DUMMY if row is None else row["password_hash"], password)
        if row is None or not right or row["disabled"]:
            raise SignInRefused("wrong name or password")
        with self.db.tx() as tx:
            tx.run("DELETE FROM console_signins WHERE name = :name", {"name": name})
            if _HASHER.check_needs_rehash(row["password_hash"]):
                tx.run(
                    "UPDATE console_users SET password_hash = :h WHERE name = :name",
                    {"h": _HASHER.hash(password), "name": name},
                )
        return Account(row["name"], row["role"], bool(row["must_change"]))

    def get(self, name: str) -> Account | None:
        """An enabled account by name."""
        with self.db.tx() as tx:
            row = tx.one(
                "SELECT name, role, must_change FROM console_users WHERE name = :n AND disabled = 0", {"n": name}
            )
        return None if row is None else Account(row["name"], row["role"], bool(row["must_change"]))

    def change_password(self, name: str, old: str, new: str) -> int:
        """Replace a password after checking the old one (ends the one-time password); how many sessions ended.

        Every session of the account ends with the old password (whoever else held one is signed
        out; the caller starts a fresh one for the user who changed it). API tokens are kept: they
        are not derived from the password, and automation would break silently; an admin revokes
        them (``lineage users revoke``) when they may be compromised too.
        """
        self.sign_in(name, old)
        check_password(new)
        if new == old:
            raise AccountError("password: the new password must differ from the old one")
        with self.db.tx() as tx:
            tx.run(
                "UPDATE console_users SET password_hash = :h, must_change = 0 WHERE name = :n",
                {"h": _HASHER.hash(new), "n": name},
            )
            return tx.run("DELETE FROM console_sessions WHERE name = :n", {"n": name})

    def reset_password(self, name: str) -> tuple[str, int]:
        """An admin's reset: a new one-time password (changed at next sign-in); (it, how many sessions ended).

        Like a change, it ends every session of the account and keeps its API tokens.
        """
        password = secrets.token_urlsafe(15)
        with self.db.tx() as tx:
            if not tx.run(
                "UPDATE console_users SET password_hash = :h, must_change = 1 WHERE name = :n",
                {"h": _HASHER.hash(password), "n": name},
            ):
                raise AccountError(f"name: no account {name!r}")
            return password, tx.run("DELETE FROM console_sessions WHERE name = :n", {"n": name})

    def set_disabled(self, name: str, disabled: bool, *, by: str | None = None) -> None:
        """Disable or enable an account; disabling also revokes its tokens and ends its sessions.

        ``by`` (the admin doing it; None from the command line) may not disable herself, and nobody
        may disable the last enabled admin: either would leave the console with no one to manage it.
        """
        if disabled and name == by:
            raise AccountError("name: you cannot disable your own account (another admin can)")
        with self.db.tx() as tx:
            if self.db.kind == "postgresql":  # SQLite serialises writers; PostgreSQL needs the admins' rows locked
                tx.rows("SELECT name FROM console_users WHERE role = 'admin' FOR UPDATE")
            # one statement checks and changes, so two admins disabling each other cannot both succeed
            changed = tx.run(
                "UPDATE console_users SET disabled = :d WHERE name = :n AND (:d = 0 OR role <> 'admin' OR (SELECT "
                "count(*) FROM console_users o WHERE o.role = 'admin' AND o.disabled = 0 AND o.name <> :n) > 0)",
                {"d": int(disabled), "n": name},
            )
            if not changed:
                known = tx.one("SELECT name FROM console_users WHERE name = :n", {"n": name})
                raise AccountError(
                    "name: the last enabled admin cannot be disabled (add another admin first)"
                    if known
                    else f"name: no account {name!r}"
                )
            if disabled:
                tx.run(
                    "UPDATE console_tokens SET revoked_at = :now WHERE name = :n AND revoked_at IS NULL",
                    {"now": time.time(), "n": name},
                )
                tx.run("DELETE FROM console_sessions WHERE name = :n", {"n": name})

    def new_token(self, name: str) -> tuple[str, str]:
        """A new API token for an account: (its id, the token, shown once and stored only as a hash)."""
        if self.get(name) is None:
            raise AccountError(f"name: no enabled account {name!r}")
        token_id = secrets.token_hex(4)
        token = new_token()
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO console_tokens (id, name, token_hash, created_at) VALUES (:id, :n, :h, :now)",
                {"id": token_id, "n": name, "h": token_hash(token), "now": time.time()},
            )
        return token_id, token

    def revoke(self, name: str, token_id: str | None = None) -> int:
        """Revoke one token of an account, or all of them; how many were revoked."""
        sql = "UPDATE console_tokens SET revoked_at = :now WHERE name = :n AND revoked_at IS NULL"
        params: dict[str, object] = {"now": time.time(), "n": name}
        if token_id is not None:
            sql += " AND id = :id"
            params["id"] = token_id
        with self.db.tx() as tx:
            return tx.run(sql, params)

    def tokens(self, name: str) -> list[dict[str, object]]:
        """An account's tokens: id, created, revoked (never the hash)."""
        with self.db.tx() as tx:
            return tx.rows(
                "SELECT id, created_at, revoked_at FROM console_tokens WHERE name = :n ORDER BY created_at", {"n": name}
            )

    def by_token(self, token: str) -> Account | None:
        """The enabled account a live token belongs to."""
        with self.db.tx() as tx:
            row = tx.one(
                "SELECT u.name, u.role FROM console_tokens t JOIN console_users u ON u.name = t.name "
                "WHERE t.token_hash = :h AND t.revoked_at IS NULL AND u.disabled = 0",
                {"h": token_hash(token)},
            )
        return None if row is None else Account(row["name"], row["role"])


def check_name(name: str) -> None:
    """Refuse an account name outside lower-case letters, digits and ``. _ -``."""
    if not _NAME.fullmatch(name):
        raise AccountError("name: must be 1 to 64 of a-z 0-9 . _ - starting with a letter")


def check_password(password: str) -> None:
    """Refuse a password too short to resist guessing (never echoing it)."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: must be at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("password: must be at most 1024 characters")


def _count_attempt(tx: Tx, name: str, now: float) -> float:
    """Count an attempt on ``name`` as a failure before the (slow) password check; when it is locked until.

    Counted in one transaction with the read, so attempts made at once each see their own count and
    the lock cannot be outrun by sending guesses in parallel (a read-check-write let 30 through).
    A name no account has is counted too: otherwise only real names would ever lock, telling them apart.
    """
    tx.run("DELETE FROM console_signins WHERE last_at < :old", {"old": now - _FORGET_S})
    tx.run(
        "INSERT INTO console_signins (name, failures, locked_until, last_at) VALUES (:name, 0, 0, :now) "
        "ON CONFLICT (name) DO NOTHING",
        {"name": name, "now": now},
    )
    tx.run(
        "UPDATE console_signins SET failures = failures + 1, last_at = :now "
        "WHERE name = :name AND locked_until <= :now",
        {"name": name, "now": now},
    )
    row = tx.one("SELECT failures, locked_until FROM console_signins WHERE name = :name", {"name": name})
    assert row is not None
    locked_until = float(row["locked_until"])
    extra = row["failures"] - FREE_FAILURES
    if locked_until <= now and extra > 0:  # this attempt is the last before the lock: later ones wait it out
        lock = now + min(_FIRST_LOCK_S * 2 ** (extra - 1), _MAX_LOCK_S)
        tx.run("UPDATE console_signins SET locked_until = :lock WHERE name = :name", {"lock": lock, "name": name})
    return locked_until


def _verify(hashed: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(hashed, password))
    except (VerificationError, InvalidHashError):
        return False
