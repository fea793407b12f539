"""``anibench report --html``: one static page that works offline.

Everything the page needs is inline — CSS, JavaScript, SVG charts, the data as JSON —
so it opens from disk with no network. Clips and guide thumbnails are linked by paths
relative to the page (``media="link"``: keep the page beside the run folders) or
embedded as data URIs (``media="embed"``: one portable file, for small runs).
"""

from __future__ import annotations

import base64
import json
import math
import mimetypes
import os
from datetime import datetime, timezone
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote, urlencode

from anibench.leaderboard.charts import bar_chart, radar_chart
from anibench.fsutil import write_text
from anibench.leaderboard.data import Board, direction, text_or_none
from anibench.leaderboard.formats import cell_text, header
from anibench.leaderboard.options import OptionError
from anibench.leaderboard.tables import ALL, INTERP, NO_GROUP, Cell, Table

MEDIA_MODES = ("link", "embed")


def _asset(name: str) -> str:
    return (resources.files("anibench.leaderboard") / "assets" / name).read_text(encoding="utf-8")


class _Media:
    """Turns local files into ``src`` values for the page."""

    def __init__(self, page_dir: Path, mode: str):
        if mode not in MEDIA_MODES:
            raise OptionError("--media", f"must be one of {', '.join(MEDIA_MODES)}, not {mode!r}")
        self.page_dir, self.mode = page_dir.resolve(), mode

    def src(self, path: str | Path | None) -> str | None:
        """The ``src`` of a clip or image; None (shown as "no file") when it is missing or this user cannot read it."""
        if not path:
            return None
        path = Path(path)
        try:
            if not path.is_file() or not os.access(path, os.R_OK):
                return None
            if self.mode == "embed":
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"
            return quote(Path(os.path.relpath(path.resolve(), self.page_dir)).as_posix())
        except OSError:
            return None


def _table_html(table: Table) -> str:
    columns = [c for c in table.columns if any(c in cells for _, cells in table.rows)]
    head = "".join(f'<th class="key" scope="col">{escape(k)}</th>' for k in table.keys)
    head += "".join(f'<th scope="col">{escape(header(c, table.meta.get(c, {})))}</th>' for c in columns)
    head += '<th scope="col">n</th><th scope="col">missing</th>'
    body = []
    for keys, cells in table.rows:
        link = _gallery_link(keys)
        tds = "".join(f'<td class="key" data-value="{escape(str(keys[k]))}">{escape(str(keys[k]))}</td>' for k in table.keys)
        for column in columns:
            tds += _cell_html(cells.get(column), table.meta.get(column, {}), link)
        n = max((c.n for c in cells.values()), default=0)
        missing = max((c.n_missing for c in cells.values()), default=0)
        tds += f'<td data-value="{n}">{n}</td><td data-value="{missing}">{missing}</td>'
        body.append(f"<tr>{tds}</tr>")
    notes = _notes_html(table.notes)
    return (f'<h2 id="{escape(table.id)}">{escape(table.title)}</h2>'
            + (f'<div class="table-wrap"><table class="board" data-table="{escape(table.id)}"><thead><tr>{head}</tr>'
               f'</thead><tbody>{"".join(body)}</tbody></table></div>' if table.rows else '<p class="muted">No values.</p>')
            + notes)


def _gallery_link(keys: dict[str, Any]) -> str:
    filters = {k: v for k, v in keys.items() if k in ("model", "condition", "label", "style") and v not in (ALL, INTERP)}
    return "#gallery?" + urlencode(filters)


def _cell_html(cell: Cell | None, meta: dict, link: str) -> str:
    if cell is None or cell.value is None:
        return '<td data-value="">–</td>'
    text = cell_text(Cell(cell.value), meta)
    ci = f'<span class="ci">[{cell_text(Cell(cell.low), meta)}, {cell_text(Cell(cell.high), meta)}]</span>' \
        if cell.low is not None and cell.high is not None else ""
    rank = f'<span class="rank r{cell.rank}" title="rank (ties: difference not significant)">#{cell.rank}</span>' \
        if cell.rank is not None else ""
    title = f"{cell.n_ok} of {cell.n} cases with a value" + (f", {cell.n_na} not applicable" if cell.n_na else "")
    return f'<td data-value="{cell.value!r}" title="{escape(title)}"><a href="{escape(link)}">{text}</a>{ci}{rank}</td>'


