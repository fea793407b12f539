"""VBench temporal flickering."""

from __future__ import annotations

import cv2
import numpy as np

from anibench.scoring import Expect, FrameSampling, Scorer, ScoreInput, ScoreResult


class TemporalFlickering(Scorer):
    """Temporal flickering: ``(255 - mean_t MAE(f_t, f_t+1)) / 255`` over all frames.

    MAE is the mean absolute difference of consecutive RGB frames over pixels and
    channels. Formula from VBench (``vbench/temporal_flickering.py``, ``cal_score``).
    VBench applies it only to clips its static filter keeps (then it measures flicker,
    not motion); anibench scores every clip and reports the filter as ``static_clip``.
    1 = identical consecutive frames.
    """

    name = "temporal_flickering"
    version = "1"
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    expectations = {
        "freeze": Expect.UP,
        "shuffle": Expect.DOWN,
        "shake": Expect.DOWN,
        "reverse": Expect.NONE,
        "flicker": Expect.DOWN,
        "blur": Expect.UP,
    }

    def compute(self, sample: ScoreInput) -> ScoreResult:
        _, frames = sample.frames(self.sampling)
        maes = np.array([cv2.absdiff(a, b).mean() for a, b in zip(frames[:-1], frames[1:])])
        return self.result((255.0 - maes.mean()) / 255.0, mean_abs_diff=float(maes.mean()), max_abs_diff=float(maes.max()))
