"""Translation between Docent's neutral types and qdrant_edge's, with one workaround.

qdrant-edge-py 0.9.0 converts ``MatchValue(True)`` to the integer 1 (bool is read as int), so a
bool payload can never be matched. The bool fields of ``INDEXED_FIELDS`` are therefore stored
as 0/1 integers in edge and turned back into bools on the way out; callers only see bools.
Matching a bool on any other key is refused with a clear error instead of matching nothing.
"""

from __future__ import annotations

import re
from typing import Any

import qdrant_edge as qe

from retrieval.models import Chunk
from retrieval.store.base import INDEXED_FIELDS, Filter, Match, SparseVec
from retrieval.store.checks import check_match

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
BOOL_FIELDS = frozenset(k for k, v in INDEXED_FIELDS.items() if v == "bool")
EDGE_SCHEMA = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "bool": qe.PayloadSchemaType.Integer,  # stored as 0/1, see module docstring
}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"bad collection/alias name {name!r}: use letters, digits, '_', '-', '.' (max 200)")
    return name


def encode_payload(payload: dict) -> dict:
    return {k: int(v) if k in BOOL_FIELDS and isinstance(v, bool) else v for k, v in payload.items()}


def decode_payload(payload: dict | None) -> dict:
    return {
        k: bool(v) if k in BOOL_FIELDS and isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in (payload or {}).items()
    }


def encode_value(key: str, v: str | int | bool) -> str | int:
    if isinstance(v, bool):
        if key not in BOOL_FIELDS:
            raise ValueError(
                f"Match on {key!r} with a boolean: qdrant-edge-py 0.9.0 cannot match booleans; "
                f"only the bool fields in INDEXED_FIELDS ({', '.join(sorted(BOOL_FIELDS))}) can be filtered"
            )
        return int(v)
    return v


def to_edge_filter(flt: Filter) -> qe.Filter:
    """Neutral tree -> qdrant_edge types. Empty clauses become ``None`` (no constraint)."""
    return qe.Filter(
        must=[_condition(c) for c in flt.must] or None,
        should=[_condition(c) for c in flt.should] or None,
        must_not=[_condition(c) for c in flt.must_not] or None,
    )


def _condition(cond: Match | Filter) -> Any:
    if isinstance(cond, Filter):
        return to_edge_filter(cond)
    if not isinstance(cond, Match):
        raise TypeError(f"filter condition must be Match or Filter, got {type(cond).__name__}")
    check_match(cond)
    values = list(dict.fromkeys(encode_value(cond.key, v) for v in cond.values))
    if len(values) == 1:
        return qe.FieldCondition(cond.key, match=qe.MatchValue(values[0]))
    # "equals any of ()" is false: an empty MatchAny matches nothing, as on the server.
    if all(isinstance(v, str) for v in values) or all(isinstance(v, int) for v in values):
        return qe.FieldCondition(cond.key, match=qe.MatchAny(values))
    return qe.Filter(should=[qe.FieldCondition(cond.key, match=qe.MatchValue(v)) for v in values])


def to_chunk(point_id: Any, payload: dict | None) -> Chunk:
    return Chunk.from_payload(str(point_id), decode_payload(payload))


def to_sparse(s: SparseVec) -> qe.SparseVector:
    return qe.SparseVector(list(s.indices), [float(x) for x in s.values])
