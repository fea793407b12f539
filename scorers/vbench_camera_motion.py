"""VBench-I2V camera motion: does the clip show the camera motion its prompt asks for?

Follows ``vbench2_beta_i2v/camera_motion.py`` of Vchitect/VBench at 45e79ec exactly (line numbers
below are of that file), with CoTracker2 as VBench's ``torch.hub.load("facebookresearch/co-tracker",
"cotracker2")`` builds it (:mod:`anibench.models.cotracker`; features in
:mod:`anibench.features.cotracker`):

1. every frame, decoded to RGB (``load_video``, l.50), as float 0-255 — no frame sampling;
2. CoTracker2's predictor with ``grid_size=10`` (l.38, l.55): frames resized to 384x512, a 10x10
   grid on frame 0 (margin 512/64 = 8 model pixels), tracked over the whole clip, tracks scaled
   back to the clip's pixels, then truncated toward zero (``.long()``, l.62);
3. the grid's edge midpoints (l.65-77, ``number_points = 1``: row 0 and row 9 at column 5 = top and
   down, column 0 and column 9 at row 5 = left and right), their shift from the first to the last
   frame, each axis classed against ``0.005 · min(H, W)`` pixels with strict comparisons (l.16-31):
   x > s right, x < -s left, y > s down, y < -s up, else static;
4. the rules of ``classify_top_down`` / ``classify_left_right`` (l.94-125): both edges left → pan
   right, both right → pan left, both down → tilt up, both up → tilt down, top up and bottom down
   (or left edge left and right edge right) → zoom in, the reverse → zoom out, both static → static;
   the union of both pairs' results, ``static`` dropped when anything else is there, then ``None``
   dropped likewise (l.128-140);
5. per video 1.0 when the target motion is among the predictions, else 0.0 (l.187); the dimension
   is the plain mean over videos (l.192; ``aggregate = "mean"``). VBench also reports the mean per
   target type (l.194-195): :func:`accuracy_by_target` computes it from the per-clip details.

**The target motion** comes from the case's prompt. VBench reads it from the video's file name,
which in its standard and custom modes is the prompt (``{prompt}-{i}.mp4``; the I2V suite's 763
camera-motion prompts all end in one of the seven phrases): :func:`camera_target` applies
``get_type`` (l.152-168) — the first of "camera pans left", "camera pans right", "camera tilts up",
"camera tilts down", "camera zooms in", "camera zooms out", "camera static" that occurs in the prompt,
case-sensitive, in that order. A case whose prompt names none of them is :class:`NotApplicable`
(VBench raises ``ValueError("Not a recognized video name")`` and stops the whole run). The prompt
is a declared input, so it is part of every cached score's key.

Deliberate differences: clips of fewer than 5 frames are refused (CoTracker2's window of 8 moving by
4 processes no window at all below 5 frames, and every track stays at (0, 0) — VBench would
classify those zeros); CoTracker2 always runs in float32 (VBench does too); resized frames, not
the decoded ones, are held while a clip decodes.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from anibench.errors import NotApplicable
from anibench.features import FeatureSpec
from anibench.features.cotracker import VBENCH_GRID_SIZE
from anibench.scoring import Expect, FrameSampling, Input, Scorer, ScoreInput, ScoreResult

# get_type (l.153-161), in its order: the first phrase found in the prompt wins.
CAMERA_PHRASES: tuple[tuple[str, str], ...] = (
    ("camera pans left", "pan_left"),
    ("camera pans right", "pan_right"),
    ("camera tilts up", "tilt_up"),
    ("camera tilts down", "tilt_down"),
    ("camera zooms in", "zoom_in"),
    ("camera zooms out", "zoom_out"),
    ("camera static", "static"),
)
MOTION_TYPES = tuple(motion for _, motion in CAMERA_PHRASES)
# transform_class (l.16): the threshold is this share of the clip's shorter side, in pixels.
THRESHOLD_FACTOR = 0.005
# CameraPredict.number_points (l.39): one point per edge, the middle one.
NUMBER_POINTS = 1
# classify_top_down / classify_left_right (l.98-106, l.115-123): "<first edge>_<second edge>" → motion.
TOP_DOWN_RULES = {"left_left": "pan_right", "right_right": "pan_left", "down_down": "tilt_up", "up_up": "tilt_down",
                  "up_down": "zoom_in", "down_up": "zoom_out", "static_static": "static"}
LEFT_RIGHT_RULES = {"left_left": "pan_right", "right_right": "pan_left", "down_down": "tilt_up", "up_up": "tilt_down",
                    "left_right": "zoom_in", "right_left": "zoom_out", "static_static": "static"}
NO_MOTION_MATCHED = "None"


def camera_target(prompt: str) -> str | None:
    """The camera motion a prompt asks for (VBench's ``get_type`` on the prompt), or None."""
    for phrase, motion in CAMERA_PHRASES:
        if phrase in prompt:
            return motion
    return None


def edge_points(grid: np.ndarray, grid_size: int = VBENCH_GRID_SIZE) -> dict[str, np.ndarray]:
    """The edge midpoints of a (grid_size, grid_size, 2) grid of (x, y): rows are y, columns x (l.65-77)."""
    middle = grid_size // 2
    start = math.ceil(middle - NUMBER_POINTS / 2.0)
    end = math.ceil(middle + NUMBER_POINTS / 2.0)
    return {
        "top": np.stack([grid[0, i] for i in range(start, end)]),
        "down": np.stack([grid[grid_size - 1, i] for i in range(start, end)]),
        "left": np.stack([grid[i, 0] for i in range(start, end)]),
        "right": np.stack([grid[i, grid_size - 1] for i in range(start, end)]),
    }


def edge_direction(shift: Iterable[float], threshold: float) -> list[str]:
    """``transform_class``: the directions of a mean (x, y) shift beyond ``threshold`` pixels, else ``static``."""
    x, y = shift
    direction = []
    if x > threshold:
        direction.append("right")
    elif x < -threshold:
        direction.append("left")
    if y > threshold:
        direction.append("down")
    elif y < -threshold:
        direction.append("up")
    return direction or ["static"]


def _pair_motions(first: list[str], second: list[str], rules: Mapping[str, str]) -> list[str]:
    matched = [rules[f"{a}_{b}"] for a in first for b in second if f"{a}_{b}" in rules]
    return matched or [NO_MOTION_MATCHED]


def classify_motion(directions: Mapping[str, list[str]]) -> list[str]:
    """``camera_classify`` (l.128-140) from each edge's directions; sorted (VBench's set order is arbitrary)."""
    motions = set(_pair_motions(directions["top"], directions["down"], TOP_DOWN_RULES)
                  + _pair_motions(directions["left"], directions["right"], LEFT_RIGHT_RULES))
    if "static" in motions and len(motions) > 1:
        motions.remove("static")
    if NO_MOTION_MATCHED in motions and len(motions) > 1:
        motions.remove(NO_MOTION_MATCHED)
    return sorted(motions)


def predict_motion(tracks: np.ndarray, height: int, width: int, grid_size: int = VBENCH_GRID_SIZE) -> dict[str, Any]:
    """VBench's prediction from (T, grid_size², 2) tracks in pixels of a ``height`` x ``width`` clip.

    Tracks are truncated toward zero (``.long()``), the first and last frames' grids compared at
    the edge midpoints. Returns the predicted motions and the intermediate values.
    """
    pixels = np.trunc(np.asarray(tracks, dtype=np.float32)).astype(np.int64)
    first = edge_points(pixels[0].reshape(grid_size, grid_size, 2), grid_size)
    last = edge_points(pixels[-1].reshape(grid_size, grid_size, 2), grid_size)
    threshold = min(height, width) * THRESHOLD_FACTOR
    shifts = {edge: (last[edge] - first[edge]).mean(axis=0) for edge in first}
    directions = {edge: edge_direction(shift, threshold) for edge, shift in shifts.items()}
    return {
        "predicted": classify_motion(directions),
        "threshold_px": threshold,
        "edge_shifts_px": {edge: [float(v) for v in shift] for edge, shift in shifts.items()},
        "edge_directions": directions,
        "edge_start_px": {edge: first[edge].tolist() for edge in first},
    }


def accuracy_by_target(details: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """VBench's second return value: the mean per-video value per target type (NaN where none, as
    ``np.mean([])``), from the ``details`` of ``vbench.camera_motion`` results."""
    values: dict[str, list[float]] = {motion: [] for motion in MOTION_TYPES}
    for detail in details:
        values[detail["target"]].append(1.0 if detail["target"] in detail["predicted"] else 0.0)
    return {motion: float(np.mean(v)) if v else math.nan for motion, v in values.items()}


class CameraMotion(Scorer):
    """VBench-I2V camera motion (``vbench2_beta_i2v/camera_motion.py``, 45e79ec): 1 when CoTracker2's
    edge-midpoint rule predicts the camera motion the prompt asks for, else 0; mean over clips."""

    name = "vbench.camera_motion"
    version = "1"
    requires = frozenset({Input.PROMPT})
    families = ("cotracker2",)
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    min_frames = 5
    none_tolerance = 0.0
    feature = FeatureSpec.of("vbench.cotracker_grid_tracks", grid_size=VBENCH_GRID_SIZE)
    # With the published weights every frame perturbation moves the value up or down depending on the
    # target: freezing a clip makes it static (right for a "camera static" prompt, wrong for a pan);
    # reversing swaps left/right, up/down and in/out (wrong for a correct pan, possibly right for a
    # wrong one); shuffling, splicing or shaking changes the last frame's offset arbitrarily. So no
    # direction holds for every case, and the scorer makes no claim. With random weights (the tests)
    # the battery checks the plumbing only: errors fail it, and the guide and mask, which it does not
    # read, must not move it.
    expectations = {
        name: Expect.NO_CLAIM
        for name in ("freeze", "shuffle", "shake", "reverse", "flicker", "blur", "low_fps", "splice", "hold_twos",
                     "stutter", "reencode", "downscale", "letterbox", "channel_swap", "speed_up", "jitter",
                     # another prompt may ask for another motion: up, down or unchanged with the donor's target
                     "swap_prompt")
    }

    def check(self, sample: ScoreInput) -> None:
        if camera_target(sample.prompt) is None:
            raise NotApplicable(
                f"{self.name} needs a prompt naming the camera motion, one of "
                + ", ".join(f"'{phrase}'" for phrase, _ in CAMERA_PHRASES)
                + " (VBench reads it from the file name, i.e. the prompt); "
                + f"this prompt names none: {sample.prompt!r}",
                case_id=sample.case_id)
        super().check(sample)

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.feature]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        target = camera_target(sample.prompt)
        tracks = sample.feature(self.feature)
        prediction = predict_motion(tracks, sample.info.height, sample.info.width, VBENCH_GRID_SIZE)
        value = 1.0 if target in prediction["predicted"] else 0.0
        return self.result(value, target=target, frames=int(tracks.shape[0]), grid_size=VBENCH_GRID_SIZE,
                           clip_size=[sample.info.height, sample.info.width], **prediction)
