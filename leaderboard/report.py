"""``anibench report``: tables of one or more runs as Markdown, CSV, LaTeX, JSON, and the HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from anibench.fsutil import write_text
from anibench.leaderboard.data import Board, load_board
from anibench.leaderboard.formats import FORMATS, render, to_csv, to_markdown
from anibench.leaderboard.html import MEDIA_MODES, write_html
from anibench.leaderboard.options import OptionError, check_choice, check_choices, check_resamples, output_file
from anibench.leaderboard.tables import Table, all_tables, grouped_table, guide_table, named_table

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
    """The tables printed at the end of ``anibench run``/``score``: scores by condition, keyframe
    adherence, and the published tables whose scorers the run has: AniSora-Benchmark (``anime_reward.*``,
    on 0-100 as the AniSora README) and VBench-I2V with VBench's totals (``vbench.*``)."""
    board = load_board([run_dir])
    parts = [to_markdown(grouped_table(board, "condition"))]
    guides = guide_table(board)
    if not guides.empty:
        parts.append(to_markdown(guides))
    for which in ("anisora", "vbench"):
        published = named_table(board, which)
        if not published.empty:
            parts.append(to_markdown(published))
    notes = board_notes(board)
    return "\n\n".join(parts + ([notes] if notes else []))


def write_csvs(tables: Sequence[Table], path: str | Path) -> list[Path]:
    """The main table to ``path``, every other table to ``<path stem>-<table id>.csv`` beside it.

    Missing parent folders are created (as for ``--html``); each file is written atomically.
    """
    path = output_file("--csv", path)
    written = []
    for index, table in enumerate(t for t in tables if not t.empty):
        target = path if index == 0 else path.with_name(f"{path.stem}-{table.id}{path.suffix or '.csv'}")
        written.append(_write("--csv", target, to_csv(table)))
    return written


def _write(option: str, path: Path, text: str) -> Path:
    try:
        return write_text(path, text)
    except OSError as exc:
        raise OptionError(option, f"cannot write {path} ({exc.strerror})") from None


def check_report_options(*, fmt: str = "markdown", media: str = "link", breakdowns: Sequence[str] = BREAKDOWNS,
                         resamples: int = 1000) -> None:
    """Refuse option values ``write_report`` cannot use, naming the option."""
    check_choice("--format", fmt, FORMATS)
    check_choice("--media", media, MEDIA_MODES)
    check_choices("--by", breakdowns, BREAKDOWNS)
    check_resamples(resamples)


def write_report(run_dirs: Sequence[str | Path], *, fmt: str = "markdown", html: str | Path | None = None,
                 media: str = "link", csv: str | Path | None = None, partial: bool = False, intersect: bool = False,
                 ratings: str | Path | None = None, breakdowns: Sequence[str] = BREAKDOWNS,
                 resamples: int = 1000) -> str:
    """Build every table; write the HTML page and/or CSV when asked; return the text for stdout.

    Output files get their missing parent folders created; options are checked before any run is read.
    """
    check_report_options(fmt=fmt, media=media, breakdowns=breakdowns, resamples=resamples)
    html = output_file("--html", html) if html else None
    csv = output_file("--csv", csv) if csv else None
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
