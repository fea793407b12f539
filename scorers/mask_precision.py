"""Motion-mask adherence: where the clip moves (precision) and how much of the mask moves.

Both scorers count *observed motion* per consecutive frame pair, at the flow working size
(``flow_max_side``, H x W; grayscale frames g_t, DIS flow f_t from t to t+1):

* ``τ = threshold_px · min(H, W) / 256`` px, the displacement that counts as motion
  (1 px at 256 px by default);
* ``C_t = box_k(|g_{t+1} - g_t|)``, the frame-to-frame change averaged over k x k pixels,
  ``k = max(3, round(min(H, W) / 32))``, plus 1 when even (5 at 128 px, 11 at 341 px);
* the clip's **noise floor** ``ν = max(2, Q_0.99{C_t(p) : |f_t(p)| < τ/2})``: the 99th
  percentile of the change where the flow sees no motion, over every pair of the clip, in
  grey levels. It is what the clip's still parts change by — codec noise, grain, dither,
  flicker — and rises with them (most crf 12 smoke clips: 2, the minimum; after a crf 40
  re-encode or with σ = 3 grain: 3-9). Change that is not motion (a blink, a character
  turning from one drawn view to the next) raises it too, which only makes the rule stricter;
* a pixel *moves* when ``|f_t(p)| > τ`` and some change above ``2ν`` lies within its k x k
  neighbourhood: ``M_t = {|f_t| > τ} ∧ dilate_k(C_t > 2ν)``.

The second condition is what makes the count robust to codec noise. Optical flow is
unconstrained where a frame is flat: on a cel-shaded background the H.264 noise of a crf 18
or crf 40 re-encode makes DIS report displacements of up to 10 px where nothing changed, and
a flow-only threshold counted them (smoke clips: precision 0.94 → 0.74 after a crf 18
re-encode). Real motion changes the frame along the moving shapes; a flat area moving with
them keeps its flow and counts when an edge of it lies within k pixels.

With R_t the motion region (white of a motion mask, or black of an anymask "keep" mask)
resampled to the working size, I = Σ_t |M_t ∧ R_t|, M = Σ_t |M_t|, A = Σ_t |R_t|:

* ``mask_precision = I / max(M, ε·A)``: the share of the motion inside the region (the
  AniSora paper's localized-guidance metric, arXiv 2412.10255, Table 2), computed with DIS
  flow. ``ε = min_motion`` (1 %) is the least motion that earns full credit: a clip whose
  motion covers less than 1 % of the region's pixel-pairs gets its precision scaled down in
  proportion, and one in which **nothing moves above the noise floor scores 0**. That
  clip did none of what the mask asks (move there, not elsewhere); 1 (the old value)
  rewarded doing nothing, NaN would count as a failed score and "not applicable" would drop
  the clip from the table — both hide the frozen clip this rule exists to expose. Scaling
  instead of a hard cut keeps the value continuous: a re-encode that lifts a near-still
  clip's motion over the noise cannot flip it from 0 to 1.
* ``mask_motion = I / A``: the share of the region's pixels that move, over the clip — the
  amount of motion where it was asked for. Read it beside precision: a clip that barely
  moves can be perfectly precise; this says it barely moves.

An empty motion region (a mask with no motion anywhere) makes neither defined: not
applicable. ``details`` carry the counts, τ, ν and the region's share of the frame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from anibench.conditions import resample_region
from anibench.errors import NotApplicable
from anibench.features import FeatureSpec, FrameFeature, flow_magnitude
from anibench.scoring import Expect, FrameSampling, Input, MotionScorer, ScoreInput, ScoreResult

NOISE_QUANTILE = 0.99
NOISE_MARGIN = 2.0
MIN_NOISE_FLOOR = 2.0
_BINS_PER_LEVEL = 10  # the noise floor's histogram resolution: 0.1 grey level


@dataclass(frozen=True)
class MaskMotion:
    """Observed-motion counts of one clip against its motion region (see the module docstring)."""

    inside: int
    moving: int
    region: int
    threshold_px: float
    noise_floor: float
    region_share: float

    def details(self) -> dict[str, Any]:
        return {
            "moving_pixels": self.moving, "moving_inside": self.inside, "region_pixels": self.region,
            "threshold_px": round(self.threshold_px, 4), "noise_floor": round(self.noise_floor, 2),
            "region_share": round(self.region_share, 4),
            "mask_motion": round(self.inside / self.region, 6),
        }


def _odd_window(size: tuple[int, int]) -> int:
    k = max(3, round(min(size) / 32))
    return k if k % 2 else k + 1


_NOISE_BINS = 256 * _BINS_PER_LEVEL + 1
# Every value the noise floor can take is bin / 10; a pixel is "observed" when the largest change near it
# exceeds NOISE_MARGIN times the floor. The thresholds as float32, the precision the change maps have.
_OBSERVED_THRESHOLDS = (NOISE_MARGIN * (np.arange(_NOISE_BINS) / _BINS_PER_LEVEL)).astype(np.float32)


class MaskMotionCounts(FrameFeature):
    """``mask.motion``: the counts of :class:`MaskMotion` for one clip, in one pass over its frames.

    The noise floor is known only at the end of the clip, so each pair keeps, for every
    pixel that moves more than τ, the largest change within its k×k neighbourhood as a
    histogram over the floor's possible thresholds (:data:`_OBSERVED_THRESHOLDS`), inside
    the region and in all; the counts for the floor the clip ends with are read off them.
    ``dilate(change > θ)`` is ``dilate_max(change) > θ``, so this equals thresholding each
    pair afterwards, with memory independent of the clip's length.
    """

    name = "mask.motion"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.max_side = spec.get("max_side")
        self.size = clip.working_size(self.max_side)
        self.region = resample_region(clip.sample.motion_region, clip.info.num_frames, *self.size)
        self.tau = spec.get("threshold_px") * min(self.size) / 256.0
        self.k = _odd_window(self.size)
        self.kernel = np.ones((self.k, self.k), np.uint8)
        self.lookback = 1
        self.noise_counts = np.zeros(_NOISE_BINS, np.int64)
        self.moving = np.zeros(_NOISE_BINS + 1, np.int64)
        self.inside = np.zeros(_NOISE_BINS + 1, np.int64)

    def step(self, t: int) -> None:
        if t == 0:
            return
        gray = self.clip.gray
        change = cv2.blur(cv2.absdiff(gray(t, self.max_side), gray(t - 1, self.max_side)).astype(np.float32),
                          (self.k, self.k))
        magnitude = flow_magnitude(self.clip.flow(t - 1, t, self.max_side))
        levels = np.rint(change[magnitude < self.tau / 2] * _BINS_PER_LEVEL).astype(np.int64)
        self.noise_counts += np.bincount(levels, minlength=_NOISE_BINS)
        candidates = magnitude > self.tau
        nearby = cv2.dilate(change, self.kernel)
        above = np.searchsorted(_OBSERVED_THRESHOLDS, nearby[candidates], side="left")
        self.moving += np.bincount(above, minlength=_NOISE_BINS + 1)
        above_inside = np.searchsorted(_OBSERVED_THRESHOLDS, nearby[candidates & self.region[t - 1]], side="left")
        self.inside += np.bincount(above_inside, minlength=_NOISE_BINS + 1)

    def finish(self) -> MaskMotion:
        bin_ = round(MIN_NOISE_FLOOR * _BINS_PER_LEVEL)
        if self.noise_counts.sum():
            quantile = int(np.searchsorted(np.cumsum(self.noise_counts), NOISE_QUANTILE * self.noise_counts.sum()))
            bin_ = max(bin_, quantile)
        noise = bin_ / _BINS_PER_LEVEL
        inside, moving = int(self.inside[bin_ + 1:].sum()), int(self.moving[bin_ + 1:].sum())
        return MaskMotion(inside, moving, int(self.region[:-1].sum()), self.tau, noise, float(self.region.mean()))


class _MaskMotionScorer(MotionScorer):
    """Shared inputs and measurement of the mask scorers."""

    requires = frozenset({Input.MASK})
    sampling = FrameSampling("all")
    default_params = {**MotionScorer.default_params, "threshold_px": 1.0}

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        region = sample.motion_region
        digest = hashlib.sha256(np.packbits(region).tobytes() + str(region.shape).encode()).hexdigest()
        return [FeatureSpec.of("mask.motion", max_side=self.params["flow_max_side"],
                               threshold_px=self.params["threshold_px"], region=digest)]

    def measure(self, sample: ScoreInput) -> MaskMotion:
        measured = sample.feature(self.features(sample)[0])
        if measured.region == 0:
            raise NotApplicable("the motion mask marks no region where motion belongs", case_id=sample.case_id)
        return measured


class MaskMotionPrecision(_MaskMotionScorer):
    """Mask precision: ``I / max(M, ε·A)``, the share of observed motion inside the motion region.

    M counts pixel-pairs that move above the clip's noise floor, I those of them inside the
    region, A the region's pixel-pairs; ε = ``min_motion`` (0.01). A clip with no motion
    above the noise floor scores 0. Module docstring: the noise floor, the observed-motion
    rule and why. Source: AniSora (arXiv 2412.10255), Table 2, with OpenCV DIS flow.
    """

    name = "mask_precision"
    version = "2"
    default_params = {**_MaskMotionScorer.default_params, "min_motion": 0.01}
    lower, upper, higher_is_better = 0.0, 1.0, True
    expectations = {
        "freeze": Expect.DOWN,
        "invert_mask": Expect.DOWN,
        "jitter": Expect.DOWN,
        # Holds and duplicates stop the motion of the held pairs and double the step of the next
        # (slow motion then crosses the threshold); dropping frames doubles every step; crf 40,
        # ×4 downscaling and a channel swap change the noise floor and the flow a little; bars hide
        # whatever moved at the top and bottom, inside or outside the region: small moves either way.
        **{p: Expect.NO_CLAIM for p in ("hold_twos", "stutter", "speed_up", "reencode", "downscale", "channel_swap",
                                 "letterbox")},
    }

    def compute(self, sample: ScoreInput) -> ScoreResult:
        measured = self.measure(sample)
        value = measured.inside / max(measured.moving, self.params["min_motion"] * measured.region)
        return self.result(value, **measured.details())


class MaskMotionCoverage(_MaskMotionScorer):
    """Mask motion: ``I / A``, the share of the motion region's pixel-pairs that move above the noise floor.

    The amount of motion where the mask asks for it, reported beside ``mask_precision`` so a
    clip that barely moves cannot pass as perfectly adherent unnoticed (module docstring:
    the noise floor and the observed-motion rule). 0 = nothing in the region moves.
    """

    name = "mask_motion"
    version = "1"
    lower, upper, higher_is_better = 0.0, 1.0, True
    expectations = {
        "freeze": Expect.DOWN,
        "invert_mask": Expect.DOWN,
        "jitter": Expect.UP,
        # Holds and duplicates stop the motion of the held pairs and double the step of the next
        # (slow motion then crosses the threshold); dropping frames doubles every step; crf 40,
        # ×4 downscaling and a channel swap change the noise floor and the flow a little; bars hide
        # whatever moved at the top and bottom, inside or outside the region: small moves either way.
        **{p: Expect.NO_CLAIM for p in ("hold_twos", "stutter", "speed_up", "reencode", "downscale", "channel_swap",
                                 "letterbox")},
    }

    def compute(self, sample: ScoreInput) -> ScoreResult:
        measured = self.measure(sample)
        return self.result(measured.inside / measured.region, **measured.details())
