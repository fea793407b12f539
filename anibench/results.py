"""Reading a run's store into per-sample records and per-model aggregates.

This is the one place that knows how a run directory's results are laid out; the
report and the leaderboard consume it rather than the SQLite file:

    RUN_DIR/anibench.sqlite   the store (:mod:`anibench.store`)
    RUN_DIR/samples.jsonl     one line per (clip, scorer), sorted, rewritten at the end of a run
    RUN_DIR/results.json      config, provenance, counts, timings and aggregates
    RUN_DIR/videos/...        generated clips
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from anibench.errors import InputError
from anibench.fsutil import atomic_open, write_json
from anibench.scoring import AGGREGATIONS
from anibench.store import RunLock, RunStore

ALL_CONDITIONS = "all"
RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"
RUN_META = "run"  # the run's description, stored before it starts
RUN_ITEMS_META = "run_items"  # the item ids it plans


def sample_records(store: RunStore, item_ids: Iterable[str] | None = None, scorers: Iterable[str] | None = None) -> list[dict]:
    """One record per (item, scorer): the value or why there is none.

    Items that failed or did not apply before scoring get a record per scorer with that
    status, so nothing is silently dropped from counts.
    """
    wanted = set(item_ids) if item_ids is not None else None
    items = {row["item_id"]: row for row in store.items() if wanted is None or row["item_id"] in wanted}
    scorer_names = list(scorers) if scorers is not None else None
    by_pair = {(r["item_id"], r["scorer"]): r for r in store.item_scores() if r["item_id"] in items}
    if scorer_names is None:
        scorer_names = sorted({scorer for _, scorer in by_pair})
    records = []
    for item_id in sorted(items):
        item = items[item_id]
        for scorer in scorer_names:
            record = {
                "item_id": item_id,
                "case_id": item["case_id"],
                "model": item["model"],
                "condition": item["condition"],
                "seed": item["seed"],
                "label": item["label"],
                "style": item["style"],
                "video": item["video_path"],
                "video_sha256": item["video_sha256"],
                "scorer": scorer,
            }
            score = by_pair.get((item_id, scorer))
            if item["status"] not in ("generated", "given"):
                record.update(status=item["status"], value=None, message=item["message"], details={})
            elif score is None:
                record.update(status="missing", value=None, message="not scored yet", details={})
            else:
                record.update(
                    status=score["status"],
                    value=score["value"] if score["status"] == "ok" else None,
                    message=score["message"],
                    details=score["details"] if score["status"] == "ok" else {},
                    scorer_version=score["version"],
                    params_hash=score["params_hash"],
                    inputs_hash=score["inputs_hash"],
                )
            records.append(record)
    return records


def aggregate(records: Iterable[Mapping[str, Any]], scorers: Mapping[str, Mapping[str, Any]]) -> dict:
    """{model: {condition or "all": {scorer: {value, n, n_ok, n_failed, n_not_applicable, ...}}}}.

    ``value`` applies the scorer's aggregate rule to its ok values; NaN values count as
    failures. ``scorers`` maps names to their ``Scorer.describe()``.
    """
    groups: dict[tuple[str, str, str], list[Mapping]] = defaultdict(list)
    for record in records:
        for condition in (record["condition"] or "-", ALL_CONDITIONS):
            groups[(record["model"], condition, record["scorer"])].append(record)
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for (model, condition, scorer), group in sorted(groups.items()):
        meta = scorers.get(scorer, {})
        scored = [r for r in group if r["status"] == "ok" and r["value"] is not None and not math.isnan(r["value"])]
        values = [r["value"] for r in scored]
        rule = meta.get("aggregate", "mean")
        failed = sum(1 for r in group if r["status"] in ("failed", "missing")) + sum(
            1 for r in group if r["status"] == "ok" and (r["value"] is None or math.isnan(r["value"]))
        )
        out[model][condition][scorer] = {
            "value": AGGREGATIONS[rule](values, [r.get("details") or {} for r in scored]) if values else None,
            "aggregate": rule,
            "n": len(group),
            "n_ok": len(values),
            "n_failed": failed,
            "n_not_applicable": sum(1 for r in group if r["status"] == "not_applicable"),
            "higher_is_better": meta.get("higher_is_better"),
            "unit": meta.get("unit", ""),
        }
    return {model: dict(conds) for model, conds in out.items()}


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``results.json`` (or any JSON) atomically and durably, permissions from the umask."""
    write_json(path, payload, durable=True)


