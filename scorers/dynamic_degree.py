"""VBench dynamic degree, with classical optical flow."""

from __future__ import annotations

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

    def compute(self, sample: ScoreInput) -> ScoreResult:
        indices = self.sampling.indices(sample.video.num_frames, sample.video.fps)
        motion = self.motion(sample)
        threshold = 6.0 * min(motion.size) / 256.0
        count_needed = round(4 * len(indices) / 16.0)
        motions = [motion.peak_motion(int(a), int(b)) for a, b in zip(indices[:-1], indices[1:])]
        count = sum(1 for m in motions if m > threshold)
        return self.result(
            1.0 if count >= count_needed else 0.0,
            stride=self.sampling.stride(sample.video.fps),
            threshold_px=threshold,
            pairs_needed=count_needed,
            pairs_above=count,
            pair_motion_px=[round(m, 3) for m in motions],
        )
