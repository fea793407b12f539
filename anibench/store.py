"""The run store: one SQLite file per run directory, the source of truth for resuming.

Scores are keyed by content, not by name: (video sha256, scorer, scorer version,
parameter hash, fingerprint of the scorer's declared inputs). A clip that reappears
(the same file under another name, a rerun) is never scored twice. Every write is
committed at once (WAL journal), so a killed run loses at most the work in flight.

Tables:
    items        one row per clip of the run (generated or given) and its status
    scores       content-keyed score cache
    item_scores  which score answers (item, scorer), or why none does
    guides       the guide frames each (condition, case) resolved to, with a thumbnail
    failures     every error, with the stage, case and file it concerns; one row per
                 (invocation, stage, item, case, scorer, message), however often it is recorded
    invocations  each time the run was (re)started, with how much it computed
    features     persisted model features (backbone rows) by (clip sha256, spec digest), as .npy bytes
    jobs         remote generation jobs by (item, generator identity): submitted once, polled on resume

:class:`RunLock` (``run.lock``) keeps a second process out of a run directory while one writes it.

Writing and reading
-------------------
A writer (``RunStore(path)``, under the run lock) uses WAL: every score is its own
committed transaction, cheap and safe against ``kill -9``. WAL has a cost for readers:
a connection to a WAL database must write (or create) the ``-shm`` index beside it, so a
WAL run could not be read from a read-only folder, a read-only mount, or by anyone but
its owner. So a finished run is *settled* (:meth:`RunStore.finish`): the WAL is
checkpointed into the main file and the store switches to the rollback journal, which a
read-only connection reads without writing anything. A reader
(``RunStore(path, readonly=True)``) never takes the run lock, never creates a file and
never changes one:

* a settled store (rollback journal) is opened ``mode=ro``;
* a WAL store without pending WAL content (finished by an older anibench, or closed
  cleanly) is opened ``immutable=1``: nothing can change it while nobody holds the lock;
* a store with pending content in ``-wal`` or a ``-journal`` (a killed run) is copied,
  with those files, to a private temporary folder and read there, where SQLite may
  recover it;
* a run in progress (``writer_active``) is read ``mode=ro`` through the writer's ``-shm``.

A file that is not an SQLite database, is truncated or damaged, is an SQLite database
that is not anibench's (no ``meta.schema_version``), or comes from a newer anibench is
a :class:`StoreError` naming the file and what to do; anibench never writes to such a
file. A 0-byte store (a run killed before it stored anything) is started afresh only
when the folder holds nothing else of a run (see :data:`RUN_CONTENT`); otherwise the
store was lost and a writer refuses it.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from anibench.errors import InputError

if TYPE_CHECKING:
    import numpy as np


class RunLockedError(InputError):
    """Another process holds the run directory."""


class StoreError(InputError):
    """A run's store cannot be used: damaged, not anibench's, from a newer anibench, or unreadable here."""


SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # 1: failures without the once-per-invocation key (migrated on write)
SQLITE_MAGIC = b"SQLite format 3\x00"
# What else of a run a folder holds besides its store; a 0-byte store beside any of these was lost.
RUN_CONTENT = ("results.json", "samples.jsonl", "videos", "guides")

FAILURE_KEY = "invocation, stage, IFNULL(item_id, ''), IFNULL(case_id, ''), IFNULL(scorer, ''), message"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invocations (
    id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
    command TEXT, generated INTEGER DEFAULT 0, computed INTEGER DEFAULT 0, reused INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, model TEXT NOT NULL, model_identity TEXT,
    condition TEXT, seed INTEGER, label TEXT, style TEXT,
    video_path TEXT, video_sha256 TEXT, status TEXT NOT NULL, message TEXT,
    seconds REAL, updated_at TEXT NOT NULL, placement TEXT
);
CREATE TABLE IF NOT EXISTS scores (
    video_sha256 TEXT NOT NULL, scorer TEXT NOT NULL, version TEXT NOT NULL,
    params_hash TEXT NOT NULL, inputs_hash TEXT NOT NULL,
    value REAL NOT NULL, details TEXT NOT NULL, seconds REAL NOT NULL,
    invocation TEXT NOT NULL, created_at TEXT NOT NULL,
    PRIMARY KEY (video_sha256, scorer, version, params_hash, inputs_hash)
);
CREATE TABLE IF NOT EXISTS item_scores (
    item_id TEXT NOT NULL, scorer TEXT NOT NULL, status TEXT NOT NULL,
    video_sha256 TEXT, version TEXT, params_hash TEXT, inputs_hash TEXT, message TEXT,
    PRIMARY KEY (item_id, scorer)
);
CREATE TABLE IF NOT EXISTS guides (
    condition TEXT NOT NULL, case_id TEXT NOT NULL, ordinal INTEGER NOT NULL, position REAL NOT NULL,
    frame_index INTEGER NOT NULL, source TEXT, thumbnail TEXT,
    PRIMARY KEY (condition, case_id, ordinal)
);
CREATE TABLE IF NOT EXISTS features (
    video_sha256 TEXT NOT NULL, digest TEXT NOT NULL, extractor TEXT NOT NULL, value BLOB NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (video_sha256, digest)
);
CREATE TABLE IF NOT EXISTS jobs (
    item_id TEXT NOT NULL, identity TEXT NOT NULL, job_id TEXT NOT NULL, state TEXT NOT NULL,
    message TEXT, submitted_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (item_id, identity)
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, invocation TEXT NOT NULL, stage TEXT NOT NULL,
    item_id TEXT, case_id TEXT, scorer TEXT, path TEXT, error_type TEXT NOT NULL,
    message TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS failures_once ON failures ({FAILURE_KEY});
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunLock:
    """An exclusive lock on a run directory: two processes never write one run at once.

    Readers never take it: :meth:`is_held` opens ``run.lock`` read-only and probes it
    with a shared, non-blocking ``flock`` that it releases at once.
    """

    FILENAME = "run.lock"

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / self.FILENAME
        self._fh = None

    def __enter__(self) -> "RunLock":
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InputError("the run directory is a file, not a folder; choose another --out", path=folder) from None
        except OSError as exc:
            raise InputError(f"cannot create the run directory ({exc.strerror})", path=folder) from None
        _refuse_lock_folder(self.path)
        try:
            self._fh = open(self.path, "a+")
        except OSError as exc:
            raise InputError(
                f"cannot write in this run directory ({exc.strerror}): anibench run/score write into --out, so "
                "choose a folder you can write (reading a run with anibench report needs no write access)",
                path=folder,
            ) from None
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise RunLockedError("another anibench process is running in this run directory", path=folder) from None
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()

    @staticmethod
    def is_held(run_dir: Path) -> bool:
        """Whether a writer holds the run, probed without writing anything.

        A lock file this user cannot open cannot be probed; it counts as not held (the
        run's own files then say whether it finished).
        """
        path = Path(run_dir) / RunLock.FILENAME
        _refuse_lock_folder(path)
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, PermissionError):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases the probe's shared lock
        return False


def _refuse_lock_folder(path: Path) -> None:
    if path.is_dir():
        raise InputError(
            f"{path.name} is a folder, not anibench's lock file: if no anibench process uses this run, remove it "
            f"(rmdir {path}) and retry",
            path=path,
        )


@dataclass(frozen=True)
class ScoreKey:
    video_sha256: str
    scorer: str
    version: str
    params_hash: str
    inputs_hash: str


@dataclass(frozen=True)
class _FileState:
    empty: bool  # no bytes in the main file and no pending WAL content
    wal: bool  # the header says WAL mode


def _companion(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _pending(path: Path) -> bool:
    """Whether a killed writer left content in ``-wal`` or ``-journal`` (then SQLite's recovery, not the
    main file's length, says whether the store is whole: a checkpoint writes the header first)."""
    return _has_content(_companion(path, "-wal")) or _has_content(_companion(path, "-journal"))


def _inspect(path: Path, *, check_length: bool) -> _FileState:
    """Read the store's 100-byte header: refuse what is not SQLite or is shorter than the header declares.

    Header layout: https://www.sqlite.org/fileformat2.html#the_database_header (bytes 16-17
    page size, 18 write version — 2 is WAL —, 24-27 change counter, 28-31 page count,
    valid when bytes 92-95 equal the change counter).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise StoreError(f"cannot read the run's store ({exc.strerror})", path=path) from None
    if size == 0:
        return _FileState(empty=not _has_content(_companion(path, "-wal")), wal=False)
    if not head.startswith(SQLITE_MAGIC):
        raise StoreError(
            "is not an SQLite database (it does not start with SQLite's header): the store is damaged or the file is "
            "not anibench's. anibench leaves it as it is; move the run folder aside and run again into a new --out",
            path=path,
        )
    if len(head) < 100:
        raise _truncated(path, size, None)
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    if check_length and pages and head[24:28] == head[92:96] and size < pages * page_size:
        raise _truncated(path, size, pages * page_size)
    return _FileState(empty=False, wal=head[18] == 2)


def _truncated(path: Path, size: int, declared: int | None) -> StoreError:
    of = f" of the {declared}" if declared else ""
    return StoreError(
        f"the store is truncated ({size} bytes{of} its header declares): its scores are lost. Move the run folder "
        "aside and run again into a new --out (clips in its videos/ folder can be scored with anibench score)",
        path=path,
    )


def _damaged(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        what = "the store is locked by another program; close it and retry"
    elif "readonly" in text or "read-only" in text:
        what = "cannot write the store: anibench run/score need write access to the run folder"
    elif "full" in text:
        what = "the disk is full; free space and rerun to resume"
    else:
        what = ("the store is damaged: anibench cannot read or resume this run. Move the run folder aside and run "
                "again into a new --out (clips in its videos/ folder can be scored with anibench score)")
    return StoreError(f"{what} (SQLite: {text})", path=path)


def _uri(path: Path, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{path.resolve().as_uri()}?{query}"


class RunStore:
    """Access to a run's SQLite file. Use one instance per process; writes are serialised.

    ``readonly=True`` reads without writing anything (see the module docstring);
    ``writer_active`` says another process holds the run lock, so the store may change
    while it is read.
    """

    FILENAME = "anibench.sqlite"

    def __init__(self, path: str | Path, *, readonly: bool = False, writer_active: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.invocation: str | None = None
        self._lock = threading.RLock()
        self._scratch: tempfile.TemporaryDirectory | None = None
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = self._open_readonly(writer_active) if readonly else self._open_for_writing()
        except BaseException:
            self.close()
            raise

    @classmethod
    def in_dir(cls, run_dir: str | Path, *, readonly: bool = False, writer_active: bool = False) -> "RunStore":
        return cls(Path(run_dir) / cls.FILENAME, readonly=readonly, writer_active=writer_active)

    # -- opening --------------------------------------------------------------------
    def _open_for_writing(self) -> sqlite3.Connection:
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the run directory ({exc.strerror})", path=folder) from None
        if self.path.is_dir():
            raise StoreError("is a folder, not anibench's store; move it aside", path=self.path)
        existed = self.path.exists()
        if existed and _inspect(self.path, check_length=not _pending(self.path)).empty:
            self._refuse_lost_store("is empty (0 bytes)")
        conn = self._connect(str(self.path))
        with self._guard():
            tables = self._tables(conn)
            if not tables and existed:
                self._refuse_lost_store("holds no tables")
            version = self._schema_version(conn, tables) if tables else SCHEMA_VERSION
            if version not in READABLE_SCHEMAS:
                raise self._newer(version)
            if tables:
                self._check_integrity(conn)
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if version < SCHEMA_VERSION:
                self._migrate(conn, version)
            conn.executescript(SCHEMA)
            self._add_columns(conn)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))
        return conn

    @staticmethod
    def _add_columns(conn: sqlite3.Connection) -> None:
        """Columns added to existing tables since schema 1 (``placement``: where a generator placed guides)."""
        if "placement" not in {row[1] for row in conn.execute("PRAGMA table_info(items)")}:
            conn.execute("ALTER TABLE items ADD COLUMN placement TEXT")

    def _refuse_lost_store(self, what: str) -> None:
        """A store without anibench's tables may be started afresh only where nothing else of a run exists."""
        present = [name for name in RUN_CONTENT if (self.path.parent / name).exists()]
        if present:
            raise StoreError(
                f"the store {what} but the folder holds a run's {', '.join(present)}: the store was lost, and with it "
                f"which clips were scored. Delete {self.path.name} to start the run over (clips are generated and "
                "scored again), or run into a new --out",
                path=self.path,
            )

    def _open_readonly(self, writer_active: bool) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError("not a run directory (no anibench.sqlite)", path=self.path.parent)
        pending = _pending(self.path)
        state = _inspect(self.path, check_length=not writer_active and not pending)
        if state.empty:
            raise StoreError("the store is empty (0 bytes): the run stored nothing yet", path=self.path)
        if writer_active:
            conn = self._connect(_uri(self.path, mode="ro"), uri=True)
        elif pending:
            conn = self._connect_private_copy()
        elif state.wal:
            conn = self._connect(_uri(self.path, mode="ro", immutable="1"), uri=True)
        else:
            conn = self._connect(_uri(self.path, mode="ro"), uri=True)
            try:
                self._tables(conn)
            except sqlite3.OperationalError:  # file locks refused (some network or read-only mounts)
                conn.close()
                conn = self._connect(_uri(self.path, mode="ro", immutable="1"), uri=True)
        with self._guard(reading_live=writer_active):
            conn.execute("PRAGMA query_only=1")
            tables = self._tables(conn)
            if not tables:
                raise StoreError("the store holds no tables: the run stored nothing yet", path=self.path)
            version = self._schema_version(conn, tables)
            if version not in READABLE_SCHEMAS:
                raise self._newer(version)
        return conn

    def _connect_private_copy(self) -> sqlite3.Connection:
        """A killed run's store with its pending ``-wal``/``-journal``, copied where SQLite may recover it."""
        self._scratch = tempfile.TemporaryDirectory(prefix="anibench-store-")
        copy = Path(self._scratch.name) / self.path.name
        try:
            for suffix in ("", "-wal", "-journal"):
                source = _companion(self.path, suffix)
                if source.is_file():
                    shutil.copyfile(source, _companion(copy, suffix))
        except OSError as exc:
            raise StoreError(f"cannot read the run's store ({exc.strerror})", path=self.path) from None
        return self._connect(str(copy))

    def _connect(self, target: str, *, uri: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None, uri=uri)
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None
        conn.row_factory = sqlite3.Row
        self._conn = conn  # closed by close(), also when opening fails later
        return conn

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'").fetchall()
        return {row[0] for row in rows}

    def _schema_version(self, conn: sqlite3.Connection, tables: set[str]) -> int:
        """The store's schema version; a database without anibench's ``meta.schema_version`` is refused."""
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() if "meta" in tables else None
            version = int(json.loads(row[0])) if row else None
        except (sqlite3.OperationalError, TypeError, ValueError):  # a "meta" table of another shape
            version = None
        if version is None:
            shown = ", ".join(sorted(tables)[:8]) + (", …" if len(tables) > 8 else "")
            raise StoreError(
                f"is an SQLite database but not an anibench store (tables: {shown}; no schema_version). anibench "
                "never writes to it: choose another --out folder for the run",
                path=self.path,
            )
        return version

    def _check_integrity(self, conn: sqlite3.Connection) -> None:
        """Before resuming, make sure the store is whole (``PRAGMA quick_check``: every page and
        record well formed, linear in the file size), so damage is reported before any work."""
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
        if problems != ["ok"]:
            raise _damaged(self.path, sqlite3.DatabaseError("; ".join(problems)))

    def _newer(self, version: int) -> StoreError:
        return StoreError(
            f"has store schema {version}; this anibench reads {', '.join(map(str, READABLE_SCHEMAS))}: the run was "
            "written by a newer anibench; upgrade anibench to use it",
            path=self.path,
        )

    @staticmethod
    def _migrate(conn: sqlite3.Connection, version: int) -> None:
        """Schema 1 → 2: drop duplicate failure rows, then key failures once per invocation."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"DELETE FROM failures WHERE id NOT IN (SELECT MIN(id) FROM failures GROUP BY {FAILURE_KEY})")
            conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS failures_once ON failures ({FAILURE_KEY})")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- lifecycle ------------------------------------------------------------------
    def finish(self) -> None:
        """Settle a finished run for readers: checkpoint the WAL into the main file and leave WAL mode.

        Afterwards the store is one self-contained file that a read-only connection reads
        without creating ``-wal``/``-shm`` files (see the module docstring). Call it at
        the end of a run, under the run lock; the next writer switches back to WAL. When
        a reader holds the store open the switch waits for it (``busy_timeout``) and is
        skipped if it cannot happen: readers then read the WAL store as described above.
        """
        with self._lock, self._guard():
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._conn.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None

    @contextmanager
    def _guard(self, *, reading_live: bool = False) -> Iterator[None]:
        """SQLite errors about the file (damaged, locked, read-only, full) become a :class:`StoreError`."""
        try:
            yield
        except (sqlite3.ProgrammingError, sqlite3.IntegrityError, sqlite3.InterfaceError):
            raise
        except sqlite3.DatabaseError as exc:
            if reading_live:
                raise StoreError(
                    f"cannot read this run while it is in progress (SQLite: {exc}); report it when it has finished",
                    path=self.path,
                ) from None
            raise _damaged(self.path, exc) from None

    def _rows(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock, self._guard():
            return self._conn.execute(sql, params).fetchall()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- meta and invocations -------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        rows = self._rows("SELECT value FROM meta WHERE key=?", (key,))
        return json.loads(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, sort_keys=True)))

    def begin_invocation(self, command: str) -> str:
        self.invocation = uuid.uuid4().hex[:12]
        with self._tx() as db:
            db.execute(
                "INSERT INTO invocations (id, started_at, command) VALUES (?, ?, ?)",
                (self.invocation, _now(), command),
            )
        return self.invocation

    def end_invocation(self) -> None:
        with self._tx() as db:
            db.execute("UPDATE invocations SET finished_at=? WHERE id=?", (_now(), self.invocation))

    def _count(self, column: str, n: int = 1) -> None:
        self._conn.execute(f"UPDATE invocations SET {column}={column}+? WHERE id=?", (n, self.invocation))

    def invocations(self) -> list[dict]:
        return [dict(r) for r in self._rows("SELECT * FROM invocations ORDER BY started_at, rowid")]

    # -- items ----------------------------------------------------------------------
    def item(self, item_id: str) -> dict | None:
        rows = self._rows("SELECT * FROM items WHERE item_id=?", (item_id,))
        return dict(rows[0]) if rows else None

    def put_item(self, item_id: str, *, generated: bool = False, **fields: Any) -> None:
        fields = {"item_id": item_id, "updated_at": _now(), **fields}
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self._tx() as db:
            db.execute(f"INSERT OR REPLACE INTO items ({columns}) VALUES ({marks})", tuple(fields.values()))
            if generated:
                self._count("generated")

    def items(self) -> list[dict]:
        return [dict(r) for r in self._rows("SELECT * FROM items ORDER BY item_id")]

    # -- scores ---------------------------------------------------------------------
    def has_score(self, key: ScoreKey) -> bool:
        return bool(self._rows(
            "SELECT 1 FROM scores WHERE video_sha256=? AND scorer=? AND version=? AND params_hash=? AND inputs_hash=?",
            (key.video_sha256, key.scorer, key.version, key.params_hash, key.inputs_hash),
        ))

    def put_score(self, item_id: str, key: ScoreKey, value: float, details: dict, seconds: float) -> None:
        """Store a freshly computed score and link it to ``item_id`` in one transaction."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.video_sha256, key.scorer, key.version, key.params_hash, key.inputs_hash,
                    value, json.dumps(details, sort_keys=True, default=_json_default), seconds,
                    self.invocation, _now(),
                ),
            )
            self._link(db, item_id, key, "ok", None)
            self._count("computed")

    def link_score(self, item_id: str, key: ScoreKey) -> None:
        """Point (item, scorer) at an existing score (reused, not recomputed)."""
        with self._tx() as db:
            self._link(db, item_id, key, "ok", None)
            self._count("reused")

    def put_item_score_status(self, item_id: str, scorer: str, status: str, message: str) -> None:
        """Record that (item, scorer) has no score, and why (``failed`` or ``not_applicable``)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO item_scores (item_id, scorer, status, message) VALUES (?, ?, ?, ?)",
                (item_id, scorer, status, message),
            )

    @staticmethod
    def _link(db: sqlite3.Connection, item_id: str, key: ScoreKey, status: str, message: str | None) -> None:
        db.execute(
            "INSERT OR REPLACE INTO item_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (item_id, key.scorer, status, key.video_sha256, key.version, key.params_hash, key.inputs_hash, message),
        )

    def item_scores(self) -> list[dict]:
        """Every (item, scorer) row joined with its score value and details when it has one."""
        rows = self._rows(
            """
            SELECT s.item_id, s.scorer, s.status, s.message, s.version, s.params_hash, s.inputs_hash,
                   s.video_sha256, c.value, c.details, c.seconds
            FROM item_scores s
            LEFT JOIN scores c ON c.video_sha256=s.video_sha256 AND c.scorer=s.scorer AND c.version=s.version
                 AND c.params_hash=s.params_hash AND c.inputs_hash=s.inputs_hash
            ORDER BY s.item_id, s.scorer
            """
        )
        out = []
        for row in rows:
            record = dict(row)
            try:
                record["details"] = json.loads(record["details"]) if record["details"] else {}
            except json.JSONDecodeError:
                raise StoreError(f"the store is damaged: the details of {record['item_id']} · {record['scorer']} are not "
                                 "JSON. Move the run folder aside and run again into a new --out", path=self.path) from None
            out.append(record)
        return out

    def score_count(self) -> int:
        return self._rows("SELECT COUNT(*) FROM scores")[0][0]

    # -- guides ---------------------------------------------------------------------
    def put_guides(self, condition: str, case_id: str, guides: list[dict]) -> None:
        """Record the guides of (condition, case): ``{"position", "frame_index", "source", "thumbnail"}``."""
        with self._tx() as db:
            db.execute("DELETE FROM guides WHERE condition=? AND case_id=?", (condition, case_id))
            db.executemany(
                "INSERT INTO guides VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(condition, case_id, i, g["position"], g["frame_index"], g.get("source"), g.get("thumbnail"))
                 for i, g in enumerate(guides)],
            )

    def guides(self) -> dict[tuple[str, str], list[dict]]:
        """{(condition, case_id): [guide, ...]} in guide order."""
        out: dict[tuple[str, str], list[dict]] = {}
        for row in self._rows("SELECT * FROM guides ORDER BY condition, case_id, ordinal"):
            out.setdefault((row["condition"], row["case_id"]), []).append(
                {k: row[k] for k in ("position", "frame_index", "source", "thumbnail")}
            )
        return out

    # -- failures -------------------------------------------------------------------
    # -- persisted clip features (model backbones) ------------------------------------
    def get_feature(self, video_sha256: str, digest: str) -> "np.ndarray | None":
        """A persisted feature value (``.npy`` bytes, read without pickle), or None."""
        if "features" not in self._table_names():
            return None
        rows = self._rows("SELECT value FROM features WHERE video_sha256=? AND digest=?", (video_sha256, digest))
        if not rows:
            return None
        import numpy as np

        return np.load(io.BytesIO(rows[0]["value"]), allow_pickle=False)

    def put_feature(self, video_sha256: str, digest: str, extractor: str, value: "np.ndarray") -> None:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value), allow_pickle=False)
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?)",
                       (video_sha256, digest, extractor, buffer.getvalue(), _now()))

    def feature_count(self) -> int:
        return self._rows("SELECT COUNT(*) FROM features")[0][0]

    # -- remote generation jobs -----------------------------------------------------
    def job(self, item_id: str, identity: str) -> dict | None:
        rows = self._rows("SELECT * FROM jobs WHERE item_id=? AND identity=?", (item_id, identity))
        return dict(rows[0]) if rows else None

    def put_job(self, item_id: str, identity: str, job_id: str, state: str, message: str | None = None) -> None:
        """Record a remote job as soon as it is submitted, and each change of its state."""
        with self._tx() as db:
            found = db.execute("SELECT submitted_at FROM jobs WHERE item_id=? AND identity=?",
                               (item_id, identity)).fetchone()
            submitted = found["submitted_at"] if found else _now()
            db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (item_id, identity, job_id, state, message, submitted, _now()))

    def jobs(self) -> list[dict]:
        return [dict(r) for r in self._rows("SELECT * FROM jobs ORDER BY item_id")]

    def _table_names(self) -> set[str]:
        return {row[0] for row in self._rows("SELECT name FROM sqlite_master WHERE type='table'")}

    def record_failure(
        self,
        stage: str,
        error: BaseException,
        *,
        item_id: str | None = None,
        case_id: str | None = None,
        scorer: str | None = None,
        path: str | None = None,
    ) -> None:
        """Record an error; the same failure recorded again in one invocation is kept once."""
        case_id = getattr(error, "case_id", None) or case_id
        path = getattr(error, "path", None) or path
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO failures (invocation, stage, item_id, case_id, scorer, path, error_type, message,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.invocation or "", stage, item_id, case_id, scorer, path, type(error).__name__, str(error), _now()),
            )

    def failures(self, invocation: str | None = None) -> list[dict]:
        """Recorded failures in order (a schema-1 store's duplicates are shown once)."""
        where = " AND invocation=?" if invocation else ""
        query = (f"SELECT * FROM failures WHERE id IN (SELECT MIN(id) FROM failures GROUP BY {FAILURE_KEY}){where} "
                 "ORDER BY id")
        return [dict(r) for r in self._rows(query, (invocation,) if invocation else ())]


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
