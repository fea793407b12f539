"""VBench overall consistency: how well a clip matches its prompt, by ViCLIP's video-text cosine.

Follows VBench (Vchitect/VBench at 45e79ec) ``vbench/overall_consistency.py`` exactly:

- model: ViCLIP ViT-L/14 trained on InternVid-10M-FLT (``ViClip-InternVid-10M-FLT.pth``; weights
  entry ``viclip_internvid_10m_flt``), :mod:`anibench.models.viclip`;
- frames: 8, at the middles of 8 equal segments of the clip (``read_frames_decord_by_fps(...,
  num_frames=8, sample='middle')``, vbench/utils.py:68-106, 179-200); a clip shorter than 8 frames
  gives all its frames and repeats the last;
- preprocessing: ``clip_transform(224)`` (vbench/utils.py:33-39) on the decoded **uint8** frames:
  bicubic resize of the short side to 224 without antialias (clamped and rounded to uint8, as
  torchvision does for uint8 tensors), centre crop 224, CLIP mean/std; the 8 frames are one video input;
- text: the case's prompt as given (``f"{input_text}"``), tokenised to ViCLIP's 32 positions (longer
  prompts are cut, keeping the first 30 tokens; ``details`` record it);
- per-video value: ``cos(v, t)`` of the L2-normalised video and text embeddings
  (overall_consistency.py:22-36, 57-60). It lies in [-1, 1] and **can be negative**; VBench's
  normalisation uses Min 0 and Max 0.364 (scripts/constant.py), not clipped;
- aggregate: the plain mean over videos (``np.mean(sim)``, overall_consistency.py:63; with several GPUs
  the same mean, 72-74).

``details`` per clip: the 8 frame indices, the resized size and crop offset of ``clip_transform``, the
prompt's token count and whether it was cut.

Deliberate differences: an empty prompt is an input error (VBench would score the clip against the empty
token sequence); frames are decoded by anibench's reader (PyAV) instead of decord (identical RGB on the
parity clips); several clips go through the video tower in one batch (VBench: one at a time), which
changes values by float rounding only (~1e-6). A prompt containing the literal marker text
``<|startoftext|>``/``<|endoftext|>`` is tokenised as characters (see :mod:`anibench.models.viclip`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anibench.features import FeatureSpec
from anibench.sanity import no_claim_but
from anibench.scoring import Expect, FrameSampling, Input, Scorer, ScoreInput, ScoreResult


@dataclass(frozen=True)
class SegmentMiddles(FrameSampling):
    """``count`` frames at the middles of ``count`` equal segments, the last repeated for short clips
    (VBench's ``get_frame_indices(..., sample='middle')``)."""

    kind: str = "segment_middles"
    count: int | None = 8

    def indices(self, num_frames: int, fps: float) -> np.ndarray:
        from anibench.models.viclip import segment_middle_indices

        return np.asarray(segment_middle_indices(num_frames, self.count))

    def describe(self) -> str:
        return f"segment_middles count={self.count}"


# Declared for the published weights: what ViCLIP was trained for is ranking a clip's own caption above
# other captions, so another case's prompt lowers the cosine. With random weights (the tests) that
# direction is chance: the tests run the battery without swap_prompt and check the plumbing (every
# perturbation scores, unread inputs change nothing, the prompt reaches the text tower).
_EXPECTATIONS = no_claim_but({
    "swap_prompt": Expect.DOWN,
    "swap_guide": Expect.NONE,
    "invert_mask": Expect.NONE,
    # Only 8 frames at fixed segment middles are read, so most frame-order perturbations change which
    # pictures those are; how the cosine moves depends on the content and the prompt. Appearance changes
    # applied to every frame: the direction depends on the network and the prompt. No claim for either.
})


class OverallConsistency(Scorer):
    """VBench overall consistency (``vbench/overall_consistency.py``): ViCLIP cos(video, prompt) on 8 frames."""

    name = "vbench.overall_consistency"
    version = "1"
    requires = frozenset({Input.PROMPT})
    families = ("viclip_l14",)
    sampling = SegmentMiddles()
    lower, upper, higher_is_better = -1.0, 1.0, True
    aggregate = "mean"
    min_frames = 1  # VBench pads a short clip with its last frame
    expectations = _EXPECTATIONS
    video_feature = FeatureSpec.of("vbench.viclip_video")

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.video_feature, text_spec(sample.prompt)]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        import torch

        from anibench.models.viclip import (
            overall_consistency_geometry,
            overall_consistency_score,
            segment_middle_indices,
            tokenize,
        )

        video = sample.feature(self.video_feature)
        text = sample.feature(text_spec(sample.prompt))
        value = overall_consistency_score(torch.from_numpy(video), torch.from_numpy(text))
        geometry = overall_consistency_geometry(sample.info.height, sample.info.width)
        tokens = tokenize(sample.prompt)
        return self.result(
            value,
            frame_indices=segment_middle_indices(sample.num_frames),
            resized_to=list(geometry.resized),
            crop_offset=list(geometry.crop_offset),
            prompt_tokens=tokens.length,
            prompt_truncated=tokens.truncated,
        )


def text_spec(prompt: str) -> FeatureSpec:
    """The prompt's ViCLIP text embedding (the prompt is the feature's parameter)."""
    return FeatureSpec.of("vbench.viclip_text", prompt=prompt)
