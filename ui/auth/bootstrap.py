"""First start of the built-in login: create an admin with a random password and say how to log in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from retrieval.settings import Settings
from ui.auth.passwords import random_password
from ui.auth.users import UserStore

FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class FirstAdmin:
    username: str
    password: str
    file: Path

    def instructions(self, url: str | None = None) -> str:
        where = f"Open {url} and log in" if url else "Log in"
        return (f"Docent created the first admin. {where} as '{self.username}' with the password in "
                f"{self.file} (change it on the Users page or with `docent users passwd {self.username}`).")


def initial_admin_file(settings: Settings) -> Path:
    return settings.data_dir / "initial-admin.txt"


def ensure_first_admin(settings: Settings, store: UserStore | None = None) -> FirstAdmin | None:
    """Create the first admin when the built-in store is empty; None when there is nothing to do."""
    if settings.auth_mode != "builtin":
        return None
    store = store or UserStore.from_settings(settings)
    if store.count():
        return None
    password = random_password()
    store.add(FIRST_ADMIN, password, role="admin")
    path = initial_admin_file(settings)
    # Written 0600 before the secret goes in: the password never sits in a readable file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"user: {FIRST_ADMIN}\npassword: {password}\n"
                 "Change this password after the first login; this file is removed when you do.\n")
    return FirstAdmin(FIRST_ADMIN, password, path)


def forget_initial_password(settings: Settings, username: str) -> None:
    """The bootstrap password is stale once its user chose another one."""
    path = initial_admin_file(settings)
    try:
        if path.read_text(encoding="utf-8").startswith(f"user: {username}\n"):
            path.unlink()
    except OSError:
        pass
