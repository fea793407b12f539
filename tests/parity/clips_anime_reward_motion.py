"""The clips of the AnimeReward visual-motion parity fixture (rendered and encoded by :mod:`parity.clips`).

- ``long_160f_96x64``: 160 frames (> 144), with a scene cut at frame 150. The published sampling reads 24 frames
  of the first 144 only (``arange(0, 144, 6)``), so the cut is never seen; reading the whole clip would.
- ``cut_40f_128x72``: 40 frames (24 < T <= 144: ``arange(0, 40, 40/24)``, uneven steps), a cut at frame 20.
- ``short_12f_80x112``: 12 frames (8..24: every frame is sampled, the 8 motion frames are
  ``linspace(0, 11, 8).long()`` = 0, 1, 3, 4, 6, 7, 9, 11), portrait (the 224 squash stretches it).
"""

from __future__ import annotations

from parity.clips import ClipSpec

MOTION_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("long_160f_96x64", 96, 64, 160, seed=31, scene_cut_at=150, image_width=96, image_height=64),
    ClipSpec("cut_40f_128x72", 128, 72, 40, seed=32, scene_cut_at=20, image_width=128, image_height=72),
    ClipSpec("short_12f_80x112", 80, 112, 12, seed=33, image_width=80, image_height=112),
)
