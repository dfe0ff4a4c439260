"""``docent users …``: the built-in login's users (add, list, passwd, remove, update)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from retrieval.settings import Settings
from ui.auth.users import ROLES, clean_groups
from ui.cli.usage_errors import usage_errors
from ui.usecases import LOCAL_ADMIN, Docent
from ui.usecases.errors import UserStoreError


def _groups(text: str | None) -> list[str] | None:
    return None if text is None else clean_groups(text.split(","))


def register(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="manage the built-in login's users")
    usub = users.add_subparsers(dest="action", required=True)
    p = usub.add_parser("add", help="add a user (asks for the password, or reads it with --password-stdin)")
    p.add_argument("name")
    p.add_argument("--role", choices=ROLES, default="employee")
    p.add_argument("--admin", action="store_true", help="same as --role admin")
    p.add_argument("--groups", default="", help="comma-separated groups")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=users_add)
    p = usub.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=users_list)
    p = usub.add_parser("passwd", help="set a user's password")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=users_passwd)
    p = usub.add_parser("remove")
    p.add_argument("name")
    p.set_defaults(func=users_remove)
    p = usub.add_parser("update", help="change a user's role or groups")
    p.add_argument("name")
    p.add_argument("--role", choices=ROLES)
    p.add_argument("--groups", help="comma-separated groups (replaces the current ones)")
    p.set_defaults(func=users_update)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise UserStoreError("the passwords differ")
    return first


_guarded = usage_errors(UserStoreError, ValueError)


@_guarded
def users_add(settings: Settings, args) -> int:
    role = "admin" if args.admin else args.role
    user = Docent.from_settings(settings).add_user(LOCAL_ADMIN, args.name, _password(args), role, _groups(args.groups))
    print(f"added {user.username} ({user.role}{'; groups ' + ','.join(user.groups) if user.groups else ''})")
    return 0


@_guarded
def users_list(settings: Settings, args) -> int:
    users = Docent.from_settings(settings).list_users(LOCAL_ADMIN)
    if args.json:
        print(json.dumps([u.model_dump() for u in users], ensure_ascii=False))
        return 0
    if not users:
        print("No users yet. `docent ui` creates the first admin; add others with `docent users add NAME`.")
    for u in users:
        print(f"{u.username:<24} {u.role:<9} {','.join(u.groups) or '-'}")
    return 0


@_guarded
def users_passwd(settings: Settings, args) -> int:
    Docent.from_settings(settings).set_user_password(LOCAL_ADMIN, args.name, _password(args))
    print(f"password of {args.name} changed")
    return 0


@_guarded
def users_remove(settings: Settings, args) -> int:
    user = Docent.from_settings(settings).remove_user(LOCAL_ADMIN, args.name)
    print(f"removed {user.username}")
    return 0


@_guarded
def users_update(settings: Settings, args) -> int:
    groups = None if args.groups is None else _groups(args.groups) or []
    u = Docent.from_settings(settings).update_user(LOCAL_ADMIN, args.name, args.role or None, groups)
    print(f"{u.username}: {u.role}; groups {','.join(u.groups) or '-'}")
    return 0
