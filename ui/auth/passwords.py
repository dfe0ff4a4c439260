"""Password hashes: argon2id through ``argon2-cffi``, with the old scrypt hashes still accepted.

New hashes use argon2-cffi's default profile (RFC 9106 "low memory": 64 MiB, 3 passes, 4 lanes),
in the PHC string format that carries its parameters. Hashes made before argon2id
(``scrypt$n$r$p$salt$hash``) verify until their user's next successful login, when the store
rehashes them (``needs_rehash``); an argon2 hash with parameters weaker than today's is
rehashed the same way, so raising the cost later needs no migration.

``verify_dummy`` checks a password against a hash nobody knows the password of, at the same
cost as a real check: an unknown user name then takes as long as a known one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_CHARS = 8
_HASHER = PasswordHasher()  # argon2id; parameters in the hash, so old ones keep verifying
_LEGACY = "scrypt$"


class WeakPasswordError(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPasswordError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith(_LEGACY):
        return _verify_legacy_scrypt(password, stored)
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
        return False


def needs_rehash(stored: str) -> bool:
    """A legacy scrypt hash, or an argon2 hash made with weaker parameters than today's."""
    if stored.startswith(_LEGACY):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


# A hash of a random password that was thrown away. Kept as text so that no process pays for
# making one at its first unknown name (which would make that first answer slower than the rest).
_DUMMY = "$argon2id$v=19$m=65536,t=3,p=4$eXpSGHtlSpUmBXtDiJ4ESg$p5qpjWMheLE8iy3YrE1HOgdbpoPaXKDgLYN1hyzlm8Y"


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash nobody knows the password of, at today's cost (made afresh if the cost was raised)."""
    return hash_password(secrets.token_urlsafe(32)) if _HASHER.check_needs_rehash(_DUMMY) else _DUMMY


def _verify_legacy_scrypt(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def random_password() -> str:
    """A password a person can type from the bootstrap file (~96 bits)."""
    return secrets.token_urlsafe(12)
