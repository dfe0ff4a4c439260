"""The built-in login's building blocks: password hashes, the user store, bootstrap, principals,
and the `docent users` commands."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import sqlite3
import stat
from types import SimpleNamespace

import argon2
import pytest

from retrieval.access import read_filter
from ui.auth import UnknownUserError, resolve_principal
from ui.auth.bootstrap import ensure_first_admin, forget_initial_password, initial_admin_file
from ui.auth.passwords import WeakPasswordError, hash_password, verify_password
from ui.auth.principal import split_groups
from ui.auth.users import UserStore, UserStoreError


def test_password_hashes_are_salted_argon2id_and_verify_only_the_right_password():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("$argon2id$v=19$")
    m, t, p = _argon2_params(a)
    assert m >= 19456 and t >= 2 and p >= 1  # at least OWASP's argon2id floor (19 MiB, 2 passes)
    assert verify_password("correct horse", a) and verify_password("correct horse", b)
    assert not verify_password("correct horsE", a)
    assert not verify_password("x", "not-a-hash")


def test_user_store_roles_groups_and_last_admin(settings):
    store = UserStore.from_settings(settings)
    store.add("root", "s3cret-pass", role="admin")
    user = store.add("alice", "alice-pass", groups=["staff", " hr ", "staff"])
    assert user.groups == ["staff", "hr"] and user.role == "employee"
    assert store.authenticate("alice", "alice-pass").username == "alice"
    assert store.authenticate("alice", "wrong-pass") is None
    assert store.authenticate("nobody", "alice-pass") is None
    assert store.get("alice").last_login is not None
    with pytest.raises(UserStoreError, match="already exists"):
        store.add("alice", "another-pass")
    with pytest.raises(WeakPasswordError):
        store.add("carol", "short")
    with pytest.raises(UserStoreError, match="invalid user name"):
        store.add("../etc", "long-enough")
    with pytest.raises(UserStoreError, match="last admin"):
        store.remove("root")
    with pytest.raises(UserStoreError, match="last admin"):
        store.set_role("root", "employee")
    store.set_role("alice", "admin")
    store.remove("root")
    assert [u.username for u in store.list()] == ["alice"]
    assert store.groups() == {"hr": ["alice"], "staff": ["alice"]}


def test_first_admin_bootstrap_writes_a_private_file_once(settings):
    first = ensure_first_admin(settings)
    assert first is not None and first.username == "admin"
    path = initial_admin_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"password: {first.password}" in path.read_text()
    assert UserStore.from_settings(settings).authenticate("admin", first.password).is_admin
    assert ensure_first_admin(settings) is None  # users exist: nothing to do
    forget_initial_password(settings, "someone-else")
    assert path.exists()
    forget_initial_password(settings, "admin")
    assert not path.exists()


def test_no_bootstrap_outside_builtin_mode(tmp_path):
    from tests.conftest import make_settings

    s = make_settings(tmp_path / "d", auth_mode="proxy")
    assert ensure_first_admin(s) is None and not initial_admin_file(s).exists()


def test_resolve_principal_for_cli(settings):
    store = UserStore.from_settings(settings)
    store.add("boss", "boss-password", role="admin", groups=["mgmt"])
    store.add("eve", "eve-password", groups=["finance"])
    boss = resolve_principal(settings, "boss")
    assert boss.is_admin and set(boss.groups) == {"mgmt", settings.admin_group}
    eve = resolve_principal(settings, "eve")
    assert not eve.is_admin and eve.groups == ["finance"]
    with pytest.raises(UnknownUserError, match="docent users add ghost"):
        resolve_principal(settings, "ghost")
    # OIDC/proxy users are not stored: their groups are taken as stated; the admin group makes admins.
    sso = resolve_principal(settings, "sso-user", groups=["staff", settings.admin_group])
    assert sso.is_admin and "staff" in sso.groups
    assert read_filter(eve, _collection(["finance"])) != read_filter(resolve_principal(settings, "x", []),
                                                                      _collection(["finance"]))


def _collection(read):
    from retrieval.catalog import CollectionRecord

    return CollectionRecord(id="c1", name="C", read_groups=read)


def test_split_groups_accepts_lists_and_header_strings():
    assert split_groups(["a", " b ", ""]) == ["a", "b"]
    assert split_groups("a, b,,c") == ["a", "b", "c"]
    assert split_groups("a b") == ["a", "b"]
    assert split_groups(None) == []


def test_users_cli_add_list_passwd_remove(settings, monkeypatch, capsys):
    from ui.cli import user_cmds

    monkeypatch.setenv("DOCENT_DATA_DIR", str(settings.data_dir))
    from ui.cli.main import main

    def run(argv, stdin=""):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return main(argv)

    assert user_cmds  # registered through ui.cli.main
    assert run(["users", "add", "dana", "--groups", "hr,staff", "--password-stdin"], "dana-password\n") == 0
    assert run(["users", "add", "root", "--admin", "--password-stdin"], "root-password\n") == 0
    assert run(["users", "list"]) == 0
    out = capsys.readouterr().out
    assert "dana" in out and "hr,staff" in out and "admin" in out
    assert run(["users", "passwd", "dana", "--password-stdin"], "new-dana-password\n") == 0
    store = UserStore.from_settings(settings)
    assert store.authenticate("dana", "new-dana-password") is not None
    assert run(["users", "add", "weak", "--password-stdin"], "123\n") == 2
    assert "at least 8" in capsys.readouterr().err
    assert run(["users", "remove", "dana"]) == 0
    assert store.find("dana") is None


# --- issue 11, finding 5: login hardening ----------------------------------------------

def _argon2_params(stored: str) -> tuple[int, int, int]:
    fields = dict(kv.split("=") for kv in stored.split("$")[3].split(","))
    return int(fields["m"]), int(fields["t"]), int(fields["p"])


def _legacy_scrypt(password: str) -> str:
    """A hash as Docent stored them before argon2id (scrypt N=2^14, r=8, p=1)."""
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _stored_hash(store: UserStore, name: str) -> str:
    with sqlite3.connect(store.path) as db:
        return db.execute("SELECT password_hash FROM users WHERE username = ?", (name,)).fetchone()[0]


def _put_hash(store: UserStore, name: str, stored: str) -> None:
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE users SET password_hash = ? WHERE username = ?", (stored, name))


def test_legacy_scrypt_and_weaker_argon2_hashes_are_rehashed_at_login(settings):
    store = UserStore.from_settings(settings)
    store.add("old", "old-password")
    _put_hash(store, "old", _legacy_scrypt("old-password"))
    assert store.authenticate("old", "wrong-password") is None
    assert _stored_hash(store, "old").startswith("scrypt$")  # a failed login changes nothing
    assert store.authenticate("old", "old-password") is not None
    upgraded = _stored_hash(store, "old")
    assert upgraded.startswith("$argon2id$") and _argon2_params(upgraded) == _argon2_params(hash_password("x"))
    assert store.authenticate("old", "old-password") is not None and _stored_hash(store, "old") == upgraded

    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("old-password")
    _put_hash(store, "old", weak)
    assert store.authenticate("old", "old-password") is not None
    assert _argon2_params(_stored_hash(store, "old")) == _argon2_params(upgraded)


def test_unknown_user_costs_one_password_check_like_a_known_user(settings, monkeypatch):
    from ui.auth import users as users_module

    store = UserStore.from_settings(settings)
    store.add("alice", "alice-password")
    calls: list[tuple[str, str]] = []
    real_verify, real_hash = users_module.verify_password, users_module.hash_password

    def counting_verify(password, stored):
        calls.append(("verify", stored))
        return real_verify(password, stored)

    def counting_hash(password):
        calls.append(("hash", ""))
        return real_hash(password)

    monkeypatch.setattr(users_module, "verify_password", counting_verify)
    monkeypatch.setattr(users_module, "hash_password", counting_hash)
    assert store.authenticate("alice", "wrong-password") is None
    known, calls[:] = list(calls), []
    assert store.authenticate("nobody", "wrong-password") is None
    unknown = list(calls)
    assert [c[0] for c in known] == [c[0] for c in unknown] == ["verify"]
    # The unknown name is checked against a real argon2id hash of the same cost as a stored one.
    assert unknown[0][1].startswith("$argon2id$") and _argon2_params(unknown[0][1]) == _argon2_params(known[0][1])


class _Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _audit_lines(settings) -> list[dict]:
    return [json.loads(line) for f in sorted((settings.data_dir / "audit").glob("*.jsonl"))
            for line in f.read_text().splitlines()]


def test_login_limiter_locks_an_account_across_sessions_and_audits(settings):
    from assistant.audit import AuditLog
    from ui.auth.limiter import LoginLimiter, attempt_login

    UserStore.from_settings(settings).add("alice", "alice-password")
    UserStore.from_settings(settings).add("bob", "bob-password")
    clock = _Clock()
    # Two browser sessions (or two app processes): each opens its own store and limiter on the same file.
    sessions = [(UserStore.from_settings(settings), LoginLimiter.from_settings(settings, AuditLog.from_settings(settings),
                                                                             clock=clock)) for _ in range(2)]
    for i in range(5):
        users, limiter = sessions[i % 2]
        result = attempt_login(users, limiter, "alice", "wrong-password", ip=f"10.0.0.{i}")
        assert result.user is None and not result.blocked
    users, limiter = sessions[1]
    sixth = attempt_login(users, limiter, "alice", "alice-password", ip="10.0.0.99")
    assert sixth.blocked and sixth.user is None  # the right password does not help while locked
    assert attempt_login(users, limiter, "bob", "bob-password", ip="10.0.0.99").user.username == "bob"
    clock.now += 15 * 60 + 1
    assert attempt_login(*sessions[0], "alice", "alice-password", ip="10.0.0.99").user.username == "alice"

    events = [(r["event"], r["user"]) for r in _audit_lines(settings)]
    assert events.count(("login_failed", "alice")) == 5
    assert events.count(("login_locked", "alice")) == 1 and events.count(("login_blocked", "alice")) == 1
    assert ("login", "bob") in events and ("login", "alice") in events
    assert all("password" not in json.dumps(r) for r in _audit_lines(settings))


def test_login_limiter_caps_failures_per_address(settings):
    from assistant.audit import AuditLog
    from ui.auth.limiter import LoginLimiter, attempt_login

    users = UserStore.from_settings(settings)
    users.add("carol", "carol-password")
    limiter = LoginLimiter.from_settings(settings, AuditLog.from_settings(settings), clock=_Clock())
    for i in range(20):  # spraying: one guess for each of many names, from one address
        assert not attempt_login(users, limiter, f"user{i}", "guess-password", ip="192.0.2.7").blocked
    assert attempt_login(users, limiter, "carol", "carol-password", ip="192.0.2.7").blocked
    assert attempt_login(users, limiter, "carol", "carol-password", ip="192.0.2.8").user.username == "carol"
    assert any(r["event"] == "login_locked" and r["ip"] == "192.0.2.7" for r in _audit_lines(settings))


def test_session_token_outlives_a_reload_but_not_a_password_change(settings):
    from ui.auth.sessions import SessionTokens, session_secret_file

    store = UserStore.from_settings(settings)
    store.add("alice", "alice-password")
    tokens = SessionTokens.from_settings(settings)
    token = tokens.issue(store.get("alice"))
    assert stat.S_IMODE(session_secret_file(settings).stat().st_mode) == 0o600
    # Another process (or the app after a restart) reads the same secret from the data folder.
    assert SessionTokens.from_settings(settings).verify(token, store).username == "alice"
    assert tokens.verify(token[:-3] + "AAA", store) is None
    assert SessionTokens(b"another-secret-another-secret!!", 3600).verify(token, store) is None
    clock = _Clock()
    short = SessionTokens(tokens.secret, max_age_s=60, clock=clock)
    aging = short.issue(store.get("alice"))
    clock.now += 61
    assert short.verify(aging, store) is None

    store.set_password("alice", "new-alice-password")
    assert tokens.verify(token, store) is None  # minted before the change: that session is over
    assert tokens.verify(tokens.issue(store.get("alice")), store).username == "alice"
    store.remove("alice")
    assert tokens.verify(token, store) is None


def test_builtin_login_is_restored_from_the_cookie_until_the_password_changes(settings, monkeypatch):
    from ui.auth import login
    from ui.auth.sessions import COOKIE, SessionTokens

    store = UserStore.from_settings(settings)
    store.add("alice", "alice-password", groups=["staff"])
    token = SessionTokens.from_settings(settings).issue(store.get("alice"))

    def reload_page():  # a new browser session: empty session state, the cookie sent with the request
        fake = SimpleNamespace(session_state={}, context=SimpleNamespace(cookies={COOKIE: token}),
                               html=lambda *a, **k: None, sidebar=contextlib.nullcontext())
        monkeypatch.setattr(login, "st", fake)
        return login.current_principal(settings, store)

    assert reload_page().user == "alice"
    store.set_password("alice", "new-alice-password")
    assert reload_page() is None


def _oidc(monkeypatch, settings, claims):
    from ui.auth import login

    fake = SimpleNamespace(user=SimpleNamespace(is_logged_in=True, to_dict=lambda: dict(claims)))
    monkeypatch.setattr(login, "st", fake)
    return login.current_principal(settings, users=None)


def test_oidc_needs_a_verified_email_and_takes_the_admin_group_from_settings(tmp_path, monkeypatch):
    from tests.conftest import make_settings

    s = make_settings(tmp_path / "d", auth_mode="oidc", admin_group="docent-admins")
    boss = {"email": "boss@example.com", "groups": ["docent-admins", "staff"]}
    assert _oidc(monkeypatch, s, {**boss, "email_verified": False}) is None
    assert _oidc(monkeypatch, s, {**boss, "email_verified": "false"}) is None
    assert _oidc(monkeypatch, s, boss) is None  # no claim that the address was verified
    ok = _oidc(monkeypatch, s, {**boss, "email_verified": True})
    assert ok.user == "boss@example.com" and ok.is_admin and "staff" in ok.groups
    # The literal name "admins" means nothing once another admin group is configured.
    plain = _oidc(monkeypatch, s, {"email": "eve@example.com", "email_verified": "true", "groups": "admins"})
    assert plain.user == "eve@example.com" and not plain.is_admin
    # No e-mail claim: the provider's user name, then its subject, as before.
    assert _oidc(monkeypatch, s, {"sub": "u-123", "preferred_username": "dan"}).user == "dan"
    assert _oidc(monkeypatch, s, {"sub": "u-123"}).user == "u-123"
