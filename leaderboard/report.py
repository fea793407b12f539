"""``anibench report``: the summary table of runs, as Markdown and CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from anibench.leaderboard.tables import format_markdown, guide_table, scorer_directions, summary_table
from anibench.results import load_results, load_samples


def render_report(runs: Sequence[Mapping[str, Any]], samples: Sequence[Mapping[str, Any]] | None) -> str:
    """Markdown: the per-(model, condition) table, then keyframe adherence by guide position."""
    meta = scorer_directions(runs)
    table = summary_table(runs)
    empty = [c for c in table.columns if c in meta and table[c].isna().all()]
    parts = ["## Scores by model and condition", "", format_markdown(table.drop(columns=empty), meta)]
    if empty:
        parts += ["", f"Not applicable to any clip here: {', '.join(empty)}."]
    if samples:
        guides = guide_table(samples)
        if not guides.empty:
            parts += ["", "## Keyframe adherence: guide PSNR (dB) at each guide position", "",
                      format_markdown(guides, digits=1)]
    return "\n".join(parts)


def write_report(run_dirs: Sequence[str | Path], csv: str | Path | None = None) -> str:
    runs = [load_results(d) for d in run_dirs]
    samples = [record for d in run_dirs for record in load_samples(d)]
    if csv:
        summary_table(runs).to_csv(csv, index=False)
    return render_report(runs, samples)
