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
    failures     every error, with the stage, case and file it concerns
    invocations  each time the run was (re)started, with how much it computed

:class:`RunLock` (``run.lock``) keeps a second process out of a run directory while one writes it.
"""

from __future__ import annotations

import fcntl
import io
import json
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from anibench.errors import InputError


class RunLockedError(InputError):
    """Another process holds the run directory."""


SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invocations (
    id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
    command TEXT, generated INTEGER DEFAULT 0, computed INTEGER DEFAULT 0, reused INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, model TEXT NOT NULL, model_identity TEXT,
    condition TEXT, seed INTEGER, label TEXT, style TEXT,
    video_path TEXT, video_sha256 TEXT, status TEXT NOT NULL, message TEXT,
    seconds REAL, updated_at TEXT NOT NULL, guide_frames TEXT
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
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunLock:
    """An exclusive lock on a run directory: two processes never write one run at once."""

    FILENAME = "run.lock"

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / self.FILENAME
        self._fh = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise RunLockedError("another anibench process is running in this run directory", path=self.path.parent) from None
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()

    @staticmethod
    def is_held(run_dir: Path) -> bool:
        path = Path(run_dir) / RunLock.FILENAME
        if not path.exists():
            return False
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False


@dataclass(frozen=True)
class ScoreKey:
    video_sha256: str
    scorer: str
    version: str
    params_hash: str
    inputs_hash: str


class RunStore:
    """Access to a run's SQLite file. Use one instance per process; writes are serialised."""

    FILENAME = "anibench.sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
            self._add_missing_columns()
            found = self.get_meta("schema_version")
            if found is None:
                self.set_meta("schema_version", SCHEMA_VERSION)
            elif int(found) != SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has store schema {found}; this anibench reads {SCHEMA_VERSION}")
        self.invocation: str | None = None

    def _add_missing_columns(self) -> None:
        """Columns later versions added to version-1 tables (stores made before them keep working)."""
        columns = {row["name"] for row in self._conn.execute("PRAGMA table_info(items)")}
        if "guide_frames" not in columns:
            self._conn.execute("ALTER TABLE items ADD COLUMN guide_frames TEXT")

    @classmethod
    def in_dir(cls, run_dir: str | Path) -> "RunStore":
        return cls(Path(run_dir) / cls.FILENAME)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- meta and invocations -------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row["value"]) if row else None

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
        with self._lock:
            return [dict(r) for r in self._conn.execute("SELECT * FROM invocations ORDER BY started_at, rowid")]

    # -- items ----------------------------------------------------------------------
    def item(self, item_id: str) -> dict | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM items WHERE item_id=?", (item_id,)).fetchone()
        return dict(row) if row else None

    def put_item(self, item_id: str, *, generated: bool = False, **fields: Any) -> None:
        fields = {"item_id": item_id, "updated_at": _now(), **fields}
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self._tx() as db:
            db.execute(f"INSERT OR REPLACE INTO items ({columns}) VALUES ({marks})", tuple(fields.values()))
            if generated:
                self._count("generated")

    def items(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._conn.execute("SELECT * FROM items ORDER BY item_id")]

    # -- scores ---------------------------------------------------------------------
    def has_score(self, key: ScoreKey) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM scores WHERE video_sha256=? AND scorer=? AND version=? AND params_hash=? AND inputs_hash=?",
                (key.video_sha256, key.scorer, key.version, key.params_hash, key.inputs_hash),
            ).fetchone()
        return row is not None

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
        with self._lock:
            rows = self._conn.execute(
                """
                SELECT s.item_id, s.scorer, s.status, s.message, s.version, s.params_hash, s.inputs_hash,
                       s.video_sha256, c.value, c.details, c.seconds
                FROM item_scores s
                LEFT JOIN scores c ON c.video_sha256=s.video_sha256 AND c.scorer=s.scorer AND c.version=s.version
                     AND c.params_hash=s.params_hash AND c.inputs_hash=s.inputs_hash
                ORDER BY s.item_id, s.scorer
                """
            ).fetchall()
        out = []
        for row in rows:
            record = dict(row)
            record["details"] = json.loads(record["details"]) if record["details"] else {}
            out.append(record)
        return out

    def score_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

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
        with self._lock:
            rows = self._conn.execute("SELECT * FROM guides ORDER BY condition, case_id, ordinal").fetchall()
        for row in rows:
            out.setdefault((row["condition"], row["case_id"]), []).append(
                {k: row[k] for k in ("position", "frame_index", "source", "thumbnail")}
            )
        return out

    # -- persisted clip features (model backbones) --------------------------------------------
    def get_feature(self, video_sha256: str, digest: str) -> "np.ndarray | None":
        """A persisted feature value (``.npy`` bytes, read without pickle), or None."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM features WHERE video_sha256=? AND digest=?",
                                     (video_sha256, digest)).fetchone()
        if row is None:
            return None
        import numpy as np

        return np.load(io.BytesIO(row["value"]), allow_pickle=False)

    def put_feature(self, video_sha256: str, digest: str, extractor: str, value: "np.ndarray") -> None:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value), allow_pickle=False)
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?)",
                       (video_sha256, digest, extractor, buffer.getvalue(), _now()))

    def feature_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM features").fetchone()[0]

    # -- remote generation jobs -------------------------------------------------------------
    def job(self, item_id: str, identity: str) -> dict | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE item_id=? AND identity=?", (item_id, identity)).fetchone()
        return dict(row) if row else None

    def put_job(self, item_id: str, identity: str, job_id: str, state: str, message: str | None = None) -> None:
        """Record a remote job as soon as it is submitted, and each change of its state."""
        with self._tx() as db:
            found = db.execute("SELECT submitted_at FROM jobs WHERE item_id=? AND identity=?",
                               (item_id, identity)).fetchone()
            submitted = found["submitted_at"] if found else _now()
            db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (item_id, identity, job_id, state, message, submitted, _now()))

    def jobs(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._conn.execute("SELECT * FROM jobs ORDER BY item_id")]

    # -- failures -------------------------------------------------------------------
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
        case_id = getattr(error, "case_id", None) or case_id
        path = getattr(error, "path", None) or path
        with self._tx() as db:
            db.execute(
                "INSERT INTO failures (invocation, stage, item_id, case_id, scorer, path, error_type, message, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.invocation or "", stage, item_id, case_id, scorer, path, type(error).__name__, str(error), _now()),
            )

    def failures(self, invocation: str | None = None) -> list[dict]:
        query = "SELECT * FROM failures" + (" WHERE invocation=?" if invocation else "") + " ORDER BY id"
        with self._lock:
            return [dict(r) for r in self._conn.execute(query, (invocation,) if invocation else ())]


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
