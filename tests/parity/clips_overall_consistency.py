"""Clips and prompts for the overall-consistency parity fixture (VBench's ViCLIP vs anibench).

The four shared parity clips (:data:`parity.clips.PARITY_CLIPS`: 96x64 and 64x96 upsampled, 80x80
square, 320x240 downsampled; 9-17 frames) plus two that reach the other branches of VBench's
sampling and resize:

- ``short_5f_112x80``: 5 frames, fewer than the 8 ViCLIP reads, so VBench's ``get_frame_indices``
  returns every frame and repeats the last (indices 0, 1, 2, 3, 4, 4, 4, 4);
- ``tall_224x304``: short side already 224, so ``Resize(224)`` leaves the frames as they are and only
  the centre crop (top 40) applies.

Each clip has a prompt (:data:`PROMPTS`) chosen to exercise the tokenizer: one longer than ViCLIP's 32
positions (cut, last token replaced by end-of-text), HTML entities, typographic quotes, accents and
digits, redundant whitespace, and one prompt shared by two clips (VBench caches text features by
prompt). :data:`TOKENIZER_PROMPTS` adds strings only the tokenizer sees.
"""

from __future__ import annotations

from parity.clips import PARITY_CLIPS, ClipSpec

OVERALL_CLIPS: tuple[ClipSpec, ...] = PARITY_CLIPS + (
    ClipSpec("short_5f_112x80", 112, 80, 5, seed=31, image_width=112, image_height=80),
    ClipSpec("tall_224x304", 224, 304, 9, seed=32, image_width=224, image_height=304),
)

SHARED_PROMPT = "a red disc drifts across a green hill under a pale sky"
PROMPTS: dict[str, str] = {
    "landscape_96x64": SHARED_PROMPT,
    "portrait_64x96_cut": (
        "An anime girl with long silver hair and a blue school uniform runs along a rainy street at night, "
        "neon signs reflecting in the puddles while the camera slowly pans left and the city lights flicker"
    ),
    "square_80x80": "Café scene: a cat &amp; a dog \u2014 both \u201csleeping\u201d \u2014 2 cups of tea, ¡olé!",
    "downscale_320x240": SHARED_PROMPT,
    "short_5f_112x80": "   A  boy\tjumps\n over   a fence.  ",
    "tall_224x304": "It's a slow-motion shot of waves crashing on rocks, 4K, cinematic lighting",
}

TOKENIZER_PROMPTS: tuple[str, ...] = (
    "a cat",
    "一只猫在草地上奔跑",
    "emoji \U0001F431 and symbols ™ © ½",
    "&lt;b&gt;bold&lt;/b&gt; &amp;amp; double-escaped",
    "UPPER lower MiXeD 123 4567 3.14",
    "word " * 40,
)
