"""The animated character: its resolved look, the pose and camera at time t, and the figure drawing.

:func:`_look` resolves a :class:`~anibench.smoke.spec.Character` and the palette into a
:class:`~anibench.smoke.outfits._Look`; :func:`_pose` and :func:`_camera` give an
action's :class:`_Pose` and camera at ``t`` in [0, 1]; :func:`_build_figure` turns a
look and a pose into shapes (face, eyes, mouth, hair, outfit, limbs) and keypoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable

import numpy as np

from anibench.smoke.data import _raw
from anibench.smoke.geometry import (
    _CENTRE_Y, _EYE_RX, _EYE_RY, _EYE_X, _EYE_Y, _FACE_DEPTH, _FOOT_RY, _FOREARM, _HAIR_DY, _HAIR_RX, _HAIR_RY,
    _HAIR_STYLES, _HAND_R, _HEAD_C, _HEAD_RX, _HEAD_RY, _HIP_X, _HIP_Y, _MOUTH_Y, _NECK, _SHIN, _SHOULDER_X,
    _SHOULDER_Y, _THIGH, _UPPER_ARM, _affine, _arc, _circle, _dir, _ellipse, _Figure, _mix, _rotate, _scale, _Shape,
    _smooth, _translate,
)
from anibench.smoke.outfits import _OUTFITS, _Look, _sq
from anibench.smoke.spec import Character, _Plan, _rgb


# --------------------------------------------------------------------------- character look


def _look(ch: Character) -> _Look:
    raw = _raw()
    pal = {k: tuple(float(v) for v in _rgb(c, f"palette.{k}")) for k, c in raw["palette"].items()}
    o = raw["outfit_styles"][ch.outfit_style]
    f = lambda c: tuple(float(v) for v in c)  # noqa: E731
    return _Look(
        ch=ch, girl=ch.pronoun == "she",
        skin=f(ch.skin_color), skin_dark=_scale(ch.skin_color, 0.82),
        hair=f(ch.hair_color), hair_dark=_scale(ch.hair_color, 0.55), hair_light=_mix(ch.hair_color, (255, 255, 255), 0.45),
        eye=f(ch.eye_color), eye_dark=_scale(ch.eye_color, 0.5),
        outfit=f(ch.outfit_color), outfit_dark=_scale(ch.outfit_color, 0.72), accent=f(ch.accent_color),
        pal=MappingProxyType(pal), sleeves=str(o["sleeves"]), legs=str(o["legs"]),
        socks=None if o.get("socks") is None else f(_rgb(o["socks"], f"outfit_styles.{ch.outfit_style}.socks")),
        shoes=f(_rgb(o["shoes"], f"outfit_styles.{ch.outfit_style}.shoes")),
    )


# --------------------------------------------------------------------------- pose


@dataclass
class _Pose:
    """One frame of animation, in figure units and radians."""

    x: float                     # root (between the feet), world pixels
    yaw: float = 0.0             # 0 front, pi back, +pi/2 facing screen right
    lift: float = 0.0            # root height above the ground
    bob: float = 0.0             # upper-body vertical offset
    lean: float = 0.0            # upper-body lean about the hips (counter-clockwise positive)
    tilt: float = 0.0            # head tilt about the neck
    arm_r: tuple[float, float] = (-0.16, -0.08)   # (upper arm, forearm) angle from straight down
    arm_l: tuple[float, float] = (0.16, 0.08)
    leg_r: tuple[float, float] = (-0.03, -0.03)   # (thigh, shin)
    leg_l: tuple[float, float] = (0.03, 0.03)
    squash: float = 1.0          # vertical scale about the feet
    eye_open: float = 1.0
    mouth_open: float = 0.0
    plant: bool = False          # raise the root so the lower foot touches the ground
    facing: int = 0              # -1 / 0 / +1: which way the shoes point


def _smoothstep(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def _pose(action: str, t: float, plan: _Plan, width: int, height: int) -> _Pose:
    mo = _raw()["motion"]
    unit = float(_raw()["figure"]["unit"]) * height      # pixels per figure unit
    cx = 0.5 * width
    ph = plan.phase
    tau = 2.0 * math.pi
    p = _Pose(x=cx)
    if action in ("idle", "camera_zoom", "camera_pan"):
        amp = float(mo["breath_bob"]) * height / unit
        p.bob = amp * 0.5 * (1.0 - math.cos(tau * (float(mo["breath_cycles"]) * t + ph)))
        half = 0.5 * float(mo["blink_length"])
        p.eye_open = min(1.0, abs(t - plan.blink_at) / half) if half > 0 else 1.0
    elif action == "talking":
        p.tilt = math.radians(float(mo["talk_tilt_deg"])) * math.sin(tau * (float(mo["talk_tilt_cycles"]) * t + ph))
        u = float(mo["talk_syllables"]) * t + ph
        p.mouth_open = plan.syllables[int(u) % len(plan.syllables)] * abs(math.sin(math.pi * u))
    elif action == "waving":
        w = tau * (float(mo["wave_cycles"]) * t + ph)
        half = 0.5 * math.radians(float(mo["wave_swing_deg"]))
        upper = -(0.5 * math.pi + 0.30) + 0.10 * math.sin(w - 0.6)
        p.arm_r = (upper, -(math.pi - 0.62) + half * math.sin(w))
    elif action in ("walking", "running"):
        run = action == "running"
        d = plan.direction
        dist = float(mo["run_distance" if run else "walk_distance"]) * width
        cycles = float(mo["run_cycles" if run else "walk_cycles"])
        swing = math.radians(float(mo["run_swing_deg" if run else "walk_swing_deg"]))
        psi = tau * (cycles * t + ph)
        p.x = cx + d * dist * (t - 0.5)
        p.yaw = d * (0.55 if run else 0.5)
        p.facing = d
        p.plant = True
        bend = 1.25 if run else 0.55
        for side, leg_phase in ((-1, psi), (1, psi + math.pi)):
            thigh = d * swing * math.sin(leg_phase)
            shin = thigh - d * bend * max(0.0, math.cos(leg_phase)) - d * (0.35 if run else 0.0)
            if side < 0:
                p.leg_r = (thigh, shin)
            else:
                p.leg_l = (thigh, shin)
        arm_swing = swing * (0.9 if run else 0.75)
        elbow = 1.35 if run else 0.3
        p.arm_r = (-0.1 - d * arm_swing * math.sin(psi), -0.1 - d * arm_swing * math.sin(psi) + d * elbow)
        p.arm_l = (0.1 + d * arm_swing * math.sin(psi), 0.1 + d * arm_swing * math.sin(psi) + d * elbow)
        p.lean = -d * (0.14 if run else 0.04)
        if run:
            p.lift = float(mo["run_bounce"]) * height / unit * 0.5 * (1.0 - math.cos(2.0 * psi))
    elif action == "jumping":
        jumps = max(1, int(mo["jump_count"]))
        u = min(t * jumps, jumps - 1e-9)
        q = u - math.floor(u)
        height_units = float(mo["jump_height"]) * height / unit
        crouch, land = 0.15, 0.85
        if q < crouch:
            env, sq = 0.0, 1.0 - 0.12 * math.sin(math.pi * q / crouch)
        elif q > land:
            env, sq = 0.0, 1.0 - 0.12 * math.sin(math.pi * (q - land) / (1.0 - land))
        else:
            a = (q - crouch) / (land - crouch)
            env = math.sin(math.pi * a)
            sq = 1.0 + 0.03 * math.sin(math.pi * a)
            p.lift = height_units * 4.0 * a * (1.0 - a)
        p.squash = sq
        p.arm_r = (-(0.16 + 2.3 * env), -(0.08 + 2.55 * env))
        p.arm_l = (0.16 + 2.3 * env, 0.08 + 2.55 * env)
        p.leg_r = (-0.03 - 0.12 * env, -0.03 + 0.1 * env)
        p.leg_l = (0.03 + 0.12 * env, 0.03 - 0.1 * env)
    elif action == "turning":
        p.yaw = tau * float(mo["turns"]) * _smoothstep(t)
    return p


def _camera(action: str, t: float, plan: _Plan, width: int, height: int) -> tuple[float, float, float, float]:
    """(zoom, pivot x, pivot y, pan shift in pixels): screen = zoom * (world - pivot) + pivot + (shift, 0)."""
    mo = _raw()["motion"]
    fig = _raw()["figure"]
    pivot = (0.5 * width, (float(fig["ground"]) - _CENTRE_Y * float(fig["unit"])) * height)
    if action == "camera_zoom":
        return 1.0 + (float(mo["zoom_end"]) - 1.0) * _smoothstep(t), pivot[0], pivot[1], 0.0
    if action == "camera_pan":
        return 1.0, pivot[0], pivot[1], -plan.pan * float(mo["pan_distance"]) * width * (_smoothstep(t) - 0.5)
    return 1.0, pivot[0], pivot[1], 0.0


# --------------------------------------------------------------------------- figure


def _face_x(x0: float, c: float, s: float) -> tuple[float, float, float]:
    """Screen x, depth and foreshortening of a face feature at x0 on the front of the head."""
    xp = x0 * c + _FACE_DEPTH * s
    zp = -x0 * s + _FACE_DEPTH * c
    return xp, zp, min(1.0, max(0.3, zp / _FACE_DEPTH))


def _draw_eye(fig: _Figure, lk: _Look, ex: float, f: float, side: int, openness: float) -> None:
    rx, ey = _EYE_RX * f, _EYE_Y
    lash = lk.pal["lash"]
    if openness < 0.3:
        fig.stroke([(ex - rx, ey - 0.012), (ex - 0.4 * rx, ey - 0.026), (ex + 0.4 * rx, ey - 0.026), (ex + rx, ey - 0.012)],
                   lash, 0.014, part="eyes")
        return
    ry = _EYE_RY * openness
    cy = ey - (_EYE_RY - ry) * 0.6
    fig.ellipse(ex, cy, rx, ry, lk.pal["eye_white"], mat="flat", shaded=False, outline=0.5, part="eyes")
    irx, iry, icy = 0.8 * rx, 0.9 * ry, cy - 0.06 * ry
    fig.ellipse(ex, icy, irx, iry, lk.eye, mat="eye", outline=0.0, part="eyes")
    top = _arc(ex, icy, irx, iry, 0.15, math.pi - 0.15, 10)
    fig.add(top, lk.eye_dark, mat="flat", outline=0.0, part="eyes")
    fig.ellipse(ex, icy - 0.08 * ry, 0.36 * rx, 0.42 * ry, lk.pal["pupil"], mat="flat", shaded=False, outline=0.0,
                part="eyes")
    fig.ellipse(ex - 0.3 * rx, cy + 0.38 * ry, 0.3 * rx, 0.24 * ry, lk.pal["highlight"], mat="flat", shaded=False,
                outline=0.0, part="eyes", n=14)
    fig.ellipse(ex + 0.34 * rx, cy - 0.5 * ry, 0.14 * rx, 0.11 * ry, lk.pal["highlight"], mat="flat", shaded=False,
                outline=0.0, part="eyes", n=10)
    lid = _arc(ex, cy, rx * 1.08, ry * 1.02, math.pi - 0.05, 0.05, 12)
    fig.stroke(lid, lash, 0.018, part="eyes")
    if lk.girl:
        outer = (ex + side * rx * 1.05, cy + 0.25 * ry)
        fig.stroke([outer, (outer[0] + side * 0.02, outer[1] + 0.018)], lash, 0.011, part="eyes")


def _fringe(style: dict, shift: float) -> list[tuple[float, float]]:
    """Bangs from left to right, relative to the head centre."""
    hx, hy = _HEAD_C
    n, root, tip, slant = style["tips"], style["root"], style["tip"], style["slant"]
    xs = np.linspace(-0.17, 0.17, n + 1) + shift
    pts: list[tuple[float, float]] = []
    for i in range(n):
        a, b = xs[i], xs[i + 1]
        mid = 0.5 * (a + b)
        if style.get("parted"):
            lean = -1.0 if mid < shift else 1.0
            tip_x = mid + lean * 0.35 * (b - a)
            r = root + (0.04 if abs(a - shift) < 1e-9 else 0.0)
        else:
            tip_x = mid + slant * 0.5 * (b - a)
            r = root
        pts.append((a, hy + r))
        pts.append((tip_x, hy + tip))
    pts.append((xs[-1], hy + root))
    return pts


def _hair_cap_front(style: dict, s: float) -> np.ndarray:
    hx, hy = _HEAD_C
    cy = hy + _HAIR_DY
    rx, ry = _HAIR_RX * style.get("wide", 1.0), _HAIR_RY * style.get("wide", 1.0)
    a0, a1 = math.radians(-12), math.radians(192)
    spikes = style.get("spikes", 0)
    if spikes:
        a = np.linspace(a0, a1, 2 * spikes + 1)
        r = np.where(np.arange(len(a)) % 2 == 1, 1.0 + style["spike_len"], 1.0)
        a = a + np.where(np.arange(len(a)) % 2 == 1, math.radians(5), 0.0)
    else:
        a = np.linspace(a0, a1, 36)
        r = np.ones_like(a)
    outer = np.stack([hx + rx * r * np.cos(a), cy + ry * r * np.sin(a)], axis=1)
    shift = max(-0.06, min(0.06, 0.8 * _FACE_DEPTH * s))
    lock, lock_out, lock_in = style["lock"], style.get("lock_out", 0.235), style.get("lock_in", 0.17)
    left = [(-lock_out, hy + lock), (-lock_in - 0.005, hy + lock + 0.05), (-lock_in + shift * 0.5, hy + 0.01)]
    right = [(lock_in + shift * 0.5, hy + 0.01), (lock_in + 0.005, hy + lock + 0.05), (lock_out, hy + lock)]
    if style.get("round_lock"):
        left = [(-lock_out, hy + lock + 0.03), (-lock_out + 0.03, hy + lock), (-lock_in, hy + lock + 0.01),
                (-lock_in + shift * 0.5, hy + 0.01)]
        right = [(lock_in + shift * 0.5, hy + 0.01), (lock_in, hy + lock + 0.01), (lock_out - 0.03, hy + lock),
                 (lock_out, hy + lock + 0.03)]
    pts = [tuple(p) for p in outer] + left + _fringe(style, shift) + right
    return np.asarray(pts)


def _hair_cap_back(style: dict) -> np.ndarray:
    hx, hy = _HEAD_C
    cy = hy + _HAIR_DY
    w = style.get("wide", 1.0)
    rx, ry = _HAIR_RX * w * 1.02, _HAIR_RY * w * 1.02
    nape = hy + style.get("nape", -0.13)
    spikes = style.get("spikes", 0)
    if spikes:
        a = np.linspace(math.radians(-30), math.radians(210), 2 * spikes + 3)
        r = np.where(np.arange(len(a)) % 2 == 1, 1.0 + style["spike_len"], 1.0)
    else:
        a = np.linspace(math.radians(-40), math.radians(220), 36)
        r = np.ones_like(a)
    outer = np.stack([hx + rx * r * np.cos(a), cy + ry * r * np.sin(a)], axis=1)
    xl, xr = outer[-1, 0], outer[0, 0]
    bottom = [(xl, nape)]
    for i, x in enumerate(np.linspace(xl, xr, 7)[1:-1]):
        bottom.append((x, nape - (0.035 if i % 2 == 0 else 0.0)))
    bottom.append((xr, nape))
    return np.concatenate([outer, np.asarray(bottom)])


def _hair_back_layer(fig: _Figure, lk: _Look, style_name: str, xs: float, xshift: float) -> None:
    """Hair behind the head (front view) or over it (back view); x squashed by ``xs``."""
    hx, hy = _HEAD_C
    hair = lk.hair

    def fit(pts: Any) -> np.ndarray:
        p = np.asarray(pts, dtype=np.float64)
        return np.stack([p[:, 0] * xs + xshift, p[:, 1]], axis=1)

    sh_cyl = lambda x, y0, y1, r: ("cyl", x * xs + xshift, y0, x * xs + xshift, y1, r * abs(xs))  # noqa: E731
    if style_name == "bob":
        pts = _ellipse(hx, hy - 0.01, _HAIR_RX * 1.1, 0.205, 32)
        pts[:, 1] = np.maximum(pts[:, 1], hy - 0.175)
        fig.add(fit(pts), hair, mat="hair", shade=sh_cyl(0.0, hy, hy - 0.2, 0.25), part="hair")
    elif style_name == "long":
        top = _arc(hx, hy + _HAIR_DY, _HAIR_RX, _HAIR_RY, 0.0, math.pi, 14)
        body = [(-0.24, hy - 0.12), (-0.27, 0.30), (-0.25, 0.22), (-0.19, 0.27), (-0.12, 0.21), (-0.04, 0.26),
                (0.04, 0.21), (0.12, 0.27), (0.19, 0.21), (0.25, 0.26), (0.27, 0.30), (0.24, hy - 0.12)]
        pts = np.concatenate([top, np.asarray(body)])
        fig.add(fit(pts), hair, mat="hair", shade=sh_cyl(0.0, hy, 0.2, 0.26), part="hair")
    elif style_name == "twin_tails":
        for side in (-1, 1):
            ctrl = [(0.17, hy + 0.15), (0.29, hy + 0.17), (0.37, hy + 0.06), (0.39, hy - 0.12), (0.36, 0.36),
                    (0.31, 0.25), (0.29, 0.36), (0.28, hy - 0.13), (0.23, hy - 0.01)]
            pts = _smooth([(side * x, y) for x, y in ctrl], 2)
            fig.add(fit(pts), hair, mat="hair", shade=sh_cyl(side * 0.33, hy + 0.1, 0.3, 0.06), part="hair")
            fig.ellipse(side * 0.215 * xs + xshift, hy + 0.13, 0.04 * max(abs(xs), 0.5), 0.035, lk.accent,
                        mat="cloth", part="hair", n=16)
    elif style_name == "ponytail":
        ctrl = [(0.08, hy + 0.19), (0.2, hy + 0.26), (0.34, hy + 0.21), (0.4, hy + 0.04), (0.38, hy - 0.16),
                (0.32, 0.36), (0.31, hy - 0.15), (0.28, hy + 0.04), (0.2, hy + 0.13)]
        fig.add(fit(_smooth(ctrl, 2)), hair, mat="hair", shade=sh_cyl(0.34, hy + 0.15, 0.36, 0.06), part="hair")
        fig.ellipse(0.2 * xs + xshift, hy + 0.2, 0.035 * max(abs(xs), 0.5), 0.035, lk.accent, mat="cloth", part="hair",
                    n=16)


def _draw_head(fig: _Figure, lk: _Look, pose: _Pose, c: float, s: float) -> None:
    hx, hy = _HEAD_C
    style = _HAIR_STYLES[lk.ch.hair_style]
    # Face: a round head with a soft chin.
    a = _circle(40)
    x = _HEAD_RX * a[:, 0]
    y = _HEAD_RY * a[:, 1]
    low = a[:, 1] < 0
    x[low] *= 1.0 - 0.2 * a[low, 1] ** 2
    y[low] *= 1.0 + 0.06 * a[low, 1] ** 2
    fig.add(np.stack([hx + x, hy + y], axis=1), lk.skin, mat="skin", shade=("sph", hx, hy, _HEAD_RX, _HEAD_RY), part="head")
    if c >= 0.0:
        # Ears peek out under the hair on both sides.
        for side in (-1, 1):
            zp = -side * 0.2 * s   # ears sit on the sides of the head, not on the face plane
            if zp > -0.02:
                f = max(0.4, c)
                fig.ellipse(side * 0.2 * c, hy - 0.02, 0.03 * f, 0.04, lk.skin, mat="skin", part="head", n=14)
        for side in (-1, 1):
            xp, zp, f = _face_x(side * 0.125, c, s)
            if zp > 0.02:
                fig.ellipse(xp, 0.598, 0.032 * f, 0.013, _mix(lk.skin, lk.pal["blush"], 0.45), mat="flat",
                            shaded=False, outline=0.0, part="head", n=14)
        for side in (-1, 1):
            xp, zp, f = _face_x(side * _EYE_X, c, s)
            if zp > 0.02:
                _draw_eye(fig, lk, xp, f, side, pose.eye_open)
                brow_y = _EYE_Y + 0.092
                brow = [(xp - 0.8 * _EYE_RX * f, brow_y - 0.006), (xp, brow_y + 0.004),
                        (xp + 0.8 * _EYE_RX * f, brow_y - 0.002)]
                fig.stroke(brow, lk.hair_dark, 0.009, part="eyes")
        mx, mz, mf = _face_x(0.0, c, s)
        fig.stroke([(mx + 0.004, 0.607), (mx - 0.004 * (1 + s), 0.599)], lk.skin_dark, 0.007, part="head")
        mouth = lk.pal["mouth"]
        if pose.mouth_open < 0.12:
            w = 0.02 * mf
            fig.stroke([(mx - w, _MOUTH_Y + 0.004), (mx, _MOUTH_Y - 0.003), (mx + w, _MOUTH_Y + 0.004)],
                       _scale(mouth, 0.7), 0.009, part="mouth")
        else:
            ry = 0.008 + 0.021 * pose.mouth_open
            top = _MOUTH_Y + 0.004
            lip = _arc(mx, top, 0.022 * mf, 2 * ry, math.pi, 2 * math.pi, 12)[1:-1]
            pts = np.concatenate([[(mx - 0.022 * mf, top)], lip,
                                  [(mx + 0.022 * mf, top)]])
            fig.add(pts, mouth, mat="flat", outline=0.55, part="mouth")
            fig.ellipse(mx, top - 1.45 * ry, 0.012 * mf, 0.45 * ry, lk.pal["tongue"], mat="flat", shaded=False,
                        outline=0.0, part="mouth", n=12)
        cap = _hair_cap_front(style, s)
        fig.add(cap, lk.hair, mat="hair", shade=("sph", hx, hy + _HAIR_DY, _HAIR_RX, _HAIR_RY), part="hair")
    else:
        cap = _hair_cap_back(style)
        fig.add(cap, lk.hair, mat="hair", shade=("sph", hx, hy + _HAIR_DY, _HAIR_RX, _HAIR_RY), part="hair")
        fig.stroke([(hx - 0.02, hy + 0.17), (hx - 0.05, hy + 0.06)], lk.hair_dark, 0.008, part="hair")
        fig.stroke([(hx + 0.06, hy + 0.15), (hx + 0.08, hy + 0.02)], lk.hair_dark, 0.008, part="hair")


def _angel_ring(fig: _Figure, lk: _Look) -> None:
    """A flat lighter band across the hair ("2d" only; "3d" gets a specular highlight)."""
    hx, hy = _HEAD_C
    cy = hy + _HAIR_DY
    outer = _arc(hx, cy, _HAIR_RX * 0.86, _HAIR_RY * 0.86, math.radians(128), math.radians(62), 10)
    inner = _arc(hx, cy, _HAIR_RX * 0.74, _HAIR_RY * 0.72, math.radians(66), math.radians(124), 10)
    fig.add(np.concatenate([outer, inner]), lk.hair_light, mat="flat", outline=0.0, part="hair")


def _draw_arm(fig: _Figure, lk: _Look, side: int, c: float, angles: tuple[float, float]) -> np.ndarray:
    """Draw one arm in the current frame; return its hand centre (figure-frame coordinates)."""
    sh = np.array([side * _SHOULDER_X * c, _SHOULDER_Y])
    elbow = sh + _UPPER_ARM * _dir(angles[0])
    fd = _dir(angles[1])
    wrist = elbow + _FOREARM * fd
    hand = wrist + 0.5 * _HAND_R * fd
    sleeve = lk.pal["white"] if lk.ch.outfit_style == "sailor_uniform" else lk.outfit
    metal = lk.pal["metal"]
    if lk.sleeves == "short":
        fig.limb(sh, elbow, 0.034, 0.029, sleeve)
        fig.limb(elbow, wrist, 0.027, 0.023, lk.skin, mat="skin")
        fig.limb(sh + 0.75 * (elbow - sh), elbow, 0.031, 0.030, lk.outfit, outline=0.7)
    elif lk.sleeves == "puff":
        fig.limb(sh, elbow, 0.027, 0.025, lk.skin, mat="skin")
        fig.limb(elbow, wrist, 0.025, 0.022, lk.skin, mat="skin")
        fig.ellipse(*(sh + 0.3 * (elbow - sh)), 0.045, 0.04, lk.outfit, n=18)
    elif lk.sleeves == "wide":
        fig.limb(sh, elbow, 0.034, 0.034, lk.outfit)
        fig.ellipse(*hand, _HAND_R, _HAND_R, lk.skin, mat="skin", n=16)
        fig.limb(elbow, wrist - 0.2 * _FOREARM * fd, 0.036, 0.05, lk.outfit)
        return hand
    else:
        fig.limb(sh, elbow, 0.033, 0.029, lk.outfit)
        if lk.ch.outfit_style == "armor":
            fig.limb(elbow, wrist, 0.03, 0.028, metal, mat="metal")
        else:
            fig.limb(elbow, wrist, 0.029, 0.026, lk.outfit)
            fig.limb(wrist - 0.25 * _FOREARM * fd, wrist, 0.027, 0.027, lk.outfit_dark, outline=0.7)
    fig.ellipse(*hand, _HAND_R, _HAND_R, lk.skin, mat="skin", n=16)
    if lk.ch.outfit_style == "armor":
        fig.ellipse(*(sh + (0.0, 0.005)), 0.05, 0.038, metal, mat="metal", n=18)
    return hand


def _draw_leg(fig: _Figure, lk: _Look, side: int, c: float, angles: tuple[float, float], facing: int,
              s: float) -> np.ndarray:
    """Draw one leg in the current frame; return its foot centre."""
    hip = np.array([side * _HIP_X * c, _HIP_Y])
    knee = hip + _THIGH * _dir(angles[0])
    ankle = knee + _SHIN * _dir(angles[1])
    thigh_rgb = lk.skin if lk.legs == "skin" else lk.pal["pants"]
    mat = "skin" if lk.legs == "skin" else "cloth"
    shin_rgb = lk.socks if lk.socks is not None else thigh_rgb
    if lk.ch.outfit_style == "armor":
        shin_rgb, shin_mat = lk.pal["metal"], "metal"
    else:
        shin_mat = "cloth" if lk.socks is not None else mat
    foot = ankle + (0.014 * facing * abs(s), 0.0)
    fig.ellipse(foot[0], foot[1], 0.036 + 0.012 * abs(s), _FOOT_RY, lk.shoes, n=18)
    fig.limb(knee, ankle + (0.0, 0.008), 0.032, 0.026, shin_rgb, mat=shin_mat)
    fig.limb(hip, knee, 0.04, 0.033, thigh_rgb, mat=mat)
    return foot


def _build_figure(lk: _Look, pose: _Pose, style3d: bool) -> tuple[list[_Shape], dict[str, np.ndarray]]:
    """The frame's shapes in draw order and its keypoints, in figure units."""
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    front = c >= 0.0
    bx = 0.6 + 0.4 * abs(c)
    dx = 0.035 * s
    lift = pose.lift
    if pose.plant:
        drop = max(_THIGH * math.cos(a[0]) + _SHIN * math.cos(a[1]) for a in (pose.leg_r, pose.leg_l))
        lift += (_THIGH + _SHIN) - drop
    sy = pose.squash
    m_root = _translate(0.0, lift) @ _affine(1.0 / math.sqrt(sy), 0.0, 0.0, sy)
    hip_c = (0.0, _HIP_Y)
    m_up = m_root @ _translate(0.0, pose.bob) @ _rotate(pose.lean, hip_c)
    m_head = m_up @ _rotate(pose.tilt, _NECK)
    fig = _Figure()
    keypoints: dict[str, np.ndarray] = {}

    def apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
        return m[:2, :2] @ p + m[:2, 2]

    # Ground shadow (not lifted): smaller while airborne.
    shrink = 1.0 - 0.45 * min(1.0, pose.lift / 0.3)
    fig.use(np.eye(3), "shadow")
    shadow = lk.pal["shadow"]
    if style3d:
        for f, alpha in ((1.3, 0.10), (1.05, 0.18), (0.8, 0.26)):
            fig.ellipse(0.0, 0.004, 0.17 * shrink * f, 0.032 * shrink * f, shadow, mat="flat", shaded=False,
                        outline=0.0, alpha=alpha, body=False, n=28)
    else:
        fig.ellipse(0.0, 0.004, 0.17 * shrink, 0.032 * shrink, shadow, mat="flat", shaded=False, outline=0.0,
                    alpha=0.3, body=False, n=28)

    jobs: list[tuple[float, Callable[[], None]]] = []
    style_name = lk.ch.hair_style
    hair_xs = (0.55 + 0.45 * abs(c)) * (1.0 if front else -1.0)

    def back_hair() -> None:
        fig.use(m_head, "hair")
        _hair_back_layer(fig, lk, style_name, hair_xs, -0.1 * s)

    jobs.append((-50.0 if front else 50.0, back_hair))

    def leg(side: int, angles: tuple[float, float], name: str) -> Callable[[], None]:
        def draw() -> None:
            fig.use(m_root, name)
            keypoints[name.replace("leg", "foot")] = apply(m_root, _draw_leg(fig, lk, side, c, angles, pose.facing, s))
        return draw

    for side, angles, name in ((-1, pose.leg_r, "right_leg"), (1, pose.leg_l, "left_leg")):
        jobs.append((-20.0 - side * 0.05 * s, leg(side, angles, name)))

    def arm(side: int, angles: tuple[float, float], name: str) -> Callable[[], None]:
        def draw() -> None:
            fig.use(m_up, name)
            keypoints[name.replace("arm", "hand")] = apply(m_up, _draw_arm(fig, lk, side, c, angles))
        return draw

    for side, angles, name in ((-1, pose.arm_r, "right_arm"), (1, pose.arm_l, "left_arm")):
        depth = -side * 0.1 * s
        raised = _dir(angles[0])[1] * _UPPER_ARM + _dir(angles[1])[1] * _FOREARM > 0.0
        z = (40.0 if raised else 10.0) + depth if depth > -0.03 else -10.0 + depth
        jobs.append((z, arm(side, angles, name)))

    def torso() -> None:
        fig.use(m_up, "torso")
        fig.add(_sq([(-0.03, 0.46), (0.03, 0.46), (0.03, 0.54), (-0.03, 0.54)], 1.0), lk.skin, mat="skin",
                shade=("cyl", 0.0, 0.46, 0.0, 0.54, 0.03))
        _OUTFITS[lk.ch.outfit_style](fig, lk, bx, front, dx)

    jobs.append((0.0, torso))

    def head() -> None:
        fig.use(m_head, "head")
        _draw_head(fig, lk, pose, c, s)
        if not style3d and front:
            _angel_ring(fig, lk)
        keypoints["head"] = apply(m_head, np.array(_HEAD_C))

    jobs.append((30.0, head))
    for _, job in sorted(jobs, key=lambda j: j[0]):
        job()
    return fig.shapes, keypoints
