"""Tables of a :class:`~anibench.leaderboard.data.Board`: cells with intervals, counts and ranks.

Every cell aggregates the case-level values of one model, one group (a condition, an
action label, a style) and one scorer: seeds of a case are averaged first, so cases
are the unit of the bootstrap and of the paired tests. ``n`` counts the cases the
group should have, ``n_ok`` those with a value; the difference is always shown.

Rows per model: each condition, ``all`` (every case × condition pooled) and, when the
run has interpolation conditions (two or more guides), ``interp-avg`` (those pooled,
AniSora's "interpolated average").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from anibench.leaderboard.data import Board, direction, text_or_none
from anibench.leaderboard.stats import DEFAULT_ALPHA, bootstrap_ci, holm, paired_comparison, tied_ranks
from anibench.resources import load_yaml
from anibench.scoring import AGGREGATIONS, scorer_groups

ALL = "all"
INTERP = "interp-avg"
NO_GROUP = "(none)"  # the label / style group of cases that have none


@dataclass
class Cell:
    """A value with its 95 % interval, the cases it covers and its rank in its group.

    ``n`` cases in the group: ``n_ok`` with a value, ``n_na`` where the scorer does not
    apply (no guides, no mask), and the rest (:attr:`n_missing`) failed or unscored.
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    n_ok: int = 0
    n_na: int = 0
    rank: int | None = None

    @property
    def n_missing(self) -> int:
        return self.n - self.n_ok - self.n_na

    def scaled(self, factor: float) -> "Cell":
        scale = (lambda v: None if v is None else v * factor)
        return Cell(scale(self.value), scale(self.low), scale(self.high), self.n, self.n_ok, self.n_na, self.rank)


@dataclass
class Table:
    """Rows of key fields and cells; ``meta`` gives each column's direction and unit."""

    id: str
    title: str
    keys: list[str]
    columns: list[str]
    rows: list[tuple[dict[str, Any], dict[str, Cell]]] = field(default_factory=list)
    meta: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.rows


