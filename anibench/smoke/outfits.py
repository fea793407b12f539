"""Outfits: the resolved look a character is drawn with and the outfit painters.

:class:`_Look` (a character's colours as float RGB and its outfit settings; built from
``smoke.yaml`` by :func:`anibench.smoke.figure._look`), the torso outline and one
painter per outfit style, registered in :data:`_OUTFITS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from anibench.smoke.geometry import _Figure
from anibench.smoke.spec import Character


# --------------------------------------------------------------------------- character look


@dataclass(frozen=True)
class _Look:
    """A character's resolved colours (float RGB) and outfit settings."""

    ch: Character
    girl: bool
    skin: tuple
    skin_dark: tuple
    hair: tuple
    hair_dark: tuple
    hair_light: tuple
    eye: tuple
    eye_dark: tuple
    outfit: tuple
    outfit_dark: tuple
    accent: tuple
    pal: Mapping[str, tuple]
    sleeves: str
    legs: str
    socks: tuple | None
    shoes: tuple


# --------------------------------------------------------------------------- outfits


def _torso_outline(bx: float, bottom: float, flare: float = 0.0) -> np.ndarray:
    pts = [(-0.065, 0.505), (-0.1, 0.492), (-0.116, 0.462), (-0.098, 0.37), (-0.088, 0.335),
           (-0.098 - flare, bottom), (0.098 + flare, bottom), (0.088, 0.335), (0.098, 0.37), (0.116, 0.462),
           (0.1, 0.492), (0.065, 0.505)]
    p = np.asarray(pts)
    p[:, 0] *= bx
    return p


def _sq(pts: Any, bx: float, dx: float = 0.0) -> np.ndarray:
    p = np.array(pts, dtype=np.float64)
    p[:, 0] = p[:, 0] * bx + dx
    return p


