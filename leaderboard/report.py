"""``anibench report``: tables of one or more runs as Markdown, CSV, LaTeX, JSON, and the HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from anibench.leaderboard.data import Board, load_board
from anibench.leaderboard.formats import render, to_csv, to_markdown
from anibench.leaderboard.html import write_html
from anibench.leaderboard.tables import Table, all_tables, grouped_table, guide_table

BREAKDOWNS = ("condition", "label", "style")


def build(run_dirs: Sequence[str | Path], *, partial: bool = False, intersect: bool = False,
          ratings: str | Path | None = None, breakdowns: Sequence[str] = BREAKDOWNS,
          resamples: int = 1000) -> tuple[Board, list[Table]]:
    board = load_board(run_dirs, partial=partial, intersect=intersect, ratings=ratings)
    return board, all_tables(board, breakdowns, resamples=resamples)


def board_notes(board: Board) -> str:
    lines = [f"- not included: {path}: {reason}" for path, reason in board.excluded] + [f"- {n}" for n in board.notes]
    return "\n".join(lines)


def summary(run_dir: str | Path) -> str:
    """The table printed at the end of ``anibench run``: scores by condition, then keyframe adherence."""
    board = load_board([run_dir])
    parts = [to_markdown(grouped_table(board, "condition"))]
    guides = guide_table(board)
    if not guides.empty:
        parts.append(to_markdown(guides))
    notes = board_notes(board)
    return "\n\n".join(parts + ([notes] if notes else []))


def write_csvs(tables: Sequence[Table], path: str | Path) -> list[Path]:
    """The main table to ``path``, every other table to ``<path stem>-<table id>.csv`` beside it."""
    path = Path(path)
    written = []
    for index, table in enumerate(t for t in tables if not t.empty):
        target = path if index == 0 else path.with_name(f"{path.stem}-{table.id}{path.suffix or '.csv'}")
        target.write_text(to_csv(table), encoding="utf-8")
        written.append(target)
    return written


def write_report(run_dirs: Sequence[str | Path], *, fmt: str = "markdown", html: str | Path | None = None,
                 media: str = "link", csv: str | Path | None = None, partial: bool = False, intersect: bool = False,
                 ratings: str | Path | None = None, breakdowns: Sequence[str] = BREAKDOWNS,
                 resamples: int = 1000) -> str:
    """Build every table; write the HTML page and/or CSV when asked; return the text for stdout."""
    board, tables = build(run_dirs, partial=partial, intersect=intersect, ratings=ratings,
                          breakdowns=breakdowns, resamples=resamples)
    if html:
        write_html(board, tables, html, media=media)
    if csv:
        write_csvs(tables, csv)
    extra = {"excluded": [{"run": p, "reason": r} for p, r in board.excluded], "notes": board.notes}
    text = render(tables, fmt, extra)
    notes = board_notes(board)
    if fmt == "markdown" and notes:
        text = "## Notes\n\n" + notes + "\n\n" + text
    return text