def case_values(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (model, condition, case, scorer): the seed-averaged value and the case's status.

    A case is ``ok`` when a seed has a value, ``not_applicable`` when no seed applies,
    ``failed`` otherwise (failed, unscored, NaN).
    """
    ok = frame.assign(
        value=frame["value"].where(frame["status"] == "ok"),
        is_ok=frame["status"].eq("ok"),
        is_na=frame["status"].eq("not_applicable"),
    )
    keys = ["model", "condition", "case_id", "label", "style", "scorer"]
    grouped = ok.groupby(keys, dropna=False).agg(value=("value", "mean"), any_ok=("is_ok", "any"), all_na=("is_na", "all"))
    grouped["status"] = np.where(grouped["any_ok"], "ok", np.where(grouped["all_na"], "not_applicable", "failed"))
    return grouped.drop(columns=["any_ok", "all_na"]).reset_index()


def interpolation_conditions(board: Board) -> list[str]:
    """Conditions with two or more guide positions (first-last, keyframes, ...)."""
    minimum = load_yaml("tables.yaml")["interpolation_min_guides"]
    found = set()
    for run in board.runs:
        for name, info in run.description.get("conditions", {}).items():
            positions = info.get("positions")
            if positions is not None and len(positions) >= minimum:
                found.add(name)
    return sorted(c for c in found if c in set(board.samples["condition"]))


def _cell(values: np.ndarray, statuses: np.ndarray, statistic: str, resamples: int) -> Cell:
    present = values[statuses == "ok"]
    n, n_na = int(values.size), int(np.sum(statuses == "not_applicable"))
    if present.size == 0:
        return Cell(None, n=n, n_ok=0, n_na=n_na)
    # Cells are over cases, the unit of the statistics: a scorer whose suite aggregate weighs clips
    # (VBench's frame-weighted consistency, in results.json) is shown here as the mean over cases.
    value = float(np.median(present)) if statistic == "median" else float(present.mean())
    low, high = bootstrap_ci(present, resamples=resamples) if statistic != "median" else (math.nan, math.nan)
    low = None if math.isnan(low) else low
    high = None if math.isnan(high) else high
    return Cell(value, low, high, n, int(present.size), n_na)


def grouped_table(
    board: Board,
    by: str = "condition",
    *,
    scorers: Sequence[str] | None = None,
    resamples: int = 1000,
    ranks: bool = True,
    alpha: float = DEFAULT_ALPHA,
) -> Table:
    """One row per (model, group); ``by`` is ``condition`` (with ``all``/``interp-avg`` rows), ``label`` or ``style``."""
    scorers = list(scorers) if scorers is not None else board.scorer_names()
    values = case_values(board.samples[board.samples["scorer"].isin(scorers)])
    groups: list[tuple[str, pd.DataFrame]] = []
    if by == "condition":
        for condition in sorted(values["condition"].unique()):
            groups.append((condition, values[values["condition"] == condition]))
        interp = interpolation_conditions(board)
        if len(interp) > 1:
            groups.append((INTERP, values[values["condition"].isin(interp)]))
        if values["condition"].nunique() > 1:
            groups.append((ALL, values))
    else:
        filled = values.assign(**{by: [text_or_none(v) or NO_GROUP for v in values[by]]})
        for group in sorted(filled[by].unique()):
            groups.append((group, filled[filled[by] == group]))
    title = {"condition": "Scores by model and condition", "label": "Scores by action label",
             "style": "Scores by style (2d / 3d)"}.get(by, f"Scores by {by}")
    table = Table(f"by-{by}", title, ["model", by], list(scorers), meta={s: board.scorers.get(s, {}) for s in scorers})
    models = board.models
    for group, frame in groups:
        rows = {m: ({"model": m, by: group}, {}) for m in models}
        by_scorer: dict[str, dict[str, pd.DataFrame]] = {}
        for (scorer, model), sub in frame.groupby(["scorer", "model"], sort=False):
            by_scorer.setdefault(scorer, {})[model] = sub
        for scorer in scorers:
            statistic = board.scorers.get(scorer, {}).get("aggregate", "mean")
            per_model = by_scorer.get(scorer, {})
            for model in models:
                sub = per_model.get(model)
                if sub is None or sub.empty or sub["status"].eq("not_applicable").all():
                    continue
                rows[model][1][scorer] = _cell(sub["value"].to_numpy(dtype=float), sub["status"].to_numpy(),
                                               statistic, resamples)
            if ranks and by == "condition":
                _rank(rows, per_model, scorer, board.scorers.get(scorer, {}), alpha)
        table.rows += [row for row in rows.values() if row[1]]
    descriptive = [s for s in scorers if direction(board.scorers.get(s)) is None and any(s in c for _, c in table.rows)]
    table.notes = ([f"descriptive, no better or worse (no rank, no arrow): {', '.join(descriptive)}"] if descriptive else [])
    table.notes += _coverage_notes(table)
    return table


def _rank(rows, per_model: Mapping[str, pd.DataFrame], scorer: str, meta: dict, alpha: float) -> None:
    """Tied ranks within one group: pairwise Wilcoxon on shared cases, Holm-adjusted."""
    models = [m for m in rows if scorer in rows[m][1] and rows[m][1][scorer].value is not None]
    higher = direction(meta)
    if len(models) < 2 or higher is None:  # a descriptive scorer has no better or worse, so no rank
        return
    series = {m: per_model[m][per_model[m]["status"] == "ok"].set_index(["case_id", "condition"])["value"] for m in models}
    pairs, pvalues = [], []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            shared = series[a].index.intersection(series[b].index)
            result = paired_comparison(series[a][shared].to_numpy(), series[b][shared].to_numpy(), resamples=0)
            pairs.append((a, b, result.delta))
            pvalues.append(result.p_value)
    adjusted = holm(pvalues)
    better: set[tuple[str, str]] = set()
    for (a, b, delta), p in zip(pairs, adjusted):
        if not math.isnan(p) and p < alpha and delta != 0:
            b_wins = (delta > 0) == higher
            better.add((b, a) if b_wins else (a, b))
    values = {m: rows[m][1][scorer].value for m in models}
    for model, rank in tied_ranks(models, values, higher, lambda x, y: (x, y) in better).items():
        rows[model][1][scorer].rank = rank


def _coverage_notes(table: Table) -> list[str]:
    notes = []
    for keys, cells in table.rows:
        for scorer, cell in cells.items():
            if cell.n_missing:
                where = ", ".join(f"{k}={v}" for k, v in keys.items())
                notes.append(f"{where}: {scorer} has no value for {cell.n_missing} of {cell.n} cases (failed or unscored)")
    return notes


def named_table(board: Board, which: str, *, resamples: int = 1000) -> Table:
    """A published table (``anisora`` or ``vbench``) by the scorers ``datasets/tables.yaml`` names
    (its ``columns``, or the members of its scorer ``group``)."""
    spec = load_yaml("tables.yaml")[which]
    wanted = list(spec["columns"]) if "columns" in spec else list(scorer_groups()[spec["group"]]["members"])
    present = [c for c in wanted if c in board.scorers]
    base = grouped_table(board, "condition", scorers=present, resamples=resamples) if present else None
    table = Table(which, spec["title"], ["model", "condition"], list(wanted),
                  meta={c: board.scorers.get(c, {}) for c in wanted})
    if base is not None:
        factor = spec.get("scale", 1)
        table.rows = [(keys, {c: cell.scaled(factor) for c, cell in cells.items()}) for keys, cells in base.rows]
        table.notes = base.notes
    missing = [c for c in wanted if c not in board.scorers]
    if missing:
        table.notes.insert(0, f"not in these runs: {', '.join(missing)}")
    if which == "anisora" and spec.get("human"):
        _add_human(board, table, spec["human"])
    if which == "vbench":
        _use_suite_aggregates(board, table)
        _add_vbench_totals(table)
    return table


def _add_human(board: Board, table: Table, column: str) -> None:
    if board.ratings is None:
        table.notes.append("no human ratings given (report --ratings ratings.csv)")
        return
    table.columns.append(column)
    table.meta[column] = {"higher_is_better": True, "unit": "rating"}
    ratings = board.ratings
    if not table.rows:  # no reward scores: one row per model and condition for the ratings alone
        conditions = board.conditions + ([ALL] if len(board.conditions) > 1 else [])
        table.rows = [({"model": m, "condition": c}, {}) for m in board.models for c in conditions]
    for keys, cells in table.rows:
        mask = ratings["model"] == keys["model"]
        if keys["condition"] not in (ALL, INTERP) and ratings["condition"].notna().any():
            mask &= ratings["condition"] == keys["condition"]
        per_case = ratings[mask].groupby("case_id")["rating"].mean().to_numpy(dtype=float)
        if per_case.size:
            cells[column] = _cell(per_case, np.full(per_case.size, "ok"), "mean", 1000)


def _row_samples(board: Board, keys: Mapping[str, str]) -> pd.DataFrame:
    """The sample records behind one (model, condition) row, ``all`` and ``interp-avg`` included."""
    frame = board.samples[board.samples["model"] == keys["model"]]
    condition = keys["condition"]
    if condition == INTERP:
        return frame[frame["condition"].isin(interpolation_conditions(board))]
    return frame if condition == ALL else frame[frame["condition"] == condition]


def _use_suite_aggregates(board: Board, table: Table) -> None:
    """Cells become each scorer's suite aggregate, as VBench computes it (frame-weighted consistency,
    imaging quality / 100, ...), over every clip of the row; intervals are kept only for plain means."""
    changed = set()
    for keys, cells in table.rows:
        rows = _row_samples(board, keys)
        for scorer, cell in cells.items():
            rule = board.scorers.get(scorer, {}).get("aggregate", "mean")
            if rule == "mean":
                continue
            ok = rows[(rows["scorer"] == scorer) & (rows["status"] == "ok")]
            values = ok["value"].to_numpy(dtype=float)
            keep = ~np.isnan(values)
            details = [d if isinstance(d, dict) else {} for d, k in zip(ok.get("details", [None] * len(ok)), keep) if k]
            cells[scorer] = Cell(AGGREGATIONS[rule](list(values[keep]), details) if keep.any() else None,
                                 n=cell.n, n_ok=cell.n_ok, n_na=cell.n_na, rank=cell.rank)
            changed.add(f"{scorer} ({rule})")
    if changed:
        table.notes.append("cells are VBench's aggregates over the row's clips, without intervals: "
                           + ", ".join(sorted(changed)))


def _add_vbench_totals(table: Table) -> None:
    """VBench's normalised totals (I2V quality, I2V score, total) where every dimension is present."""
    constants = load_yaml("vbench_constants.yaml")
    dims, totals = constants["dimensions"], constants["totals"]
    for name in totals:
        table.columns.append(name)
        table.meta[name] = {"higher_is_better": True, "unit": "normalised"}
    if not table.rows:
        table.notes.append(f"{', '.join(totals)} not computed: none of their dimensions is in these runs")
        return
    lacking: dict[str, set[str]] = {}
    for _, cells in table.rows:
        computed: dict[str, float] = {}
        for name, parts in totals.items():
            if isinstance(parts, dict):
                inputs = [computed.get(p) for p in parts["mean_of"]]
                if all(v is not None for v in inputs):
                    computed[name] = float(np.mean(inputs))
                else:
                    lacking.setdefault(name, set()).update(p for p in parts["mean_of"] if computed.get(p) is None)
                continue
            raw = {p: cells[p].value if p in cells else None for p in parts}
            if any(v is None for v in raw.values()):
                lacking.setdefault(name, set()).update(p for p, v in raw.items() if v is None)
                continue
            weighted = sum((raw[p] - dims[p]["min"]) / (dims[p]["max"] - dims[p]["min"]) * dims[p]["weight"] for p in parts)
            computed[name] = weighted / sum(dims[p]["weight"] for p in parts)
        for name, value in computed.items():
            cells[name] = Cell(value)
    for name, parts in sorted(lacking.items()):
        table.notes.append(f"{name} not computed: no value for {', '.join(sorted(parts))} "
                           "(VBench would count a missing dimension as 0; anibench leaves the total empty)")


