"""Motion-mask precision: how much of the clip's motion stays inside the motion mask."""

from __future__ import annotations

import hashlib

import numpy as np

from anibench.conditions import resample_region
from anibench.features import FeatureSpec, FrameFeature, flow_magnitude
from anibench.scoring import Expect, FrameSampling, Input, MotionScorer, ScoreInput, ScoreResult


class MaskMotion(FrameFeature):
    """``mask.motion``: moving pixels (|flow t→t+1| > threshold) in total and inside the clip's motion region."""

    name = "mask.motion"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.max_side = spec.get("max_side")
        self.size = clip.working_size(self.max_side)
        self.region = resample_region(clip.sample.motion_region, clip.info.num_frames, *self.size)
        self.threshold = spec.get("threshold_px") * min(self.size) / 256.0
        self.lookback = 1
        self.inside = self.total = 0

    def step(self, t: int) -> None:
        if t == 0:
            return
        moving = flow_magnitude(self.clip.flow(t - 1, t, self.max_side)) > self.threshold
        self.total += int(moving.sum())
        self.inside += int((moving & self.region[t - 1]).sum())

    def finish(self) -> dict:
        return {"inside": self.inside, "total": self.total, "threshold_px": self.threshold,
                "region_share": float(self.region.mean())}


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

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        region = sample.motion_region
        return [FeatureSpec.of("mask.motion", max_side=self.params["flow_max_side"],
                               threshold_px=self.params["threshold_px"],
                               region=hashlib.sha256(np.packbits(region).tobytes()).hexdigest() + str(region.shape))]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        motion = sample.feature(self.features(sample)[0])
        inside, total = motion["inside"], motion["total"]
        value = inside / total if total else 1.0
        return self.result(
            value, moving_pixels=total, moving_inside=inside, threshold_px=motion["threshold_px"],
            region_share=motion["region_share"],
        )
