"""The clips of the imaging-quality parity fixture (drawn and encoded by tests/parity/clips.py).

MUSIQ at full size costs about a second or more per frame on CPU, so the clips are short. They
cover VBench's 'longer' preprocessing (vbench/imaging_quality.py:27-31) both ways: a landscape and
a portrait clip whose long side exceeds 512 (resized to 512, the other side truncated:
576x320 -> 512x284 from 284.44, 240x530 -> 231x512 from 231.85) and a small clip that is not
resized (MUSIQ's own bicubic scales upsample it).
"""

from __future__ import annotations

from parity.clips import ClipSpec

IMAGING_QUALITY_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("iq_wide_576x320", 576, 320, 3, seed=31, image_width=64, image_height=64),
    ClipSpec("iq_tall_240x530", 240, 530, 2, seed=32, image_width=64, image_height=64),
    ClipSpec("iq_small_96x64", 96, 64, 3, seed=33, image_width=64, image_height=64),
)
