"""Comparing two runs (or two models) and gating a candidate against a baseline.

A comparison pairs the two models' case values (seeds averaged) on the (case,
condition) pairs both scored, per scorer, per condition and pooled over conditions
(``all``): the mean difference ``b − a`` with its paired-bootstrap 95 % interval, the
Wilcoxon signed-rank p-value, and that p-value Holm-adjusted over every test of the
comparison (descriptive scorers' tests form a family of their own). The gate fails a
scorer when the candidate is worse by more than the allowed drop *and* the adjusted
p-value is below alpha; a scorer the baseline has and the candidate lacks fails unless
missing scorers are allowed. Descriptive scorers
(``higher_is_better = None``: a measured property with no better or worse) are compared —
the delta, its interval and p-value — but get no verdict and are never gated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from anibench.errors import InputError
from anibench.leaderboard.data import Board, direction, load_board
from anibench.leaderboard.options import OptionError, check_alpha, check_drop, check_scorers
from anibench.leaderboard.stats import DEFAULT_ALPHA, holm, paired_comparison
from anibench.leaderboard.tables import ALL, case_values


@dataclass
class Comparison:
    """One scorer in one condition: model ``a`` (baseline) against model ``b`` (candidate)."""

    scorer: str
    condition: str
    model_a: str
    model_b: str
    a: float | None = None
    b: float | None = None
    delta: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    n: int = 0
    n_a: int = 0
    n_b: int = 0
    higher_is_better: bool | None = True
    unit: str = ""
    missing: str | None = None

    @property
    def descriptive(self) -> bool:
        """The scorer measures a property with no better or worse (``higher_is_better`` is None)."""
        return self.higher_is_better is None

    @property
    def worsening(self) -> float | None:
        """How much worse ``b`` is than ``a`` in the scorer's direction (negative: better; None: descriptive)."""
        if self.delta is None or self.descriptive:
            return None
        return -self.delta if self.higher_is_better else self.delta

    def verdict(self, alpha: float = DEFAULT_ALPHA) -> str:
        if self.missing:
            return self.missing
        if self.descriptive:
            return "– (descriptive: no better or worse)"
        if self.p_adjusted is None or math.isnan(self.p_adjusted) or self.p_adjusted >= alpha or not self.worsening:
            return "no significant difference"
        return "worse" if self.worsening > 0 else "better"


@dataclass
class ComparisonSet:
    """The comparisons, the board's notes, and every scorer either run has (name → description)."""

    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)
    scorers: dict[str, dict] = field(default_factory=dict)


def _pairs(board: Board, runs: tuple[str, str], model_a: str | None, model_b: str | None) -> list[tuple[str, str]]:
    """Which models to compare: as named, else the names both runs share, else the only model of each."""
    models = {run: list(dict.fromkeys(board.samples.loc[board.samples["run"] == run, "model"])) for run in runs}
    a_models, b_models = models[runs[0]], models[runs[1]]
    if model_a or model_b:
        a = _resolve(model_a, a_models, "baseline/A") if model_a else _only(a_models, "A")
        b = _resolve(model_b, b_models, "candidate/B") if model_b else _only(b_models, "B")
        return [(a, b)]
    shared = [m for m in a_models if m.split("@")[0] in {x.split("@")[0] for x in b_models}]
    if shared:
        return [(m, next(x for x in b_models if x.split("@")[0] == m.split("@")[0])) for m in shared]
    if len(a_models) == 1 and len(b_models) == 1:
        return [(a_models[0], b_models[0])]
    raise InputError(f"name the models to compare (--model-a/--model-b): A has {a_models}, B has {b_models}")


def _resolve(name: str, available: list[str], side: str) -> str:
    for model in available:
        if model == name or model.split("@")[0] == name:
            return model
    raise InputError(f"{side} has no model {name!r}; it has {available}")


