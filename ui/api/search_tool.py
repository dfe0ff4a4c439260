"""The ``search_documents`` tool, one definition served two ways: as an OpenAI function tool
(``GET /v1/tools`` lists it, ``POST /v1/tools/search_documents`` runs it) and over MCP (the
``mcp`` SDK's server on ``/mcp``, for agent hosts that mount tools). Both run
``Docent.search_documents`` with the key's principal, so both see what that user may read.
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from retrieval.models import Passage
from ui.api.openai_wire import source_url
from ui.usecases import Docent
from ui.usecases.api_access import MODEL_PREFIX, InvalidApiKeyError

NAME = "search_documents"
DESCRIPTION = ("Search the company documents the caller may read. Returns the best passages, each with its "
               "document title, page or section, text and a link that opens it in Docent.")
PARAMETERS = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to look for, in the words of the question."},
        "collection": {"type": "string", "default": MODEL_PREFIX,
                       "description": f"A model id from /v1/models: '{MODEL_PREFIX}' for every collection, "
                                      f"'{MODEL_PREFIX}/<name>' for one."},
        "k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5, "description": "How many passages."},
    },
    "required": ["query"],
    "additionalProperties": False,
}


def openai_tool() -> dict:
    return {"type": "function", "function": {"name": NAME, "description": DESCRIPTION, "parameters": PARAMETERS}}


def passage_records(passages: list[Passage], names: dict[str, str], public_url: str) -> list[dict[str, Any]]:
    """``names``: collection id -> name (passages carry the id; the name is what users know)."""
    return [{"n": i, "document_id": p.document_id, "collection": names.get(p.collection, p.collection),
             "title": p.title, "path": p.path,
             "page": p.page, "page_end": p.page_end, "heading_path": list(p.heading_path), "text": p.text,
             "start": p.start, "end": p.end, "score": round(float(p.score), 4),
             "url": source_url(public_url, p.collection, p.document_id, p.page)}
            for i, p in enumerate(passages, 1)]


class KeyVerifier:
    """The MCP SDK's token check, done by Docent's API keys (no OAuth server: keys are issued by
    ``docent keys create``). A request is counted against the key's limit when the tool runs."""

    def __init__(self, app: Docent):
        self.app = app

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            caller = await anyio.to_thread.run_sync(lambda: self.app.api_caller(token, count=False))
        except InvalidApiKeyError:
            return None
        return AccessToken(token=token, client_id=caller.key_id, scopes=[], subject=caller.principal.user)


def mcp_server(app: Docent, public_url: str, api_url: str, allowed_hosts: list[str]) -> tuple[MCPServer, Starlette]:
    """The MCP server and its ASGI app (``/mcp``, stateless, JSON responses). ``allowed_hosts``:
    the Host headers accepted (DNS-rebinding protection); empty = any, for a server behind a proxy."""
    server = MCPServer(
        "Docent", instructions="Search the company's documents; every passage carries its document and page.",
        token_verifier=KeyVerifier(app),
        # Keys are Docent's own, not OAuth tokens with an audience to check.
        auth=AuthSettings(issuer_url=api_url, resource_server_url=api_url.rstrip("/") + "/mcp",
                          validate_token_resource=False),
    )

    def search_documents(query: str, collection: str = MODEL_PREFIX, k: int = 5) -> list[dict[str, Any]]:
        token = get_access_token()
        caller = app.api_caller(token.token if token else None)
        passages, model = app.search_documents(caller, query, collection, k)
        return passage_records(passages, model.names, public_url)

    server.tool(name=NAME, description=DESCRIPTION)(search_documents)
    asgi = server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=bool(allowed_hosts),
                                                     allowed_hosts=allowed_hosts,
                                                     allowed_origins=[f"http://{h}" for h in allowed_hosts]),
    )
    return server, asgi
