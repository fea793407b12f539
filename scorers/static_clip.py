"""VBench's static-video filter, as a per-clip flag."""

from __future__ import annotations

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, MotionScorer, ScoreInput, ScoreResult


class StaticClip(MotionScorer):
    """Static clip: 1 if VBench's static filter calls the clip static ("PPT animation"), else 0.

    Motion of a pair = mean of the top 5 % optical-flow magnitudes. With every frame,
    ``thres = 3 * min(H, W) / 256`` and ``count = round(2 * N / 16)``: the clip is not
    static when more than ``count`` consecutive pairs exceed ``thres``, or when the
    first→last or last→first pair exceeds ``2 * count * thres``. Rule from VBench
    (``static_filter.py``: ``set_params``, ``check_static``, ``infer``); flow is OpenCV
    DIS at the working size ``flow_max_side``. Lower is better for a generator: the suite value is the share of static clips.
    """

    name = "static_clip"
    version = "1"
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, False
    expectations = {
        "freeze": Expect.UP,
        "shake": Expect.DOWN,
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("flow.peaks", fraction=0.05, ends=True, max_side=self.params["flow_max_side"])]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        indices = self.sampling.indices(sample.num_frames, sample.fps)
        peaks = sample.feature(self.features(sample)[0])
        threshold = 3.0 * min(peaks["working_size"]) / 256.0
        count_allowed = round(2 * len(indices) / 16.0)
        consecutive = peaks["peaks"]
        ends = peaks["end_peaks"]
        moving_pairs = sum(1 for m in consecutive if m > threshold)
        static = moving_pairs <= count_allowed and all(m <= threshold * count_allowed * 2 for m in ends)
        return self.result(
            1.0 if static else 0.0,
            threshold_px=threshold,
            pairs_allowed=count_allowed,
            pairs_above=moving_pairs,
            first_last_motion_px=[round(m, 3) for m in ends],
        )
