"""VBench temporal flickering."""

from __future__ import annotations

from anibench.features import FeatureSpec
from anibench.features.pixel import sampling_params
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

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("pixel.pair_mean_abs_diff", **sampling_params(self.sampling))]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        (spec,) = self.features(sample)
        maes = sample.feature(spec)
        return self.result((255.0 - maes.mean()) / 255.0, mean_abs_diff=float(maes.mean()), max_abs_diff=float(maes.max()))