def _notes_html(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in notes[:30])
    more = f"<li>… and {len(notes) - 30} more</li>" if len(notes) > 30 else ""
    return f'<ul class="notes">{items}{more}</ul>'


def _charts_html(board: Board, main: Table) -> str:
    """Bars per scorer (pooled over conditions) and a radar of every model's profile."""
    rows = [(k, c) for k, c in main.rows if k["condition"] == ALL] or main.rows
    models = [k["model"] for k, _ in rows]
    parts = []
    scorers = [s for s in main.columns if any(s in c for _, c in rows)]
    for scorer in scorers:
        meta = board.scorers.get(scorer, {})
        parts.append(bar_chart(scorer, models, [c.get(scorer) for _, c in rows],
                               higher_is_better=meta.get("higher_is_better"), unit=meta.get("unit", "")))
    axes, series = [], {m: [] for m in models}
    for scorer in scorers:
        values = [c.get(scorer).value if c.get(scorer) else None for _, c in rows]
        present = [v for v in values if v is not None]
        better_high = direction(board.scorers.get(scorer))
        if len(present) < 2 or max(present) == min(present) or better_high is None:  # descriptive: no worst or best
            continue
        low, high = min(present), max(present)
        axes.append(scorer)
        for model, value in zip(models, values):
            norm = None if value is None else (value - low) / (high - low)
            series[model].append(None if norm is None else (norm if better_high else 1 - norm))
    radar = radar_chart("profile: each axis from worst to best model", axes, series)
    return f'<div class="charts">{radar}{"".join(parts)}</div>'


def _gallery_data(board: Board, media: _Media) -> dict[str, Any]:
    """One entry per (case, condition): guides, ground truth, every model's clip and scores."""
    cases: dict[str, dict] = {}
    guides: dict[tuple[str, str], list[dict]] = {}
    run_dirs: dict[str, Path] = {}
    for run in board.runs:
        run_dirs[run.name] = run.run_dir
        for case_id, info in run.cases.items():
            cases.setdefault(case_id, info)
        for key, value in run.guides.items():
            guides.setdefault(key, [{**g, "thumbnail": run.run_dir / g["thumbnail"] if g.get("thumbnail") else None}
                                    for g in value])
    scorers = sorted(set(board.samples["scorer"]))
    position = {name: i for i, name in enumerate(scorers)}
    entries: dict[tuple[str, str], dict] = {}
    columns = ["case_id", "condition", "model", "label", "style", "scorer", "value", "status", "video"]
    for case_id, condition, model, label, style, scorer, value, status, video in board.samples[columns].itertuples(
            index=False, name=None):
        key = (case_id, condition)
        entry = entries.get(key)
        if entry is None:
            info = cases.get(case_id, {})
            entry = entries[key] = {
                "case_id": case_id, "condition": condition, "label": text_or_none(label), "style": text_or_none(style),
                "prompt": info.get("prompt", ""), "ground_truth": media.src(info.get("video")),
                "guides": [{"position": g["position"], "frame_index": g["frame_index"], "src": media.src(g["thumbnail"])}
                           for g in guides.get((condition, case_id), [])],
                "clips": {},
            }
        clip = entry["clips"].get(model)
        if clip is None:
            # values align with data.score_names; a status is listed only where it is not "ok"
            clip = entry["clips"][model] = {"src": media.src(video), "values": [None] * len(scorers), "status": {}}
        if status == "ok" and value == value:
            clip["values"][position[scorer]] = float(f"{value:.5g}")
        else:
            clip["status"][scorer] = status if status != "ok" else "failed"
    return {
        "gallery": sorted(entries.values(), key=lambda e: (e["case_id"], e["condition"])),
        "models": board.models,
        "conditions": board.conditions,
        "labels": _choices(e["label"] for e in entries.values()),
        "styles": _choices(e["style"] for e in entries.values()),
        "no_group": NO_GROUP,
        "score_names": scorers,
        "scorers": {k: {"unit": v.get("unit", ""), "higher_is_better": v.get("higher_is_better")}
                    for k, v in board.scorers.items()},
    }


