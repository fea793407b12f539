"""Motion-mask precision: how much of the clip's motion stays inside the motion mask."""

from __future__ import annotations

from anibench.features import flow_magnitude
from anibench.conditions import resample_region
from anibench.scoring import Expect, FrameSampling, Input, MotionScorer, ScoreInput, ScoreResult


class MaskMotionPrecision(MotionScorer):
    """Mask precision: the share of moving pixels that lie inside the motion region.

    ``P = Σ_t |M_t ∧ R_t| / Σ_t |M_t|`` over consecutive frame pairs, where
    ``M_t = {p : |flow_{t→t+1}(p)| > τ}``, ``τ = threshold_px · min(H, W) / 256`` and
    ``R_t`` is the case's motion region at frame t (white of a motion mask, or black of
    an anymask "keep" mask); H, W and the flow are at the working size
    ``flow_max_side``. This is the AniSora paper's localized-guidance metric
    (arXiv 2412.10255, Table 2: the share of motion inside the mask), computed here with
    OpenCV DIS flow. A clip in which nothing moves scores 1: no motion left the mask.
    """

    name = "mask_precision"
    version = "1"
    requires = frozenset({Input.MASK})
    sampling = FrameSampling("all")
    default_params = {**MotionScorer.default_params, "threshold_px": 1.0}
    lower, upper, higher_is_better = 0.0, 1.0, True
    expectations = {
        "freeze": Expect.UP,
        "invert_mask": Expect.DOWN,
    }

    def compute(self, sample: ScoreInput) -> ScoreResult:
        motion = self.motion(sample)
        region = resample_region(sample.motion_region, sample.video.num_frames, *motion.size)
        threshold = self.params["threshold_px"] * min(motion.size) / 256.0
        inside = total = 0
        for t in range(sample.video.num_frames - 1):
            moving = flow_magnitude(motion.flow(t, t + 1)) > threshold
            total += int(moving.sum())
            inside += int((moving & region[t]).sum())
        value = inside / total if total else 1.0
        return self.result(
            value, moving_pixels=total, moving_inside=inside, threshold_px=threshold,
            region_share=float(region.mean()),
        )
