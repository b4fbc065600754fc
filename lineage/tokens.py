"""Bearer tokens: made at random, shown once, kept only as a digest (console API tokens, gateway service tokens)."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["new_token", "token_hash"]


def new_token() -> str:
    """A new bearer token: 256 random bits behind a ``lin_`` prefix (so a leaked one is recognisable)."""
    return "lin_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """A token's digest as stored: tokens are 256 random bits, so a fast hash keeps them safe at rest."""
    return hashlib.sha256(token.encode()).hexdigest()
