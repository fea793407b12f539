"""Loading runs into one board of samples, checking they can be compared.

A :class:`Board` is the long table every leaderboard view is computed from: one row per
(run, model, condition, case, seed, scorer) with the value or why there is none. Runs
that cannot be used (still in progress, interrupted, empty, not a run) are listed in
``excluded`` with the reason; everything else that is missing (scorers, cases, NaN
values) is kept and counted, never silently dropped.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from anibench.errors import InputError
from anibench.results import RunData, load_run

SAMPLE_COLUMNS = ["run", "model", "condition", "case_id", "seed", "label", "style", "scorer", "value", "status",
                  "message", "video", "item_id"]


def direction(meta: dict | None) -> bool | None:
    """A scorer's ``higher_is_better``: True, False, or None for a descriptive scorer (a measured property
    with no better or worse, e.g. an animation cadence). Metadata without the key count as higher-is-better."""
    return (meta or {}).get("higher_is_better", True)


@dataclass
class Board:
    """Samples of one or more runs, with their scorers' metadata and what had to be left out."""

    samples: pd.DataFrame
    scorers: dict[str, dict]
    runs: list[RunData]
    excluded: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ratings: pd.DataFrame | None = None

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.samples["model"]))

    @property
    def conditions(self) -> list[str]:
        return sorted(set(self.samples["condition"]))

    def scorer_names(self) -> list[str]:
        return sorted(self.scorers)


def load_board(
    run_dirs: Sequence[str | Path],
    *,
    partial: bool = False,
    intersect: bool = False,
    ratings: str | Path | None = None,
) -> Board:
    """Read runs into a :class:`Board`.

    Runs over different (case, condition) sets are refused unless ``intersect``, which
    keeps the shared pairs only and says how many were dropped. A model name used by
    several runs is qualified as ``model@run``.
    """
    runs, excluded = [], []
    seen: set[Path] = set()
    for run_dir in run_dirs:
        if Path(run_dir).resolve() in seen:
            excluded.append((str(run_dir), "given twice; it is reported once"))
            continue
        seen.add(Path(run_dir).resolve())
        try:
            run = load_run(run_dir, partial=partial)
        except InputError as exc:
            excluded.append((str(run_dir), str(exc)))
            continue
        if not run.records:
            excluded.append((str(run_dir), f"run {run.name} has no clips"))
            continue
        runs.append(run)
    if not runs:
        reasons = "; ".join(reason for _, reason in excluded) or "no run directories given"
        raise InputError(f"nothing to report: {reasons}")
    _label_runs(runs)

    notes = [f"run {run.name} is incomplete: clips not yet scored show as missing" for run in runs if not run.complete]
    frames = [_frame(run) for run in runs]
    _qualify_shared_models(frames, runs, notes)
    samples = pd.concat(frames, ignore_index=True)
    samples = _check_coverage(samples, runs, intersect, notes)
    nan = samples["status"].eq("ok") & samples["value"].isna()
    if nan.any():
        samples.loc[nan, ["status", "message"]] = ["failed", "the scorer returned NaN"]
        notes.append(f"{int(nan.sum())} score(s) were NaN and count as failed")
    scorers: dict[str, dict] = {}
    for run in runs:
        for name, meta in run.scorers.items():
            scorers.setdefault(name, meta)
        missing = sorted(set(samples["scorer"]) - set(run.scorers))
        if missing:
            notes.append(f"run {run.name} has no {', '.join(missing)}")
    board = Board(samples, scorers, runs, excluded, notes)
    if ratings:
        board.ratings = load_ratings(ratings)
    return board


def _label_runs(runs: list[RunData]) -> None:
    """Runs in folders of the same name (``a/smoke``, ``b/smoke``) are told apart by their parent folders."""
    for depth in (2, 3, None):
        names = [run.name for run in runs]
        clashing = {name for name in names if names.count(name) > 1}
        if not clashing:
            return
        for run in runs:
            if run.name in clashing:
                parts = run.run_dir.parts
                run.label = "/".join(parts[-depth:]) if depth else str(run.run_dir)


