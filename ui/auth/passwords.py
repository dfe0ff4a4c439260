"""Salted password hashes with the standard library's scrypt (memory-hard, no extra dependency).

Stored as ``scrypt$n$r$p$salt$hash`` (base64) so the cost can be raised later without
invalidating old hashes: each hash carries the parameters it was made with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_DKLEN = 32
MIN_PASSWORD_CHARS = 8


class WeakPasswordError(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPasswordError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def random_password() -> str:
    """A password a person can type from the bootstrap file (~96 bits)."""
    return secrets.token_urlsafe(12)
