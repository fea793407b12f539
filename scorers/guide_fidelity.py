"""Guide-frame fidelity (keyframe adherence): does the clip show each guide where it belongs?

Each guide image is compared with the clip's frame at the guide's index
(:attr:`anibench.conditions.GuideFrame.frame_index`: where the generator placed it, or the
nearest frame to its position in a given clip; see :class:`anibench.conditions.GuidePlacement`).

**What is compared, and why.** Clip frames carry grain, dither and codec noise that their
guide usually lacks. Compared pixel for pixel at full resolution, that noise dominates:
SSIM's structure term treats grain on a flat cel as lost structure, so blurring the clip,
re-encoding it at crf 40 or shrinking it ×4 *raised* guide SSIM (0.51 → 0.84 on a grainy
clip) — fidelity rewarded degradation. Both images are therefore compared at a working
scale (:func:`working_view`):

1. shrunk by Wang's integer factor ``f = max(1, round(min(H, W) / 256))`` with an f×f box
   filter (the automatic downsampling of the SSIM authors' reference ``ssim.m``, Z. Wang,
   2009: SSIM is meant to be read at about 256 lines);
2. smoothed with a Gaussian of σ = 1 working pixel.

Pixel noise is independent between clip and guide and has no extent: steps 1 and 2 cut its
standard deviation by about ``3.5·f`` (to ~1/7 at 480p), while keyframe content — shapes,
lines and colours spanning a working pixel or more — passes. The guide is filtered exactly
as the clip, so removing the clip's noise by blurring gains almost nothing, and blur, coarse
quantisation or lost resolution that survives at the working scale still lowers the score.
Detail finer than a working pixel no longer counts: that is not what a keyframe is judged
on. ``tests/test_guide_fidelity.py`` checks this on smoke frames and the real AniSora
samples with synthetic grain and dither: blur (σ = 1), a real crf 40 re-encode and ×4
downscale-and-back lower the fidelity of a clean matched clip, and on a grainy or dithered
clip gain less than a quarter of the matched-vs-mismatched gap.

**Feature-based comparison.** A pixel measure cannot tell a redrawn pose from a shifted
one; a perceptual measure can. :class:`GuideComparison` is the hook: a scorer derived from
:class:`GuideFidelity` returns a comparison whose ``represent`` embeds images with a model
(batched; the model runtime provides it) and whose ``similarity`` is, say, the cosine of
the embeddings; frame placement, the search window and the details stay as they are.

**Diagnostics.** ``details["per_guide"]`` lists, per guide, the position, the frame checked
and its value (the score averages these), and the best-matching frame within
``search_window`` frames either side (``best_frame``, ``best_offset``, ``best_value``): a
model that hits a keyframe two frames late shows ``best_offset = 2``. The diagnostic never
enters the score.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar, Protocol, Sequence

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from anibench.errors import InputError
from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, Input, Scorer, ScoreInput, ScoreResult

SSIM_REFERENCE_SIDE = 256
DENOISE_SIGMA = 1.0

_EXPECTATIONS = {
    "freeze": Expect.DOWN,
    "shuffle": Expect.DOWN,
    "shake": Expect.DOWN,
    "reverse": Expect.DOWN,
    "flicker": Expect.DOWN,
    "blur": Expect.DOWN,
    "swap_guide": Expect.DOWN,
    "reencode": Expect.DOWN,
    "downscale": Expect.DOWN,
    "letterbox": Expect.DOWN,
    "channel_swap": Expect.DOWN,
    "jitter": Expect.DOWN,
    # Holds, duplicates and dropped frames change the frame at a guide's index only when that
    # frame is replaced (odd indices on twos, random ones under stutter) or no longer kept.
    "hold_twos": Expect.NO_CLAIM,
    "stutter": Expect.NO_CLAIM,
    "speed_up": Expect.NO_CLAIM,
}


def working_view(image: np.ndarray) -> np.ndarray:
    """``image`` at the comparison scale: Wang's f×f box shrink, then a Gaussian of σ = 1 (float32).

    ``f = max(1, round(min(H, W) / 256))`` with MATLAB's half-away-from-zero ``round``; the
    box filter averages each f×f block (what ``ssim.m`` does with ``imfilter`` and
    ``img(1:f:end, 1:f:end)``, here as area resizing to ``floor(H/f) × floor(W/f)`` blocks).
    """
    height, width = image.shape[:2]
    factor = max(1, math.floor(min(height, width) / SSIM_REFERENCE_SIDE + 0.5))
    view = image.astype(np.float32)
    if factor > 1:
        size = (max(1, width // factor), max(1, height // factor))
        view = cv2.resize(view[: size[1] * factor, : size[0] * factor], size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(view, (0, 0), DENOISE_SIGMA, borderType=cv2.BORDER_REFLECT)


class GuideComparison(Protocol):
    """How guide images and clip frames are compared: the hook for feature-based measures.

    ``represent`` turns a batch of (N, H, W, 3) uint8 RGB images into one representation
    each (here the working view; a perceptual comparison returns model embeddings, batched
    on the runtime's device). ``similarity`` scores a guide's representation against a
    frame's: higher is closer, within the scorer's declared range.
    """

    def represent(self, images: np.ndarray) -> Sequence[Any]: ...

    def similarity(self, guide: Any, frame: Any) -> float: ...


class PixelPSNR:
    """PSNR of working views, ``10·log10(255² / MSE)`` over RGB, capped at ``max_db`` (identical views: the cap)."""

    def __init__(self, max_db: float):
        self.max_db = max_db

    def represent(self, images: np.ndarray) -> list[np.ndarray]:
        return [working_view(image) for image in images]

    def similarity(self, guide: np.ndarray, frame: np.ndarray) -> float:
        mse = float(np.mean((guide - frame) ** 2))
        return self.max_db if mse == 0 else min(self.max_db, 10.0 * np.log10(255.0**2 / mse))


class PixelSSIM:
    """SSIM of working views as Wang et al. define it: Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03,
    population covariances, data range 255 (scikit-image ``structural_similarity`` with the settings
    its documentation gives to match Wang's implementation), averaged over R, G and B."""

    def represent(self, images: np.ndarray) -> list[np.ndarray]:
        return [working_view(image) for image in images]

    def similarity(self, guide: np.ndarray, frame: np.ndarray) -> float:
        return float(structural_similarity(
            guide, frame, channel_axis=2, data_range=255.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        ))


class GuideFidelity(Scorer):
    """Base of keyframe-adherence scorers: the mean over guides of ``similarity(guide, frame at its index)``.

    Subclasses say how images are compared (:meth:`comparison`, a :class:`GuideComparison`);
    this class places, checks and reports (see the module docstring for the comparison scale
    and the per-guide diagnostics).
    """

    requires = frozenset({Input.GUIDES})
    sampling = FrameSampling("all")
    min_frames = 1
    expectations = _EXPECTATIONS
    default_params: ClassVar[dict[str, Any]] = {"search_window": 3}

    def __init__(self, **params: Any):
        super().__init__(**params)
        window = self.params["search_window"]
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise InputError(f"{self.name}: search_window must be a whole number of frames >= 0, got {window!r}")

    @abstractmethod
    def comparison(self) -> GuideComparison:
        """The comparison of guide images and clip frames."""

    def windows(self, sample: ScoreInput) -> list[range]:
        """Per guide, the frames compared: its own and ``search_window`` either side (the diagnostic)."""
        reach = int(self.params["search_window"])
        return [range(max(0, g.frame_index - reach), min(sample.num_frames, g.frame_index + reach + 1))
                for g in sample.guides]

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        self._check_guides(sample)
        return [FeatureSpec.of("frames.at", indices=sorted({i for window in self.windows(sample) for i in window}))]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        guides = sample.guides
        windows = self.windows(sample)
        (spec,) = self.features(sample)
        frames = sample.feature(spec)
        needed = sorted(frames)
        comparison = self.comparison()
        frame_views = dict(zip(needed, comparison.represent(np.stack([frames[i] for i in needed]))))
        guide_views = comparison.represent(np.stack([g.image for g in guides]))
        per_guide, checked = [], []
        for guide, view, window in zip(guides, guide_views, windows):
            values = {i: comparison.similarity(view, frame_views[i]) for i in window}
            best = max(window, key=lambda i: (values[i], -abs(i - guide.frame_index)))
            checked.append(values[guide.frame_index])
            per_guide.append({
                "position": guide.position, "frame_index": guide.frame_index, "value": round(checked[-1], 4),
                "best_frame": best, "best_offset": best - guide.frame_index, "best_value": round(values[best], 4),
            })
        return self.result(float(np.mean(checked)), per_guide=per_guide)

    def _check_guides(self, sample: ScoreInput) -> None:
        shape = (sample.info.height, sample.info.width, 3)
        for guide in sample.guides:
            if not 0 <= guide.frame_index < sample.num_frames:
                raise InputError(
                    f"guide at position {guide.position:g} is placed at frame {guide.frame_index}, outside the clip's "
                    f"{sample.num_frames} frames", case_id=sample.case_id)
            if guide.image.shape != shape:
                raise InputError(
                    f"guide image at position {guide.position:g} is {guide.image.shape[1]}x{guide.image.shape[0]}, "
                    f"the clip's frames {shape[1]}x{shape[0]}", case_id=sample.case_id)


class GuidePSNR(GuideFidelity):
    """Guide PSNR: mean over guides of ``PSNR(guide, frame at its index)`` in dB at the working scale, capped.

    ``PSNR = 10·log10(255² / MSE)`` over RGB of the two working views (module docstring:
    Wang's ×f box shrink to ~256 lines, then a σ = 1 Gaussian); identical frames would be
    infinite, hence the cap (default 60 dB).
    """

    name = "guide_psnr"
    version = "2"
    default_params = {**GuideFidelity.default_params, "max_db": 60.0}
    lower, upper, higher_is_better, unit = 0.0, 60.0, True, "dB"

    def __init__(self, **params):
        super().__init__(**params)
        self.upper = float(self.params["max_db"])

    def comparison(self) -> GuideComparison:
        return PixelPSNR(self.upper)


class GuideSSIM(GuideFidelity):
    """Guide SSIM: mean over guides of ``SSIM(guide, frame at its index)`` at the working scale.

    SSIM of Wang et al. (IEEE TIP 2004) with the parameters of their reference
    implementation (``ssim.m``, 2009: Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03, the
    automatic ×f downsampling to ~256 lines), after a σ = 1 Gaussian on both images (module
    docstring); per RGB channel, averaged. 1 = identical.
    """

    name = "guide_ssim"
    version = "2"
    lower, upper, higher_is_better = -1.0, 1.0, True

    def comparison(self) -> GuideComparison:
        return PixelSSIM()
