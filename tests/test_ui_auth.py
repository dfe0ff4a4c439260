"""The built-in login's building blocks: password hashes, the user store, bootstrap, principals,
and the `docent users` commands."""

from __future__ import annotations

import io
import stat

import pytest

from retrieval.access import read_filter
from ui.auth import UnknownUserError, resolve_principal
from ui.auth.bootstrap import ensure_first_admin, forget_initial_password, initial_admin_file
from ui.auth.passwords import WeakPasswordError, hash_password, verify_password
from ui.auth.principal import split_groups
from ui.auth.users import UserStore, UserStoreError


def test_password_hashes_are_salted_and_verify_only_the_right_password():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
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
