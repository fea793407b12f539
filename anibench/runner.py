"""Entry points for whole runs: :func:`run` (generate + score a suite) and :func:`score_videos`.

Both write a run directory (see :mod:`anibench.results`) and return the results
payload that is also saved as ``results.json``. Rerunning with the same directory
resumes: clips already generated are kept and scores already stored are reused.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from anibench.conditions import get_condition
from anibench.engine import Engine, resolve_scorers
from anibench.errors import InputError
from anibench.fsutil import remove_stale_temporaries
from anibench.executor import ProgressFn
from anibench.planning import WorkItem, generator_refs, plan_files, plan_run
from anibench.provenance import environment, git_state, library_versions
from anibench.results import (
    RESULTS_FILE, RUN_ITEMS_META, RUN_META, aggregate, sample_records, write_json_atomic, write_samples,
)
from anibench.runspec import PluginSpec, RunSpec, check_model_name
from anibench.runtime.context import Runtime
from anibench.scoring import Scorer
from anibench.store import RunLock
from anibench.suite import Suite, printable
from anibench.suites import load_suite
from anibench.suites.prompt_files import VIDEO_SUFFIXES

DEFAULT_WORKERS = 2


def run(
    spec: RunSpec,
    run_dir: str | Path,
    *,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressFn | None = None,
    command: str = "",
    runtime: Runtime | None = None,
) -> dict[str, Any]:
    """Generate every (case, generator, condition, seed) clip of ``spec`` and score it."""
    run_dir = Path(run_dir).resolve()
    runtime = runtime or Runtime()
    generators = generator_refs(spec, runtime)  # unknown plugin names fail before the suite is loaded
    for ref in generators:  # a generator without its weights stops the run before anything is generated
        error = ref.create(runtime).missing_weights(runtime)
        if error is not None:
            raise error
    scorers, skipped = resolve_scorers(spec.scorers)
    suite = load_suite(spec.suite)
    items = plan_run(spec, suite, run_dir, generators)
    config = {"kind": "run", **spec.to_dict()}
    described = {ref.label: ref.create(runtime).describe() for ref in generators}
    return _execute(run_dir, items, suite, scorers, skipped, config, described, workers, progress, command, runtime)


def score_videos(
    paths: Sequence[str | Path],
    run_dir: str | Path,
    *,
    model: str,
    suite: str | Suite | None = None,
    condition: str | None = None,
    scorers: Sequence[str | PluginSpec] | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressFn | None = None,
    command: str = "",
    runtime: Runtime | None = None,
) -> dict[str, Any]:
    """Score existing clips (files or folders of them); with a suite, clips match cases by file stem."""
    run_dir = Path(run_dir).resolve()
    check_model_name(model)
    files = _expand_videos(paths)
    loaded = load_suite(suite) if isinstance(suite, str) else suite
    items = plan_files(files, model, loaded, get_condition(condition) if condition else None)
    scorer_objects, skipped = resolve_scorers([PluginSpec.parse(s) for s in scorers] if scorers else None)
    config = {
        "kind": "score",
        "videos": [printable(str(p)) for p in files],
        "model": model,
        "suite": loaded.describe() if loaded else None,
        "condition": condition,
        "scorers": [s.name for s in scorer_objects],
    }
    return _execute(run_dir, items, loaded, scorer_objects, skipped, config, {}, workers, progress, command,
                    runtime or Runtime())


def _execute(run_dir: Path, items: Sequence[WorkItem], suite: Suite | None, scorers: Sequence[Scorer],
             skipped: dict[str, str], config: dict, generators: dict, workers: int,
             progress: ProgressFn | None, command: str, runtime: Runtime) -> dict[str, Any]:
    """Run ``items`` into ``run_dir`` under its lock; the description is stored first so an
    interrupted run can still be reported (partially)."""
    with RunLock(run_dir):
        remove_stale_temporaries(run_dir)  # under the lock, every temporary here is a killed write's
        engine = Engine(run_dir, scorers, suite=suite, runtime=runtime, workers=workers, progress=progress)
        try:
            description = _describe(items, suite, config, generators, engine.scorers, skipped, runtime)
            engine.store.set_meta(RUN_META, description)
            engine.store.set_meta(RUN_ITEMS_META, [i.item_id for i in items])
            started = time.perf_counter()
            engine.execute(items, command)
            payload = _finalize(engine, items, description, time.perf_counter() - started)
            engine.store.finish()  # settled: readable from read-only folders without -wal/-shm files
            return payload
        finally:
            engine.store.close()


def _describe(items: Sequence[WorkItem], suite: Suite | None, config: dict, generators: dict,
              scorers: Sequence[Scorer], skipped: dict[str, str], runtime: Runtime) -> dict[str, Any]:
    """What the run is: config, suite, conditions, plugins, the cases it covers, provenance."""
    cases = {item.case.id: item.case.describe() for item in items}
    return {
        "anibench_version": library_versions()["anibench"],
        "config": config,
        "suite": suite.describe() if suite else None,
        "conditions": {
            c.name: {"positions": c.positions, "mask": c.use_mask, "description": c.description}
            for c in {i.condition for i in items if i.condition is not None}
        },
        "generators": generators,
        "scorers": {s.name: s.describe(runtime) for s in scorers},
        "skipped_scorers": skipped,
        "cases": dict(sorted(cases.items())),
        "provenance": {"versions": library_versions(), "git": git_state(), "environment": environment(),
                       "runtime": runtime.describe()},
    }


def _expand_videos(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
        else:
            files.append(path)  # a missing file is recorded as that item's failure
    if not files:
        raise InputError(f"no video files in {', '.join(map(str, paths))}")
    return files


def _finalize(engine: Engine, items: Sequence[WorkItem], description: dict, seconds: float) -> dict[str, Any]:
    store = engine.store
    scorer_meta = description["scorers"]
    item_ids = {i.item_id for i in items}
    records = sample_records(store, [i.item_id for i in items], scorer_meta)
    write_samples(engine.run_dir, records)
    invocation = store.invocations()[-1]
    statuses = [r for r in store.items() if r["item_id"] in item_ids]
    payload = {
        **description,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(engine.run_dir),
        "counts": {
            "items": len(items),
            "items_by_status": _count(r["status"] for r in statuses),
            "scores_by_status": _count(r["status"] for r in records),
            "this_invocation": {k: invocation[k] for k in ("generated", "computed", "reused")},
            "invocations": len(store.invocations()),
        },
        "timings": _timings(store, item_ids, statuses, seconds),
        "results": aggregate(records, scorer_meta),
        "failures": [
            {k: r[k] for k in ("item_id", "case_id", "model", "condition", "scorer", "status", "message")}
            for r in records
            if r["status"] in ("failed", "missing")
        ],
    }
    write_json_atomic(engine.run_dir / RESULTS_FILE, payload)
    return payload


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def _timings(store, item_ids: set[str], items: list[dict], seconds: float) -> dict[str, Any]:
    """Wall time of this invocation, and stored mean seconds per clip by generator and by scorer."""
    per_scorer: dict[str, list[float]] = {}
    for row in store.item_scores():
        if row["item_id"] in item_ids and row["status"] == "ok" and row["seconds"] is not None:
            per_scorer.setdefault(row["scorer"], []).append(row["seconds"])
    generation: dict[str, list[float]] = {}
    for item in items:
        if item["seconds"] is not None:
            generation.setdefault(item["model"], []).append(item["seconds"])
    return {
        "invocation_seconds": round(seconds, 3),
        "generation_seconds_per_clip": {m: round(sum(v) / len(v), 4) for m, v in sorted(generation.items())},
        "scorer_seconds_per_clip": {s: round(sum(v) / len(v), 4) for s, v in sorted(per_scorer.items())},
    }
