"""VBench-I2V background (``vbench2_beta_i2v/i2v_background.py``, Vchitect/VBench at 45e79ec) on DreamSim.

Follows VBench exactly: DreamSim's ensemble (DINO + CLIP + OpenCLIP ViT-B/16 with LoRA, as
``dreamsim(pretrained=True)`` builds it; :mod:`anibench.models.dreamsim`), every frame and the
conditioning image squashed to 224x224 (bicubic; :mod:`anibench.models.vbench_i2v_background`),
DreamSim's centred unit-norm embeddings, and per video
``0.4·max_t s(img, f_t) + 0.3·mean_t s(f_{t-1}, f_t) + 0.3·min_t s(f_{t-1}, f_t)`` with
``s = max(0, cos)`` (a similarity: 1 minus DreamSim's distance, clamped at 0). Scale [0, 1],
aggregate a plain mean over videos.

Deliberate differences: frames run through the model in batches (VBench: one per call;
values agree within float rounding), and the conditioning image is read as RGB (VBench opens
it without ``convert``; an RGBA file fails there). The image is the case's first guide as
given: VBench-I2V takes it from the crop folder its ``--ratio`` names, so each clip's
``details`` record the image's and the clip's sizes and ratios, the published crop the image
matches (1-1, 8-5, 7-4, 16-9) and whether the aspects agree; a mismatch is scored as VBench
scores it (both squashed), not refused.
"""

from __future__ import annotations

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, Input, Scorer, ScoreInput, ScoreResult

# With the published weights. With random weights (the parity and battery tests) the battery checks the
# plumbing: identical frames give cosine 1 whatever the network, anything else is the network's opinion.
_EXPECTATIONS = {
    "shuffle": Expect.DOWN,
    "splice": Expect.DOWN,
    "swap_guide": Expect.DOWN,  # another clip's image: the max term falls
    "swap_prompt": Expect.NONE,
    "invert_mask": Expect.NONE,
    # Freeze holds the middle frame: every pair becomes identical (mean and min up to 1) but the max
    # loses frame 0, usually the frame closest to the image (down); the sum depends on the content.
    "freeze": Expect.NO_CLAIM,
    # Holding on twos makes half the pairs identical (mean up) while the other half span two frames
    # (min down); frame 0 stays, so the max does not move.
    "hold_twos": Expect.NO_CLAIM,
    # Stutter duplicates frames (pairs up) but doubles the step after each (down); speed-up and dropped
    # frames double every step, which lowers it only where the content moves.
    "stutter": Expect.NO_CLAIM,
    "speed_up": Expect.NO_CLAIM,
    "low_fps": Expect.NO_CLAIM,
    # Reversal keeps the pairs and the set of frames: mean, min and max unchanged up to float rounding.
    "reverse": Expect.NO_CLAIM,
    # Changes to every frame (colour, blur, bars, resampling, codec) move the frames away from the
    # untouched image (max down) while pairs stay alike: the sum depends on the network and the content.
    "channel_swap": Expect.NO_CLAIM,
    "blur": Expect.NO_CLAIM,
    "letterbox": Expect.NO_CLAIM,
    "downscale": Expect.NO_CLAIM,
    "reencode": Expect.NO_CLAIM,
    # Shake, jitter and flicker change frames independently: usually down, but small for a robust network.
    "shake": Expect.NO_CLAIM,
    "jitter": Expect.NO_CLAIM,
    "flicker": Expect.NO_CLAIM,
}


class I2VBackground(Scorer):
    """VBench-I2V background: DreamSim similarity of every frame to the conditioning image and to the previous frame.

    ``0.4·max_t s(img, f_t) + 0.3·mean_t s(f_{t-1}, f_t) + 0.3·min_t s(f_{t-1}, f_t)``; the max
    includes frame 0, so a clip that copies its input image saturates it.
    """

    name = "vbench.i2v_background"
    version = "1"
    requires = frozenset({Input.GUIDES})
    families = ("dreamsim_ensemble",)
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    expectations = _EXPECTATIONS
    frames_feature = FeatureSpec.of("vbench.dreamsim_frames")

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.frames_feature, image_spec(sample)]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        import torch

        from anibench.features.backbones import conditioning_image, conditioning_image_record
        from anibench.models.vbench_i2v_background import SIZE, i2v_background_score

        frames = sample.feature(self.frames_feature)
        image = sample.feature(image_spec(sample))
        value = i2v_background_score(torch.from_numpy(image[0]), torch.from_numpy(frames))
        record = conditioning_image_record(sample, conditioning_image(sample))
        return self.result(value, frames=int(frames.shape[0]), **record,
                           resize=f"both squashed to {SIZE}x{SIZE} (bicubic; frames antialiased float, image by Pillow)")


def image_spec(sample: ScoreInput) -> FeatureSpec:
    """The conditioning image's DreamSim embedding, keyed by the image's content."""
    import hashlib

    from anibench.features.backbones import conditioning_image

    image = conditioning_image(sample)
    return FeatureSpec.of("vbench.dreamsim_image", image=hashlib.sha256(image.tobytes()).hexdigest() + str(image.shape))
