"""Clips, reference images, prompts and recogniser crops for the AnimeReward BLIP parity fixture.

Uses the deterministic clip writer of :mod:`parity.clips` (H.264 via PyAV, RGB PNG conditioning images).
The set covers AnimeReward's 24-frame sampling (``arange(0, M, M/24)``, ``M = min(T, 144)``): a clip of
fewer than 24 frames (every frame), one just over 24 (a fractional stride), one over 144 frames (only the
first 144 are sampled); the 224×224 squash of small, portrait and larger-than-224 frames; reference images
with another aspect ratio than their clip; a hard cut. Prompts: a short one, one over 30 BERT tokens (cut),
one with case, accents, punctuation and extra whitespace, and one with the literal special tokens.
"""

from __future__ import annotations

import numpy as np

from parity.clips import ClipSpec

BLIP_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("wide_96x64_30f", 96, 64, 30, seed=31, image_width=112, image_height=112),
    ClipSpec("portrait_64x96_12f_cut", 64, 96, 12, seed=32, scene_cut_at=6, image_width=90, image_height=120),
    ClipSpec("long_80x48_150f", 80, 48, 150, seed=33, image_width=80, image_height=48),
    ClipSpec("big_320x240_9f", 320, 240, 9, seed=34, image_width=512, image_height=288),
)

PROMPTS = {
    "wide_96x64_30f": "a girl with red hair runs in the forest at night",
    "portrait_64x96_12f_cut": (
        "In this video, a group of samurai are depicted in a forest at night, engaged in a confrontation. "
        "The samurai are dressed in traditional armor and carry swords, indicating a historical setting."
    ),
    "long_80x48_150f": "  The CAT   sits;\tthe dog jumps -- Café ÉCLAIR, 3 trees & 2 clouds!  ",
    "big_320x240_9f": "[CLS] a boy waves [SEP] his arms [ENC] [DEC] happy [MASK] sky",
}

# Prompts for the tokenizer comparison (ids of the published init_tokenizer vs anibench's).
TOKENIZER_PROMPTS = tuple(PROMPTS.values()) + (
    "",
    "x",
    "word " * 40,
    "Ünïcödé résumé naïve — “quotes” ‘single’ … ellipsis",
    "The protagonist remain stationary in the video with no apparent movement.",
    "日本 アニメ 中文 한국어 emoji 🙂 mixed",
)

CROP_COUNT = 5  # recogniser crops per size


def recogniser_crops() -> np.ndarray:
    """(5, 3, 224, 224) float32 normalised crops: fixed random pixels on the CLIP-normalised scale."""
    rng = np.random.default_rng(4101)
    return np.asarray(rng.standard_normal((CROP_COUNT, 3, 224, 224)) * 0.8, dtype=np.float32)
