"""Parse untrusted files in child processes, so that a poison file fails alone.

Each worker is a spawned interpreter with an address-space limit (``RLIMIT_AS``); the parent
enforces a wall-clock limit per file and kills the worker when it is exceeded. What can go
wrong becomes a ``ParseError``:

- the parse runs past ``timeout_s``         -> "timeout"  ("parse timed out after 120 s")
- the parse exhausts ``memory_mb``           -> "memory"   ("out of memory (limit 2048 MB)")
- the worker dies (segfault, SIGKILL, ...)   -> "corrupt"  ("parser crashed (SIGSEGV)")
- the parser raises something unexpected     -> "corrupt"  ("parser crashed: KeyError: ...")
- the parser raises ``ParseError``           -> passed through unchanged.

Workers are reused: starting an interpreter and importing pypdf/python-docx costs far more
than parsing a small file, so a batch keeps ``workers`` processes alive and replaces one only
after a timeout, memory failure or crash, or after ``max_tasks_per_worker`` files (memory
fragmentation in long-lived processes is real).

Spawned workers import this module and ``parse_fn`` by name: a script that creates a pool
must guard its entry point with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import queue
import re
import resource
import signal
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import ParseError
from ingest.parse import parse_file
from ingest.parsed import ParsedDocument

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from retrieval.settings import Settings

log = logging.getLogger(__name__)

ParseFn = Callable[[Path, int], ParsedDocument]

_STARTUP_TIMEOUT_S = 60.0
_MEMORY_FAILURE = re.compile(
    r"memory allocation failed|out of memory|cannot allocate memory|insufficient memory|bad_alloc", re.I
)


# ----------------------------------------------------------------------------- child side


def _worker_main(conn: Connection, memory_mb: int, parse_fn: ParseFn) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when work stops
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings would flood batch logs
    # Import the parsers before the limit, so the limit measures parsing, not start-up.
    import ingest.docx_parser  # noqa: F401
    import ingest.pdf_parser  # noqa: F401

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(("ready",))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        path, max_file_mb = job
        out_of_memory = False
        try:
            reply: tuple = ("ok", parse_fn(Path(path), max_file_mb))
        except ParseError as exc:
            reply = ("error", exc.reason, exc.message)
        except MemoryError:
            out_of_memory = True
        except RecursionError:
            reply = ("error", "corrupt", "parser crashed: structure nested too deeply")
        except Exception as exc:  # noqa: BLE001 - any parser failure is reported, never fatal
            if _MEMORY_FAILURE.search(str(exc)):
                out_of_memory = True
            else:
                reply = ("error", "corrupt", f"parser crashed: {type(exc).__name__}: {exc}"[:500])
        if out_of_memory:
            reply = ("error", "memory", f"out of memory (limit {memory_mb} MB)")
        try:
            conn.send(reply)
        except MemoryError:  # the result itself was too big to pickle under the limit
            out_of_memory = True
            conn.send(("error", "memory", f"out of memory (limit {memory_mb} MB)"))
        if out_of_memory:
            return  # a process that hit its limit may be in a bad state: start afresh


# ---------------------------------------------------------------------------- parent side


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"{name}, possibly out of memory" if name == "SIGKILL" else name
    return f"exit code {code}"


class _Worker:
    def __init__(self, ctx: mp.context.SpawnContext, memory_mb: int, parse_fn: ParseFn) -> None:
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_worker_main, args=(child_conn, memory_mb, parse_fn), name="docent-parser", daemon=True
        )
        self.process.start()
        child_conn.close()
        self.conn = parent_conn
        self.tasks = 0
        if not self.conn.poll(_STARTUP_TIMEOUT_S):
            self.kill()
            raise RuntimeError(f"parser worker did not start within {_STARTUP_TIMEOUT_S:g} s")
        try:
            self.conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise RuntimeError(
                f"parser worker died while starting ({_describe_exit(self.process.exitcode)}); "
                f"is the memory limit ({memory_mb} MB) too low?"
            ) from exc

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(2)
        self.kill()


class ParserPool:
    """A few reusable, sandboxed parser processes.

    ``parse`` is thread-safe; at most ``workers`` files are parsed at once. Use as a context
    manager (or call ``close``) so the workers are stopped.
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        timeout_s: float = 120.0,
        memory_mb: int = 2048,
        max_file_mb: int = 200,
        max_tasks_per_worker: int = 200,
        parse_fn: ParseFn = parse_file,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if timeout_s <= 0 or memory_mb <= 0 or max_file_mb <= 0:
            raise ValueError("timeout_s, memory_mb and max_file_mb must be positive")
        self.workers = workers
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.max_file_mb = max_file_mb
        self.max_tasks_per_worker = max_tasks_per_worker
        self._parse_fn = parse_fn
        self._ctx = mp.get_context("spawn")  # fork would copy the parent's threads and memory
        self._slots: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(workers):
            self._slots.put(None)
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, ParserPool._kill_all, self._live)

    @classmethod
    def from_settings(cls, settings: Settings, workers: int = 1) -> ParserPool:
        return cls(
            workers=workers,
            timeout_s=settings.parse_timeout_s,
            memory_mb=settings.parse_memory_mb,
            max_file_mb=settings.max_file_mb,
        )

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parse(self, path: Path) -> ParsedDocument:
        """Parse one file in a worker; raises ``ParseError`` for every kind of failure."""
        if self._closed:
            raise RuntimeError("ParserPool is closed")
        worker = self._slots.get()
        try:
            if worker is None or not worker.alive:
                worker = self._start()
            result, healthy = self._run(worker, Path(path))
            worker.tasks += 1
            if not healthy or worker.tasks >= self.max_tasks_per_worker:
                self._retire(worker, kill=not healthy)
                worker = None
        except BaseException:
            if worker is not None:
                self._retire(worker, kill=True)
            worker = None
            raise
        finally:
            self._slots.put(worker)
        if isinstance(result, ParseError):
            raise result
        return result

    def parse_many(self, paths: Iterable[Path]) -> Iterator[tuple[Path, ParsedDocument | ParseError]]:
        """Parse files on all workers at once; results come back in input order."""

        def one(p: Path) -> tuple[Path, ParsedDocument | ParseError]:
            try:
                return p, self.parse(p)
            except ParseError as exc:
                return p, exc

        with ThreadPoolExecutor(self.workers, thread_name_prefix="docent-parse") as ex:
            yield from ex.map(one, paths)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            live = list(self._live)
            self._live.clear()
        for worker in live:
            worker.stop()

    # -- internals -------------------------------------------------------------------

    def _start(self) -> _Worker:
        worker = _Worker(self._ctx, self.memory_mb, self._parse_fn)
        with self._lock:
            self._live.add(worker)
        return worker

    def _retire(self, worker: _Worker, kill: bool) -> None:
        with self._lock:
            self._live.discard(worker)
        if kill:
            worker.kill()
        else:
            worker.stop()

    def _run(self, worker: _Worker, path: Path) -> tuple[ParsedDocument | ParseError, bool]:
        """The result (or the error to raise) and whether the worker may be reused."""
        worker.conn.send((str(path), self.max_file_mb))
        if not worker.conn.poll(self.timeout_s):
            worker.kill()
            return ParseError("timeout", f"parse timed out after {self.timeout_s:g} s"), False
        try:
            reply = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(5)
            code = worker.process.exitcode
            return ParseError("corrupt", f"parser crashed ({_describe_exit(code)})"), False
        if reply[0] == "ok":
            return reply[1], True
        _, reason, message = reply
        return ParseError(reason, message), reason != "memory"

    @staticmethod
    def _kill_all(live: set[_Worker]) -> None:
        for worker in list(live):
            worker.kill()


def parse_in_worker(path: Path, timeout_s: float, memory_mb: int, max_file_mb: int) -> ParsedDocument:
    """Parse one file in a fresh sandboxed process. For batches use ``ParserPool``."""
    with ParserPool(workers=1, timeout_s=timeout_s, memory_mb=memory_mb, max_file_mb=max_file_mb) as pool:
        return pool.parse(path)
