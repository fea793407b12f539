"""Figure geometry and the shape list.

Proportions and hair shapes in figure units (feet at the origin, y up), polygon
builders (circle, ellipse, arc, tapered capsule, Chaikin smoothing), affine-frame
helpers, colour mixing, the "3d" materials and light, and :class:`_Figure`, which
collects a frame's :class:`_Shape` list in draw order.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


# --------------------------------------------------------------------------- geometry

# Figure proportions, in figure units (feet at y = 0, y up).
_HEAD_C = (0.0, 0.695)
_HEAD_RX, _HEAD_RY = 0.205, 0.19
_HAIR_RX, _HAIR_RY, _HAIR_DY = 0.228, 0.212, 0.012
_NECK = (0.0, 0.50)
_SHOULDER_X, _SHOULDER_Y = 0.098, 0.47
_HIP_X = 0.05
_THIGH, _SHIN, _FOOT_RY = 0.13, 0.115, 0.025
_HIP_Y = _THIGH + _SHIN + _FOOT_RY
_UPPER_ARM, _FOREARM, _HAND_R = 0.11, 0.095, 0.03
_FACE_DEPTH = 0.13           # how far the face features sit in front of the head's axis
_EYE_X, _EYE_Y, _EYE_RX, _EYE_RY = 0.083, 0.648, 0.05, 0.06
_MOUTH_Y = 0.565
_OUTLINE = 0.014             # "2d" outline width
_CENTRE_Y = 0.46             # the figure's visual centre (zoom pivot)

# Hair shapes: fringe tips / root / tip heights (relative to the head centre), side locks.
_HAIR_STYLES: dict[str, dict[str, Any]] = {
    "spiky": {"spikes": 8, "spike_len": 0.26, "tips": 4, "root": 0.105, "tip": 0.0, "slant": 0.5, "lock": -0.075,
              "nape": -0.1},
    "short": {"tips": 5, "root": 0.095, "tip": 0.028, "slant": 0.0, "lock": -0.065, "nape": -0.1},
    "bob": {"tips": 9, "root": 0.058, "tip": 0.03, "slant": 0.0, "lock": -0.175, "lock_out": 0.25, "lock_in": 0.172,
            "round_lock": True, "wide": 1.05, "nape": -0.17},
    "long": {"tips": 4, "root": 0.1, "tip": 0.0, "slant": 0.0, "parted": True, "lock": -0.34, "lock_out": 0.24,
             "nape": -0.14},
    "twin_tails": {"tips": 5, "root": 0.1, "tip": 0.02, "slant": 0.0, "lock": -0.09, "nape": -0.12},
    "ponytail": {"tips": 4, "root": 0.11, "tip": 0.012, "slant": 0.8, "lock": -0.05, "nape": -0.09},
}

_CIRCLES: dict[int, np.ndarray] = {}


def _circle(n: int) -> np.ndarray:
    table = _CIRCLES.get(n)
    if table is None:
        a = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
        table = _CIRCLES[n] = np.stack([np.cos(a), np.sin(a)], axis=1)
    return table


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24, rot: float = 0.0) -> np.ndarray:
    pts = _circle(n) * (rx, ry)
    if rot:
        c, s = math.cos(rot), math.sin(rot)
        pts = pts @ np.array([[c, s], [-s, c]])
    return pts + (cx, cy)


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 12) -> np.ndarray:
    a = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def _capsule(p0: Sequence[float], p1: Sequence[float], r0: float, r1: float, n: int = 8) -> np.ndarray:
    """Tapered capsule polygon from p0 (radius r0) to p1 (radius r1)."""
    x0, y0 = p0
    x1, y1 = p1
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy) or 1e-9
    av = math.atan2(dx / length, -dy / length)  # angle of the left normal (-uy, ux)
    a1 = np.linspace(av, av - math.pi, n)
    a0 = np.linspace(av - math.pi, av - 2.0 * math.pi, n)
    end1 = np.stack([x1 + r1 * np.cos(a1), y1 + r1 * np.sin(a1)], axis=1)
    end0 = np.stack([x0 + r0 * np.cos(a0), y0 + r0 * np.sin(a0)], axis=1)
    return np.concatenate([end1, end0])


def _smooth(pts: Sequence[Sequence[float]], iterations: int = 2, closed: bool = True) -> np.ndarray:
    """Chaikin corner cutting: rounds a control polygon."""
    p = np.asarray(pts, dtype=np.float64)
    for _ in range(iterations):
        q = np.roll(p, -1, axis=0) if closed else p[1:]
        a = p if closed else p[:-1]
        new = np.empty((2 * len(a), 2))
        new[0::2] = 0.75 * a + 0.25 * q
        new[1::2] = 0.25 * a + 0.75 * q
        p = new if closed else np.concatenate([p[:1], new, p[-1:]])
    return p


def _dir(angle: float) -> np.ndarray:
    """Unit vector of a limb at ``angle`` from straight down (positive towards +x)."""
    return np.array([math.sin(angle), -math.cos(angle)])


def _affine(a: float = 1.0, b: float = 0.0, c: float = 0.0, d: float = 1.0, tx: float = 0.0, ty: float = 0.0) -> np.ndarray:
    return np.array([[a, b, tx], [c, d, ty], [0.0, 0.0, 1.0]])


def _translate(tx: float, ty: float) -> np.ndarray:
    return _affine(tx=tx, ty=ty)


def _rotate(angle: float, about: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    px, py = about
    return _translate(px, py) @ _affine(c, -s, s, c) @ _translate(-px, -py)


def _mix(a: Sequence[float], b: Sequence[float], w: float) -> tuple[float, float, float]:
    return tuple(float(x) * (1.0 - w) + float(y) * w for x, y in zip(a, b))  # type: ignore[return-value]


def _scale(a: Sequence[float], f: float) -> tuple[float, float, float]:
    return tuple(min(255.0, float(x) * f) for x in a)  # type: ignore[return-value]


# --------------------------------------------------------------------------- shapes

# Materials for "3d": (ambient, diffuse, specular, shininess); "flat" is unlit.
_MATERIALS: dict[str, tuple[float, float, float, float] | None] = {
    "flat": None,
    "skin": (0.74, 0.40, 0.08, 10.0),
    "hair": (0.48, 0.62, 0.60, 24.0),
    "cloth": (0.48, 0.62, 0.12, 8.0),
    "metal": (0.30, 0.80, 0.95, 40.0),
    "eye": (0.80, 0.30, 0.55, 30.0),
}
_LIGHT = np.array([-0.45, -0.62, 0.64]) / np.linalg.norm([-0.45, -0.62, 0.64])  # screen coords, y down
_HALF = (_LIGHT + (0.0, 0.0, 1.0)) / np.linalg.norm(_LIGHT + (0.0, 0.0, 1.0))


class _Shape:
    """A filled polygon (``width == 0``) or a stroke, with its colour, part and shading."""

    __slots__ = ("pts", "rgb", "part", "width", "closed", "outline", "shade", "mat", "alpha", "body")

    def __init__(self, pts: np.ndarray, rgb: Sequence[float], part: str, width: float, closed: bool,
                 outline: float, shade: tuple[float, ...] | None, mat: str, alpha: float, body: bool):
        self.pts = pts
        self.rgb = rgb
        self.part = part
        self.width = width
        self.closed = closed
        self.outline = outline
        self.shade = shade
        self.mat = mat
        self.alpha = alpha
        self.body = body


class _Figure:
    """Collects one frame's shapes in draw order, in figure units, under an affine frame."""

    def __init__(self) -> None:
        self.shapes: list[_Shape] = []
        self.m = np.eye(3)
        self.part = "torso"

    def use(self, m: np.ndarray, part: str) -> None:
        self.m = m
        self.part = part

    def add(self, pts: np.ndarray, rgb: Sequence[float], *, outline: float = 1.0, mat: str = "cloth",
            shade: tuple | None = None, width: float = 0.0, closed: bool = True, alpha: float = 1.0,
            part: str | None = None, body: bool = True) -> None:
        m = self.m
        lin = m[:2, :2]
        world = np.asarray(pts, dtype=np.float64) @ lin.T + m[:2, 2]
        sh = None
        if shade is not None and _MATERIALS[mat] is not None:
            if shade[0] == "sph":
                _, cx, cy, rx, ry = shade
                ex, ey = lin[:, 0], lin[:, 1]
                nx, ny = float(np.hypot(*ex)), float(np.hypot(*ey))
                centre = lin @ (cx, cy) + m[:2, 2]
                sh = (centre[0], centre[1], ex[0] / nx, ex[1] / nx, rx * nx, ry * ny)
            else:  # cylinder along p0 -> p1
                _, x0, y0, x1, y1, r = shade
                axis = lin @ (x1 - x0, y1 - y0)
                na = float(np.hypot(*axis)) or 1e-9
                centre = lin @ (x0, y0) + m[:2, 2]
                scale = math.sqrt(abs(np.linalg.det(lin)))
                sh = (centre[0], centre[1], -axis[1] / na, axis[0] / na, r * scale, math.inf)
        self.shapes.append(_Shape(world, rgb, part or self.part, width, closed, outline, sh, mat, alpha, body))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, rgb: Sequence[float], *, n: int = 24,
                rot: float = 0.0, shaded: bool = True, **kw: Any) -> None:
        self.add(_ellipse(cx, cy, rx, ry, n, rot), rgb, shade=("sph", cx, cy, rx, ry) if shaded else None, **kw)

    def limb(self, p0: Sequence[float], p1: Sequence[float], r0: float, r1: float, rgb: Sequence[float], **kw: Any) -> None:
        self.add(_capsule(p0, p1, r0, r1), rgb, shade=("cyl", p0[0], p0[1], p1[0], p1[1], 0.5 * (r0 + r1)), **kw)

    def stroke(self, pts: Any, rgb: Sequence[float], width: float, *, closed: bool = False, **kw: Any) -> None:
        self.add(np.asarray(pts, dtype=np.float64), rgb, width=width, closed=closed, outline=0.0, mat="flat", **kw)
