"""What every AnimeReward head reads: the 24 sampled frames, the 224-px squash, the prompt-cut rule.

Follows the published AnimeReward script, bilibili/Index-anisora at 171fe63, ``reward/reward_infer.py``
(anisora.md §2.2 and the quirks checklist §2.5), once for all six heads:

- frames (lines 165-171): ``T`` is the container's declared frame count; when ``T > 24`` the frames
  ``arange(0, M, M / 24).astype(int)`` with ``M = min(T, 144)`` — 24 frames from the **first 144 only** —,
  otherwise every frame. anibench's :class:`~anibench.frames.ClipInfo` carries the declared count, so
  :data:`SAMPLING` reproduces this; the same 24 frames feed every head and are decoded once per clip.
- pixels (``load_key_image``, lines 136-148, used for the frames and for the reference image): a PIL
  ``Resize((224, 224), BICUBIC)`` — no crop, so the aspect ratio is squashed —, ``ToTensor`` (÷255) and
  the CLIP mean/std. torchvision's ``Resize`` on a PIL image is PIL's own bicubic resize, which
  :func:`squash_to_clip_tensor` calls directly.
- the motion head's 8 frames (line 191): ``torch.linspace(0, n - 1, steps=8).long()`` positions into the
  sampled frames (:func:`motion_positions`).
- prompts: the BLIP text encoder cuts prompts at 30 tokens (``max_length=30``); the heads that read a
  prompt take a ``truncate_prompt`` parameter (default True = the published cut, recorded per clip).
- clips shorter than :data:`MIN_FRAMES` are refused by every head: the motion head's 8 positions would
  repeat frames and the temporal adapter would see a stutter that is not in the clip.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from anibench.features.sampling import FrameSampling

REFERENCE = "bilibili/Index-anisora@171fe63 reward/reward_infer.py"
REFERENCE_COMMIT = "171fe63"

NUM_FRAMES = 24
WITHIN_FIRST = 144
MIN_FRAMES = 8
MOTION_FRAMES = 8
IMAGE_SIZE = 224
PROMPT_TOKENS = 30  # BLIP heads' tokenizer max_length in the published code

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

SAMPLING = FrameSampling(kind="uniform", count=NUM_FRAMES, within_first=WITHIN_FIRST)


def squash_to_clip_tensor(frames: np.ndarray | Sequence[np.ndarray], size: int = IMAGE_SIZE) -> np.ndarray:
    """RGB uint8 frames (N,H,W,3) or one (H,W,3) image → float32 (N,3,size,size), squashed and CLIP-normalised."""
    from PIL import Image

    batch = np.asarray(frames)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 frames (N,H,W,3), got {batch.shape} {batch.dtype}")
    mean = np.asarray(CLIP_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(CLIP_STD, dtype=np.float32)[:, None, None]
    out = np.empty((len(batch), 3, size, size), dtype=np.float32)
    for i, frame in enumerate(batch):
        resized = np.asarray(Image.fromarray(frame).resize((size, size), Image.BICUBIC), dtype=np.float32)
        out[i] = (resized.transpose(2, 0, 1) / np.float32(255.0) - mean) / std
    return out


def motion_positions(num_sampled: int, count: int = MOTION_FRAMES) -> list[int]:
    """``torch.linspace(0, n-1, steps=count).long()`` (float32 linspace, truncated), as the published script."""
    import torch

    return torch.linspace(0, num_sampled - 1, steps=count).long().tolist()


def clamp_unit(value: float) -> tuple[float, float]:
    """``(value clamped to [0, 1], value)``; NaN stays NaN (an error for the caller to report)."""
    if math.isnan(value):
        return value, value
    return min(1.0, max(0.0, value)), value


SQUASH_MEMO = "anime_reward.squash"


def squashed_frame(clip, t: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """Frame ``t`` of a clip (a :class:`~anibench.features.stream.ClipContext`) as :func:`squash_to_clip_tensor`
    makes it, (3, size, size) float32 — computed once per clip and frame for every head that reads it."""
    return clip.memo((SQUASH_MEMO, size, t), (t,), lambda: squash_to_clip_tensor(clip.frame(t), size)[0])
