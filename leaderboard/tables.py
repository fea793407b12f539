"""Summary tables: one row per model × condition, one column per scorer."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from anibench.results import ALL_CONDITIONS

ROW_KEYS = ["model", "condition"]
COUNT_COLUMNS = ["n", "n_failed"]


def summary_table(runs: Sequence[Mapping[str, Any]], conditions: bool = True) -> pd.DataFrame:
    """Rows (model, condition) — plus (model, "all") — and one column per scorer's aggregate.

    ``runs`` are ``results.json`` payloads. ``n`` is the number of clips per row, ``missing``
    the clips per row without a value for some scorer (failed, not applicable, unscored).
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        for model, per_condition in run["results"].items():
            for condition, per_scorer in per_condition.items():
                if not conditions and condition != ALL_CONDITIONS:
                    continue
                row = rows.setdefault((model, condition), {"model": model, "condition": condition})
                for scorer, cell in per_scorer.items():
                    row[scorer] = cell["value"]
                    row["n"] = max(row.get("n", 0), cell["n"])
                    row["n_failed"] = max(row.get("n_failed", 0), cell["n_failed"])
    frame = pd.DataFrame(list(rows.values()))
    if frame.empty:
        return frame
    frame["_all"] = frame["condition"] == ALL_CONDITIONS
    frame = frame.sort_values(["model", "_all", "condition"]).drop(columns="_all").reset_index(drop=True)
    scorers = sorted(c for c in frame.columns if c not in ROW_KEYS + COUNT_COLUMNS)
    return frame[ROW_KEYS + scorers + COUNT_COLUMNS]


def scorer_directions(runs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    meta: dict[str, dict[str, Any]] = {}
    for run in runs:
        meta.update(run.get("scorers", {}))
    return meta


def guide_table(samples: Iterable[Mapping[str, Any]], scorer: str = "guide_psnr") -> pd.DataFrame:
    """Keyframe adherence by guide position: mean of ``scorer`` per (model, condition, position)."""
    values: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for record in samples:
        if record["scorer"] != scorer or record["status"] != "ok":
            continue
        for guide in record["details"].get("per_guide", []):
            values[(record["model"], record["condition"], guide["position"])].append(guide["value"])
    if not values:
        return pd.DataFrame()
    rows = [
        {"model": m, "condition": c, "position": p, "value": sum(v) / len(v), "n": len(v)}
        for (m, c, p), v in sorted(values.items())
    ]
    frame = pd.DataFrame(rows)
    wide = frame.pivot_table(index=ROW_KEYS, columns="position", values="value").reset_index()
    wide.columns = [c if isinstance(c, str) else f"@{c:g}" for c in wide.columns]
    return wide


def format_markdown(frame: pd.DataFrame, meta: Mapping[str, Mapping[str, Any]] | None = None, digits: int = 3) -> str:
    """A GitHub Markdown table; scorer columns get ↑ / ↓ from their direction."""
    if frame.empty:
        return "(no results)"
    meta = meta or {}
    headers = []
    for column in frame.columns:
        info = meta.get(column)
        arrow = "" if not info else (" ↑" if info.get("higher_is_better") else " ↓")
        unit = f" ({info['unit']})" if info and info.get("unit") else ""
        headers.append(f"{column}{unit}{arrow}")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_cell(v, digits) for v in row.tolist()) + " |")
    return "\n".join(lines)


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
