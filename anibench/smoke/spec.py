"""The smoke renderer's public names and records, and the seeded plan.

The action, style and keypoint names, :class:`Character` (one member of the cast),
:class:`ClipSpec` (everything that determines a clip, defaults from ``smoke.yaml``),
:class:`RenderedClip` (frames, motion mask, facts) and :class:`_Plan` (what the seed
chooses). Loading and checking ``smoke.yaml`` is in :mod:`anibench.smoke.data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from anibench.resources import load_yaml

ACTIONS: tuple[str, ...] = (
    "idle", "talking", "waving", "walking", "running", "jumping", "turning", "camera_zoom", "camera_pan",
)
STYLES: tuple[str, ...] = ("2d", "3d")
CAMERA_ACTIONS: tuple[str, ...] = ("camera_zoom", "camera_pan")
CHARACTER_ACTIONS: tuple[str, ...] = tuple(a for a in ACTIONS if a not in CAMERA_ACTIONS)
KEYPOINTS: tuple[str, ...] = ("head", "right_hand", "left_hand", "right_foot", "left_foot")

_DATA_FILE = "smoke.yaml"
_MIN_SIZE = 32

RGB = tuple[int, int, int]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Character:
    """One member of the cast (from ``smoke.yaml``); ``words`` are the prompt words."""

    name: str
    pronoun: str
    hair_color: RGB
    hair_style: str
    eye_color: RGB
    skin_color: RGB
    outfit_color: RGB
    outfit_style: str
    accent_color: RGB
    words: Mapping[str, str] = field(hash=False)

    def identity(self) -> dict[str, Any]:
        """JSON-serialisable identity attributes (words and RGB values)."""
        return {
            "name": self.name,
            "pronoun": self.pronoun,
            "hair_color": self.words["hair"],
            "hair_style": self.hair_style,
            "eye_color": self.words["eyes"],
            "outfit": self.words["outfit"],
            "outfit_color": self.words["outfit_color"],
            "outfit_style": self.outfit_style,
            "hair_rgb": list(self.hair_color),
            "eye_rgb": list(self.eye_color),
            "skin_rgb": list(self.skin_color),
            "outfit_rgb": list(self.outfit_color),
            "accent_rgb": list(self.accent_color),
        }


class _FrozenDict(dict):
    """A read-only dict (shared cached data must not be mutated) that still pickles."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Character.words is read-only")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (_FrozenDict, (dict(self),))


def _rgb(value: Any, where: str) -> RGB:
    ok = isinstance(value, (list, tuple)) and len(value) == 3
    if not (ok and all(isinstance(v, int) and 0 <= v <= 255 for v in value)):
        raise ValueError(f"{_DATA_FILE}: {where} must be an RGB triple of 0-255 integers, got {value!r}")
    return (int(value[0]), int(value[1]), int(value[2]))


_DEFAULTS = load_yaml(_DATA_FILE)["defaults"]


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines a clip; defaults come from ``smoke.yaml``."""

    character: str
    action: str
    style: str
    background: str
    num_frames: int = int(_DEFAULTS["num_frames"])
    fps: float = float(_DEFAULTS["fps"])
    width: int = int(_DEFAULTS["width"])
    height: int = int(_DEFAULTS["height"])
    seed: int = int(_DEFAULTS["seed"])
    cadence: int = 1  # frames per character drawing: 1 on ones, 2 on twos, 3 on threes (the camera stays on ones)


@dataclass
class RenderedClip:
    """Frames (T, H, W, 3) uint8 RGB, the motion mask (T, H, W) bool or None, and the facts."""

    frames: np.ndarray
    motion_mask: np.ndarray | None
    facts: dict


# --------------------------------------------------------------------------- seeded plan


@dataclass(frozen=True)
class _Plan:
    """The seed's choices: phases, blink time, directions, background details."""

    phase: float        # start phase of periodic motion, in cycles
    direction: int      # +1 right, -1 left (walking, running)
    pan: int            # +1 the camera pans right (content moves left), -1 left
    blink_at: float     # t of the idle blink
    syllables: tuple[float, ...]  # mouth opening per syllable while talking
    bg_seed: int


def _plan(seed: int) -> _Plan:
    rng = np.random.default_rng(seed)
    phase = float(rng.random())
    direction = 1 if rng.random() < 0.5 else -1
    pan = 1 if rng.random() < 0.5 else -1
    blink_at = float(0.35 + 0.3 * rng.random())
    syllables = tuple(float(v) for v in rng.uniform(0.55, 1.0, size=64))
    bg_seed = int(rng.integers(0, 2**31 - 1))
    return _Plan(phase, direction, pan, blink_at, syllables, bg_seed)
