"""The result sink: the one writer of a run's outcomes into its store, keyed by content.

Executors report what happened — a clip generated, a score computed, an error — and the
sink writes it, idempotently: a clip lands atomically at its path before its row says
"generated"; a score is stored under its content key and linked to the item that asked,
and to every other item waiting on the same key. Writing the same outcome twice changes
nothing, so a resumed run never double-counts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from anibench.conditions import Placement
from anibench.errors import AnibenchError, NotApplicable
from anibench.fsutil import copy_file
from anibench.planning import WorkItem
from anibench.provenance import sha256_file
from anibench.scoring import ScoreResult
from anibench.store import RunStore, ScoreKey
from anibench.video import Video


class ResultSink:
    """Writes a run's outcomes to its :class:`RunStore` and its clips under ``run_dir``."""

    def __init__(self, store: RunStore, run_dir: Path):
        self.store = store
        self.run_dir = Path(run_dir)
        self._hashes: dict[Path, str] = {}
        self._lock = threading.Lock()

    # -- files --------------------------------------------------------------------------------
    def file_hash(self, path: Path) -> str:
        with self._lock:
            if path in self._hashes:
                return self._hashes[path]
        digest = sha256_file(path)
        with self._lock:
            self._hashes[path] = digest
        return digest

    def forget(self, path: Path) -> None:
        with self._lock:
            self._hashes.pop(path, None)

    def relative(self, path: Path) -> Path:
        return path.relative_to(self.run_dir) if path.is_relative_to(self.run_dir) else path

    # -- items --------------------------------------------------------------------------------
    def generated(self, item: WorkItem, output: Video | Path, *, identity: str, placement: Placement | None,
                  seconds: float) -> None:
        """Save ``output`` atomically at the item's path, then record the item as generated."""
        if isinstance(output, Video):
            output.write(item.video_path)
        elif isinstance(output, (str, Path)):
            copy_file(output, item.video_path)
        else:
            raise TypeError(f"generator {item.model!r} returned {type(output).__name__}, not a Video or a file path")
        self.forget(item.video_path)
        self._put(item, "generated", identity=identity, placement=placement, seconds=seconds, generated=True)

    def given(self, item: WorkItem) -> None:
        self._put(item, "given")

    def not_applicable(self, item: WorkItem, message: str, *, identity: str | None) -> None:
        self._put(item, "not_applicable", message=message, identity=identity)

    def failed(self, item: WorkItem, stage: str, error: BaseException, *, identity: str | None = None) -> None:
        """Record the item as failed at ``stage`` with an error that names its case."""
        if isinstance(error, AnibenchError):
            error.with_context(case_id=item.case.id)
        self.store.record_failure(stage, error, item_id=item.item_id, case_id=item.case.id)
        self._put(item, "failed", message=f"{type(error).__name__}: {error}", identity=identity)

    def _put(self, item: WorkItem, status: str, *, message: str | None = None, identity: str | None = None,
             placement: Placement | None = None, seconds: float | None = None, generated: bool = False) -> None:
        sha = self.file_hash(item.video_path) if status in ("generated", "given") else None
        self.store.put_item(
            item.item_id, generated=generated, case_id=item.case.id, model=item.model,
            model_identity=identity if identity is not None else (item.generator.identity if item.generator else None),
            condition=item.condition.name if item.condition else None, seed=item.seed,
            label=item.case.label, style=item.case.style, video_path=str(self.relative(item.video_path)),
            video_sha256=sha, status=status, message=message, seconds=seconds,
            placement=placement.to_json() if placement is not None else None,
        )

    # -- scores -------------------------------------------------------------------------------
    def score(self, item_id: str, key: ScoreKey, result: ScoreResult, seconds: float,
              followers: Sequence[str] = ()) -> None:
        """Store a computed score under its content key; link it to ``item_id`` and its followers."""
        self.store.put_score(item_id, key, result.value, dict(result.details), seconds)
        for follower in followers:
            self.store.link_score(follower, key)

    def link(self, item_id: str, key: ScoreKey) -> None:
        self.store.link_score(item_id, key)

    def score_error(self, item: WorkItem, scorer: str, error: BaseException) -> None:
        """Record why (item, scorer) has no score: not applicable, or a failure naming the case and file."""
        if isinstance(error, AnibenchError):
            error.with_context(case_id=item.case.id)
        if isinstance(error, NotApplicable):
            self.store.put_item_score_status(item.item_id, scorer, "not_applicable", str(error))
            return
        self.store.record_failure("score", error, item_id=item.item_id, case_id=item.case.id, scorer=scorer,
                                  path=str(item.video_path))
        self.store.put_item_score_status(item.item_id, scorer, "failed", f"{type(error).__name__}: {error}")