def _frame(run: RunData) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(run.records)
    for column in SAMPLE_COLUMNS:
        if column not in frame:
            frame[column] = None
    frame["run"] = run.name
    prefix = str(run.run_dir) + os.sep
    frame["video"] = [prefix + v if isinstance(v, str) else None for v in frame["video"]]
    frame["condition"] = [c if isinstance(c, str) and c else "none" for c in frame["condition"]]
    for column in ("label", "style"):  # a case without a label or style has None, never NaN or ""
        frame[column] = pd.Series([text_or_none(v) for v in frame[column]], index=frame.index, dtype=object)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame[SAMPLE_COLUMNS + (["details"] if "details" in frame else [])]


def text_or_none(value: object) -> str | None:
    """A label or style as text, or None where a case has none (None, NaN, empty)."""
    return value if isinstance(value, str) and value else None


def _qualify_shared_models(frames: list[pd.DataFrame], runs: list[RunData], notes: list[str]) -> None:
    seen: dict[str, list[int]] = {}
    for i, frame in enumerate(frames):
        for model in frame["model"].unique():
            seen.setdefault(model, []).append(i)
    for model, owners in seen.items():
        if len(owners) > 1:
            for i in owners:
                frames[i].loc[frames[i]["model"] == model, "model"] = f"{model}@{runs[i].name}"
            notes.append(f"model {model} appears in several runs: shown as {model}@<run>")


def _check_coverage(samples: pd.DataFrame, runs: list[RunData], intersect: bool, notes: list[str]) -> pd.DataFrame:
    """Refuse (or intersect) runs whose (case, condition) pairs differ."""
    if len(runs) < 2:
        return samples
    pairs = {
        run.name: set(zip(samples.loc[samples["run"] == run.name, "case_id"],
                          samples.loc[samples["run"] == run.name, "condition"]))
        for run in runs
    }
    shared = set.intersection(*pairs.values())
    if all(p == shared for p in pairs.values()):
        return samples
    if not shared:
        raise InputError("the runs share no (case, condition) pair, so nothing can be put side by side: "
                         + "; ".join(f"{name} has {_describe_pairs(p)}" for name, p in pairs.items()))
    differences = "; ".join(f"{name}: {len(p - shared)} (case, condition) pair(s) not in every run"
                            for name, p in pairs.items() if p != shared)
    if not intersect:
        suites = {run.name: (run.description.get("suite") or {}).get("name") for run in runs}
        raise InputError(
            f"the runs cover different cases or conditions ({differences}; suites {suites}). "
            "Pass --intersect to compare only the pairs every run has"
        )
    keep = [(c, k) in shared for c, k in zip(samples["case_id"], samples["condition"])]
    dropped = len(samples) - sum(keep)
    notes.append(f"--intersect: kept the {len(shared)} (case, condition) pairs every run has; "
                 f"dropped {dropped} sample(s) ({differences})")
    return samples[keep].reset_index(drop=True)


def _describe_pairs(pairs: set[tuple[str, str]], shown: int = 3) -> str:
    """``4 cases (a, b, c, …) under i2v, first-last``."""
    cases = sorted({case for case, _ in pairs})
    conditions = sorted({condition for _, condition in pairs})
    listed = ", ".join(cases[:shown]) + (", …" if len(cases) > shown else "")
    return f"{len(cases)} case(s) ({listed}) under {', '.join(conditions)}"


def load_ratings(path: str | Path) -> pd.DataFrame:
    """Human ratings: a CSV with ``model``, ``case_id`` and ``rating`` (optional ``condition``, ``rater``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("ratings file not found", path=path)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    needed = {"model", "case_id", "rating"}
    if not rows or not needed <= set(rows[0]):
        raise InputError(f"ratings CSV needs the columns {sorted(needed)}", path=path)
    frame = pd.DataFrame(rows)
    frame["rating"] = pd.to_numeric(frame["rating"], errors="coerce")
    bad = frame["rating"].isna() | frame["rating"].map(lambda v: isinstance(v, float) and math.isinf(v))
    if bad.any():
        raise InputError(f"{int(bad.sum())} rating(s) are not numbers (first on row {int(bad.idxmax()) + 2})", path=path)
    if "condition" not in frame:
        frame["condition"] = None
    return frame