def _only(available: list[str], side: str) -> str:
    if len(available) != 1:
        raise InputError(f"run {side} has several models {available}; name one")
    return available[0]


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    model_a: str | None = None,
    model_b: str | None = None,
    partial: bool = False,
    intersect: bool = False,
    per_condition: bool = True,
    scorers: Sequence[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    resamples: int = 1000,
) -> ComparisonSet:
    """Compare run ``a`` (baseline) with run ``b`` (candidate); the same directory twice compares two of its models.

    Raises :class:`~anibench.errors.InputError` when a run cannot be read and
    :class:`~.options.OptionError` for an ``alpha`` outside (0, 1) or a scorer neither run has.
    """
    check_alpha(alpha)
    same = Path(run_a).resolve() == Path(run_b).resolve()
    board = load_board([run_a] if same else [run_a, run_b], partial=partial, intersect=intersect)
    for path, reason in board.excluded:
        side = "A (baseline)" if Path(path).resolve() == Path(run_a).resolve() else "B (candidate)"
        raise InputError(f"run {side} cannot be compared: {reason}")
    names = (board.runs[0].name, board.runs[0].name if same else board.runs[1].name)
    if scorers:
        check_scorers("--scorer", scorers, board.scorers)
    pairs = _pairs(board, names, model_a, model_b)
    values = case_values(board.samples)
    wanted = set(scorers) if scorers else None
    out: list[Comparison] = []
    for a, b in pairs:
        if same and a == b:
            models = board.models
            if len(models) == 1:
                raise InputError(f"A and B are the same run, which has one model ({a}): compare it with another run, "
                                 "or compare two models of one run with --model-a/--model-b", path=board.runs[0].run_dir)
            raise InputError(f"comparing model {a!r} of one run with itself; name two models (it has {models})",
                             path=board.runs[0].run_dir)
        for scorer in sorted(set(board.samples["scorer"])):
            if wanted is not None and scorer not in wanted:
                continue
            out += _compare_scorer(board, values, scorer, a, b, names, per_condition, resamples)
    for descriptive in (False, True):  # descriptive scorers are a family apart: they never weigh on a verdict
        tested = [c for c in out if c.descriptive == descriptive and c.p_value is not None and not math.isnan(c.p_value)]
        for c, adjusted in zip(tested, holm([c.p_value for c in tested])):
            c.p_adjusted = adjusted
    compared = {name: meta for name, meta in board.scorers.items() if wanted is None or name in wanted}
    return ComparisonSet(out, list(board.notes), compared)


def _compare_scorer(board: Board, values: pd.DataFrame, scorer: str, a: str, b: str, runs: tuple[str, str],
                    per_condition: bool, resamples: int) -> list[Comparison]:
    meta = board.scorers.get(scorer, {})
    base = dict(scorer=scorer, model_a=a, model_b=b, higher_is_better=direction(meta), unit=meta.get("unit", ""))
    for side, run in (("A", runs[0]), ("B", runs[1])):
        if scorer not in next(r for r in board.runs if r.name == run).scorers:
            return [Comparison(condition=ALL, **base, missing=f"missing in {side} (run {run})")]
    sub = values[(values["scorer"] == scorer) & values["model"].isin([a, b])]
    ok = sub[sub["status"] == "ok"].set_index(["model", "condition", "case_id"])["value"]
    conditions = sorted(set(sub["condition"])) if per_condition else []
    comparisons = []
    for condition in conditions + [ALL]:
        take = (lambda s: s) if condition == ALL else (lambda s, c=condition: s[s.index.get_level_values(0) == c])
        side_a = take(ok[a] if a in ok.index.get_level_values(0) else pd.Series(dtype=float))
        side_b = take(ok[b] if b in ok.index.get_level_values(0) else pd.Series(dtype=float))
        shared = side_a.index.intersection(side_b.index)
        if len(side_a) == 0 and len(side_b) == 0:
            continue
        result = paired_comparison(side_a[shared].to_numpy(), side_b[shared].to_numpy(), resamples=resamples)
        comparisons.append(Comparison(
            condition=condition, **base,
            a=float(side_a.mean()) if len(side_a) else None, b=float(side_b.mean()) if len(side_b) else None,
            delta=None if math.isnan(result.delta) else result.delta,
            low=None if math.isnan(result.low) else result.low, high=None if math.isnan(result.high) else result.high,
            p_value=result.p_value, n=result.n, n_a=len(side_a), n_b=len(side_b),
        ))
    return comparisons


@dataclass
class GateResult:
    passed: bool
    failures: list[str]
    checked: list[Comparison]
    notes: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"quality gate: {'PASSED' if self.passed else 'FAILED'} "
                 f"({len(self.checked)} check(s), {len(self.failures)} failure(s))"]
        lines += [f"  FAIL {f}" for f in self.failures]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def parse_max_drop(values: Sequence[str | float] | float | None) -> dict[str, float]:
    """``[0.02, "dynamic_degree=0.1"]`` → ``{"*": 0.02, "dynamic_degree": 0.1}`` (``*`` is the default).

    Each drop must be a finite number, 0 or more: ``nan`` would make every check pass and
    a negative drop would fail an unchanged candidate. Scorer names are checked against
    the compared runs by :func:`gate`.
    """
    if values is None:
        return {"*": 0.0}
    if isinstance(values, (int, float)):
        values = [values]
    drops = {"*": 0.0}
    for value in values:
        if isinstance(value, (int, float)):
            drops["*"] = check_drop("--max-drop", str(value), float(value))
            continue
        name, sep, amount = str(value).partition("=")
        name = name.strip()
        if sep and not name:
            raise OptionError("--max-drop", f"{value!r} names no scorer; use scorer=number")
        try:
            number = float(amount if sep else name)
        except ValueError:
            raise OptionError("--max-drop", f"takes a number or scorer=number, got {value!r}") from None
        drops[name if sep else "*"] = check_drop("--max-drop", str(value), number)
    return drops


