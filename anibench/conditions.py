"""Guidance conditions: which guide frames (and masks) a generator receives.

A :class:`Condition` names guide positions in [0, 1]. :func:`resolve` turns a condition
and a case into concrete :class:`Guidance`: guide images at frame indices, the motion
region, and the clip shape. A guide comes from the case's own image at that position
when it has one, otherwise from the case's ground-truth video at the nearest frame.

Where a guide lands in a clip is a :class:`GuidePlacement` rule (:func:`place_guides`):

* ``nearest`` for every clip anibench did not generate (scored as given) and for guides
  taken from a ground-truth video: the frame nearest to ``(F - 1) * position``, halves
  rounded up, so position 1 is always the last frame, whatever the length;
* the generator's own rule for a clip anibench generated: ``anisora-v3`` for
  AniSora-compatible generators (a multiple of 8, as ``anisoraV3/wan/image2video_any.py``
  conditions), ``nearest`` otherwise. The engine records the frames it gave the
  generator and checks the guides there (:func:`fit_guidance`).
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping, Sequence

import cv2
import numpy as np

from anibench.errors import AnibenchError, InputError, NotApplicable
from anibench.images import fit_image, load_image
from anibench.suite import Case, GenerationDefaults, MaskSemantics
from anibench.video import Video, read_mask_video

ANISORA_FRAME_SNAP = 8
# A product (F - 1) * position this close to a half counts as the half: positions are
# written as decimals (0.3, 0.7) whose binary floats fall a hair either side of it.
_HALF_TOLERANCE = 1e-9


class GuidePlacement(str, Enum):
    """A rule placing a guide at ``position`` p in [0, 1] on a frame of a clip of F frames.

    ``nearest``: ``floor((F - 1) * p + 1/2)``, the nearest frame with halves rounded up
    (towards the later frame: p = 0.5 of a 60-frame clip is frame 30). Position 0 is frame
    0 and position 1 frame F - 1 for every F. The rule for given clips (scored as they are)
    and for guides taken from a ground-truth video.

    ``anisora-v3``: AniSora V3's snapping to a multiple of 8,
    ``round(int((F - 1) * p) / 8) * 8`` with Python's half-to-even ``round``
    (bilibili/Index-anisora @ 171fe63, ``anisoraV3/wan/image2video_any.py``; 20/8 = 2.5 → 2 →
    frame 16), clamped to the last frame. It equals ``nearest`` at 0, 0.5 and 1 on the 8k+1
    lengths Wan and CogVideoX produce (49, 81, 97) and differs elsewhere (0.33 of 81 frames:
    24, not 26; 1 of 60 frames: 56, not 59): the rule of AniSora-compatible generators only.
    """

    NEAREST = "nearest"
    ANISORA_V3 = "anisora-v3"


def place_guides(
    positions: Sequence[float], num_frames: int, rule: GuidePlacement | str = GuidePlacement.NEAREST
) -> tuple[int, ...]:
    """The frame index of each guide position in a clip of ``num_frames`` under ``rule``."""
    rule = GuidePlacement(rule)
    if num_frames < 1:
        raise ValueError("num_frames must be positive")
    return tuple(_place(float(p), num_frames, rule) for p in positions)


def _place(position: float, num_frames: int, rule: GuidePlacement) -> int:
    if not 0.0 <= position <= 1.0:
        raise ValueError(f"position {position} outside [0, 1]")
    exact = (num_frames - 1) * position
    if rule is GuidePlacement.NEAREST:
        index = math.floor(exact + 0.5 + _HALF_TOLERANCE)
    else:
        index = round(int(exact) / ANISORA_FRAME_SNAP) * ANISORA_FRAME_SNAP
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
    ``placement`` is the rule that places the guides again on a clip of another length
    (:func:`fit_guidance`).
    """

    condition: str
    guides: tuple[GuideFrame, ...]
    num_frames: int
    fps: float
    height: int
    width: int
    motion_region: np.ndarray | None = field(default=None, repr=False)
    placement: GuidePlacement = GuidePlacement.NEAREST

    def __post_init__(self) -> None:
        object.__setattr__(self, "placement", GuidePlacement(self.placement))


def resolve(
    case: Case,
    condition: Condition,
    *,
    ground_truth: Video | None = None,
    defaults: GenerationDefaults = GenerationDefaults(),
    placement: GuidePlacement | str | Sequence[int] = GuidePlacement.NEAREST,
) -> Guidance:
    """Resolve ``condition`` for ``case``; raises :class:`NotApplicable` when the case lacks what it needs.

    The clip is the ground truth's shape (else the suite's defaults). Guide images come
    from the case's images, else from the ground truth at the nearest frame (or the frame
    a guide pins); ``placement`` (a rule, or one frame index per guide) says where each
    guide lands in the clip to generate or check (see :func:`fit_guidance`).
    """
    try:
        guidance = _resolve(case, condition, ground_truth, defaults)
        return fit_guidance(guidance, guidance.num_frames, guidance.height, guidance.width, placement)
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
        indices = place_guides(positions, num_frames)
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
    """A guide's frame: its pinned index in the case's own video, else from its position.

    A pinned index beyond that video's frames is an error (the case is resolve()'s context).
    """
    if guide.frame_index is not None and gt is not None:
        if guide.frame_index >= num_frames:
            raise InputError(
                f"guide frame_index {guide.frame_index} is beyond the case's video, which has {num_frames} frames "
                f"(0 to {num_frames - 1}); fix the guide's frame_index",
                path=guide.path,
            )
        return guide.frame_index
    return place_guides((guide.position,), num_frames)[0]


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


