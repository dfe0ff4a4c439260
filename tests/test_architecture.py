"""The architecture contract, in the normal test run: front ends (Streamlit app and views, CLI)
go through the application layer ``ui.usecases`` and never import the store, catalog, searcher,
index, workspace, ingestion pipelines or answer/summary code; ``ingest`` imports neither
``assistant`` nor ``ui``; ``retrieval`` imports neither ``ingest``, ``assistant`` nor ``ui``;
``assistant`` imports neither ``ingest`` nor ``ui``.

The contracts live in pyproject.toml (``[tool.importlinter]``) and are checked by import-linter
on the grimp import graph of the real source tree, so ``lint-imports`` in a shell says the same.
"""

from __future__ import annotations

from copy import deepcopy
from functools import lru_cache

import grimp
from importlinter import configuration
from importlinter.application.use_cases import read_user_options
from importlinter.domain.contract import registry

from .conftest import REPO

PYPROJECT = str(REPO / "pyproject.toml")
FRONT_ENDS = "Front ends"


@lru_cache(maxsize=1)
def _options():
    configuration.configure()
    for name, cls in (("forbidden", "importlinter.contracts.forbidden.ForbiddenContract"),):
        module, _, attr = cls.rpartition(".")
        registry.register(getattr(__import__(module, fromlist=[attr]), attr), name)
    return read_user_options(PYPROJECT)


@lru_cache(maxsize=1)
def _graph():
    return grimp.build_graph(*_options().session_options["root_packages"], cache_dir=None)


def _broken(graph, only: str | None = None) -> dict[str, str]:
    """Each broken contract's name and the imports that break it."""
    options = _options()
    broken = {}
    for contract_options in options.contracts_options:
        if only and not contract_options["name"].startswith(only):
            continue
        contract = registry.get_contract_class(contract_options["type"])(
            name=contract_options["name"], session_options=options.session_options, contract_options=contract_options)
        check = contract.check(deepcopy(graph), verbose=False)
        if not check.kept:
            links = [f"{link['importer']} -> {link['imported']}" for found in check.metadata.get("invalid_chains", [])
                     for chain in found.get("chains", []) for link in chain]
            broken[contract.name] = "; ".join(links) or str(check.metadata)
    return broken


def test_the_source_tree_keeps_every_contract():
    assert len(_options().contracts_options) == 4
    assert _broken(_graph()) == {}


def test_a_view_importing_the_searcher_breaks_the_front_end_contract():
    """The contract can fail: the same graph plus one import a view must not make."""
    graph = deepcopy(_graph())
    graph.add_import(importer="ui.views.chat", imported="retrieval.search", line_number=1,
                     line_contents="from retrieval.search import Searcher")
    broken = _broken(graph, FRONT_ENDS)
    assert list(broken) and "ui.views.chat -> retrieval.search" in next(iter(broken.values()))


def test_retrieval_importing_the_assistant_breaks_the_layering():
    graph = deepcopy(_graph())
    graph.add_import(importer="retrieval.index", imported="assistant.feedback", line_number=1,
                     line_contents="from assistant.feedback import forget_document")
    assert any(name.startswith("retrieval imports") for name in _broken(graph))
