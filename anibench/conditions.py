"""Guidance conditions: which guide frames (and masks) a generator receives.

A :class:`Condition` names guide positions in [0, 1]. :func:`resolve` turns a condition
and a case into concrete :class:`Guidance`: guide images at frame indices, the motion
region, and the clip shape. A guide comes from the case's own image at that position
when it has one, otherwise from the case's ground-truth video at the same frame index.

Positions map to frame indices as AniSora V3 does (``anisoraV3/wan/image2video_any.py``):
``index = round(int((F - 1) * position) / 8) * 8`` with Python's half-to-even ``round``,
which is exact for the 8k+1 frame counts Wan and CogVideoX produce (49, 81, 97); anibench
clamps it to the last frame for other counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import cv2
import numpy as np

from anibench.errors import AnibenchError, InputError, NotApplicable
from anibench.images import fit_image, load_image
from anibench.suite import Case, GenerationDefaults, MaskSemantics
from anibench.video import Video, read_mask_video

FRAME_SNAP = 8


def position_to_frame_index(position: float, num_frames: int, snap: int = FRAME_SNAP) -> int:
    """Frame index of a guide at ``position`` in a clip of ``num_frames`` (AniSora V3 rule)."""
    if num_frames < 1:
        raise ValueError("num_frames must be positive")
    if not 0.0 <= position <= 1.0:
        raise ValueError(f"position {position} outside [0, 1]")
    raw = int((num_frames - 1) * position)
    index = round(raw / snap) * snap if snap > 1 else raw
    return min(index, num_frames - 1)


@dataclass(frozen=True)
class Condition:
    """Which guides a generator gets.

    ``positions=None`` means the case's own guide positions; ``use_mask=None`` means the
    case's mask when it has one.
    """

    name: str
    positions: tuple[float, ...] | None
    use_mask: bool | None = False
    description: str = ""


BUILTIN_CONDITIONS: Mapping[str, Condition] = {
    c.name: c
    for c in (
        Condition("i2v", (0.0,), description="image-to-video: the first frame"),
        Condition("last", (1.0,), description="the last frame only"),
        Condition("first-last", (0.0, 1.0), description="first and last frame (interpolation)"),
        Condition("first-mid-last", (0.0, 0.5, 1.0), description="first, middle and last frame"),
        Condition("keyframes", None, description="every guide the case defines, at its own position"),
        Condition("motion-mask", (0.0,), use_mask=True, description="first frame plus a motion-region mask"),
        Condition("own", None, use_mask=None, description="every guide and the mask the case defines (scoring given clips)"),
    )
}


def get_condition(spec: str) -> Condition:
    """A built-in condition by name, or ``keyframes@p1,p2,...`` for keyframes at given positions."""
    if spec in BUILTIN_CONDITIONS:
        return BUILTIN_CONDITIONS[spec]
    if spec.startswith("keyframes@"):
        try:
            positions = tuple(sorted(float(p) for p in spec.split("@", 1)[1].split(",")))
        except ValueError:
            raise InputError(f"condition {spec!r}: positions must be numbers, e.g. keyframes@0,0.5,1") from None
        if not positions or any(not 0.0 <= p <= 1.0 for p in positions):
            raise InputError(f"condition {spec!r}: positions must lie in [0, 1]")
        return Condition(spec, positions, description="keyframes at " + ", ".join(f"{p:g}" for p in positions))
    known = ", ".join(BUILTIN_CONDITIONS)
    raise InputError(f"unknown condition {spec!r}; known: {known}, or keyframes@p1,p2,...")


@dataclass(frozen=True)
class GuideFrame:
    """A guide image placed at a frame index; ``source`` says where it came from."""

    position: float
    frame_index: int
    image: np.ndarray = field(repr=False)
    source: str = ""


@dataclass(frozen=True)
class Guidance:
    """A condition resolved for one case: what a generator is given and a scorer checks against.

    ``motion_region`` is (T, H, W) bool, True where the clip may move, or None.
    """

    condition: str
    guides: tuple[GuideFrame, ...]
    num_frames: int
    fps: float
    height: int
    width: int
    motion_region: np.ndarray | None = field(default=None, repr=False)


def resolve(
    case: Case,
    condition: Condition,
    *,
    ground_truth: Video | None = None,
    defaults: GenerationDefaults = GenerationDefaults(),
) -> Guidance:
    """Resolve ``condition`` for ``case``; raises :class:`NotApplicable` when the case lacks what it needs."""
    try:
        return _resolve(case, condition, ground_truth, defaults)
    except AnibenchError as exc:
        raise exc.with_context(case_id=case.id)


def _resolve(case: Case, condition: Condition, gt: Video | None, defaults: GenerationDefaults) -> Guidance:
    positions = condition.positions if condition.positions is not None else tuple(g.position for g in case.guides)
    use_mask = condition.use_mask if condition.use_mask is not None else case.mask is not None
    if not positions and not use_mask:
        raise NotApplicable(f"condition {condition.name!r} needs guide frames and the case defines none")
    if gt is not None:
        num_frames, fps, height, width = gt.num_frames, gt.fps, gt.height, gt.width
    elif case.guides:
        height, width = load_image(case.guides[0].path).shape[:2]
        num_frames, fps = defaults.num_frames, defaults.fps
    else:
        raise NotApplicable(f"condition {condition.name!r}: the case has neither guide images nor a video")

    if condition.positions is None:
        wanted = [(g.position, _guide_index(g, num_frames, gt), g) for g in case.guides]
    else:
        by_index = {_guide_index(g, num_frames, gt): g for g in case.guides}
        indices = [position_to_frame_index(p, num_frames) for p in positions]
        wanted = [(p, i, by_index.get(i)) for p, i in zip(positions, indices)]
    frames: list[GuideFrame] = []
    for position, index, guide in wanted:
        if guide is not None:
            image = fit_image(load_image(guide.path), height, width, guide.fit, path=guide.path)
            frames.append(GuideFrame(position, index, image, str(guide.path)))
        elif gt is not None:
            frames.append(GuideFrame(position, index, gt.frames[index], f"ground-truth frame {index}"))
        else:
            raise NotApplicable(
                f"condition {condition.name!r}: no guide image at position {position:g} (frame {index}) "
                "and no ground-truth video to take it from"
            )

    region = None
    if use_mask:
        if case.mask is None:
            raise NotApplicable(f"condition {condition.name!r} needs a motion mask and the case has none")
        region = motion_region(case.mask, case.mask_semantics, num_frames, height, width)
    return Guidance(condition.name, tuple(frames), num_frames, fps, height, width, region)


def _guide_index(guide, num_frames: int, gt: Video | None) -> int:
    """A guide's frame: its pinned index in the case's own video, else from its position."""
    if guide.frame_index is not None and gt is not None and 0 <= guide.frame_index < num_frames:
        return guide.frame_index
    return position_to_frame_index(guide.position, num_frames)


def motion_region(path, semantics: MaskSemantics, num_frames: int, height: int, width: int) -> np.ndarray:
    """Read a mask video as a (T, H, W) motion region, resampled to the clip (nearest in time and space)."""
    mask = read_mask_video(path)
    if semantics is MaskSemantics.KEEP:
        mask = ~mask
    if mask.shape[1:] != (height, width):
        src_aspect, dst_aspect = mask.shape[2] / mask.shape[1], width / height
        if abs(src_aspect - dst_aspect) > 0.02 * dst_aspect:
            raise InputError(
                f"mask is {mask.shape[2]}x{mask.shape[1]}, a different aspect ratio from the {width}x{height} video",
                path=path,
            )
    return resample_region(mask, num_frames, height, width)


def resample_region(region: np.ndarray, num_frames: int, height: int, width: int) -> np.ndarray:
    """A (T, H, W) bool region at another length and size (nearest neighbour in time and space)."""
    if region.shape[0] != num_frames:
        region = region[np.rint(np.linspace(0, region.shape[0] - 1, num_frames)).astype(int)]
    if region.shape[1:] != (height, width):
        region = np.stack(
            [cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0 for m in region]
        )
    return region


def fit_guidance(guidance: Guidance, num_frames: int, height: int, width: int) -> Guidance:
    """``guidance`` re-targeted to a clip of another length or size (a model's native output).

    Guide frame indices follow the positions (same rule as generation); guide images are
    centre-cropped and resized, the motion region resampled, when the size differs.
    """
    if (num_frames, height, width) == (guidance.num_frames, guidance.height, guidance.width):
        return guidance
    guides = tuple(
        GuideFrame(
            g.position,
            position_to_frame_index(g.position, num_frames),
            fit_image(g.image, height, width, "center-crop"),
            g.source,
        )
        for g in guidance.guides
    )
    region = guidance.motion_region
    if region is not None:
        region = resample_region(region, num_frames, height, width)
    return Guidance(guidance.condition, guides, num_frames, guidance.fps, height, width, region)
