"""The HTTP API's use cases: API keys (issue, list, revoke; admins only), who a key is (each
request), the per-key rate limit, the models a caller may use (one per readable collection
plus one over all of them) and the ``search_documents`` tool.

Every answer the API gives goes through :meth:`Answers.ask` like the app's; this module adds
only what exists because a request arrives with a key instead of a login.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.rate_limit import RateDecision, RateLimiter
from retrieval.models import Passage, Principal
from ui.auth.api_keys import ApiKeyError, ApiKeyRecord, ApiKeyStore
from ui.auth.principal import UnknownUserError
from ui.usecases.curation import require_admin

MODEL_PREFIX = "docent"


class InvalidApiKeyError(PermissionError):
    """Missing, malformed, unknown or revoked key, or its user is gone: one answer for all."""

    def __init__(self) -> None:
        super().__init__("Invalid API key. Ask an administrator for one (`docent keys create --user NAME`).")


class KeyRateLimitedError(PermissionError):
    def __init__(self, decision: RateDecision):
        self.retry_after_s = decision.retry_after_s
        super().__init__(f"This API key made {decision.limit} requests in the last minute, the most allowed; "
                         f"retry in {max(1, round(decision.retry_after_s))} s.")


class UnknownModelError(LookupError):
    """A model that does not exist and one the caller may not use read the same."""

    def __init__(self, model: str):
        super().__init__(f"The model {model!r} does not exist or you do not have access to it.")


@dataclass(frozen=True)
class ApiCaller:
    principal: Principal
    key_id: str

    @property
    def channel(self) -> str:
        return f"api:{self.key_id}"


@dataclass(frozen=True)
class ApiModel:
    id: str
    collections: list[str]  # names
    description: str
    names: dict[str, str]  # collection id -> name (passages carry the id)


class ApiAccess:
    @property
    def api_keys(self) -> ApiKeyStore:
        return self._part("api_keys", lambda: ApiKeyStore.from_settings(self.settings))

    @property
    def key_limiter(self) -> RateLimiter:
        return self._part("key_limiter", lambda: RateLimiter(self.settings.api_requests_per_minute))

    # --- keys (admins) -----------------------------------------------------------------------
    def create_api_key(self, principal: Principal, username: str, name: str = "",
                       groups: list[str] | None = None) -> tuple[ApiKeyRecord, str]:
        """A key for a built-in user, or (``groups`` given) for an OIDC/proxy identity as stated.
        Returns the record and the key, which is shown this once and never stored."""
        require_admin(principal)
        self.principal(username, groups)  # UnknownUserError for a name that is nobody
        stored = None if self.users.find(username) is not None else groups
        return self.api_keys.create(username, name=name, groups=stored, created_by=principal.user)

    def list_api_keys(self, principal: Principal, username: str | None = None) -> list[ApiKeyRecord]:
        require_admin(principal)
        return self.api_keys.list(username)

    def revoke_api_key(self, principal: Principal, key_id: str) -> ApiKeyRecord:
        require_admin(principal)
        return self.api_keys.revoke(key_id)

    # --- each request ------------------------------------------------------------------------
    def api_caller(self, key: str | None, *, count: bool = True) -> ApiCaller:
        """Who sends ``key`` now, with their current groups; ``count``s one request against the
        key's limit. Raises ``InvalidApiKeyError`` or ``KeyRateLimitedError``."""
        record = self.api_keys.verify(key or "")
        if record is None:
            raise InvalidApiKeyError()
        try:
            principal = self.principal(record.username, record.groups)
        except UnknownUserError:
            raise InvalidApiKeyError() from None
        decision = self.key_limiter.check(record.id) if count else None
        if decision is not None and not decision.allowed:
            raise KeyRateLimitedError(decision)
        return ApiCaller(principal, record.id)

    def api_models(self, principal: Principal) -> list[ApiModel]:
        """``docent`` over every collection the principal may read, then ``docent/<name>`` each."""
        recs = self.readable_collections(principal)
        every = {r.id: r.name for r in recs}
        models = [ApiModel(MODEL_PREFIX, list(every.values()), "All collections you can read", every)] if recs else []
        models += [ApiModel(f"{MODEL_PREFIX}/{r.name}", [r.name], f"The {r.name} collection", {r.id: r.name})
                   for r in recs]
        return models

    def api_model(self, principal: Principal, model: str) -> ApiModel:
        for m in self.api_models(principal):
            if m.id == model:
                return m
        raise UnknownModelError(model)

    def search_documents(self, caller: ApiCaller, query: str, model: str = MODEL_PREFIX,
                         k: int = 5) -> tuple[list[Passage], ApiModel]:
        """The ``search_documents`` tool: passages ``caller`` may read, best first, with provenance;
        one audit line (no query text unless the audit keeps text)."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        if len(query) > self.settings.max_question_chars:
            raise ValueError(f"query has {len(query)} characters; the limit is {self.settings.max_question_chars}")
        if not isinstance(k, int) or not 1 <= k <= 20:
            raise ValueError("k must be an integer from 1 to 20")
        target = self.api_model(caller.principal, model)
        passages = self.search(caller.principal, query, target.collections, k=k).passages
        self.guard.record(caller.principal, target.collections, "found", event="search", question=query,
                          passages=len(passages), via=caller.channel)
        return passages, target


__all__ = ["ApiAccess", "ApiCaller", "ApiKeyError", "ApiModel", "InvalidApiKeyError", "KeyRateLimitedError",
           "MODEL_PREFIX", "UnknownModelError"]
