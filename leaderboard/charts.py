"""Inline SVG charts (no JavaScript library, no CDN): bars with intervals, and radars."""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

from anibench.leaderboard.tables import Cell

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def bar_chart(title: str, models: Sequence[str], cells: Sequence[Cell | None], *, higher_is_better: bool | None,
              unit: str = "", width: int = 320, bar_height: int = 18) -> str:
    """Horizontal bars, one per model, with the 95 % interval as a whisker."""
    values = [c.value for c in cells if c is not None and c.value is not None]
    highs = [c.high for c in cells if c is not None and c.high is not None]
    top = max(values + highs + [1e-9])
    bottom = min(values + [0.0])
    label_w, pad = 110, 6
    plot_w = width - label_w - 60
    height = pad * 2 + 22 + len(models) * (bar_height + 6)

    def x(v: float) -> float:
        return label_w + (v - bottom) / (top - bottom or 1.0) * plot_w

    arrow = "" if higher_is_better is None else (" ↑" if higher_is_better else " ↓")
    parts = [f'<svg class="chart bar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}"><text x="{pad}" y="16" class="chart-title">{escape(title + arrow)}</text>']
    for i, (model, cell) in enumerate(zip(models, cells)):
        y = pad + 22 + i * (bar_height + 6)
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_height - 5}" text-anchor="end" class="chart-label">'
                     f'{escape(model)}</text>')
        if cell is None or cell.value is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + bar_height - 5}" class="chart-missing">no value</text>')
            continue
        parts.append(f'<rect x="{x(bottom):.1f}" y="{y}" width="{max(1.0, x(cell.value) - x(bottom)):.1f}" '
                     f'height="{bar_height}" fill="{color(i)}"><title>{escape(model)}: {cell.value:.4g}</title></rect>')
        if cell.low is not None and cell.high is not None:
            mid = y + bar_height / 2
            parts.append(f'<line x1="{x(cell.low):.1f}" x2="{x(cell.high):.1f}" y1="{mid}" y2="{mid}" class="whisker"/>')
        parts.append(f'<text x="{x(cell.value) + 4:.1f}" y="{y + bar_height - 5}" class="chart-value">'
                     f'{cell.value:.3g}{escape(unit and " " + unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def radar_chart(title: str, axes: Sequence[str], series: dict[str, Sequence[float | None]], *, size: int = 380) -> str:
    """One polygon per model over ``axes``; values in [0, 1], 1 = best (outer)."""
    if len(axes) < 3:
        return ""
    centre, radius = size / 2, size / 2 - 70
    angle = [2 * math.pi * i / len(axes) - math.pi / 2 for i in range(len(axes))]

    def point(i: int, r: float) -> tuple[float, float]:
        return centre + r * radius * math.cos(angle[i]), centre + r * radius * math.sin(angle[i])

    height = size + 20 + 14 * math.ceil(len(series) / 3)
    parts = [f'<svg class="chart radar" viewBox="0 0 {size} {height}" width="{size}" height="{height}" '
             f'role="img" aria-label="{escape(title)}"><text x="6" y="16" class="chart-title">{escape(title)}</text>']
    for ring in (0.25, 0.5, 0.75, 1.0):
        ring_points = " ".join(f"{px:.1f},{py:.1f}" for px, py in (point(i, ring) for i in range(len(axes))))
        parts.append(f'<polygon points="{ring_points}" class="grid"/>')
    for i, axis in enumerate(axes):
        px, py = point(i, 1.0)
        lx, ly = point(i, 1.18)
        parts.append(f'<line x1="{centre}" y1="{centre}" x2="{px:.1f}" y2="{py:.1f}" class="grid"/>')
        parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" class="chart-label">{escape(axis)}</text>')
    for k, (model, values) in enumerate(series.items()):
        pts = [point(i, v if v is not None else 0.0) for i, v in enumerate(values)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        parts.append(f'<polygon points="{path}" fill="{color(k)}" fill-opacity="0.15" stroke="{color(k)}" '
                     f'stroke-width="2"><title>{escape(model)}</title></polygon>')
        parts.append(f'<text x="{8 + 120 * (k % 3)}" y="{size + 14 + 14 * (k // 3)}" class="chart-label">'
                     f'<tspan style="fill:{color(k)}">■</tspan> {escape(model)}</text>')
    parts.append("</svg>")
    return "".join(parts)
