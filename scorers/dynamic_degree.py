"""VBench dynamic degree, with classical optical flow."""

from __future__ import annotations

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, MotionScorer, ScoreInput, ScoreResult


class DynamicDegree(MotionScorer):
    """Dynamic degree: 1 if the clip moves, by VBench's rule, else 0; the suite value is the share.

    Frames are sampled every ``max(1, round(fps / 8))`` frames. For each consecutive pair
    of sampled frames, motion = mean of the top 5 % optical-flow magnitudes. The clip is
    dynamic when at least ``round(4 * N / 16)`` pairs exceed ``6 * min(H, W) / 256`` px,
    N = number of sampled frames. Rule from VBench (``vbench/dynamic_degree.py``:
    ``get_frames``, ``get_score``, ``set_params``, ``check_move``); flow is OpenCV DIS
    instead of RAFT, at a working size (``flow_max_side``, H and W taken there), so
    per-pair magnitudes differ somewhat from VBench's.
    """

    name = "dynamic_degree"
    version = "1"
    sampling = FrameSampling("fps_stride", target_fps=8)
    lower, upper, higher_is_better = 0.0, 1.0, True
    expectations = {
        "freeze": Expect.DOWN,
        "shake": Expect.UP,
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("flow.peaks", target_fps=self.sampling.target_fps, fraction=0.05,
                               max_side=self.params["flow_max_side"])]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        indices = self.sampling.indices(sample.num_frames, sample.fps)
        peaks = sample.feature(self.features(sample)[0])
        threshold = 6.0 * min(peaks["working_size"]) / 256.0
        count_needed = round(4 * len(indices) / 16.0)
        motions = peaks["peaks"]
        count = sum(1 for m in motions if m > threshold)
        return self.result(
            1.0 if count >= count_needed else 0.0,
            stride=self.sampling.stride(sample.fps),
            threshold_px=threshold,
            pairs_needed=count_needed,
            pairs_above=count,
            pair_motion_px=[round(m, 3) for m in motions],
        )