def fit_guidance(
    guidance: Guidance,
    num_frames: int,
    height: int,
    width: int,
    placement: GuidePlacement | str | Sequence[int] | None = None,
) -> Guidance:
    """``guidance`` for a clip of ``num_frames`` frames of ``height`` x ``width``.

    ``placement`` says at which frames the guides are placed (generation) or checked (scoring):

    * None: where they are when the length is unchanged, else by ``guidance.placement``
      from their positions (a model that returned a clip of another length);
    * a :class:`GuidePlacement` rule: by that rule from their positions, except that the
      guidance's own rule on an unchanged length keeps its frames (a frame a guide pins);
    * one frame index per guide: exactly there (the frames a generator recorded it used).

    The result keeps the rule (given, else the guidance's) for the next re-fit. Guide images
    are centre-cropped and resized, the motion region resampled, when the size differs.
    """
    rule, indices = _placement(guidance, num_frames, placement)
    if indices is None and rule == guidance.placement and (num_frames, height, width) == (
        guidance.num_frames, guidance.height, guidance.width
    ):
        return guidance
    if indices is None:
        indices = tuple(g.frame_index for g in guidance.guides)
    guides = tuple(
        GuideFrame(g.position, index, fit_image(g.image, height, width, "center-crop"), g.source)
        for g, index in zip(guidance.guides, indices)
    )
    region = guidance.motion_region
    if region is not None:
        region = resample_region(region, num_frames, height, width)
    return Guidance(guidance.condition, guides, num_frames, guidance.fps, height, width, region, rule)


def _placement(
    guidance: Guidance, num_frames: int, placement: GuidePlacement | str | Sequence[int] | None
) -> tuple[GuidePlacement, tuple[int, ...] | None]:
    """(the rule for later re-fits, the new frame indices or None to keep the current ones)."""
    positions = [g.position for g in guidance.guides]
    same_length = num_frames == guidance.num_frames
    if placement is None:
        rule = guidance.placement
        return rule, None if same_length else place_guides(positions, num_frames, rule)
    if isinstance(placement, str):
        try:
            rule = GuidePlacement(placement)
        except ValueError:
            known = ", ".join(r.value for r in GuidePlacement)
            raise InputError(f"unknown guide placement {placement!r}; known: {known}") from None
        keep = same_length and rule == guidance.placement
        return rule, None if keep else place_guides(positions, num_frames, rule)
    return guidance.placement, _explicit_indices(placement, len(positions), num_frames)


def _explicit_indices(indices: Sequence[int], num_guides: int, num_frames: int) -> tuple[int, ...]:
    try:
        checked = tuple(operator.index(i) for i in indices)
    except TypeError:
        raise InputError(f"guide frame indices must be whole numbers, got {list(indices)!r}") from None
    if len(checked) != num_guides:
        raise InputError(f"{len(checked)} guide frame indices given for {num_guides} guides")
    outside = [i for i in checked if not 0 <= i < num_frames]
    if outside:
        raise InputError(
            f"guide frame indices {outside} are outside the clip's {num_frames} frames (0 to {num_frames - 1})"
        )
    return checked


@dataclass(frozen=True)
class Placement:
    """Where a generator placed a clip's guides: its rule and the frames, on a clip of ``num_frames``.

    Recorded with every generated clip, so the clip is checked where its guides really are
    (:meth:`on`): at these frames when the clip has the length it was generated at, else by
    the rule (a model that returned another length).
    """

    rule: GuidePlacement
    frames: tuple[int, ...]
    num_frames: int

    @classmethod
    def of(cls, guidance: Guidance) -> "Placement":
        return cls(guidance.placement, tuple(g.frame_index for g in guidance.guides), guidance.num_frames)

    def to_json(self) -> str:
        return json.dumps({"rule": self.rule.value, "frames": list(self.frames), "num_frames": self.num_frames})

    @classmethod
    def from_json(cls, text: str) -> "Placement":
        data = json.loads(text)
        return cls(GuidePlacement(data["rule"]), tuple(data["frames"]), int(data["num_frames"]))

    def on(self, guidance: Guidance, num_frames: int, height: int, width: int) -> Guidance:
        if num_frames == self.num_frames and len(self.frames) == len(guidance.guides):
            return fit_guidance(guidance, num_frames, height, width, self.frames)
        return fit_guidance(guidance, num_frames, height, width, self.rule)
