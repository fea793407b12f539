"""Clips for the dynamic-degree (RAFT) parity fixture: the recipe of tests/parity/clips.py at RAFT's sizes.

RAFT needs frames of at least 128 px a side once padded to multiples of 8 (the parity clips of
clips.py are 64-96 px), so these clips reuse clips.py's scenes and deterministic H.264 writer at
larger sizes. Together they cover: frame rates giving strides 1, 2 and 3 (8, 16 and 24 fps; 12 fps
gives round(1.5) = 2), sizes that need padding on one or both sides (odd padding splits with the
extra pixel at the bottom/right), portrait and landscape, a scene cut, and a still clip (frame 0
repeated: no motion at all).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from parity.clips import ClipSpec, file_sha256, render_clip_frames, write_h264

RAFT_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("pan_160x128", 160, 128, 9, seed=31),
    ClipSpec("padded_150x130_24fps", 150, 130, 13, seed=32, fps=24),
    ClipSpec("wide_200x136_8fps", 200, 136, 6, seed=33, fps=8),
    ClipSpec("portrait_130x170_cut_12fps", 130, 170, 10, seed=34, scene_cut_at=5, fps=12),
)
STILL_CLIP = ClipSpec("still_144x144", 144, 144, 7, seed=35)
# Too small for RAFT (padded 96x64: the coarsest correlation level is one cell): anibench refuses it.
TOO_SMALL_CLIP = ClipSpec("small_96x64", 96, 64, 5, seed=36)


def clip_frames(spec: ClipSpec) -> np.ndarray:
    """The clip's source frames; the still clip repeats its first frame."""
    frames = render_clip_frames(spec)
    if spec.name.startswith("still_"):
        frames = np.repeat(frames[:1], spec.frames, axis=0)
    return frames


def write_raft_clips(folder: str | Path, specs: tuple[ClipSpec, ...] = RAFT_CLIPS + (STILL_CLIP,)) -> dict[str, dict]:
    """Write ``<name>.mp4`` for each spec into ``folder``: ``{name: {"spec", "video", "video_file_sha256"}}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for spec in specs:
        video = write_h264(clip_frames(spec), spec.fps, folder / f"{spec.name}.mp4")
        written[spec.name] = {"spec": asdict(spec), "video": str(video), "video_file_sha256": file_sha256(video)}
    return written
