"""Guide-frame fidelity (keyframe adherence): does the clip show each guide where it belongs?"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, Input, Scorer, ScoreInput, ScoreResult

_EXPECTATIONS = {
    "freeze": Expect.DOWN,
    "shuffle": Expect.DOWN,
    "shake": Expect.DOWN,
    "reverse": Expect.DOWN,
    "flicker": Expect.DOWN,
    "blur": Expect.DOWN,
    "swap_guide": Expect.DOWN,
}


class _GuideFidelity(Scorer):
    """Compares the frame at every guide's index with the guide image; the value is the mean.

    Guide frame indices follow the condition's rule (``anibench.conditions``, AniSora V3
    snapping) applied to the scored clip's own length. ``details["per_guide"]`` lists
    position, frame index and value for each guide, so a report can show which keyframe
    a model missed.
    """

    requires = frozenset({Input.GUIDES})
    sampling = FrameSampling("all")
    min_frames = 1
    expectations = _EXPECTATIONS

    @abstractmethod
    def compare(self, reference: np.ndarray, frame: np.ndarray) -> float:
        """Similarity of a guide image and the clip's frame at the guide's index."""

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("frames.at", indices=sorted({g.frame_index for g in sample.guides}))]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        frames = sample.feature(self.features(sample)[0])
        per_guide = []
        for guide in sample.guides:
            value = self.compare(guide.image, frames[guide.frame_index])
            per_guide.append({"position": guide.position, "frame_index": guide.frame_index, "value": round(value, 4)})
        return self.result(float(np.mean([g["value"] for g in per_guide])), per_guide=per_guide)


class GuidePSNR(_GuideFidelity):
    """Guide PSNR: mean over guides of ``PSNR(guide, frame at its index)`` in dB, capped at ``max_db``.

    ``PSNR = 10 log10(255² / MSE)`` over RGB (scikit-image ``peak_signal_noise_ratio``);
    identical frames would be infinite, hence the cap (default 60 dB).
    """

    name = "guide_psnr"
    version = "1"
    default_params = {"max_db": 60.0}
    lower, upper, higher_is_better, unit = 0.0, 60.0, True, "dB"

    def __init__(self, **params):
        super().__init__(**params)
        self.upper = float(self.params["max_db"])

    def compare(self, reference: np.ndarray, frame: np.ndarray) -> float:
        if np.array_equal(reference, frame):
            return self.upper
        return min(self.upper, float(peak_signal_noise_ratio(reference, frame, data_range=255)))


class GuideSSIM(_GuideFidelity):
    """Guide SSIM: mean over guides of ``SSIM(guide, frame at its index)``.

    SSIM of Wang et al. (2004) with scikit-image's defaults (7×7 uniform window,
    per channel, averaged), data range 255. 1 = identical.
    """

    name = "guide_ssim"
    version = "1"
    lower, upper, higher_is_better = -1.0, 1.0, True

    def compare(self, reference: np.ndarray, frame: np.ndarray) -> float:
        return float(structural_similarity(reference, frame, channel_axis=2, data_range=255))
