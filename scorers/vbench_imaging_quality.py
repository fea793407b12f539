"""VBench imaging quality: MUSIQ (SPAQ checkpoint) on every frame, mean per video, on 0–100.

Follows ``vbench/imaging_quality.py`` of Vchitect/VBench at 45e79ec, default preprocessing mode
``'longer'`` (``vbench/launch/evaluate.py`` ``--imaging_quality_preprocessing_mode``):

- model: pyiqa's ``MUSIQ(pretrained_model_path=musiq_spaq_ckpt-358bb6af.pth)`` (one output, SPAQ's
  MOS scale), reimplemented with pyiqa's parameter names in :mod:`anibench.models.musiq` (pyiqa
  drags ``opencv-python`` and a dozen unused packages);
- frames: all of them, decoded as VBench's ``load_video`` (float32 0–255), each resized when its
  long side exceeds 512 to ``(int(s·h), int(s·w))``, ``s = 512 / max(h, w)`` (bilinear,
  ``antialias=False``), divided by 255 and fed one at a time (``images[i].unsqueeze(0)``);
  anibench batches frames of equal size — the network treats each independently;
- per video: the mean over frames of ``float(model(frame))`` — **0–100**, VBench's per-video scale;
- aggregate: the mean over videos divided by 100 (``aggregate = "mean_of_percent"``), the value
  VBench reports and its Quality score uses (0–1).

Deliberate differences: none in the computation. Frames come from anibench's decoder (PyAV)
rather than decord; the parity fixture checks that both decode the same pixels.
"""

from __future__ import annotations

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, Scorer, ScoreInput, ScoreResult

# Declared for the published SPAQ weights. With random weights (the tests) only the order-free and
# input checks hold by construction; the directions of blur/downscale/reencode are then arbitrary.
_EXPECTATIONS = {
    # SPAQ's MOS falls with defocus/motion blur, detail loss and compression artefacts.
    "blur": Expect.DOWN,
    "downscale": Expect.DOWN,
    "reencode": Expect.DOWN,
    # A per-frame score averaged over frames does not depend on their order.
    "shuffle": Expect.NONE,
    "reverse": Expect.NONE,
    # Frames only: the prompt, guides and mask are not read.
    "swap_prompt": Expect.NONE,
    "swap_guide": Expect.NONE,
    "invert_mask": Expect.NONE,
    # Freezing, holding, dropping, repeating or splicing frames changes which frames the mean
    # weighs: up or down with the clip's best and worst frames.
    "freeze": Expect.NO_CLAIM,
    "hold_twos": Expect.NO_CLAIM,
    "stutter": Expect.NO_CLAIM,
    "speed_up": Expect.NO_CLAIM,
    "low_fps": Expect.NO_CLAIM,
    "splice": Expect.NO_CLAIM,
    # Brightness, colour order, black bars, shifted borders and sub-pixel resampling: SPAQ's
    # scores move either way with exposure and content (a darkened frame can score higher).
    "flicker": Expect.NO_CLAIM,
    "channel_swap": Expect.NO_CLAIM,
    "letterbox": Expect.NO_CLAIM,
    "shake": Expect.NO_CLAIM,
    "jitter": Expect.NO_CLAIM,
}


class ImagingQuality(Scorer):
    """VBench imaging quality: mean over all frames of MUSIQ-SPAQ's score (0–100); suite value /100."""

    name = "vbench.imaging_quality"
    version = "1"
    families = ("musiq_spaq",)
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 100.0, True
    aggregate = "mean_of_percent"
    min_frames = 1  # every frame is scored on its own: one frame is enough
    expectations = _EXPECTATIONS
    # Shuffled frames land in other batches; fp32 results may differ in the last bits (0–100 scale).
    none_tolerance = 1e-3
    feature = FeatureSpec.of("vbench.musiq_frames")

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.feature]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.models.musiq import sequence_length, vbench_longer_side_size

        scores = sample.feature(self.feature)
        value = video_score(scores)
        height, width = sample.info.height, sample.info.width
        model_height, model_width = vbench_longer_side_size(height, width)
        return self.result(
            value,
            frames_scored=len(scores),
            frame_size_hw=[height, width],
            model_input_hw=[model_height, model_width],
            resized=(model_height, model_width) != (height, width),
            preprocessing="longer",
            patches_per_frame=sequence_length(model_height, model_width),
            min_frame_score=float(min(scores)),
            max_frame_score=float(max(scores)),
        )


def video_score(frame_scores) -> float:
    """VBench's per-video value: ``acc += float(score)`` over frames, then ``acc / len(images)``
    (vbench/imaging_quality.py:48-55), accumulated in Python floats in frame order."""
    total = 0.0
    for score in frame_scores:
        total += float(score)
    return total / len(frame_scores)
