"""What Docent leaves on disk and on the network says no more than it must: lock files and
"busy" messages name the command, not the question; data files are the owner's alone (0600);
the metrics endpoint listens on loopback unless told otherwise."""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.answer_models import Answer
from assistant.audit import AuditEvent, AuditLog
from assistant.feedback import FeedbackStore
from ingest.run_locks import SharedGate
from retrieval.catalog import Catalog
from retrieval.settings import Settings
from retrieval.store.lock import FileLock, LockBusyError, read_holder
from retrieval.telemetry import Metrics, ensure_metrics_server
from ui.auth.limiter import LoginLimiter
from ui.auth.users import UserStore, users_path

from .conftest import REPO, make_settings

QUESTION = "What is Alice's salary?"

# A stand-in for the `docent` console script: takes a store lock the way `docent ask` does and
# holds it until its stdin closes, so the test reads the lock while it is really held.
_HOLDER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from retrieval.store.lock import FileLock
    with FileLock({path!r}, "index"):
        print("ready", flush=True)
        sys.stdin.read()
    """
)


def test_lock_file_and_busy_message_name_the_command_not_the_question(tmp_path):
    path = tmp_path / "locks" / "index.lock"
    script = tmp_path / "docent"
    script.write_text(_HOLDER.format(repo=str(REPO), path=str(path)))
    holder = subprocess.Popen([sys.executable, str(script), "-v", "ask", QUESTION, "--collection", "HR"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        on_disk = path.read_text(encoding="utf-8")
        with pytest.raises(LockBusyError) as busy:
            FileLock(path, "index").acquire()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    message = str(busy.value)
    for text in (on_disk, message):
        assert "Alice" not in text and "salary" not in text and "HR" not in text
    assert read_holder(path) is None  # released: the file was emptied
    assert busy.value.holder.command == "docent ask"
    assert f"pid {holder.pid}" in message and "docent ask" in message


def test_busy_message_drops_a_question_recorded_by_an_older_version(tmp_path):
    path = tmp_path / "index.lock"
    path.write_text('{"pid": 1, "hostname": "h", "command": "docent ask What is Alice\'s salary?",'
                    ' "purpose": "index", "since": 0}')
    assert read_holder(path).command == "docent ask"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual umask: files made without an explicit mode end up 0644
    yield
    os.umask(old)


def test_data_files_are_created_private(settings, open_umask):
    catalog = Catalog(settings.catalog_path)
    catalog.create_collection("Handbook")
    store = FeedbackStore.from_settings(settings)
    store.add("alice", "q?", Answer(answer="a", mode="refused"), "up")
    AuditLog.from_settings(settings).record(AuditEvent("question", "alice", [], False, [], "refused"))
    with FileLock(settings.lock_dir / "a.lock", "index"):
        pass
    SharedGate(settings.lock_dir / "gate.lock", "Handbook").acquire().release()
    with sqlite3.connect(settings.catalog_path) as reader:  # the WAL and shm files exist while it is open
        reader.execute("SELECT count(*) FROM collections").fetchone()
        files = [p for p in settings.data_dir.rglob("*") if p.is_file()]
        modes = {p.name: oct(_mode(p)) for p in files}
    names = set(modes)
    assert {"catalog.sqlite3", "feedback.sqlite3", "a.lock", "gate.lock"} <= names
    assert any(n.startswith("audit-") for n in names) and any(n.endswith("-wal") for n in names)
    assert modes == {name: oct(0o600) for name in names}


@pytest.mark.parametrize("writer", ["users", "login limiter"])
def test_the_user_store_is_private_whichever_part_makes_it(tmp_path, open_umask, writer):
    """Password hashes and the addresses of failed logins live in one SQLite file."""
    settings = make_settings(tmp_path)
    if writer == "users":
        UserStore.from_settings(settings).add("alice", "correct horse battery staple 42")
    else:
        LoginLimiter.from_settings(settings).failed("mallory", "203.0.113.9")
    assert _mode(users_path(settings)) == 0o600


def test_an_existing_world_readable_database_is_tightened(settings, open_umask):
    settings.data_dir.mkdir(parents=True)
    sqlite3.connect(settings.catalog_path).close()  # made by an older version: 0644
    assert _mode(settings.catalog_path) == 0o644
    Catalog(settings.catalog_path)
    assert _mode(settings.catalog_path) == 0o600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_listen_on_loopback_unless_told_otherwise(tmp_path):
    assert Settings(_env_file=None).metrics_host == "127.0.0.1"
    server = ensure_metrics_server(make_settings(tmp_path / "d", metrics_port=_free_port()), Metrics())
    try:
        assert server._httpd.server_address[0] == "127.0.0.1"
    finally:
        server.close()
