"""VBench's consistency dimensions on neural backbones: subject, background, I2V subject.

Each follows VBench (Vchitect/VBench at 45e79ec) exactly — model, preprocessing, frames,
formula, per-video value — with the published checkpoints converted into maintained
implementations (transformers); see :mod:`anibench.models.vbench_consistency` for the
preprocessing and formulas with their file and line references. The DINO features of
subject consistency and I2V subject come from one loaded DINO ViT-B/16 and one decoding
pass per clip (:mod:`anibench.features.backbones`).

Aggregation: VBench's single-process aggregate of subject and background consistency is
frame-weighted (Σ per-frame terms / Σ terms over all videos, so long clips weigh more);
each clip's ``details`` carry ``frame_sum`` and ``frame_count`` for it, and these
scorers declare ``aggregate = "frame_weighted"``. I2V subject is a plain mean over videos.
"""

from __future__ import annotations

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, Input, Scorer, ScoreInput, ScoreResult

# With the published weights. (With random weights, as in the parity tests, the battery checks the
# plumbing: the directions below come from identical frames giving cosine 1, not from what DINO or CLIP see.)
_CONSISTENCY_EXPECTATIONS = {
    "freeze": Expect.UP,
    "hold_twos": Expect.UP,
    "shuffle": Expect.DOWN,
    "splice": Expect.DOWN,
    "swap_prompt": Expect.NONE,
    "invert_mask": Expect.NONE,
    # Stutter duplicates a quarter of the frames (identical pairs, up) but doubles the step after each
    # (down); speed-up and dropped frames double every step, which lowers it only where the content moves.
    "stutter": Expect.NO_CLAIM,
    "speed_up": Expect.NO_CLAIM,
    "low_fps": Expect.NO_CLAIM,
    # Reversal moves the anchor to the old last frame: up or down with where the clip starts and ends.
    "reverse": Expect.NO_CLAIM,
    # Changes applied to every frame alike (colour, blur, bars, resampling, codec) move all features
    # together; whether their similarity rises or falls depends on the backbone and the content.
    "channel_swap": Expect.NO_CLAIM,
    "blur": Expect.NO_CLAIM,
    "letterbox": Expect.NO_CLAIM,
    "downscale": Expect.NO_CLAIM,
    "reencode": Expect.NO_CLAIM,
    # Shake, jitter and flicker change frames independently: usually down, but small for a robust backbone.
    "shake": Expect.NO_CLAIM,
    "jitter": Expect.NO_CLAIM,
    "flicker": Expect.NO_CLAIM,
}


class _Consistency(Scorer):
    """Mean over frames i ≥ 1 of ½[max(0, cos(f_{i−1}, f_i)) + max(0, cos(f_0, f_i))] on L2-normalised features."""

    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "frame_weighted"
    expectations = {**_CONSISTENCY_EXPECTATIONS, "swap_guide": Expect.NONE}
    feature: FeatureSpec

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.feature]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        import torch

        from anibench.models.vbench_consistency import consistency_score

        rows = sample.feature(self.feature)
        score = consistency_score(torch.from_numpy(rows), self.name)
        return self.result(score.value, frame_sum=score.frame_sum, frame_count=score.frame_count)


class SubjectConsistency(_Consistency):
    """VBench subject consistency (``vbench/subject_consistency.py``): DINO ViT-B/16 CLS features of
    every frame, short side resized to 224 (bilinear, no antialias, no crop), ImageNet normalisation."""

    name = "vbench.subject_consistency"
    version = "1"
    families = ("dino_vitb16",)
    feature = FeatureSpec.of("vbench.dino_frames", transform="subject")


class BackgroundConsistency(_Consistency):
    """VBench background consistency (``vbench/background_consistency.py``): CLIP ViT-B/32 image
    embeddings of every frame, bicubic short side 224 (no antialias), centre crop 224, CLIP normalisation."""

    name = "vbench.background_consistency"
    version = "1"
    families = ("clip_vit_b32",)
    feature = FeatureSpec.of("vbench.clip_frames")


class I2VSubject(Scorer):
    """VBench-I2V subject (``vbench2_beta_i2v/i2v_subject.py``):
    ``0.4·max_t s(img, f_t) + 0.3·mean_t s(f_{t−1}, f_t) + 0.3·min_t s(f_{t−1}, f_t)``.

    ``s`` is the cosine of L2-normalised DINO ViT-B/16 features clamped at 0; frames are
    resized (bicubic, antialiased as torchvision ≥ 0.17 does by default) to a 256 short side
    and centre-cropped to 224; the conditioning image (the case's first guide, from its
    file) goes through Pillow's bicubic resize and crop, as VBench opens it with PIL. The
    max includes frame 0, so a clip that copies its input image saturates it.
    """

    name = "vbench.i2v_subject"
    version = "2"  # 2: details record the conditioning image and its aspect ratio against the clip's
    requires = frozenset({Input.GUIDES})
    families = ("dino_vitb16",)
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    expectations = {**_CONSISTENCY_EXPECTATIONS, "swap_guide": Expect.DOWN}
    frames_feature = FeatureSpec.of("vbench.dino_frames", transform="i2v", antialias=True)

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.frames_feature, image_spec(sample)]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        import torch

        from anibench.models.vbench_consistency import i2v_subject_score

        from anibench.features.backbones import conditioning_image, conditioning_image_record

        frames = sample.feature(self.frames_feature)
        image = sample.feature(image_spec(sample))
        value = i2v_subject_score(torch.from_numpy(image[0]), torch.from_numpy(frames))
        return self.result(value, **conditioning_image_record(sample, conditioning_image(sample)))


def image_spec(sample: ScoreInput) -> FeatureSpec:
    """The conditioning image's DINO feature, keyed by the image's content."""
    import hashlib

    from anibench.features.backbones import conditioning_image

    image = conditioning_image(sample)
    return FeatureSpec.of("vbench.dino_image", image=hashlib.sha256(image.tobytes()).hexdigest() + str(image.shape))