def _drops(max_drop: Mapping[str, float] | Sequence[str | float] | float | None) -> dict[str, float]:
    if not isinstance(max_drop, Mapping):
        return parse_max_drop(max_drop)
    drops = {"*": 0.0}
    for name, amount in max_drop.items():
        try:
            number = float(amount)
        except (TypeError, ValueError):
            raise OptionError("--max-drop", f"{name}={amount!r} is not a number") from None
        drops[str(name)] = check_drop("--max-drop", f"{name}={amount}", number)
    return drops


def gate(comparisons: ComparisonSet, max_drop: Mapping[str, float] | Sequence[str | float] | float | None = None, *,
         alpha: float = DEFAULT_ALPHA, per_condition: bool = False, allow_missing: bool = False) -> GateResult:
    """Fail where the candidate regresses significantly by more than the allowed drop.

    Descriptive scorers are not gated (the result's notes say which); a drop named for a
    scorer neither run has, or for a descriptive one, is an :class:`~.options.OptionError`.
    """
    check_alpha(alpha)
    drops = _drops(max_drop)
    named = [name for name in drops if name != "*"]
    if comparisons.scorers:
        check_scorers("--max-drop", named, comparisons.scorers)
        descriptive = sorted(n for n in named if direction(comparisons.scorers[n]) is None)
        if descriptive:
            raise OptionError("--max-drop", f"{', '.join(descriptive)} is descriptive (no better or worse) and is "
                                            "never gated; drop it from --max-drop")
    checked, failures, skipped = [], [], set()
    for c in comparisons.comparisons:
        if not per_condition and c.condition != ALL:
            continue
        if c.descriptive:
            skipped.add(c.scorer)
            continue
        checked.append(c)
        label = f"{c.model_a} → {c.model_b} · {c.scorer} · {c.condition}"
        if c.missing:
            if "missing in B" in c.missing and not allow_missing:
                failures.append(f"{label}: the candidate has no {c.scorer} scores ({c.missing})")
            continue
        allowed = drops.get(c.scorer, drops["*"])
        if c.worsening is None:
            failures.append(f"{label}: no shared case has a value in both runs (A: {c.n_a}, B: {c.n_b})")
            continue
        significant = c.p_adjusted is not None and not math.isnan(c.p_adjusted) and c.p_adjusted < alpha
        if c.worsening > allowed and significant:
            unit = f" {c.unit}" if c.unit else ""
            failures.append(
                f"{label}: dropped by {c.worsening:.4g}{unit} (allowed {allowed:g}{unit}), "
                f"{c.a:.4g} → {c.b:.4g}, 95% CI of the change [{c.low:.4g}, {c.high:.4g}], "
                f"Holm-adjusted p = {c.p_adjusted:.2g} < {alpha:g} over {c.n} shared cases"
            )
    notes = list(comparisons.notes)
    if skipped:
        notes.append(f"not gated: {', '.join(sorted(skipped))} (descriptive: a measured property with no better or "
                     "worse; compare shows the change)")
    return GateResult(not failures, failures, checked, notes)


def format_comparisons(comparisons: ComparisonSet, alpha: float = DEFAULT_ALPHA) -> str:
    """A Markdown table of every comparison."""
    head = ["A → B", "condition", "scorer", "A", "B", "Δ (B−A) [95% CI]", "p", "p (Holm)", "n shared", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def num(v: float | None, digits: int = 4) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}g}"

    for c in comparisons.comparisons:
        delta = "–" if c.delta is None else f"{c.delta:+.4g} [{num(c.low)}, {num(c.high)}]"
        lines.append("| " + " | ".join([
            f"{c.model_a} → {c.model_b}", c.condition, c.scorer + (f" ({c.unit})" if c.unit else ""), num(c.a),
            num(c.b), delta, num(c.p_value, 2), num(c.p_adjusted, 2), f"{c.n} of {max(c.n_a, c.n_b)}",
            c.verdict(alpha),
        ]) + " |")
    notes = "".join(f"\n- {n}" for n in comparisons.notes)
    return "\n".join(lines) + ("\n" + notes if notes else "")
