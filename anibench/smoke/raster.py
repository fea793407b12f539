"""The rasteriser: shapes into a supersampled index buffer, deferred shading, compositing.

Shapes are drawn as indices into a supersampled buffer, resolved by table look-ups
(flat colours and outlines for "2d", :func:`_shade` for "3d"), area-averaged down into a
premultiplied :class:`_Layer` (with the moving parts' silhouette and the body box) and
composited over a frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from anibench.smoke.geometry import _HALF, _LIGHT, _MATERIALS, _OUTLINE, _Shape


# --------------------------------------------------------------------------- rasteriser


def _supersample(height: int) -> int:
    return int(min(4, max(2, round(384 / height))))


@dataclass
class _Layer:
    x0: int
    y0: int
    premult: np.ndarray     # (h, w, 4) float32: rgb * alpha, alpha
    silhouette: np.ndarray  # (h, w) bool: moving parts
    box: tuple[int, int, int, int] | None  # body bounding box, frame pixels (x0, y0, x1, y1), exclusive


def _rasterise(shapes: list[_Shape], k: float, ox: float, oy: float, ss: int, width: int, height: int,
               style3d: bool, moving: frozenset[str] | None, outline_rgb: Sequence[float]) -> _Layer | None:
    """Draw shapes (figure units; screen = (ox + x k, oy - y k)) into a premultiplied layer."""
    screen = [sh.pts * (k, -k) + (ox, oy) for sh in shapes]
    allp = np.concatenate(screen)
    pad = 2.0 + k * max([_OUTLINE] + [sh.width for sh in shapes])
    x0 = max(0, int(math.floor(allp[:, 0].min() - pad)))
    x1 = min(width, int(math.ceil(allp[:, 0].max() + pad)))
    y0 = max(0, int(math.floor(allp[:, 1].min() - pad)))
    y1 = min(height, int(math.ceil(allp[:, 1].max() + pad)))
    if x1 <= x0 or y1 <= y0:
        return None
    w, h = x1 - x0, y1 - y0
    idx = np.zeros((h * ss, w * ss), np.uint16)
    off = np.array([x0 * ss - 0.5 * ss + 0.5, y0 * ss - 0.5 * ss + 0.5])
    rgb: list[Sequence[float]] = [(0.0, 0.0, 0.0)]
    alpha: list[float] = [0.0]
    mov: list[int] = [0]
    body: list[bool] = [False]
    shade: list[tuple] = [(0.0,) * 10]
    flat_row = (0.0,) * 10
    line_k = k * ss

    def entry(colour: Sequence[float], a: float, sh: _Shape, row: tuple) -> int:
        rgb.append(colour)
        alpha.append(a)
        mov.append(255 if moving is None or sh.part in moving else 0)
        body.append(sh.body)
        shade.append(row)
        return len(rgb) - 1

    for sh, pts in zip(shapes, screen):
        ip = np.rint((pts * ss - off) * 16.0).astype(np.int32)
        row = flat_row
        if style3d and sh.mat != "flat":
            amb, dif, spec, shin = _MATERIALS[sh.mat]  # type: ignore[misc]
            if sh.shade is not None:
                cx, cy, ex, ey, r1, r2 = sh.shade
                scx, scy = (ox + cx * k) * ss - off[0], (oy - cy * k) * ss - off[1]
                row = (scx, scy, ex, -ey, 1.0 / (r1 * line_k), 0.0 if math.isinf(r2) else 1.0 / (r2 * line_k),
                       amb, dif, spec, shin)
            else:
                row = (0.0, 0.0, 1.0, 0.0, 0.0, 0.0, amb, dif, spec, shin)
        fid = entry(sh.rgb, sh.alpha, sh, row)
        if sh.width > 0.0:
            thick = max(1, int(round(sh.width * line_k)))
            cv2.polylines(idx, [ip], sh.closed, fid, thick, cv2.LINE_8, 4)
        else:
            cv2.fillPoly(idx, [ip], fid, cv2.LINE_8, 4)
            if not style3d and sh.outline > 0.0:
                oid = entry(outline_rgb, 1.0, sh, flat_row)
                thick = max(1, int(round(_OUTLINE * sh.outline * line_k)))
                cv2.polylines(idx, [ip], True, oid, thick, cv2.LINE_8, 4)
    rgb_t = np.asarray(rgb, np.float32)
    alpha_t = np.asarray(alpha, np.float32)
    # Planar look-ups (np.take on one column at a time is far faster than row gathers).
    planes = [np.take(np.ascontiguousarray(rgb_t[:, c] * alpha_t), idx) for c in range(3)]
    planes.append(np.take(alpha_t, idx))
    if style3d:
        _shade(idx.reshape(-1), idx.shape[1], np.asarray(shade, np.float32), rgb_t, [p.reshape(-1) for p in planes[:3]])
    small = np.dstack([cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA) for p in planes])
    sil = cv2.resize(np.take(np.asarray(mov, np.uint8), idx), (w, h), interpolation=cv2.INTER_AREA) > 0
    body_px = np.take(np.asarray(body, bool), idx)
    rows, cols = np.flatnonzero(body_px.any(axis=1)), np.flatnonzero(body_px.any(axis=0))
    box = None
    if rows.size:
        box = (x0 + cols[0] // ss, y0 + rows[0] // ss, x0 + (cols[-1] + ss) // ss, y0 + (rows[-1] + ss) // ss)
    return _Layer(x0, y0, small, sil, box)


def _shade(flat_idx: np.ndarray, width: int, shade_t: np.ndarray, rgb_t: np.ndarray, planes: list[np.ndarray]) -> None:
    """Deferred "3d" shading of every lit pixel, written into the flat r, g, b ``planes``.

    ``flat_idx`` is the raveled index buffer, ``width`` its row length.
    Each ``shade_t`` row holds a normal model in supersampled ROI pixels: centre (cx, cy),
    unit axis e1 (e2 is its perpendicular), inverse radii along e1 and e2 (0: flat in that
    direction), then ambient, diffuse, specular strength and shininess. The screen-space
    normal (nx, ny) is an affine function of the pixel position, so it is folded into
    per-shape coefficients first. Lit shapes are opaque, so their planes hold plain RGB.
    """
    sel = np.flatnonzero(np.take(shade_t[:, 6] > 0.0, flat_idx))
    if not sel.size:
        return
    cx, cy, ex, ey, ir1, ir2 = (shade_t[:, j].astype(np.float64) for j in range(6))
    m00 = ex * ex * ir1 + ey * ey * ir2
    m01 = ex * ey * (ir1 - ir2)
    m11 = ey * ey * ir1 + ex * ex * ir2
    coef = [np.ascontiguousarray(c, dtype=np.float32)
            for c in (m00, m01, -(cx * m00 + cy * m01), m11, -(cx * m01 + cy * m11))]
    ids = np.take(flat_idx, sel).astype(np.intp)
    ys = sel // width
    xs = (sel - ys * width).astype(np.float32)
    ys = ys.astype(np.float32)
    c01 = np.take(coef[1], ids)
    nx = xs * np.take(coef[0], ids) + ys * c01 + np.take(coef[2], ids)
    ny = xs * c01 + ys * np.take(coef[3], ids) + np.take(coef[4], ids)
    q = nx * nx + ny * ny
    inv = 1.0 / np.sqrt(np.maximum(q, 1.0))
    nx *= inv
    ny *= inv
    nz = np.sqrt(np.maximum(1.0 - q, 0.0))
    lx, ly, lz = (float(v) for v in _LIGHT)
    hx, hy, hz = (float(v) for v in _HALF)
    diffuse = np.maximum(nx * lx + ny * ly + nz * lz, 0.0)
    amb, dif = np.ascontiguousarray(shade_t[:, 6]), np.ascontiguousarray(shade_t[:, 7])
    gain = (np.take(amb, ids) + np.take(dif, ids) * diffuse) * (0.72 + 0.28 * nz)
    ndh = nx * hx + ny * hy + nz * hz
    ks = np.ascontiguousarray(shade_t[:, 8])
    hot = np.flatnonzero((ndh > 0.75) & (np.take(ks, ids) > 0.0))
    spec = None
    if hot.size:
        hid = ids[hot]
        spec = 255.0 * np.take(ks, hid) * np.power(ndh[hot], np.take(np.ascontiguousarray(shade_t[:, 9]), hid))
    for c, plane in enumerate(planes):
        value = np.take(np.ascontiguousarray(rgb_t[:, c]), ids) * gain
        if spec is not None:
            value[hot] += spec
        plane[sel] = np.minimum(value, 255.0)


def _composite(frame: np.ndarray, layer: _Layer) -> None:
    h, w = layer.premult.shape[:2]
    region = frame[layer.y0:layer.y0 + h, layer.x0:layer.x0 + w]
    out = region.astype(np.float32) * (1.0 - layer.premult[..., 3:4]) + layer.premult[..., :3]
    region[...] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
