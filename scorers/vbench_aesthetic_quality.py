"""VBench's aesthetic quality: CLIP ViT-L/14 + the LAION aesthetic predictor, every frame, /10, mean.

Follows Vchitect/VBench at 45e79ec, ``vbench/aesthetic_quality.py`` (VBench-I2V runs the same module:
``vbench2_beta_i2v`` routes only i2v_subject, i2v_background and camera_motion to its own code):
every frame through ``clip_transform(224)`` (bicubic short side 224, no antialias, CenterCrop 224, CLIP
mean/std), OpenAI CLIP ViT-L/14 ``encode_image``, float32, L2-normalised, the LAION ``Linear(768, 1)``
head; per video the mean over frames of score / 10; the suite value is the plain mean over videos.
Preprocessing and formula with line references: :mod:`anibench.models.aesthetic`; the family and
feature: :mod:`anibench.features.aesthetic`.

Scale: VBench's, about 0-1 per video (LAION scores of real images lie in about 1-10; the head is a
linear layer, so nothing bounds it). VBench's normalisation uses Min 0, Max 1 (scripts/constant.py).

Deliberate differences, none of which changes a value beyond float rounding (the parity fixture
checks within 1e-4): frames go through the model in batches that span clips (VBench: 32 frames of
one video at a time); the head is read with ``torch.load(weights_only=True)`` and stored as
safetensors; a one-frame clip is scored (VBench's ``load_video`` also scores single images) rather
than refused.
"""

from __future__ import annotations

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, Scorer, ScoreInput, ScoreResult

# With the published weights. With random weights (the tests) only the order-invariance below
# (shuffle, reverse) and the inputs it does not read are checkable: they follow from the formula.
_AESTHETIC_EXPECTATIONS = {
    # A mean over frames ignores their order (up to float rounding of the batches).
    "shuffle": Expect.NONE,
    "reverse": Expect.NONE,
    "swap_prompt": Expect.NONE,
    "swap_guide": Expect.NONE,
    "invert_mask": Expect.NONE,
    # Blurring every frame removes the detail and sharpness that the LAION ratings reward (the
    # predictor is a linear probe on CLIP embeddings, which encode "blurry"); not checkable without
    # the published weights.
    "blur": Expect.DOWN,
    # Repeating, dropping or inserting frames changes which frames are averaged: up or down with
    # the content of the frames gained and lost.
    "freeze": Expect.NO_CLAIM,
    "hold_twos": Expect.NO_CLAIM,
    "stutter": Expect.NO_CLAIM,
    "speed_up": Expect.NO_CLAIM,
    "low_fps": Expect.NO_CLAIM,
    "splice": Expect.NO_CLAIM,
    # Colour, bars, mild resampling, codec loss, shifts and brightness changes: the aesthetic
    # judgement of such changes depends on the picture (bars can frame it, a colour swap can suit it).
    "channel_swap": Expect.NO_CLAIM,
    "letterbox": Expect.NO_CLAIM,
    "downscale": Expect.NO_CLAIM,
    "reencode": Expect.NO_CLAIM,
    "shake": Expect.NO_CLAIM,
    "jitter": Expect.NO_CLAIM,
    "flicker": Expect.NO_CLAIM,
}


class AestheticQuality(Scorer):
    """VBench aesthetic quality (``vbench/aesthetic_quality.py``): mean over frames of LAION(CLIP ViT-L/14) / 10."""

    name = "vbench.aesthetic_quality"
    version = "1"
    families = ("clip_vit_l14_aesthetic",)
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    min_frames = 1
    # Reordered frames land in other batches: the mean may move by float rounding only.
    none_tolerance = 1e-5
    expectations = _AESTHETIC_EXPECTATIONS
    feature = FeatureSpec.of("vbench.laion_aesthetic_frames")

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.feature]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.models.aesthetic import SCORE_SCALE, aesthetic_quality_score

        scores = sample.feature(self.feature)
        value = aesthetic_quality_score(scores)
        return self.result(
            value,
            frames=int(scores.shape[0]),
            laion_min=float(scores.min()) / SCORE_SCALE,
            laion_max=float(scores.max()) / SCORE_SCALE,
            transform="clip_transform(224): bicubic short side 224, no antialias, CenterCrop 224",
            frame_height=sample.info.height if sample.info else None,
            frame_width=sample.info.width if sample.info else None,
        )