def _choices(values) -> list[str]:
    """Filter options: the texts sorted, then ``(none)`` where some cases have none."""
    values = list(values)
    texts = sorted({v for v in values if v is not None})
    return texts + ([NO_GROUP] if any(v is None for v in values) else [])


def _runs_html(board: Board) -> str:
    rows = []
    for run in board.runs:
        d = run.description
        git = d.get("provenance", {}).get("git", {})
        versions = d.get("provenance", {}).get("versions", {})
        state = "complete" if run.complete else ("in progress" if run.in_progress else "interrupted")
        rows.append(
            f"<tr><td class=key>{escape(run.name)}</td><td class=key>{escape(str((d.get('suite') or {}).get('name')))}</td>"
            f"<td class=key>{escape(state)}</td><td class=key>{escape(str(git.get('commit'))[:12])}"
            f"{' (dirty)' if git.get('dirty') else ''}</td><td class=key>{escape(versions.get('anibench', '?'))}</td>"
            f"<td class=key>{escape(d.get('created_at', ''))}</td></tr>"
        )
    excluded = _notes_html([f"not included: {path}: {reason}" for path, reason in board.excluded] + board.notes)
    return ('<div class="table-wrap"><table class="board"><thead><tr><th class=key>run</th><th class=key>suite</th>'
            '<th class=key>state</th><th class=key>git commit</th><th class=key>anibench</th><th class=key>finished</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{excluded}')


def write_html(board: Board, tables: Sequence[Table], path: str | Path, *, media: str = "link",
               title: str = "anibench report") -> Path:
    """Write the report page to ``path`` and return it."""
    path = Path(path)
    data = _gallery_data(board, _Media(path.parent, media))
    main = next((t for t in tables if t.id == "by-condition"), tables[0])
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_asset("report.css")}</style></head>
<body>
<header><h1>{escape(title)}</h1>
<p class="muted">{len(board.runs)} run(s) · {len(board.models)} model(s) · {board.samples["case_id"].nunique()} case(s)
 · generated {escape(generated)} · cells: value [95 % bootstrap interval] #rank (tied where not significant,
 Wilcoxon signed-rank with Holm correction)</p>
{_runs_html(board)}</header>
<nav><a href="#tables">Tables</a><a href="#charts">Charts</a><a href="#gallery">Gallery</a></nav>
<section id="tables">{"".join(_table_html(t) for t in tables)}</section>
<section id="charts"><h2>Charts</h2>{_charts_html(board, main)}</section>
<section id="gallery"><h2>Gallery</h2>
<div class="filters">
<label>model<select id="f-model"><option value="">all models</option></select></label>
<label>condition<select id="f-condition"><option value="">all conditions</option></select></label>
<label>action label<select id="f-label"><option value="">all labels</option></select></label>
<label>style<select id="f-style"><option value="">all styles</option></select></label>
<label>case id<input id="f-search" type="search" placeholder="filter by id"></label>
</div>
<div class="pager"><button id="page-prev" type="button">◀ previous</button><span id="gallery-count"></span>
<button id="page-next" type="button">next ▶</button></div>
<div id="gallery-cases"></div></section>
<script type="application/json" id="report-data">{_json_for_script(data)}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""
    try:
        return write_text(path, page)
    except OSError as exc:
        raise OptionError("--html", f"cannot write {path} ({exc.strerror})") from None


def _json_for_script(data: Any) -> str:
    """JSON safe inside a <script> element; NaN and infinities (not JSON) become null."""
    return json.dumps(_finite(data), ensure_ascii=False, default=str, allow_nan=False).replace("</", "<\\/")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
