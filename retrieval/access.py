"""Who may read what, expressed as Qdrant filters so the engine itself enforces it.

Rules: a collection's read groups apply to its documents unless a document carries its own
``access_groups`` (an override, which can widen or narrow access). Admins read everything.
Disabled documents are invisible to everyone at search time. Every principal is implicitly in
``everyone``, the default read group of a new collection.
"""

from __future__ import annotations

from retrieval.catalog import EVERYONE, CollectionRecord
from retrieval.models import Principal
from retrieval.store.base import Filter, Match

_NOT_DISABLED = Match("disabled", (True,))


def effective_groups(principal: Principal) -> tuple[str, ...]:
    return tuple(sorted(set(principal.groups) | {EVERYONE}))


def can_read_collection(principal: Principal, collection: CollectionRecord) -> bool:
    return principal.is_admin or bool(set(effective_groups(principal)) & set(collection.read_groups))


def can_write_collection(principal: Principal, collection: CollectionRecord) -> bool:
    return principal.is_admin or bool(set(effective_groups(principal)) & set(collection.write_groups))


def read_filter(principal: Principal, collection: CollectionRecord) -> Filter:
    """The filter every search, scroll and neighbour lookup in ``collection`` must carry."""
    if principal.is_admin:
        return Filter(must_not=(_NOT_DISABLED,))
    granted_by_override = Filter(
        must=(Match("has_override", (True,)), Match("access_groups", effective_groups(principal)))
    )
    if can_read_collection(principal, collection):
        readable = Filter(should=(Filter(must_not=(Match("has_override", (True,)),)), granted_by_override))
    else:
        readable = granted_by_override
    return Filter(must=(readable,), must_not=(_NOT_DISABLED,))


def document_filter(document_ids: list[str] | None) -> Filter | None:
    if not document_ids:
        return None
    return Filter(must=(Match("document_id", tuple(document_ids)),))
