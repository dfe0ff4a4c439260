"""``docent users …``: the built-in login's users (add, list, passwd, remove, update)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from ingest.report import EXIT_USAGE
from retrieval.settings import Settings
from ui.auth.bootstrap import forget_initial_password
from ui.auth.users import ROLES, UserStore, UserStoreError, clean_groups


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


def _guarded(fn):
    def wrapper(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return fn(settings, args)
        except (UserStoreError, ValueError) as exc:
            print(f"docent: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return wrapper


@_guarded
def users_add(settings: Settings, args) -> int:
    role = "admin" if args.admin else args.role
    user = UserStore.from_settings(settings).add(args.name, _password(args), role, _groups(args.groups))
    print(f"added {user.username} ({user.role}{'; groups ' + ','.join(user.groups) if user.groups else ''})")
    return 0


@_guarded
def users_list(settings: Settings, args) -> int:
    users = UserStore.from_settings(settings).list()
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
    UserStore.from_settings(settings).set_password(args.name, _password(args))
    forget_initial_password(settings, args.name)
    print(f"password of {args.name} changed")
    return 0


@_guarded
def users_remove(settings: Settings, args) -> int:
    user = UserStore.from_settings(settings).remove(args.name)
    print(f"removed {user.username}")
    return 0


@_guarded
def users_update(settings: Settings, args) -> int:
    store = UserStore.from_settings(settings)
    if args.groups is not None:
        store.set_groups(args.name, _groups(args.groups) or [])
    if args.role:
        store.set_role(args.name, args.role)
    u = store.get(args.name)
    print(f"{u.username}: {u.role}; groups {','.join(u.groups) or '-'}")
    return 0
