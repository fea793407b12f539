"""Backgrounds: the supersampled canvas and one painter per scene, registered in :data:`_BACKGROUND_PAINTERS`.

A painter draws a scene's elements in world coordinates onto a :class:`_Canvas` (flat
cel bands and outlines for "2d", gradient-shaded shapes and a slight blur for "3d"),
placing seeded details with the generator it is given.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from anibench.smoke.geometry import _arc, _circle


# --------------------------------------------------------------------------- backgrounds


class _Canvas:
    """A supersampled background canvas in frame-relative coordinates.

    ``u`` is x / width, ``v`` is y / height; lengths (radii, widths) are in frame heights.
    The canvas covers world pixels [``xa``, ``xb``) horizontally; every element is placed
    in world coordinates, so a wider canvas (for panning) contains the static one.
    """

    def __init__(self, width: int, height: int, ss: int, xa: int, xb: int, style3d: bool, outline_rgb: Sequence[float]):
        self.W, self.H, self.ss, self.xa = width, height, ss, xa
        self.style3d = style3d
        self.outline_rgb = tuple(float(v) for v in outline_rgb)
        self.img = np.zeros((height * ss, (xb - xa) * ss, 3), np.uint8)
        self.outline_px = max(1, int(round(0.008 * height * ss)))

    def to_ss(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, dtype=np.float64)
        x = (uv[:, 0] * self.W - self.xa + 0.5) * self.ss - 0.5
        y = (uv[:, 1] * self.H + 0.5) * self.ss - 0.5
        return np.stack([x, y], axis=1)

    def sky(self, top: Sequence[float], bottom: Sequence[float], bands: int = 4, v0: float = 0.0, v1: float = 1.0) -> None:
        rows = self.img.shape[0]
        v = (np.arange(rows) + 0.5) / rows
        t = np.clip((v - v0) / max(1e-6, v1 - v0), 0.0, 1.0)
        if not self.style3d:
            t = np.minimum(np.floor(t * bands), bands - 1) / max(1, bands - 1)
        col = (np.asarray(top, np.float32)[None, :] * (1.0 - t[:, None])
               + np.asarray(bottom, np.float32)[None, :] * t[:, None])
        sel = (v >= v0) & (v <= v1)
        self.img[sel] = np.rint(col[sel])[:, None, :].astype(np.uint8)

    def poly(self, uv: Any, rgb: Sequence[float], *, outline: float = 1.0, shade: float = 0.35,
             light: tuple[float, float] = (-0.35, -0.94)) -> None:
        pts = self.to_ss(uv)
        ip = np.rint(pts * 16.0).astype(np.int32)
        colour = tuple(float(c) for c in rgb)
        if not self.style3d:
            cv2.fillPoly(self.img, [ip], colour, cv2.LINE_AA, 4)
            if outline > 0.0:
                cv2.polylines(self.img, [ip], True, self.outline_rgb, max(1, int(round(self.outline_px * outline))),
                              cv2.LINE_AA, 4)
            return
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        bx0, by0 = max(0, int(math.floor(lo[0])) - 1), max(0, int(math.floor(lo[1])) - 1)
        bx1 = min(self.img.shape[1], int(math.ceil(hi[0])) + 2)
        by1 = min(self.img.shape[0], int(math.ceil(hi[1])) + 2)
        if bx1 <= bx0 or by1 <= by0:
            return
        mask = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
        cv2.fillPoly(mask, [ip - np.array([bx0, by0], np.int32) * 16], 255, cv2.LINE_AA, 4)
        cover = mask.astype(np.float32)[..., None] / 255.0
        lx, ly = light
        span = abs(lx) * (hi[0] - lo[0]) + abs(ly) * (hi[1] - lo[1]) + 1e-6
        xs = np.arange(bx0, bx1, dtype=np.float32)[None, :]
        ys = np.arange(by0, by1, dtype=np.float32)[:, None]
        ref_x = lo[0] if lx < 0 else hi[0]
        ref_y = lo[1] if ly < 0 else hi[1]
        t = np.clip(((xs - ref_x) * -lx + (ys - ref_y) * -ly) / span, 0.0, 1.0)  # 0 on the lit side
        gain = (1.0 + shade * (0.5 - t))[..., None]
        col = np.clip(np.asarray(colour, np.float32) * gain, 0.0, 255.0)
        region = self.img[by0:by1, bx0:bx1]
        region[...] = np.rint(region * (1.0 - cover) + col * cover).astype(np.uint8)

    def ellipse(self, u: float, v: float, rx: float, ry: float, rgb: Sequence[float], n: int = 32, **kw: Any) -> None:
        pts = _circle(n) * (rx * self.H / self.W, ry) + (u, v)
        kw.setdefault("light", (-0.6, -0.8))
        self.poly(pts, rgb, **kw)

    def rect(self, u0: float, v0: float, u1: float, v1: float, rgb: Sequence[float], **kw: Any) -> None:
        self.poly([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], rgb, **kw)

    def line(self, uv: Any, rgb: Sequence[float], width: float, closed: bool = False) -> None:
        ip = np.rint(self.to_ss(uv) * 16.0).astype(np.int32)
        cv2.polylines(self.img, [ip], closed, tuple(float(c) for c in rgb),
                      max(1, int(round(width * self.H * self.ss))), cv2.LINE_AA, 4)

    def blobs(self, circles: Sequence[tuple[float, float, float]], rgb: Sequence[float], shade: float = 0.35,
              outline: float = 1.0) -> None:
        """A union of circles (clouds, canopies) with one outline around the union."""
        if not self.style3d and outline > 0.0:
            for u, v, r in circles:
                self.ellipse(u, v, r + 0.5 * self.outline_px * outline / (self.H * self.ss), r + 0.5 * self.outline_px
                             * outline / (self.H * self.ss), self.outline_rgb, outline=0.0)
        for u, v, r in circles:
            self.ellipse(u, v, r, r, rgb, outline=0.0, shade=shade)

    def finish(self) -> np.ndarray:
        if self.style3d:
            sigma = 0.0022 * self.H * self.ss
            self.img = cv2.GaussianBlur(self.img, (0, 0), sigma)
        return self.img


def _hills(phase: float, base: float, amp1: float, amp2: float, f1: float = 1.3, f2: float = 2.9) -> np.ndarray:
    u = np.linspace(-0.8, 1.8, 90)
    v = base + amp1 * np.sin(2 * math.pi * (u * f1 + phase)) + amp2 * np.sin(2 * math.pi * (u * f2 + 0.37 + phase))
    return np.concatenate([np.stack([u, v], axis=1), [(1.8, 1.05), (-0.8, 1.05)]])


def _hill_v(u: float, phase: float, base: float, amp1: float, amp2: float, f1: float = 1.3, f2: float = 2.9) -> float:
    return base + amp1 * math.sin(2 * math.pi * (u * f1 + phase)) + amp2 * math.sin(2 * math.pi * (u * f2 + 0.37 + phase))


def _spread(rng: np.random.Generator, n: int, lo: float = -0.75, hi: float = 1.75) -> np.ndarray:
    """n positions spread evenly over [lo, hi) with jitter."""
    step = (hi - lo) / n
    return lo + step * (np.arange(n) + rng.uniform(0.15, 0.85, n))


def _paint_sunny_hills(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["sky_top"], col["sky_bottom"], 4, 0.0, 0.7)
    cv.ellipse(0.82, 0.16, 0.075, 0.075, col["sun"], shade=0.25)
    for u in _spread(rng, 7):
        v = rng.uniform(0.08, 0.3)
        r = rng.uniform(0.04, 0.06)
        cv.blobs([(u - 0.06, v + 0.01, r * 0.8), (u, v - 0.012, r), (u + 0.06, v + 0.008, r * 0.85),
                  (u + 0.02, v + 0.02, r * 0.8)], col["cloud"], shade=0.3)
    cv.poly(_hills(0.1, 0.6, 0.05, 0.025), col["hill_far"], shade=0.3)
    for u in _spread(rng, 10):
        v = _hill_v(u, 0.1, 0.6, 0.05, 0.025) + 0.01
        cv.rect(u - 0.007, v - 0.06, u + 0.007, v, col["trunk"], outline=0.6)
        cv.blobs([(u, v - 0.085, 0.04), (u - 0.02, v - 0.06, 0.03), (u + 0.02, v - 0.06, 0.03)], col["leaf"],
                 outline=0.6)
    cv.poly(_hills(0.55, 0.75, 0.025, 0.01, 0.9, 2.1), col["hill_near"], shade=0.25)
    flowers = (col["flower_a"], col["flower_b"], col["flower_c"])
    for u in _spread(rng, 46):
        v = rng.uniform(0.8, 0.99)
        if rng.random() < 0.5:
            cv.line([(u - 0.01, v), (u, v - 0.025), (u + 0.004, v), (u + 0.012, v - 0.02)], col["grass_dark"], 0.004)
        else:
            cv.ellipse(u, v, 0.009, 0.009, flowers[int(rng.integers(3))], outline=0.4, shade=0.2, n=12)


def _paint_dusk_city(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["sky_top"], col["sky_bottom"], 5, 0.0, 0.8)
    cv.ellipse(0.3, 0.6, 0.14, 0.14, col["sun"], shade=0.2, outline=0.0)
    u = -0.8
    while u < 1.8:
        w = rng.uniform(0.06, 0.12)
        top = rng.uniform(0.28, 0.5)
        cv.rect(u, top, u + w, 0.85, col["far_building"], outline=0.6, shade=0.25)
        u += w + rng.uniform(0.0, 0.03)
    u = -0.8
    while u < 1.8:
        w = rng.uniform(0.1, 0.18)
        top = rng.uniform(0.4, 0.6)
        cv.rect(u, top, u + w, 0.85, col["near_building"], shade=0.3)
        nx = max(1, int(w / 0.035))
        for i in range(nx):
            for j in range(int((0.8 - top) / 0.06)):
                on = rng.random() < 0.55
                wu = u + (i + 0.3) * w / nx
                wv = top + 0.035 + j * 0.06
                cv.rect(wu, wv, wu + 0.4 * w / nx, wv + 0.028, col["window_on" if on else "window_off"], outline=0.0,
                        shade=0.2)
        u += w + rng.uniform(0.01, 0.05)
    cv.rect(-0.8, 0.8, 1.8, 0.86, col["sidewalk"], shade=0.2)
    cv.rect(-0.8, 0.86, 1.8, 1.05, col["street"], outline=0.0, shade=0.25)
    for u in np.arange(-0.8, 1.8, 0.16):
        cv.rect(u, 0.935, u + 0.08, 0.95, col["stripe"], outline=0.0, shade=0.0)
    for u in np.arange(-0.65, 1.8, 0.45) + rng.uniform(-0.05, 0.05):
        cv.line([(u, 0.82), (u, 0.5), (u + 0.03, 0.49)], col["near_building"], 0.008)
        cv.ellipse(u + 0.035, 0.5, 0.014, 0.014, col["lamp"], outline=0.5, n=16)


def _paint_classroom(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["wall_top"], col["wall_bottom"], 3, 0.0, 0.78)
    period = 0.8
    for k in range(-2, 4):
        u0 = k * period - 0.06
        cv.rect(u0 + 0.02, 0.14, u0 + 0.44, 0.52, col["board_frame"], shade=0.2)
        cv.rect(u0 + 0.035, 0.16, u0 + 0.425, 0.5, col["board"], outline=0.6, shade=0.25)
        for j in range(3):
            y = 0.22 + j * 0.08 + rng.uniform(-0.01, 0.01)
            x = u0 + 0.06 + rng.uniform(0.0, 0.04)
            length = rng.uniform(0.15, 0.3)
            xs = np.linspace(x, x + length, 14)
            ys = y + 0.012 * np.sin(xs * rng.uniform(120, 200))
            cv.line(np.stack([xs, ys], axis=1), col["chalk"], 0.005)
        cv.ellipse(u0 + 0.36, 0.42, 0.03, 0.03, col["chalk"], outline=0.0, shade=0.0, n=20)
        cv.ellipse(u0 + 0.36, 0.42, 0.022, 0.022, col["board"], outline=0.0, shade=0.0, n=20)
        wx = u0 + 0.52
        cv.rect(wx, 0.1, wx + 0.22, 0.6, col["window_frame"], shade=0.15)
        for i in range(2):
            for j in range(2):
                cv.rect(wx + 0.015 + i * 0.1, 0.12 + j * 0.235, wx + 0.105 + i * 0.1, 0.345 + j * 0.235,
                        col["window_sky"], outline=0.6, shade=0.4)
        cv.blobs([(wx + 0.07, 0.2, 0.02), (wx + 0.1, 0.19, 0.025), (wx + 0.13, 0.2, 0.02)], col["window_frame"],
                 outline=0.0)
        for side, x in ((-1, wx), (1, wx + 0.22)):
            cv.poly([(x - side * 0.0, 0.08), (x + side * 0.05, 0.08), (x + side * 0.035, 0.35), (x + side * 0.06, 0.62),
                     (x - side * 0.01, 0.62)], col["curtain"], shade=0.3)
        cv.ellipse(u0 + 0.23, 0.07, 0.04, 0.04, col["clock"], n=28)
        cv.line([(u0 + 0.23, 0.07), (u0 + 0.23, 0.045)], col["trim"], 0.005)
        cv.line([(u0 + 0.23, 0.07), (u0 + 0.25, 0.075)], col["trim"], 0.005)
        poster = col["poster_a"] if k % 2 else col["poster_b"]
        pv = rng.uniform(0.2, 0.3)
        cv.rect(u0 - 0.045, pv, u0 + 0.0, pv + 0.12, poster, outline=0.6)
    cv.rect(-0.8, 0.76, 1.8, 0.79, col["trim"], shade=0.3)
    cv.rect(-0.8, 0.79, 1.8, 1.05, col["floor"], outline=0.0, shade=0.3)
    for j, v in enumerate((0.84, 0.9, 0.97)):
        cv.line([(-0.8, v), (1.8, v)], col["floor_line"], 0.004)
        start = -0.8 + rng.uniform(0.0, 0.2)
        for u in np.arange(start, 1.8, 0.22):
            cv.line([(u, v), (u - 0.01, v + (0.06 if j < 2 else 0.08))], col["floor_line"], 0.004)


def _paint_night_sky(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["sky_top"], col["sky_bottom"], 5, 0.0, 0.8)
    for u in _spread(rng, 90):
        v = rng.uniform(0.02, 0.62)
        r = rng.uniform(0.003, 0.008)
        cv.ellipse(u, v, r, r, col["star"], outline=0.0, shade=0.0, n=8)
    for u in _spread(rng, 9):
        v = rng.uniform(0.05, 0.45)
        r = rng.uniform(0.015, 0.025)
        star = []
        for i in range(8):
            a = i * math.pi / 4
            rr = r if i % 2 == 0 else r * 0.3
            star.append((u + rr * math.cos(a) * cv.H / cv.W, v + rr * math.sin(a)))
        cv.poly(star, col["star"], outline=0.0, shade=0.0)
    cv.ellipse(0.78, 0.2, 0.085, 0.085, col["moon"], shade=0.35, n=40)
    for du, dv, r in ((-0.02, -0.02, 0.018), (0.025, 0.02, 0.013), (-0.01, 0.035, 0.01)):
        cv.ellipse(0.78 + du, 0.2 + dv, r, r, col["crater"], outline=0.4, shade=0.3, n=16)
    cv.poly(_hills(0.3, 0.62, 0.05, 0.02), col["hill_far"], shade=0.3)
    for u in _spread(rng, 16):
        v = _hill_v(u, 0.3, 0.62, 0.05, 0.02) + 0.02
        hgt = rng.uniform(0.08, 0.14)
        cv.poly([(u, v - hgt), (u + 0.025, v), (u - 0.025, v)], col["tree"], outline=0.5, shade=0.2)
    cv.poly(_hills(0.8, 0.76, 0.02, 0.01, 0.8, 2.3), col["hill_near"], shade=0.3)
    for u in _spread(rng, 30):
        v = rng.uniform(0.8, 0.98)
        cv.line([(u - 0.008, v), (u, v - 0.02), (u + 0.008, v)], col["ground"], 0.004)


def _paint_forest(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["sky_top"], col["sky_bottom"], 4, 0.0, 0.8)
    for u in _spread(rng, 16):
        v = rng.uniform(0.35, 0.5)
        cv.blobs([(u, v, 0.07), (u + 0.05, v + 0.03, 0.06), (u - 0.05, v + 0.03, 0.055)], col["far_canopy"],
                 outline=0.0, shade=0.25)
    cv.rect(-0.8, 0.55, 1.8, 0.8, col["far_canopy"], outline=0.0, shade=0.2)
    for u in _spread(rng, 11):
        w = rng.uniform(0.018, 0.03)
        cv.poly([(u - w, -0.05), (u + w, -0.05), (u + w * 1.3, 0.8), (u - w * 1.3, 0.8)], col["trunk"], shade=0.4,
                light=(-1.0, 0.0))
        v = rng.uniform(0.05, 0.2)
        cv.blobs([(u, v, 0.09), (u - 0.07, v + 0.05, 0.07), (u + 0.07, v + 0.04, 0.075), (u, v + 0.09, 0.06)],
                 col["canopy"], shade=0.35)
    cv.poly(_hills(0.2, 0.78, 0.012, 0.006, 1.1, 3.1), col["ground"], shade=0.25)
    for u in _spread(rng, 12):
        v = 0.78 + rng.uniform(-0.01, 0.01)
        cv.blobs([(u, v, 0.03), (u + 0.03, v + 0.005, 0.025), (u - 0.03, v + 0.008, 0.022)], col["canopy_dark"],
                 outline=0.6)
    for u in _spread(rng, 40):
        v = rng.uniform(0.84, 0.99)
        r = rng.random()
        if r < 0.55:
            blade = [(u - 0.01, v), (u - 0.002, v - 0.025), (u + 0.003, v), (u + 0.012, v - 0.02)]
            cv.line(blade, col["grass_dark"], 0.004)
        elif r < 0.8:
            cv.rect(u - 0.004, v - 0.02, u + 0.004, v, col["stem"], outline=0.4)
            cv.poly(_arc(u, v - 0.02, 0.016 * cv.H / cv.W, 0.016, math.pi, 2 * math.pi, 10), col["cap"], outline=0.5)
        else:
            cv.ellipse(u, v, 0.008, 0.008, col["flower"], outline=0.4, n=10)


_BACKGROUND_PAINTERS: dict[str, Callable[[_Canvas, Mapping[str, tuple], np.random.Generator], None]] = {
    "sunny_hills": _paint_sunny_hills,
    "dusk_city": _paint_dusk_city,
    "classroom": _paint_classroom,
    "night_sky": _paint_night_sky,
    "forest": _paint_forest,
}
