"""Docent's application layer: the one place every front end (Streamlit app, CLI, the HTTP API
to come) goes through for every use case.

``Docent.from_settings(settings)`` is the composition root (see ``core``); each use case is a
method that takes the caller's ``Principal`` and does the access check, guard, rate limit,
audit, metrics and writers' lock itself, once::

    with Docent.from_settings(settings) as app:
        for event in app.ask(principal, ["Handbook"], "What is the meal allowance?"):
            ...

The front ends may import this package, the typed models (``retrieval.models``,
``assistant.answer_models``, ``retrieval.settings``) and the exceptions re-exported in
``errors``; never the store, catalog, searcher, index, workspace, ingestion or answer code
(tests/test_architecture.py holds them to it).
"""

from __future__ import annotations

from retrieval.catalog import EVERYONE, CollectionRecord
from retrieval.index import DocumentInfo
from retrieval.search import SEARCH_MODES
from ui.usecases.answers import ANSWER_PASSAGES, Answers
from ui.usecases.api_access import ApiAccess
from ui.usecases.core import LOCAL_ADMIN, DocentCore, LLMState
from ui.usecases.curation import CollectionRow, Curation, require_admin
from ui.usecases.downloads import MAX_INLINE_BYTES, Downloads, OriginalFile, open_at_page_html
from ui.usecases.ingestion import Ingestion
from ui.usecases.library import CollectionView, Library
from ui.usecases.people import People
from ui.usecases.uploads import Upload, Uploads, safe_name

__all__ = [
    "ANSWER_PASSAGES", "EVERYONE", "LOCAL_ADMIN", "MAX_INLINE_BYTES", "CollectionRecord", "CollectionRow",
    "CollectionView", "Docent", "DocumentInfo", "LLMState",
    "OriginalFile", "SEARCH_MODES", "Upload", "open_at_page_html", "require_admin", "safe_name",
]


class Docent(Library, Answers, Downloads, Uploads, Curation, Ingestion, People, ApiAccess, DocentCore):
    """Settings in, use cases out. Reading: ``collections``, ``writable_collections``,
    ``documents``, ``document``, ``find_document``, ``read_document``, ``preview``,
    ``unreadable_documents``, ``quote_locations``, ``summary_sections``, ``download``,
    ``page_image``. Asking: ``search``, ``ask``, ``summarize``. Writing: ``upload``,
    ``ingest_folder``, ``reindex``, ``reindex_document``. Curating (admins): ``collections_overview``,
    ``create_collection``, ``rename_collection``, ``set_collection_groups``, ``delete_collection``,
    ``group_members``, ``list_documents``, ``admin_find_document``, ``remove_document``,
    ``set_document_disabled``, ``set_document_access``, ``ingest_runs``. People: ``list_users``,
    ``get_user``, ``add_user``, ``update_user``, ``set_user_password``, ``remove_user``,
    ``record_feedback``, ``update_feedback``, ``list_feedback``, ``export_feedback``,
    ``export_feedback_zip``. API: ``create_api_key``, ``list_api_keys``, ``revoke_api_key``,
    ``api_caller``, ``api_models``, ``api_model``, ``search_documents``, ``answer_as_data``.
    Identity: ``principal``."""
