"""``docent collections …`` and ``docent docs …``: curate the index from the shell."""

from __future__ import annotations

import argparse
import json
import time

from retrieval.settings import Settings
from ui.usecases import LOCAL_ADMIN, Docent


def _groups(text: str | None) -> list[str] | None:
    return None if text is None else [g.strip() for g in text.split(",") if g.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    col = sub.add_parser("collections", help="list, create, rename, delete collections; set their groups")
    csub = col.add_subparsers(dest="action", required=True)
    p = csub.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=collections_list)
    p = csub.add_parser("create")
    p.add_argument("name")
    p.add_argument("--read", help="comma-separated groups that may read (default: everyone)")
    p.add_argument("--write", help="comma-separated groups that may upload")
    p.add_argument("--description", default="")
    p.set_defaults(func=collections_create)
    p = csub.add_parser("rename")
    p.add_argument("name")
    p.add_argument("new_name")
    p.set_defaults(func=collections_rename)
    p = csub.add_parser("groups", help="set read/write groups")
    p.add_argument("name")
    p.add_argument("--read")
    p.add_argument("--write")
    p.set_defaults(func=collections_groups)
    p = csub.add_parser("delete")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="confirm: the collection and its index are deleted")
    p.set_defaults(func=collections_delete)

    docs = sub.add_parser("docs", help="list, show, remove, disable/enable documents of a collection")
    dsub = docs.add_subparsers(dest="action", required=True)
    p = dsub.add_parser("list")
    p.add_argument("--collection", "-c", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=docs_list)
    for name, func in (("show", docs_show), ("remove", docs_remove), ("disable", docs_disable), ("enable", docs_enable)):
        p = dsub.add_parser(name)
        p.add_argument("document", help="document id or file path")
        p.add_argument("--collection", "-c", required=True)
        p.set_defaults(func=func)
    p = dsub.add_parser("access", help="override who may read one document")
    p.add_argument("document")
    p.add_argument("--collection", "-c", required=True)
    p.add_argument("--groups", help="comma-separated groups; omit to follow the collection again")
    p.set_defaults(func=docs_access)


def collections_list(settings: Settings, args) -> int:
    with Docent.from_settings(settings) as app:
        rows = [{"name": r.rec.name, "id": r.rec.id, "documents": r.documents, "chunks": r.chunks,
                 "read_groups": r.rec.read_groups, "write_groups": r.rec.write_groups, "model": r.rec.model_id}
                for r in app.collections_overview(LOCAL_ADMIN)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    elif not rows:
        print("No collections yet. Create one with: docent ingest FOLDER --collection NAME")
    for r in rows if not args.json else []:
        print(f"{r['name']:<24} {r['documents']:>6} docs {r['chunks']:>8} chunks  read: {','.join(r['read_groups']) or '-'}"
              f"  write: {','.join(r['write_groups']) or '-'}")
    return 0


def collections_create(settings: Settings, args) -> int:
    with Docent.from_settings(settings) as app:
        rec = app.create_collection(LOCAL_ADMIN, args.name, _groups(args.read), _groups(args.write), args.description,
                                    build_index=True)
    print(f"created collection {rec.name!r}")
    return 0


def collections_rename(settings: Settings, args) -> int:
    with Docent.from_settings(settings) as app:
        rec = app.rename_collection(LOCAL_ADMIN, args.name, args.new_name)
    print(f"renamed to {rec.name!r}")
    return 0


def collections_groups(settings: Settings, args) -> int:
    with Docent.from_settings(settings) as app:
        rec = app.set_collection_groups(LOCAL_ADMIN, args.name, _groups(args.read), _groups(args.write))
    print(f"{rec.name}: read {','.join(rec.read_groups) or '-'}; write {','.join(rec.write_groups) or '-'}")
    return 0


def collections_delete(settings: Settings, args) -> int:
    if not args.yes:
        print(f"docent: deleting {args.name!r} removes its whole index; repeat with --yes to confirm")
        return 2
    with Docent.from_settings(settings) as app:
        rec = app.delete_collection(LOCAL_ADMIN, args.name)
    print(f"deleted collection {rec.name!r}")
    return 0


def docs_list(settings: Settings, args) -> int:
    with Docent.from_settings(settings) as app:
        docs = app.list_documents(LOCAL_ADMIN, args.collection)
    if args.json:
        print(json.dumps([d.__dict__ for d in docs], ensure_ascii=False))
        return 0
    if not docs:
        print(f"No documents in {args.collection!r} yet. Add some with: docent ingest FOLDER --collection {args.collection!r}")
    for d in docs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.indexed_at))
        flag = " [disabled]" if d.disabled else ""
        print(f"{d.document_id[:8]}  {d.pages or '-':>4} p {d.n_chunks:>5} chunks  {when}  {d.path}{flag}")
    return 0


def docs_show(settings: Settings, args) -> int:
    with Docent.from_settings(settings) as app:
        doc = app.admin_find_document(LOCAL_ADMIN, args.collection, args.document)
    print(json.dumps(doc.__dict__, ensure_ascii=False, indent=2))
    return 0


def docs_remove(settings: Settings, args) -> int:
    with Docent.from_settings(settings) as app:
        doc = app.admin_find_document(LOCAL_ADMIN, args.collection, args.document)
        app.remove_document(LOCAL_ADMIN, args.collection, doc.document_id)
    print(f"removed {doc.path}")
    return 0


def _set_disabled(settings: Settings, args, disabled: bool) -> int:
    with Docent.from_settings(settings) as app:
        doc = app.admin_find_document(LOCAL_ADMIN, args.collection, args.document)
        app.set_document_disabled(LOCAL_ADMIN, args.collection, doc.document_id, disabled)
    print(f"{'disabled' if disabled else 'enabled'} {doc.path}")
    return 0


def docs_disable(settings: Settings, args) -> int:
    return _set_disabled(settings, args, True)


def docs_enable(settings: Settings, args) -> int:
    return _set_disabled(settings, args, False)


def docs_access(settings: Settings, args) -> int:
    with Docent.from_settings(settings) as app:
        doc = app.admin_find_document(LOCAL_ADMIN, args.collection, args.document)
        app.set_document_access(LOCAL_ADMIN, args.collection, doc.document_id, _groups(args.groups))
    print(f"{doc.path}: " + (f"readable by {args.groups}" if args.groups else "follows the collection's groups"))
    return 0
