"""Deterministic procedural renderer of short anime-style clips (the built-in "smoke" suite).

Design
------
A clip is fully described by a :class:`ClipSpec` (character, action, style, background,
size, length, seed); the cast, the scenes, the prompt phrases and the motion amplitudes
are data in ``datasets/smoke.yaml``. Rendering is pure numpy + OpenCV and never reads a
clock or global random state, so the same spec gives byte-identical frames every time.

1. **Animation.** For every frame an analytic pose (:class:`_Pose`: root position, yaw,
   limb angles, blink, mouth, ...) and camera (zoom about the character, horizontal
   pan) are computed from ``t`` in [0, 1]. The seed only moves phases, the blink time,
   the walk/pan direction and background detail placement, never the identity. As in
   anime, the character may be animated on twos or threes (``ClipSpec.cadence``: each
   drawing held for 2 or 3 frames) while camera moves stay on ones.
2. **Figure.** The pose becomes an ordered list of shapes (polygons and strokes) in
   *figure units*: feet at the origin, y up, 1 unit = ``figure.unit`` frame heights.
   Shapes are built with affine frames (root, upper body, head) so limbs and the head
   rotate about their joints; a yaw angle squashes the body, slides the face features
   and swaps the face for the back of the hair (turning, 3/4 view when walking).
3. **Rasteriser (deferred shading).** Shapes are drawn in painter's order as *indices*
   into a supersampled buffer (``cv2.fillPoly`` / ``cv2.polylines``), then resolved with
   table look-ups: flat colours plus near-black outline strokes for "2d"; for "3d" every
   shape carries an analytic normal model (sphere, cylinder or flat) lit by Lambert +
   Blinn-Phong with soft ambient occlusion, and no outlines. The same index buffer gives
   the silhouette of the moving parts, so the motion mask cannot disagree with the
   pixels. The premultiplied layer is area-averaged down (anti-aliasing) and composited.
4. **Background.** Drawn once per clip with LINE_AA at the supersampled size (flat cel
   bands and outlines for "2d", gradient-shaded shapes and a slight blur for "3d"). With
   a static camera every frame starts from the same array, so background pixels are
   identical between frames; zoom and pan warp a wider supersampled world instead.
5. **Facts.** Ground truth (keypoints, motion amplitudes, camera motion, identity) is
   computed from the poses and cameras, not measured from pixels.

Modules
-------
This module holds :func:`render_clip` (the frame loop, the motion mask and the facts)
and the clip's background, and re-exports the public API. The rest of the renderer is
split by concern: :mod:`~anibench.smoke.spec` (public names, :class:`Character`,
:class:`ClipSpec`, :class:`RenderedClip`, the seeded plan), :mod:`~anibench.smoke.data`
(``smoke.yaml``, the cast, spec validation, the prompt), :mod:`~anibench.smoke.geometry`
(proportions, geometry helpers, shapes), :mod:`~anibench.smoke.outfits` (the resolved
look, outfit painters), :mod:`~anibench.smoke.figure` (look, pose, camera, figure
drawing), :mod:`~anibench.smoke.raster` (rasteriser and shading) and
:mod:`~anibench.smoke.scenes` (background canvas and painters).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from anibench.smoke.data import _camera_motion, _check_spec, _raw, backgrounds, characters, describe_clip
from anibench.smoke.figure import _build_figure, _camera, _look, _pose
from anibench.smoke.geometry import _affine
from anibench.smoke.raster import _composite, _rasterise, _supersample
from anibench.smoke.scenes import _BACKGROUND_PAINTERS, _Canvas
from anibench.smoke.spec import (
    ACTIONS, CAMERA_ACTIONS, CHARACTER_ACTIONS, KEYPOINTS, STYLES, Character, ClipSpec, RenderedClip, _Plan, _plan,
    _rgb,
)

__all__ = [
    "ACTIONS",
    "STYLES",
    "CHARACTER_ACTIONS",
    "CAMERA_ACTIONS",
    "KEYPOINTS",
    "Character",
    "ClipSpec",
    "RenderedClip",
    "characters",
    "backgrounds",
    "render_clip",
    "describe_clip",
]


# --------------------------------------------------------------------------- backgrounds


def _background(spec: ClipSpec, plan: _Plan, ss: int, margin: int) -> np.ndarray:
    """The supersampled background covering world pixels [-margin, width + margin)."""
    entry = _raw()["backgrounds"][spec.background]
    colours = {k: tuple(float(c) for c in _rgb(v, f"backgrounds.{spec.background}.colors.{k}"))
               for k, v in entry["colors"].items()}
    outline = tuple(float(c) for c in _rgb(_raw()["palette"]["outline"], "palette.outline"))
    cv = _Canvas(spec.width, spec.height, ss, -margin, spec.width + margin, spec.style == "3d", outline)
    _BACKGROUND_PAINTERS[spec.background](cv, colours, np.random.default_rng(plan.bg_seed))
    return cv.finish()


# --------------------------------------------------------------------------- clip


_MASK_PARTS: dict[str, frozenset[str] | None] = {
    "idle": None,  # None: every part (the whole silhouette)
    "talking": frozenset({"head", "hair", "eyes", "mouth"}),
    "waving": frozenset({"right_arm"}),
    "walking": None,
    "running": None,
    "jumping": None,
    "turning": None,
}
_MOVING_PARTS: dict[str, list[str]] = {
    "idle": ["head", "hair", "eyes", "torso", "right_arm", "left_arm"],
    "talking": ["mouth", "head", "hair", "eyes"],
    "waving": ["right_arm"],
    "walking": ["head", "hair", "torso", "right_arm", "left_arm", "right_leg", "left_leg", "shadow"],
    "running": ["head", "hair", "torso", "right_arm", "left_arm", "right_leg", "left_leg", "shadow"],
    "jumping": ["head", "hair", "torso", "right_arm", "left_arm", "right_leg", "left_leg", "shadow"],
    "turning": ["head", "hair", "eyes", "mouth", "torso", "right_arm", "left_arm", "right_leg", "left_leg"],
    "camera_zoom": ["head", "hair", "eyes", "torso", "right_arm", "left_arm"],
    "camera_pan": ["head", "hair", "eyes", "torso", "right_arm", "left_arm"],
}


def _ss_matrix(ss: int, offset: float = 0.0) -> np.ndarray:
    """Frame pixels (shifted by -offset in x) -> supersampled pixels."""
    return _affine(ss, 0.0, 0.0, ss, (0.5 - offset) * ss - 0.5, 0.5 * ss - 0.5)


def _mean_step(points: np.ndarray) -> float:
    """Mean over consecutive frames of the mean keypoint displacement; points (T, K, 2)."""
    if len(points) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(points, axis=0), axis=2).mean())


def _drawing_time(index: int, cadence: int, num_frames: int) -> float:
    """The animation time of frame ``index`` when each drawing is held for ``cadence`` frames.

    Frame i shows the drawing made for frame ``cadence * (i // cadence)``: on twos, frames
    0 and 1 show drawing 0, frames 2 and 3 drawing 2.
    """
    return cadence * (index // cadence) / (num_frames - 1) if num_frames > 1 else 0.0


def render_clip(spec: ClipSpec) -> RenderedClip:
    """Render ``spec`` into frames, its motion mask and its ground-truth facts.

    ``motion_mask[t]`` (character actions only; None for camera actions) is the silhouette
    of the parts that move in the action at frames t and t+1 (the last frame: t-1 and t),
    dilated by 3 % of min(height, width): the whole figure for idle, walking, running,
    jumping and turning, the head for talking, the right arm for waving.

    ``facts`` (plain JSON types): ``character``, ``action``, ``style``, ``background``,
    ``camera_motion`` ("static", "zoom_in", "pan_left", "pan_right"; panning right moves
    the content left), ``motion_amplitude`` (mean over consecutive frames of the mean
    displacement, in rendered pixels, of the KEYPOINTS, camera motion included),
    ``character_motion`` (the same without the camera), ``moving_parts``, ``num_frames``,
    ``fps``, ``width``, ``height``, ``seed``, ``cadence`` (frames per character drawing:
    1 on ones, 2 on twos, 3 on threes), ``frame_cadence`` (frames per distinct picture:
    the cadence, or 1 when the camera moves, since camera moves stay on ones),
    ``identity`` (:meth:`Character.identity`),
    ``prompt`` (:func:`describe_clip`), ``direction`` (walking/running: "left"/"right",
    else None), per-frame ``camera_zoom``, ``camera_pan_px`` (content shift in x),
    ``keypoints`` ([T][len(KEYPOINTS)][x, y] in rendered pixels, named by
    ``keypoint_names``), ``character_boxes`` ([x0, y0, x1, y1] of the visible figure, no
    ground shadow, exclusive ends; None if off screen), ``blink_frames`` (eyes closed),
    ``mouth_open`` (0-1) and ``mask_dilation_px``.
    """
    ch = _check_spec(spec)
    raw = _raw()
    plan = _plan(spec.seed)
    W, H, T = int(spec.width), int(spec.height), int(spec.num_frames)
    style3d = spec.style == "3d"
    ss = _supersample(H)
    lk = _look(ch)
    outline_rgb = lk.pal["outline"]
    unit = float(raw["figure"]["unit"]) * H
    ground = float(raw["figure"]["ground"]) * H
    camera_action = spec.action in CAMERA_ACTIONS
    margin = int(math.ceil(0.5 * float(raw["motion"]["pan_distance"]) * W)) + 2 if spec.action == "camera_pan" else 0
    world = _background(spec, plan, ss, margin)
    static_bg = None
    if not camera_action:
        static_bg = cv2.resize(world, (W, H), interpolation=cv2.INTER_AREA)
    else:
        # A box filter of one output pixel's footprint, then one bilinear sample per output
        # pixel: area averaging at any sub-pixel camera position, at output-size cost.
        world = cv2.blur(world, (ss, ss), borderType=cv2.BORDER_REFLECT)
    moving = _MASK_PARTS.get(spec.action)
    frames = np.empty((T, H, W, 3), np.uint8)
    silhouettes = np.zeros((T, H, W), bool) if not camera_action else None
    kp_screen = np.zeros((T, len(KEYPOINTS), 2))
    kp_world = np.zeros((T, len(KEYPOINTS), 2))
    boxes: list[list[int] | None] = []
    blink: list[int] = []
    mouth: list[float] = []
    zooms: list[float] = []
    pans: list[float] = []
    to_world_ss = np.linalg.inv(_ss_matrix(ss, -margin))
    for i in range(T):
        t = i / (T - 1) if T > 1 else 0.0
        pose = _pose(spec.action, _drawing_time(i, spec.cadence, T), plan, W, H)
        z, pcx, pcy, shift = _camera(spec.action, t, plan, W, H)
        zooms.append(z)
        pans.append(shift)
        if pose.eye_open < 0.3:
            blink.append(i)
        mouth.append(round(pose.mouth_open, 4))
        shapes, kps = _build_figure(lk, pose, style3d)
        pts = np.array([kps[name] for name in KEYPOINTS])
        kp_world[i] = np.stack([pose.x + pts[:, 0] * unit, ground - pts[:, 1] * unit], axis=1)
        kp_screen[i] = z * (kp_world[i] - (pcx, pcy)) + (pcx + shift, pcy)
        ox = z * (pose.x - pcx) + pcx + shift
        oy = z * (ground - pcy) + pcy
        if static_bg is not None:
            frames[i] = static_bg
        else:
            cam = _affine(z, 0.0, 0.0, z, (1.0 - z) * pcx + shift, (1.0 - z) * pcy)
            m = (cam @ to_world_ss)[:2]
            frames[i] = cv2.warpAffine(world, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        layer = _rasterise(shapes, unit * z, ox, oy, ss, W, H, style3d, moving, outline_rgb)
        if layer is None:
            boxes.append(None)
            continue
        _composite(frames[i], layer)
        boxes.append(list(map(int, layer.box)) if layer.box else None)
        if silhouettes is not None:
            h, w = layer.silhouette.shape
            silhouettes[i, layer.y0:layer.y0 + h, layer.x0:layer.x0 + w] = layer.silhouette
    mask = None
    if silhouettes is not None:
        mask = _motion_mask(silhouettes, max(1, int(round(0.03 * min(H, W)))))
    camera_motion = _camera_motion(spec.action, plan)
    facts: dict[str, Any] = {
        "character": ch.name,
        "action": spec.action,
        "style": spec.style,
        "background": spec.background,
        "camera_motion": camera_motion,
        "motion_amplitude": _mean_step(kp_screen),
        "character_motion": _mean_step(kp_world),
        "moving_parts": list(_MOVING_PARTS[spec.action]),
        "num_frames": T,
        "fps": float(spec.fps),
        "width": W,
        "height": H,
        "seed": int(spec.seed),
        "cadence": int(spec.cadence),
        "frame_cadence": int(spec.cadence) if camera_motion == "static" else 1,
        "identity": ch.identity(),
        "prompt": describe_clip(spec),
        "direction": ("right" if plan.direction > 0 else "left") if spec.action in ("walking", "running") else None,
        "camera_zoom": [round(float(v), 5) for v in zooms],
        "camera_pan_px": [round(float(v), 3) for v in pans],
        "keypoint_names": list(KEYPOINTS),
        "keypoints": np.round(kp_screen, 3).tolist(),
        "character_boxes": boxes,
        "blink_frames": blink,
        "mouth_open": mouth,
        "mask_dilation_px": max(1, int(round(0.03 * min(H, W)))) if mask is not None else None,
    }
    return RenderedClip(frames=frames, motion_mask=mask, facts=facts)


def _motion_mask(sil: np.ndarray, radius: int) -> np.ndarray:
    """mask[t] = dilate(sil[t] | sil[t+1]) (the last frame pairs with t-1)."""
    T = len(sil)
    out = np.zeros_like(sil)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    H, W = sil.shape[1:]
    for t in range(T):
        other = t + 1 if t + 1 < T else max(0, t - 1)
        union = sil[t] | sil[other]
        rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
        if not rows.size:
            continue
        y0, y1 = max(0, rows[0] - radius - 1), min(H, rows[-1] + radius + 2)
        x0, x1 = max(0, cols[0] - radius - 1), min(W, cols[-1] + radius + 2)
        sub = union[y0:y1, x0:x1].astype(np.uint8)
        out[t, y0:y1, x0:x1] = cv2.dilate(sub, kernel) > 0
    return out
