"""Motion smoothness as flow-warped frame-interpolation error."""

from __future__ import annotations

import numpy as np

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, MotionScorer, ScoreInput, ScoreResult


class MotionSmoothness(MotionScorer):
    """Motion smoothness: ``(255 - mean_t MAE(f_t, I_t)) / 255`` over odd t.

    ``I_t`` is frame t interpolated from its neighbours: ``f_{t-1}`` and ``f_{t+1}`` are
    each warped halfway along the optical flow between them (``f_{t-1}`` sampled at
    ``q - F(t-1→t+1)(q) / 2``, ``f_{t+1}`` at ``q - F(t+1→t-1)(q) / 2``) and averaged.
    Smooth motion is predictable from its neighbours; jitter, jumps and flicker are not.
    The formula and the even/odd split follow VBench's motion smoothness
    (``vbench/motion_smoothness.py``, which interpolates with the AMT-S network);
    anibench uses OpenCV DIS flow at the working size ``flow_max_side`` (VBench also
    shrinks frames when memory is short), so values are not VBench's. The construction is
    symmetric in time: reversing a clip with an odd frame count leaves it unchanged.
    """

    name = "motion_smoothness"
    version = "1"
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    min_frames = 3
    none_tolerance = 0.002
    expectations = {
        "freeze": Expect.UP,
        "shuffle": Expect.DOWN,
        "shake": Expect.DOWN,
        "reverse": Expect.NONE,
        "flicker": Expect.DOWN,
        "low_fps": Expect.DOWN,
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("flow.interpolation_errors", max_side=self.params["flow_max_side"])]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        errors = sample.feature(self.features(sample)[0])
        mae = float(np.mean(errors))
        return self.result((255.0 - mae) / 255.0, interpolation_mae=mae, frames_interpolated=len(errors))
