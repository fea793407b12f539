"""Frame sampling: which frames of a clip a scorer or feature reads, and at what size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameSampling:
    """Which frames a scorer reads, and at what size.

    * ``all``: every frame.
    * ``fps_stride``: every ``max(1, round(fps / target_fps))``-th frame (VBench's dynamic
      degree reads ~8 fps).
    * ``uniform``: ``count`` frames at ``arange(0, M, M / count)`` with
      ``M = min(T, within_first)``, all frames when ``T <= count`` (AnimeReward's 24 of the
      first 144).

    ``max_side`` shrinks frames (area interpolation) so the longer side is at most that.
    """

    kind: str = "all"
    target_fps: float | None = None
    count: int | None = None
    within_first: int | None = None
    max_side: int | None = None

    def indices(self, num_frames: int, fps: float) -> np.ndarray:
        if self.kind == "all":
            return np.arange(num_frames)
        if self.kind == "fps_stride":
            return np.arange(0, num_frames, self.stride(fps))
        if self.kind == "uniform":
            span = min(num_frames, self.within_first or num_frames)
            if num_frames <= self.count:
                return np.arange(num_frames)
            return np.arange(0, span, span / self.count).astype(int)[: self.count]
        raise ValueError(f"unknown frame sampling {self.kind!r}")

    def stride(self, fps: float) -> int:
        return max(1, round(fps / self.target_fps)) if self.kind == "fps_stride" else 1

    def describe(self) -> str:
        parts = [self.kind]
        if self.kind == "fps_stride":
            parts.append(f"stride=max(1,round(fps/{self.target_fps:g}))")
        if self.kind == "uniform":
            parts.append(f"count={self.count}" + (f", first {self.within_first}" if self.within_first else ""))
        if self.max_side:
            parts.append(f"max_side={self.max_side}")
        return " ".join(parts)
