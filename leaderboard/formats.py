"""Writing :class:`~anibench.leaderboard.tables.Table` s as Markdown, CSV, LaTeX and JSON."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Any, Sequence

from anibench.leaderboard.tables import Cell, Table

FORMATS = ("markdown", "csv", "latex", "json")


def _number(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _digits(meta: dict) -> int:
    """Decibels to 0.1, everything else to 0.001."""
    return 1 if meta.get("unit") == "dB" else 3


def header(column: str, meta: dict) -> str:
    arrow = "" if not meta or meta.get("higher_is_better") is None else (" ↑" if meta["higher_is_better"] else " ↓")
    unit = f" ({meta['unit']})" if meta and meta.get("unit") else ""
    return f"{column}{unit}{arrow}"


def cell_text(cell: Cell | None, meta: dict, *, intervals: bool = True) -> str:
    if cell is None or cell.value is None:
        return "–"
    digits = _digits(meta)
    text = _number(cell.value, digits)
    if intervals and cell.low is not None and cell.high is not None:
        text += f" [{_number(cell.low, digits)}, {_number(cell.high, digits)}]"
    if cell.rank is not None:
        text += f" #{cell.rank}"
    return text


def _counts(cells: dict[str, Cell]) -> tuple[int, int]:
    """(cases in the row, most cases any of its scorers failed or left unscored)."""
    n = max((c.n for c in cells.values()), default=0)
    missing = max((c.n_missing for c in cells.values()), default=0)
    return n, missing


def to_markdown(table: Table, *, intervals: bool = True) -> str:
    if table.empty:
        return f"## {table.title}\n\n(no results)" + _notes_md(table)
    columns = [c for c in table.columns if any(c in cells for _, cells in table.rows)]
    headers = table.keys + [header(c, table.meta.get(c, {})) for c in columns] + ["n", "missing"]
    lines = [f"## {table.title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for keys, cells in table.rows:
        n, missing = _counts(cells)
        row = [str(keys[k]) for k in table.keys]
        row += [cell_text(cells.get(c), table.meta.get(c, {}), intervals=intervals) for c in columns]
        lines.append("| " + " | ".join(row + [str(n), str(missing)]) + " |")
    absent = [c for c in table.columns if c not in columns]
    text = "\n".join(lines)
    if absent:
        text += f"\n\nNo values for: {', '.join(absent)}."
    return text + _notes_md(table)


def _notes_md(table: Table) -> str:
    if not table.notes:
        return ""
    shown = table.notes[:12]
    more = f"\n- … and {len(table.notes) - 12} more" if len(table.notes) > 12 else ""
    return "\n\n" + "\n".join(f"- {note}" for note in shown) + more


def to_rows(table: Table) -> list[dict[str, Any]]:
    """Flat rows: key fields, then per column value / low / high / n_ok / rank, then n."""
    rows = []
    for keys, cells in table.rows:
        row: dict[str, Any] = dict(keys)
        for column in table.columns:
            cell = cells.get(column)
            row[column] = cell.value if cell else None
            row[f"{column}_low"] = cell.low if cell else None
            row[f"{column}_high"] = cell.high if cell else None
            row[f"{column}_n_ok"] = cell.n_ok if cell else 0
            row[f"{column}_rank"] = cell.rank if cell else None
        row["n"], row["missing"] = _counts(cells)
        rows.append(row)
    return rows


def to_csv(table: Table) -> str:
    rows = to_rows(table)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


# Every character LaTeX treats specially in text, and how to print it literally (one pass, so the
# braces of a replacement are never escaped again).
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
    "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(c) for c in LATEX_SPECIALS))


def latex_escape(text: str) -> str:
    """``text`` as literal LaTeX text: each of ``\\ { } $ & # % _ ^ ~ < > |`` replaced by its command."""
    return _LATEX_PATTERN.sub(lambda m: LATEX_SPECIALS[m.group(0)], text)


def to_latex(table: Table) -> str:
    """A booktabs table; rank-1 cells in bold, intervals as ± half-width."""
    columns = [c for c in table.columns if any(c in cells for _, cells in table.rows)]
    spec = "l" * len(table.keys) + "r" * len(columns) + "r"
    heads = [latex_escape(k) for k in table.keys]
    for column in columns:
        meta = table.meta.get(column, {})
        arrow = "" if meta.get("higher_is_better") is None else (r"$\uparrow$" if meta["higher_is_better"] else r"$\downarrow$")
        heads.append(latex_escape(column) + arrow)
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{latex_escape(table.title)}}}",
             f"\\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(heads + ["$n$"]) + r" \\", r"\midrule"]
    for keys, cells in table.rows:
        row = [latex_escape(str(keys[k])) for k in table.keys]
        for column in columns:
            cell = cells.get(column)
            if cell is None or cell.value is None:
                row.append("--")
                continue
            digits = _digits(table.meta.get(column, {}))
            text = _number(cell.value, digits)
            if cell.low is not None and cell.high is not None:
                text += f" $\\pm$ {_number((cell.high - cell.low) / 2, digits)}"
            row.append(f"\\textbf{{{text}}}" if cell.rank == 1 else text)
        row.append(str(_counts(cells)[0]))
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def to_json(tables: Sequence[Table], extra: dict | None = None) -> str:
    payload = {
        "tables": [
            {"id": t.id, "title": t.title, "keys": t.keys, "columns": t.columns, "meta": t.meta,
             "rows": to_rows(t), "notes": t.notes}
            for t in tables
        ],
        **(extra or {}),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False, default=str)


def render(tables: Sequence[Table], fmt: str, extra: dict | None = None) -> str:
    """All ``tables`` in one format (CSV: one block per table, separated by a blank line)."""
    if fmt == "json":
        return to_json(tables, extra)
    if fmt == "markdown":
        return "\n\n".join(to_markdown(t) for t in tables)
    if fmt == "latex":
        return "\n\n".join(to_latex(t) for t in tables if not t.empty)
    if fmt == "csv":
        return "\n".join(f"# {t.title}\n{to_csv(t)}" for t in tables if not t.empty)
    raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
