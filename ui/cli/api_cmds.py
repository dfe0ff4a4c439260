"""``docent api`` (the OpenAI-compatible server) and ``docent keys create|list|revoke`` (its keys)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from retrieval.settings import Settings
from ui.auth.users import clean_groups
from ui.cli.usage_errors import usage_errors
from ui.usecases import LOCAL_ADMIN, Docent
from ui.usecases.api_access import ApiKeyError
from ui.usecases.errors import UnknownUserError, UserStoreError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api", help="serve the OpenAI-compatible API (chat completions, models, search tool, MCP)")
    p.add_argument("--host", help="interface to listen on (default: DOCENT_API_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: DOCENT_API_PORT or 8080)")
    p.set_defaults(func=run_api)

    keys = sub.add_parser("keys", help="API keys: one per user and client, shown once, stored hashed")
    ksub = keys.add_subparsers(dest="action", required=True)
    p = ksub.add_parser("create", help="issue a key for a user (prints it once)")
    p.add_argument("--user", required=True)
    p.add_argument("--name", default="", help="what the key is for, e.g. 'open-webui'")
    p.add_argument("--groups", help="comma-separated groups, for an OIDC/proxy user the built-in store does not hold")
    p.set_defaults(func=keys_create)
    p = ksub.add_parser("list", help="keys and their state (never the keys themselves)")
    p.add_argument("--user")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=keys_list)
    p = ksub.add_parser("revoke", help="revoke a key by its id (from `docent keys list`)")
    p.add_argument("key_id")
    p.set_defaults(func=keys_revoke)


def run_api(settings: Settings, args: argparse.Namespace) -> int:
    from ui.api.server import serve

    host = args.host or settings.api_host
    port = args.port or settings.api_port
    with Docent.from_settings(settings) as app:
        print(f"Docent API on http://{host}:{port}/v1 (model {app.describe_llm()}); Ctrl-C stops it", flush=True)
        serve(app, host, port)
    return 0


_guarded = usage_errors(ApiKeyError, UnknownUserError, UserStoreError, ValueError)


@_guarded
def keys_create(settings: Settings, args: argparse.Namespace) -> int:
    groups = None if args.groups is None else clean_groups(args.groups.split(","))
    record, key = Docent.from_settings(settings).create_api_key(LOCAL_ADMIN, args.user, args.name, groups)
    print(key)
    print(f"key {record.id} for {record.username}: shown once, keep it now "
          f"(revoke with `docent keys revoke {record.id}`)", file=sys.stderr)
    return 0


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


@_guarded
def keys_list(settings: Settings, args: argparse.Namespace) -> int:
    keys = Docent.from_settings(settings).list_api_keys(LOCAL_ADMIN, args.user)
    if args.json:
        print(json.dumps([k.model_dump() for k in keys], ensure_ascii=False))
        return 0
    if not keys:
        print("No API keys. Issue one with `docent keys create --user NAME`.")
    for k in keys:
        state = "active" if k.active else f"revoked {_when(k.revoked_at)}"
        print(f"{k.id:<17} {k.username:<20} …{k.hint} {k.name or '-':<16} used {_when(k.last_used):<16} {state}")
    return 0


@_guarded
def keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    record = Docent.from_settings(settings).revoke_api_key(LOCAL_ADMIN, args.key_id)
    print(f"revoked {record.id} ({record.username})")
    return 0