def guide_table(board: Board, scorer: str = "guide_psnr") -> Table:
    """Keyframe adherence: ``scorer``'s per-guide values averaged per (model, condition, guide position)."""
    values: dict[tuple[str, str], dict[float, list[float]]] = {}
    frame = board.samples
    if "details" not in frame:
        return Table("guides", "Keyframe adherence", ["model", "condition"], [])
    for model, condition, status, details, name in zip(frame["model"], frame["condition"], frame["status"],
                                                       frame["details"], frame["scorer"]):
        if name != scorer or status != "ok" or not isinstance(details, dict):
            continue
        for guide in details.get("per_guide", []):
            values.setdefault((model, condition), {}).setdefault(guide["position"], []).append(guide["value"])
    positions = sorted({p for per in values.values() for p in per})
    columns = [f"@{p:g}" for p in positions]
    unit = board.scorers.get(scorer, {}).get("unit", "")
    table = Table("guides", f"Keyframe adherence: {scorer} at each guide position", ["model", "condition"], columns,
                  meta={c: {"higher_is_better": True, "unit": unit} for c in columns})
    for (model, condition), per in sorted(values.items()):
        cells = {f"@{p:g}": Cell(float(np.mean(v)), n=len(v), n_ok=len(v)) for p, v in per.items()}
        table.rows.append(({"model": model, "condition": condition}, cells))
    return table


def all_tables(board: Board, breakdowns: Iterable[str] = ("condition", "label", "style"), resamples: int = 1000) -> list[Table]:
    """Every table of a report: by condition (ranked), the breakdowns, keyframe adherence, AniSora, VBench."""
    tables = [grouped_table(board, by, resamples=resamples, ranks=(by == "condition")) for by in breakdowns]
    guides = guide_table(board)
    if not guides.empty:
        tables.append(guides)
    tables += [named_table(board, "anisora", resamples=resamples), named_table(board, "vbench", resamples=resamples)]
    return tables