def _outfit_sailor(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    white, blue = lk.pal["white"], lk.outfit
    skirt = _sq([(-0.092, 0.34), (0.092, 0.34), (0.165, 0.165), (-0.165, 0.165)], bx)
    fig.add(skirt, blue, shade=("sph", 0.0, 0.28, 0.17 * bx, 0.2))
    for xf in (-0.5, 0.0, 0.5):
        fig.stroke(_sq([(xf * 0.09, 0.33), (xf * 0.165, 0.172)], bx), lk.outfit_dark, 0.006)
    fig.add(_torso_outline(bx, 0.31), white, shade=("sph", 0.0, 0.41, 0.12 * bx, 0.16))
    if front:
        fig.add(_sq([(-0.104, 0.49), (0.104, 0.49), (0.0, 0.372)], bx, dx), blue, outline=0.8)
        fig.stroke(_sq([(-0.078, 0.478), (0.0, 0.392), (0.078, 0.478)], bx, dx), white, 0.007)
        fig.add(_sq([(-0.036, 0.5), (0.036, 0.5), (0.0, 0.445)], bx, dx), lk.skin, mat="skin", outline=0.6)
        fig.add(_sq([(-0.04, 0.43), (0.04, 0.43), (0.0, 0.35)], bx, dx), lk.accent, outline=0.7)
        fig.ellipse(dx, 0.425, 0.02 * bx, 0.015, lk.accent, outline=0.7, n=14)
    else:
        fig.add(_sq([(-0.094, 0.49), (0.094, 0.49), (0.09, 0.41), (-0.09, 0.41)], bx), blue, outline=0.8)
        fig.stroke(_sq([(-0.07, 0.48), (-0.066, 0.425), (0.066, 0.425), (0.07, 0.48)], bx), white, 0.007)


def _outfit_hoodie(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    body = _sq([(-0.075, 0.505), (-0.112, 0.49), (-0.126, 0.458), (-0.112, 0.3), (-0.118, 0.235), (0.118, 0.235),
                (0.112, 0.3), (0.126, 0.458), (0.112, 0.49), (0.075, 0.505)], bx)
    fig.add(body, lk.outfit, shade=("sph", 0.0, 0.38, 0.13 * bx, 0.19))
    fig.add(_sq([(-0.118, 0.262), (0.118, 0.262), (0.118, 0.235), (-0.118, 0.235)], bx), lk.outfit_dark, outline=0.6)
    if front:
        fig.add(_sq([(-0.078, 0.505), (-0.058, 0.462), (0.0, 0.45), (0.058, 0.462), (0.078, 0.505), (0.05, 0.52),
                     (-0.05, 0.52)], bx, dx), lk.outfit_dark, outline=0.7)
        fig.add(_sq([(-0.064, 0.335), (0.064, 0.335), (0.08, 0.272), (-0.08, 0.272)], bx, dx), lk.outfit_dark, outline=0.6)
        for side in (-1, 1):
            fig.stroke(_sq([(side * 0.022, 0.46), (side * 0.026, 0.39)], bx, dx), lk.accent, 0.008)
            fig.ellipse(side * 0.026 * bx + dx, 0.386, 0.008, 0.01, lk.accent, mat="flat", shaded=False, outline=0.4, n=10)
    else:
        fig.ellipse(0.0, 0.46, 0.09 * bx, 0.055, lk.outfit_dark, outline=0.7, n=20)


def _outfit_kimono(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    robe = _sq([(-0.096, 0.35), (0.096, 0.35), (0.128, 0.05), (-0.128, 0.05)], bx)
    fig.add(robe, lk.outfit, shade=("sph", 0.0, 0.22, 0.14 * bx, 0.3))
    fig.add(_torso_outline(bx, 0.33), lk.outfit, shade=("sph", 0.0, 0.41, 0.12 * bx, 0.16))
    if front:
        fig.stroke(_sq([(0.03, 0.35), (0.07, 0.055)], bx, dx), lk.outfit_dark, 0.007)
        for (x, y) in ((-0.06, 0.24), (0.06, 0.14), (-0.03, 0.1), (0.075, 0.28)):
            fig.ellipse(x * bx + dx, y, 0.016, 0.016, lk.accent, mat="flat", shaded=False, outline=0.4, n=5)
        fig.stroke(_sq([(0.046, 0.505), (0.0, 0.42)], bx, dx), lk.pal["white"], 0.02)
        fig.stroke(_sq([(-0.046, 0.505), (0.03, 0.385)], bx, dx), lk.pal["white"], 0.022)
    fig.add(_sq([(-0.1, 0.398), (0.1, 0.398), (0.1, 0.328), (-0.1, 0.328)], bx), lk.accent, outline=0.8,
            shade=("cyl", 0.0, 0.398, 0.0, 0.328, 0.1 * bx))
    fig.stroke(_sq([(-0.1, 0.363), (0.1, 0.363)], bx), lk.pal["white"], 0.008)
    if not front:
        for side in (-1, 1):
            fig.ellipse(side * 0.05 * bx, 0.365, 0.05 * bx, 0.035, lk.accent, outline=0.8, n=18)


def _outfit_jacket(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    fig.add(_torso_outline(bx, 0.25, 0.01), lk.outfit, shade=("sph", 0.0, 0.38, 0.12 * bx, 0.18))
    if front:
        fig.add(_sq([(-0.042, 0.502), (0.042, 0.502), (0.03, 0.255), (-0.03, 0.255)], bx, dx), lk.accent, outline=0.6)
        fig.add(_sq([(-0.022, 0.47), (0.022, 0.47), (0.012, 0.36), (0.0, 0.345), (-0.012, 0.36)], bx, dx),
                lk.pal["outline"], mat="cloth", outline=0.0)
        for side in (-1, 1):
            fig.add(_sq([(side * 0.042, 0.502), (side * 0.08, 0.47), (side * 0.05, 0.44), (side * 0.034, 0.39)], bx, dx),
                    lk.outfit_dark, outline=0.6)
        for y in (0.33, 0.285):
            fig.ellipse(-0.045 * bx + dx, y, 0.009, 0.009, lk.outfit_dark, mat="flat", shaded=False, outline=0.4, n=10)
    else:
        fig.stroke(_sq([(0.0, 0.49), (0.0, 0.26)], bx), lk.outfit_dark, 0.006)


def _outfit_dress(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    hem = [(x, 0.165 + 0.012 * math.cos(i * math.pi)) for i, x in enumerate(np.linspace(0.19, -0.19, 9))]
    skirt = _sq([(-0.086, 0.345), (0.086, 0.345)] + hem, bx)
    fig.add(skirt, lk.outfit, shade=("sph", 0.0, 0.3, 0.2 * bx, 0.22))
    fig.stroke(_sq([(x, y + 0.014) for x, y in hem[::-1]], bx), lk.pal["white"], 0.016)
    fig.add(_torso_outline(bx, 0.33), lk.outfit, shade=("sph", 0.0, 0.41, 0.12 * bx, 0.16))
    fig.add(_sq([(-0.092, 0.355), (0.092, 0.355), (0.09, 0.328), (-0.09, 0.328)], bx), lk.accent, outline=0.6)
    if front:
        for side in (-1, 1):
            fig.ellipse(side * 0.032 * bx + dx, 0.492, 0.034 * bx, 0.02, lk.pal["white"], outline=0.6, n=16)
        for side in (-1, 1):
            fig.add(_sq([(0.0, 0.44), (side * 0.05, 0.468), (side * 0.052, 0.412)], bx, dx), lk.accent, outline=0.7)
        fig.ellipse(dx, 0.44, 0.015, 0.015, lk.accent, outline=0.7, n=12)
    else:
        for side in (-1, 1):
            fig.add(_sq([(0.0, 0.342), (side * 0.06, 0.372), (side * 0.062, 0.31)], bx), lk.accent, outline=0.7)


def _outfit_armor(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    metal = lk.pal["metal"]
    fig.add(_sq([(-0.1, 0.34), (0.1, 0.34), (0.125, 0.19), (-0.125, 0.19)], bx), lk.outfit,
            shade=("sph", 0.0, 0.27, 0.13 * bx, 0.16))
    for xf in (-0.45, 0.0, 0.45):
        fig.stroke(_sq([(xf * 0.1, 0.33), (xf * 0.125, 0.195)], bx), lk.outfit_dark, 0.006)
    fig.add(_torso_outline(bx, 0.32), lk.outfit, shade=("sph", 0.0, 0.41, 0.12 * bx, 0.16))
    plate = _sq([(-0.092, 0.488), (0.092, 0.488), (0.086, 0.37), (0.0, 0.338), (-0.086, 0.37)], bx, dx if front else 0.0)
    fig.add(plate, metal, mat="metal", shade=("sph", dx, 0.42, 0.1 * bx, 0.1))
    if front:
        fig.stroke(_sq([(-0.08, 0.47), (0.0, 0.455), (0.08, 0.47)], bx, dx), lk.accent, 0.01)
        fig.ellipse(dx, 0.405, 0.022 * bx, 0.022, lk.accent, mat="metal", outline=0.6, n=16)
    fig.add(_sq([(-0.102, 0.348), (0.102, 0.348), (0.102, 0.312), (-0.102, 0.312)], bx), lk.pal["leather"], outline=0.7)
    buckle = _sq([(-0.018, 0.352), (0.018, 0.352), (0.018, 0.308), (-0.018, 0.308)], bx, dx)
    fig.add(buckle, lk.accent, mat="metal", outline=0.6)


_OUTFITS: dict[str, Callable[[_Figure, _Look, float, bool, float], None]] = {
    "sailor_uniform": _outfit_sailor,
    "hoodie": _outfit_hoodie,
    "kimono": _outfit_kimono,
    "jacket": _outfit_jacket,
    "dress": _outfit_dress,
    "armor": _outfit_armor,
}
