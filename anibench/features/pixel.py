"""Weight-free pixel features: sampled frames, frames at given indices, consecutive-frame differences."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from anibench.features.base import FeatureSpec, FrameFeature
from anibench.features.sampling import FrameSampling


def sampling_of(spec: FeatureSpec) -> FrameSampling:
    """The :class:`FrameSampling` a spec's ``sampling`` parameters describe."""
    return FrameSampling(**dict(spec.get("sampling", ())))


def sampling_params(sampling: FrameSampling) -> dict[str, Any]:
    """A sampling as spec parameters (the inverse of :func:`sampling_of`)."""
    fields = ("kind", "target_fps", "count", "within_first", "max_side")
    return {"sampling": {f: getattr(sampling, f) for f in fields if getattr(sampling, f) is not None}}


def shrink(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """``frame`` shrunk (area interpolation) so its longer side is at most ``max_side``."""
    if not max_side or max(frame.shape[:2]) <= max_side:
        return frame
    scale = max_side / max(frame.shape[:2])
    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class SampledFrames(FrameFeature):
    """``frames.sampled``: the frames of a sampling as ``(indices, (N, H, W, 3) uint8)``.

    For scorers that need a few frames side by side (24 of the first 144, say); memory is
    the sampled frames, not the clip.
    """

    name = "frames.sampled"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.sampling = sampling_of(spec)
        self.wanted = self.sampling.indices(clip.info.num_frames, clip.info.fps)
        self._indices: list[int] = []
        self._frames: list[np.ndarray] = []

    def step(self, t: int) -> None:
        self._indices.append(t)
        self._frames.append(shrink(self.clip.frame(t), self.sampling.max_side).copy())

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self._indices), np.stack(self._frames)


class FramesAt(FrameFeature):
    """``frames.at``: the frames at ``indices`` (full size) as ``{index: frame}``; indices past the end are absent."""

    name = "frames.at"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.wanted = np.unique(np.asarray([i for i in spec.get("indices", ()) if 0 <= i < clip.info.num_frames],
                                           dtype=np.int64))
        self._frames: dict[int, np.ndarray] = {}

    def step(self, t: int) -> None:
        self._frames[t] = self.clip.frame(t).copy()

    def finish(self) -> dict[int, np.ndarray]:
        return self._frames


class PairMeanAbsDiff(FrameFeature):
    """``pixel.pair_mean_abs_diff``: ``mean |f_a − f_b|`` over pixels and channels for consecutive sampled frames.

    The mean absolute difference of uint8 RGB frames (OpenCV ``absdiff``), one value per
    pair of consecutive sampled frames, in grey levels (0–255).
    """

    name = "pixel.pair_mean_abs_diff"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.sampling = sampling_of(spec)
        self.wanted = self.sampling.indices(clip.info.num_frames, clip.info.fps)
        self._previous: np.ndarray | None = None
        self._values: list[float] = []

    def step(self, t: int) -> None:
        frame = shrink(self.clip.frame(t), self.sampling.max_side)
        if self._previous is not None:
            self._values.append(float(cv2.absdiff(self._previous, frame).mean()))
        self._previous = frame

    def finish(self) -> np.ndarray:
        return np.asarray(self._values, dtype=np.float64)


class Brightest(FrameFeature):
    """``pixel.brightest``: each pixel's largest channel value over the sampled frames, (H, W) uint8."""

    name = "pixel.brightest"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.sampling = sampling_of(spec)
        self.wanted = self.sampling.indices(clip.info.num_frames, clip.info.fps)
        self._brightest: np.ndarray | None = None

    def step(self, t: int) -> None:
        red, green, blue = cv2.split(shrink(self.clip.frame(t), self.sampling.max_side))
        frame = cv2.max(cv2.max(red, green), blue)
        self._brightest = frame if self._brightest is None else cv2.max(self._brightest, frame)

    def finish(self) -> np.ndarray:
        return self._brightest
