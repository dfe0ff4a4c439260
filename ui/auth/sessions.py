"""Signed session tokens for the built-in login, so a browser reload keeps the user logged in.

A token is ``{user, epoch, issued-at}`` signed with itsdangerous (HMAC-SHA256 over a key derived
from a 256-bit secret kept 0600 in the data folder, shared by every app process). It is valid
while it is younger than ``session_max_age_s`` and its epoch equals the user's stored
``session_epoch``: a password change raises the epoch, so every token issued before it, in
any browser, stops working. The token lives in the session state and in a browser cookie
(see ui/auth/login.py for how the cookie is written).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path
from typing import Callable

from itsdangerous import BadSignature, URLSafeSerializer

from retrieval.settings import Settings
from ui.auth.users import UserRecord, UserStore

COOKIE = "docent_session"
_SALT = "docent.session.v1"
_CLOCK_SKEW_S = 60  # tokens from another app host whose clock runs a little ahead


def session_secret_file(settings: Settings) -> Path:
    return settings.data_dir / "session-secret"


def session_secret(settings: Settings) -> bytes:
    """The signing secret, made on first use; O_EXCL so two processes starting at once agree on one."""
    path = session_secret_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the process that created it may still be writing
            secret = path.read_text(encoding="ascii").strip()
            if secret:
                return secret.encode("ascii")
            time.sleep(0.1)
        raise RuntimeError(f"{path} is empty: remove it and restart Docent (this logs everyone out)")
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret + "\n")
    return secret.encode("ascii")


class SessionTokens:
    def __init__(self, secret: bytes, max_age_s: float, clock: Callable[[], float] = time.time):
        self.secret, self.max_age_s, self.clock = secret, max_age_s, clock
        self._serializer = URLSafeSerializer(secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})

    @classmethod
    def from_settings(cls, settings: Settings) -> "SessionTokens":
        return cls(session_secret(settings), settings.session_max_age_s)

    def issue(self, user: UserRecord) -> str:
        return self._serializer.dumps({"u": user.username, "e": user.session_epoch, "t": int(self.clock())})

    def verify(self, token: str, users: UserStore) -> UserRecord | None:
        """The user the token was issued to, or None: bad signature, too old, user gone, password changed."""
        try:
            data = self._serializer.loads(token)
            name, epoch, issued = str(data["u"]), int(data["e"]), float(data["t"])
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        if not -_CLOCK_SKEW_S <= self.clock() - issued <= self.max_age_s:
            return None
        user = users.find(name)
        return user if user is not None and user.session_epoch == epoch else None
