"""Weight-free motion features on optical flow (OpenCV DIS at a working size), streamed.

Flows are computed through the clip context's memo, so features asking for the same
pair (dynamic degree and motion smoothness on frames t → t+2 of a 16 fps clip) share it.
"""

from __future__ import annotations

import numpy as np

from anibench.features.base import FrameFeature
from anibench.features.flow import DEFAULT_WORKING_SIDE, backward_warp


class FlowPeaks(FrameFeature):
    """``flow.peaks``: per-pair motion = mean of the top ``fraction`` of flow magnitudes (working-size px).

    Pairs are consecutive frames of the sampling: every frame, or every
    ``max(1, round(fps / target_fps))``-th when ``target_fps`` is given (VBench reads about
    8 fps for dynamic degree). With ``ends``, the first → last and last → first pairs are
    added (VBench's static filter). Value: ``{"pairs": [(a, b), ...], "peaks": [...],
    "end_peaks": [first→last, last→first]}``.
    """

    name = "flow.peaks"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.fraction = float(spec.get("fraction", 0.05))
        self.max_side = spec.get("max_side", DEFAULT_WORKING_SIDE)
        self.ends = bool(spec.get("ends", False))
        target = spec.get("target_fps")
        self.stride = max(1, round(clip.info.fps / target)) if target else 1
        self.wanted = np.arange(0, clip.info.num_frames, self.stride)
        self.lookback = self.stride
        self.pinned = frozenset({0}) if self.ends else frozenset()
        self._pairs: list[tuple[int, int]] = []
        self._peaks: list[float] = []
        self._last: int | None = None

    def step(self, t: int) -> None:
        if self._last is not None:
            self._pairs.append((self._last, t))
            self._peaks.append(self.clip.peak_motion(self._last, t, self.fraction, self.max_side))
        self._last = t

    def finish(self) -> dict:
        value = {"pairs": self._pairs, "peaks": self._peaks, "stride": self.stride,
                 "working_size": self.clip.working_size(self.max_side)}
        if self.ends:
            first, last = int(self.wanted[0]), int(self._last)
            value["end_peaks"] = [self.clip.peak_motion(first, last, self.fraction, self.max_side),
                                  self.clip.peak_motion(last, first, self.fraction, self.max_side)]
        return value


def interpolated_frames(num_frames: int) -> list[int]:
    """The odd frames VBench's motion smoothness scores: one between each pair of consecutive even frames.

    Even frames ``0, 2, 4, …`` are the interpolator's inputs; the frame between two of them
    is compared with the original odd frame. With an even frame count the last (odd) frame
    has no right neighbour and is not scored.
    """
    return list(range(1, num_frames - 1, 2))


def as_uint8_image(predicted: np.ndarray) -> np.ndarray:
    """An interpolated frame as VBench stores it: clipped to [0, 255] and *truncated* to uint8
    (AMT's ``tensor2img``, ``vbench/third_party/amt/utils/utils.py`` L86-89 at 45e79ec)."""
    return np.clip(predicted, 0, 255).astype(np.uint8)


class InterpolationErrors(FrameFeature):
    """``flow.interpolation_errors``: how well each odd frame is predicted from its neighbours.

    For each of :func:`interpolated_frames`: ``I_t`` = the mean of ``f_{t-1}`` sampled at
    ``q − F(t−1→t+1)(q)/2`` and ``f_{t+1}`` sampled at ``q − F(t+1→t−1)(q)/2`` (bilinear,
    border replicated), stored as uint8 (:func:`as_uint8_image`); the value is
    ``mean |f_t − I_t|`` over pixels and channels, at the working size.
    """

    name = "flow.interpolation_errors"
    version = "2"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.max_side = spec.get("max_side", DEFAULT_WORKING_SIDE)
        self.lookback = 2
        self._errors: list[float] = []

    def step(self, t: int) -> None:
        if t < 2 or t % 2:
            return
        before, middle, after = t - 2, t - 1, t
        working, flow = self.clip.working, self.clip.flow
        from_before = backward_warp(working(before, self.max_side), flow(before, after, self.max_side), -0.5)
        from_after = backward_warp(working(after, self.max_side), flow(after, before, self.max_side), -0.5)
        predicted = as_uint8_image(0.5 * (from_before.astype(np.float32) + from_after.astype(np.float32)))
        self._errors.append(float(np.abs(working(middle, self.max_side).astype(np.int16) - predicted).mean()))

    def finish(self) -> np.ndarray:
        return np.asarray(self._errors, dtype=np.float64)
