"""API tokens: 256 random bits, shown once, stored as their SHA-256.

A fast hash is right here (unlike passwords): the secret has 256 bits of
entropy, so no dictionary or brute force applies, and every request can be
checked with one indexed lookup. Digests are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_PREFIX = "tt_"
_TOKEN = re.compile(r"^tt_[A-Za-z0-9_-]{43}$")
DISPLAY_PREFIX_LENGTH = 10  # "tt_" and 7 characters: enough to recognise, useless to guess


def new_token() -> str:
    """A fresh secret: ``tt_`` and 43 URL-safe characters (32 random bytes)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_token(secret: str) -> bool:
    return bool(_TOKEN.match(secret))


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_PREFIX_LENGTH]