def write_samples(run_dir: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``samples.jsonl`` atomically and durably, permissions from the umask."""
    path = Path(run_dir) / SAMPLES_FILE
    with atomic_open(path, "w", durable=True) as fh:
        for record in records:
            fh.write(json.dumps(record, sort_keys=True, ensure_ascii=False, default=str) + "\n")
    return path


@dataclass
class RunData:
    """Everything a consumer (report, leaderboard, gate) reads from a run directory.

    ``description`` holds config, suite, conditions, generators, scorers (their
    ``describe()``), cases and provenance; ``records`` the per-(clip, scorer) samples;
    ``guides`` the guide frames per (condition, case). ``complete`` is False for a run
    read while in progress or after an interruption (``partial=True``).
    """

    run_dir: Path
    description: dict
    records: list[dict]
    guides: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    complete: bool = True
    in_progress: bool = False
    label: str | None = None  # shown instead of the folder's name where two runs share one

    @property
    def name(self) -> str:
        return self.label or self.run_dir.name

    @property
    def scorers(self) -> dict[str, dict]:
        return self.description.get("scorers", {})

    @property
    def cases(self) -> dict[str, dict]:
        return self.description.get("cases", {})


def load_run(run_dir: str | Path, *, partial: bool = False) -> RunData:
    """Read a run directory without writing anything. A finished run reads ``results.json`` and ``samples.jsonl``.

    A run still in progress, or interrupted, is refused with a clear message unless
    ``partial``: then what its store holds so far is read, and unscored clips show as
    ``missing``. Reading never takes the run lock (it only probes it) and opens the store
    read-only (:class:`~anibench.store.RunStore`), so runs in read-only folders, on
    read-only mounts and of other users can be read. Damaged or foreign files are an
    :class:`InputError` naming the file and what to do.
    """
    run_dir = _run_dir(run_dir)
    in_progress = RunLock.is_held(run_dir)
    finished = (run_dir / RESULTS_FILE).is_file() and not in_progress
    if not finished and not partial:
        state = "is still in progress" if in_progress else "was interrupted (rerun it to finish)"
        raise InputError(f"the run {state}; pass --partial to report what it holds so far", path=run_dir)
    store = RunStore.in_dir(run_dir, readonly=True, writer_active=in_progress)
    try:
        if finished:
            restarted = InputError("the run was restarted while it was being read; report it when it has finished",
                                   path=run_dir)
            try:
                data = RunData(run_dir, _read_results(run_dir), _read_samples(run_dir), store.guides())
            except InputError:
                if RunLock.is_held(run_dir):  # a writer changing the files explains what was read
                    raise restarted from None
                raise
            if RunLock.is_held(run_dir):
                raise restarted
            return data
        description = store.get_meta(RUN_META)
        if not isinstance(description, dict):
            raise InputError("the run has not recorded what it is yet", path=run_dir)
        records = sample_records(store, store.get_meta(RUN_ITEMS_META), description.get("scorers"))
        return RunData(run_dir, description, records, store.guides(), complete=False, in_progress=in_progress)
    finally:
        store.close()


def load_results(run_dir: str | Path) -> dict:
    """The ``results.json`` of a finished run."""
    _finished(run_dir, RESULTS_FILE)
    return _read_results(Path(run_dir))


def load_samples(run_dir: str | Path) -> list[dict]:
    """The per-sample records of a finished run (``samples.jsonl``)."""
    _finished(run_dir, SAMPLES_FILE)
    return _read_samples(Path(run_dir))


REWRITE_HINT = "rerun the run's command (anibench run/score with the same --out) to resume and rewrite it"
SAMPLE_FIELDS = ("case_id", "model", "scorer", "status")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"the run has no {path.name}: it was interrupted; {REWRITE_HINT}", path=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (byte {exc.start}); the file is damaged: {REWRITE_HINT}", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror})", path=path) from None


def _read_results(run_dir: Path) -> dict:
    path = run_dir / RESULTS_FILE
    try:
        payload = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); the file is damaged: "
                         f"{REWRITE_HINT}", path=path) from None
    problem = None
    if not isinstance(payload, dict):
        problem = f"holds a JSON {type(payload).__name__}, not the run's description"
    else:
        wrong = [key for key in ("scorers", "cases", "conditions", "config") if not isinstance(payload.get(key, {}), dict)]
        if wrong:
            problem = f"has {', '.join(wrong)} of the wrong type"
    if problem:
        raise InputError(f"{problem}; the file is damaged or not anibench's: {REWRITE_HINT}", path=path)
    return payload


def _read_samples(run_dir: Path) -> list[dict]:
    """``samples.jsonl``, one record per line; a bad line is an error naming its number."""
    path = run_dir / SAMPLES_FILE
    records = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number} is not valid JSON (column {exc.colno}: {exc.msg}); the file is damaged: "
                             f"{REWRITE_HINT}", path=path) from None
        missing = [f for f in SAMPLE_FIELDS if not isinstance(record, dict) or not isinstance(record.get(f), str)]
        if missing:
            raise InputError(f"line {number} is not a sample record (no text {', '.join(missing)}); the file is damaged: "
                             f"{REWRITE_HINT}", path=path)
        records.append(record)
    return records


def _run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` resolved, or a clear error when it is not a run directory."""
    run_dir = Path(run_dir).resolve()
    if not run_dir.exists():
        raise InputError("not a run directory (no such folder)", path=run_dir)
    if not run_dir.is_dir():
        raise InputError("not a run directory (a file, not a folder)", path=run_dir)
    if not (run_dir / RunStore.FILENAME).is_file():
        raise InputError("not a run directory (no anibench.sqlite)", path=run_dir)
    return run_dir


def _finished(run_dir: str | Path, name: str) -> Path:
    """``run_dir/name``, or a clear error when the run is still running or never finished."""
    run_dir = _run_dir(run_dir)
    if RunLock.is_held(run_dir):
        raise InputError("the run is still in progress; report it when it has finished", path=run_dir)
    if not (run_dir / name).is_file():
        raise InputError(f"the run has no {name}: it was interrupted; rerun it to resume and finish", path=run_dir)
    return run_dir / name
