"""Static black borders (letterbox and pillarbox bars)."""

from __future__ import annotations

import numpy as np

from anibench.features import FeatureSpec
from anibench.features.pixel import sampling_params
from anibench.scoring import Expect, FrameSampling, Scorer, ScoreInput, ScoreResult

# A bar pixel is at most this bright in every channel: decoded video black is 0-2, codec
# ringing next to the picture adds a few levels; a dark-blue night sky (≥ 40 in blue) is not black.
BLACK_LEVEL = 24


def edge_run(is_black: np.ndarray) -> int:
    """How many entries at the start of ``is_black`` are True."""
    return int(np.argmin(is_black)) if not is_black.all() else int(is_black.size)


def bar_sizes(brightest: np.ndarray, black_level: float = BLACK_LEVEL) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` bar widths in pixels from ``brightest`` (H, W): each pixel's
    largest channel value over the whole clip; a bar row or column is black everywhere."""
    rows = brightest.max(axis=1) <= black_level
    cols = brightest.max(axis=0) <= black_level
    top = edge_run(rows)
    if top == rows.size:
        return top, 0, cols.size, 0
    return top, edge_run(rows[::-1]), edge_run(cols), edge_run(cols[::-1])


def border_share(height: int, width: int, top: int, bottom: int, left: int, right: int) -> float:
    """Share of the frame outside the picture the bars leave."""
    inner = max(0, height - top - bottom) * max(0, width - left - right)
    return 1.0 - inner / (height * width)


class BlackBorders(Scorer):
    """Black borders: the share of the frame covered by static black bars; lower is better.

    A row (column) at the top or bottom (left or right) edge belongs to a bar when every
    pixel of it stays at most ``BLACK_LEVEL`` (24) in every channel in every frame; the bars
    are the runs of such rows and columns from each edge, and the value is
    ``1 − (H − top − bottom)(W − left − right) / (H·W)`` on the decoded frames.
    Letterboxing (bars above and below) and pillarboxing (left and right) waste
    resolution, and the AniSora data pipeline removes clips that have them (arXiv
    2412.10255). A static black band that is content (a black floor along the whole bottom
    edge of every frame) counts too. ``details`` give the bars in pixels.
    """

    name = "black_borders"
    version = "1"
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, False
    min_frames = 1
    none_tolerance = 0.02
    expectations = {
        "letterbox": Expect.UP,
        "freeze": Expect.NONE,
        "shuffle": Expect.NONE,
        "reverse": Expect.NONE,
        "flicker": Expect.NONE,
        "low_fps": Expect.NONE,
        "hold_twos": Expect.NONE,
        "stutter": Expect.NONE,
        "speed_up": Expect.NONE,
        "channel_swap": Expect.NONE,
        "downscale": Expect.NONE,
        "reencode": Expect.NONE,
        "jitter": Expect.NONE,
        # Shaking moves existing bars from frame to frame (the static part shrinks by the shake)
        # and does nothing to a clip without bars.
        "shake": Expect.NO_CLAIM,
        # Blur spreads the picture a few pixels into existing bars (they shrink) and does nothing
        # to a clip without bars.
        "blur": Expect.NO_CLAIM,
        # A shot without bars inserted into a letterboxed clip removes them; into a clip without bars, nothing.
        "splice": Expect.NO_CLAIM,
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("pixel.brightest", **sampling_params(self.sampling))]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        brightest = sample.feature(self.features(sample)[0])
        top, bottom, left, right = bar_sizes(brightest)
        height, width = brightest.shape
        return self.result(
            border_share(height, width, top, bottom, left, right),
            bars_px={"top": top, "bottom": bottom, "left": left, "right": right},
        )
