"""Deterministic procedural renderer of short anime-style clips (the built-in "smoke" suite).

Design
------
A clip is fully described by a :class:`ClipSpec` (character, action, style, background,
size, length, seed); the cast, the scenes, the prompt phrases and the motion amplitudes
are data in ``datasets/smoke.yaml``. Rendering is pure numpy + OpenCV and never reads a
clock or global random state, so the same spec gives byte-identical frames every time.

1. **Animation.** For every frame an analytic pose (:class:`_Pose`: root position, yaw,
   limb angles, blink, mouth, ...) and camera (zoom about the character, horizontal
   pan) are computed from ``t`` in [0, 1]. The seed only moves phases, the blink time,
   the walk/pan direction and background detail placement, never the identity.
2. **Figure.** The pose becomes an ordered list of shapes (polygons and strokes) in
   *figure units*: feet at the origin, y up, 1 unit = ``figure.unit`` frame heights.
   Shapes are built with affine frames (root, upper body, head) so limbs and the head
   rotate about their joints; a yaw angle squashes the body, slides the face features
   and swaps the face for the back of the hair (turning, 3/4 view when walking).
3. **Rasteriser (deferred shading).** Shapes are drawn in painter's order as *indices*
   into a supersampled buffer (``cv2.fillPoly`` / ``cv2.polylines``), then resolved with
   table look-ups: flat colours plus near-black outline strokes for "2d"; for "3d" every
   shape carries an analytic normal model (sphere, cylinder or flat) lit by Lambert +
   Blinn-Phong with soft ambient occlusion, and no outlines. The same index buffer gives
   the silhouette of the moving parts, so the motion mask cannot disagree with the
   pixels. The premultiplied layer is area-averaged down (anti-aliasing) and composited.
4. **Background.** Drawn once per clip with LINE_AA at the supersampled size (flat cel
   bands and outlines for "2d", gradient-shaded shapes and a slight blur for "3d"). With
   a static camera every frame starts from the same array, so background pixels are
   identical between frames; zoom and pan warp a wider supersampled world instead.
5. **Facts.** Ground truth (keypoints, motion amplitudes, camera motion, identity) is
   computed from the poses and cameras, not measured from pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from anibench.resources import load_yaml

__all__ = [
    "ACTIONS",
    "STYLES",
    "CHARACTER_ACTIONS",
    "CAMERA_ACTIONS",
    "KEYPOINTS",
    "Character",
    "ClipSpec",
    "RenderedClip",
    "characters",
    "backgrounds",
    "render_clip",
    "describe_clip",
]

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


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    """The parsed and checked ``smoke.yaml``: characters by name plus the raw sections."""
    raw = load_yaml(_DATA_FILE)
    missing = [k for k in ("defaults", "figure", "styles", "pronouns", "palette", "hair_styles", "outfit_styles",
                           "characters", "backgrounds", "actions", "cameras", "motion") if k not in raw]
    if missing:
        raise ValueError(f"{_DATA_FILE} lacks the sections {missing}")
    if sorted(raw["actions"]) != sorted(ACTIONS):
        raise ValueError(f"{_DATA_FILE}: actions must be exactly {ACTIONS}")
    if sorted(raw["styles"]) != sorted(STYLES):
        raise ValueError(f"{_DATA_FILE}: styles must be exactly {STYLES}")
    unknown_bg = [b for b in raw["backgrounds"] if b not in _BACKGROUND_PAINTERS]
    if unknown_bg:
        raise ValueError(f"{_DATA_FILE}: no painter for backgrounds {unknown_bg}")
    cast: dict[str, Character] = {}
    for i, c in enumerate(raw["characters"]):
        where = f"characters[{i}]"
        hair, eyes, outfit = c["hair"], c["eyes"], c["outfit"]
        if hair["style"] not in raw["hair_styles"] or hair["style"] not in _HAIR_STYLES:
            raise ValueError(f"{_DATA_FILE}: {where} has unknown hair style {hair['style']!r}")
        if outfit["style"] not in raw["outfit_styles"] or outfit["style"] not in _OUTFITS:
            raise ValueError(f"{_DATA_FILE}: {where} has unknown outfit style {outfit['style']!r}")
        if c["pronoun"] not in raw["pronouns"]:
            raise ValueError(f"{_DATA_FILE}: {where} has unknown pronoun {c['pronoun']!r}")
        words = {
            "hair": str(hair["word"]),
            "eyes": str(eyes["word"]),
            "outfit": f"{outfit['word']} {raw['outfit_styles'][outfit['style']]['phrase']}",
            "outfit_color": str(outfit["word"]),
        }
        ch = Character(
            name=str(c["name"]),
            pronoun=str(c["pronoun"]),
            hair_color=_rgb(hair["color"], f"{where}.hair.color"),
            hair_style=str(hair["style"]),
            eye_color=_rgb(eyes["color"], f"{where}.eyes.color"),
            skin_color=_rgb(c["skin"], f"{where}.skin"),
            outfit_color=_rgb(outfit["color"], f"{where}.outfit.color"),
            outfit_style=str(outfit["style"]),
            accent_color=_rgb(c["accent"], f"{where}.accent"),
            words=_FrozenDict(words),
        )
        if ch.name in cast:
            raise ValueError(f"{_DATA_FILE}: character name {ch.name!r} appears twice")
        cast[ch.name] = ch
    return {"raw": raw, "cast": cast}


def _raw() -> dict[str, Any]:
    return _data()["raw"]


def characters() -> tuple[Character, ...]:
    """The cast, in ``smoke.yaml`` order."""
    return tuple(_data()["cast"].values())


def backgrounds() -> tuple[str, ...]:
    """Background ids, in ``smoke.yaml`` order."""
    return tuple(_raw()["backgrounds"])


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


@dataclass
class RenderedClip:
    """Frames (T, H, W, 3) uint8 RGB, the motion mask (T, H, W) bool or None, and the facts."""

    frames: np.ndarray
    motion_mask: np.ndarray | None
    facts: dict


def _check_spec(spec: ClipSpec) -> Character:
    """Raise ValueError naming the first bad field of ``spec``; return its character."""
    cast = _data()["cast"]
    if not isinstance(spec.character, str) or spec.character not in cast:
        raise ValueError(f"ClipSpec.character: unknown character {spec.character!r} (known: {', '.join(cast)})")
    if spec.action not in ACTIONS:
        raise ValueError(f"ClipSpec.action: unknown action {spec.action!r} (known: {', '.join(ACTIONS)})")
    if spec.style not in STYLES:
        raise ValueError(f"ClipSpec.style: unknown style {spec.style!r} (known: {', '.join(STYLES)})")
    if spec.background not in _raw()["backgrounds"]:
        raise ValueError(f"ClipSpec.background: unknown background {spec.background!r} (known: {', '.join(backgrounds())})")
    for name in ("num_frames", "width", "height", "seed"):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"ClipSpec.{name}: must be an integer, got {value!r}")
    if spec.num_frames < 1:
        raise ValueError(f"ClipSpec.num_frames: must be >= 1, got {spec.num_frames}")
    if spec.width < _MIN_SIZE:
        raise ValueError(f"ClipSpec.width: must be >= {_MIN_SIZE}, got {spec.width}")
    if spec.height < _MIN_SIZE:
        raise ValueError(f"ClipSpec.height: must be >= {_MIN_SIZE}, got {spec.height}")
    if isinstance(spec.fps, bool) or not isinstance(spec.fps, (int, float, np.integer, np.floating)) \
            or not math.isfinite(spec.fps) or spec.fps <= 0:
        raise ValueError(f"ClipSpec.fps: must be a positive number, got {spec.fps!r}")
    if spec.seed < 0:
        raise ValueError(f"ClipSpec.seed: must be >= 0, got {spec.seed}")
    return cast[spec.character]


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


# --------------------------------------------------------------------------- prompt


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _camera_motion(action: str, plan: _Plan) -> str:
    if action == "camera_zoom":
        return "zoom_in"
    if action == "camera_pan":
        return "pan_right" if plan.pan > 0 else "pan_left"
    return "static"


def describe_clip(spec: ClipSpec) -> str:
    """One English prompt sentence for ``spec`` (deterministic)."""
    ch = _check_spec(spec)
    raw = _raw()
    plan = _plan(spec.seed)
    pron = raw["pronouns"][ch.pronoun]
    hair = raw["hair_styles"][ch.hair_style].format(color=ch.words["hair"])
    outfit = ch.words["outfit"]
    action = raw["actions"][spec.action].format(
        possessive=pron["possessive"], direction="right" if plan.direction > 0 else "left")
    camera = raw["cameras"][_camera_motion(spec.action, plan)].format(object=pron["object"])
    return (f"{raw['styles'][spec.style]} of {ch.name}, {_article(pron['noun'])} {pron['noun']} with {hair}, "
            f"{ch.words['eyes']} eyes and {_article(outfit)} {outfit}, {action} "
            f"{raw['backgrounds'][spec.background]['phrase']}; {camera}.")


# --------------------------------------------------------------------------- geometry

# Figure proportions, in figure units (feet at y = 0, y up).
_HEAD_C = (0.0, 0.695)
_HEAD_RX, _HEAD_RY = 0.205, 0.19
_HAIR_RX, _HAIR_RY, _HAIR_DY = 0.228, 0.212, 0.012
_NECK = (0.0, 0.50)
_SHOULDER_X, _SHOULDER_Y = 0.098, 0.47
_HIP_X = 0.05
_THIGH, _SHIN, _FOOT_RY = 0.13, 0.115, 0.025
_HIP_Y = _THIGH + _SHIN + _FOOT_RY
_UPPER_ARM, _FOREARM, _HAND_R = 0.11, 0.095, 0.03
_FACE_DEPTH = 0.13           # how far the face features sit in front of the head's axis
_EYE_X, _EYE_Y, _EYE_RX, _EYE_RY = 0.083, 0.648, 0.05, 0.06
_MOUTH_Y = 0.565
_OUTLINE = 0.014             # "2d" outline width
_CENTRE_Y = 0.46             # the figure's visual centre (zoom pivot)

_CIRCLES: dict[int, np.ndarray] = {}


def _circle(n: int) -> np.ndarray:
    table = _CIRCLES.get(n)
    if table is None:
        a = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
        table = _CIRCLES[n] = np.stack([np.cos(a), np.sin(a)], axis=1)
    return table


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24, rot: float = 0.0) -> np.ndarray:
    pts = _circle(n) * (rx, ry)
    if rot:
        c, s = math.cos(rot), math.sin(rot)
        pts = pts @ np.array([[c, s], [-s, c]])
    return pts + (cx, cy)


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 12) -> np.ndarray:
    a = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def _capsule(p0: Sequence[float], p1: Sequence[float], r0: float, r1: float, n: int = 8) -> np.ndarray:
    """Tapered capsule polygon from p0 (radius r0) to p1 (radius r1)."""
    x0, y0 = p0
    x1, y1 = p1
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy) or 1e-9
    av = math.atan2(dx / length, -dy / length)  # angle of the left normal (-uy, ux)
    a1 = np.linspace(av, av - math.pi, n)
    a0 = np.linspace(av - math.pi, av - 2.0 * math.pi, n)
    end1 = np.stack([x1 + r1 * np.cos(a1), y1 + r1 * np.sin(a1)], axis=1)
    end0 = np.stack([x0 + r0 * np.cos(a0), y0 + r0 * np.sin(a0)], axis=1)
    return np.concatenate([end1, end0])


def _smooth(pts: Sequence[Sequence[float]], iterations: int = 2, closed: bool = True) -> np.ndarray:
    """Chaikin corner cutting: rounds a control polygon."""
    p = np.asarray(pts, dtype=np.float64)
    for _ in range(iterations):
        q = np.roll(p, -1, axis=0) if closed else p[1:]
        a = p if closed else p[:-1]
        new = np.empty((2 * len(a), 2))
        new[0::2] = 0.75 * a + 0.25 * q
        new[1::2] = 0.25 * a + 0.75 * q
        p = new if closed else np.concatenate([p[:1], new, p[-1:]])
    return p


def _dir(angle: float) -> np.ndarray:
    """Unit vector of a limb at ``angle`` from straight down (positive towards +x)."""
    return np.array([math.sin(angle), -math.cos(angle)])


def _affine(a: float = 1.0, b: float = 0.0, c: float = 0.0, d: float = 1.0, tx: float = 0.0, ty: float = 0.0) -> np.ndarray:
    return np.array([[a, b, tx], [c, d, ty], [0.0, 0.0, 1.0]])


def _translate(tx: float, ty: float) -> np.ndarray:
    return _affine(tx=tx, ty=ty)


def _rotate(angle: float, about: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    px, py = about
    return _translate(px, py) @ _affine(c, -s, s, c) @ _translate(-px, -py)


def _mix(a: Sequence[float], b: Sequence[float], w: float) -> tuple[float, float, float]:
    return tuple(float(x) * (1.0 - w) + float(y) * w for x, y in zip(a, b))  # type: ignore[return-value]


def _scale(a: Sequence[float], f: float) -> tuple[float, float, float]:
    return tuple(min(255.0, float(x) * f) for x in a)  # type: ignore[return-value]


# --------------------------------------------------------------------------- shapes

# Materials for "3d": (ambient, diffuse, specular, shininess); "flat" is unlit.
_MATERIALS: dict[str, tuple[float, float, float, float] | None] = {
    "flat": None,
    "skin": (0.74, 0.40, 0.08, 10.0),
    "hair": (0.48, 0.62, 0.60, 24.0),
    "cloth": (0.48, 0.62, 0.12, 8.0),
    "metal": (0.30, 0.80, 0.95, 40.0),
    "eye": (0.80, 0.30, 0.55, 30.0),
}
_LIGHT = np.array([-0.45, -0.62, 0.64]) / np.linalg.norm([-0.45, -0.62, 0.64])  # screen coords, y down
_HALF = (_LIGHT + (0.0, 0.0, 1.0)) / np.linalg.norm(_LIGHT + (0.0, 0.0, 1.0))


class _Shape:
    """A filled polygon (``width == 0``) or a stroke, with its colour, part and shading."""

    __slots__ = ("pts", "rgb", "part", "width", "closed", "outline", "shade", "mat", "alpha", "body")

    def __init__(self, pts: np.ndarray, rgb: Sequence[float], part: str, width: float, closed: bool,
                 outline: float, shade: tuple[float, ...] | None, mat: str, alpha: float, body: bool):
        self.pts = pts
        self.rgb = rgb
        self.part = part
        self.width = width
        self.closed = closed
        self.outline = outline
        self.shade = shade
        self.mat = mat
        self.alpha = alpha
        self.body = body


class _Figure:
    """Collects one frame's shapes in draw order, in figure units, under an affine frame."""

    def __init__(self) -> None:
        self.shapes: list[_Shape] = []
        self.m = np.eye(3)
        self.part = "torso"

    def use(self, m: np.ndarray, part: str) -> None:
        self.m = m
        self.part = part

    def add(self, pts: np.ndarray, rgb: Sequence[float], *, outline: float = 1.0, mat: str = "cloth",
            shade: tuple | None = None, width: float = 0.0, closed: bool = True, alpha: float = 1.0,
            part: str | None = None, body: bool = True) -> None:
        m = self.m
        lin = m[:2, :2]
        world = np.asarray(pts, dtype=np.float64) @ lin.T + m[:2, 2]
        sh = None
        if shade is not None and _MATERIALS[mat] is not None:
            if shade[0] == "sph":
                _, cx, cy, rx, ry = shade
                ex, ey = lin[:, 0], lin[:, 1]
                nx, ny = float(np.hypot(*ex)), float(np.hypot(*ey))
                centre = lin @ (cx, cy) + m[:2, 2]
                sh = (centre[0], centre[1], ex[0] / nx, ex[1] / nx, rx * nx, ry * ny)
            else:  # cylinder along p0 -> p1
                _, x0, y0, x1, y1, r = shade
                axis = lin @ (x1 - x0, y1 - y0)
                na = float(np.hypot(*axis)) or 1e-9
                centre = lin @ (x0, y0) + m[:2, 2]
                scale = math.sqrt(abs(np.linalg.det(lin)))
                sh = (centre[0], centre[1], -axis[1] / na, axis[0] / na, r * scale, math.inf)
        self.shapes.append(_Shape(world, rgb, part or self.part, width, closed, outline, sh, mat, alpha, body))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, rgb: Sequence[float], *, n: int = 24,
                rot: float = 0.0, shaded: bool = True, **kw: Any) -> None:
        self.add(_ellipse(cx, cy, rx, ry, n, rot), rgb, shade=("sph", cx, cy, rx, ry) if shaded else None, **kw)

    def limb(self, p0: Sequence[float], p1: Sequence[float], r0: float, r1: float, rgb: Sequence[float], **kw: Any) -> None:
        self.add(_capsule(p0, p1, r0, r1), rgb, shade=("cyl", p0[0], p0[1], p1[0], p1[1], 0.5 * (r0 + r1)), **kw)

    def stroke(self, pts: Any, rgb: Sequence[float], width: float, *, closed: bool = False, **kw: Any) -> None:
        self.add(np.asarray(pts, dtype=np.float64), rgb, width=width, closed=closed, outline=0.0, mat="flat", **kw)


# --------------------------------------------------------------------------- character look


@dataclass(frozen=True)
class _Look:
    """A character's resolved colours (float RGB) and outfit settings."""

    ch: Character
    girl: bool
    skin: tuple
    skin_dark: tuple
    hair: tuple
    hair_dark: tuple
    hair_light: tuple
    eye: tuple
    eye_dark: tuple
    outfit: tuple
    outfit_dark: tuple
    accent: tuple
    pal: Mapping[str, tuple]
    sleeves: str
    legs: str
    socks: tuple | None
    shoes: tuple


def _look(ch: Character) -> _Look:
    raw = _raw()
    pal = {k: tuple(float(v) for v in _rgb(c, f"palette.{k}")) for k, c in raw["palette"].items()}
    o = raw["outfit_styles"][ch.outfit_style]
    f = lambda c: tuple(float(v) for v in c)  # noqa: E731
    return _Look(
        ch=ch, girl=ch.pronoun == "she",
        skin=f(ch.skin_color), skin_dark=_scale(ch.skin_color, 0.82),
        hair=f(ch.hair_color), hair_dark=_scale(ch.hair_color, 0.55), hair_light=_mix(ch.hair_color, (255, 255, 255), 0.45),
        eye=f(ch.eye_color), eye_dark=_scale(ch.eye_color, 0.5),
        outfit=f(ch.outfit_color), outfit_dark=_scale(ch.outfit_color, 0.72), accent=f(ch.accent_color),
        pal=MappingProxyType(pal), sleeves=str(o["sleeves"]), legs=str(o["legs"]),
        socks=None if o.get("socks") is None else f(_rgb(o["socks"], f"outfit_styles.{ch.outfit_style}.socks")),
        shoes=f(_rgb(o["shoes"], f"outfit_styles.{ch.outfit_style}.shoes")),
    )


# --------------------------------------------------------------------------- pose


@dataclass
class _Pose:
    """One frame of animation, in figure units and radians."""

    x: float                     # root (between the feet), world pixels
    yaw: float = 0.0             # 0 front, pi back, +pi/2 facing screen right
    lift: float = 0.0            # root height above the ground
    bob: float = 0.0             # upper-body vertical offset
    lean: float = 0.0            # upper-body lean about the hips (counter-clockwise positive)
    tilt: float = 0.0            # head tilt about the neck
    arm_r: tuple[float, float] = (-0.16, -0.08)   # (upper arm, forearm) angle from straight down
    arm_l: tuple[float, float] = (0.16, 0.08)
    leg_r: tuple[float, float] = (-0.03, -0.03)   # (thigh, shin)
    leg_l: tuple[float, float] = (0.03, 0.03)
    squash: float = 1.0          # vertical scale about the feet
    eye_open: float = 1.0
    mouth_open: float = 0.0
    plant: bool = False          # raise the root so the lower foot touches the ground
    facing: int = 0              # -1 / 0 / +1: which way the shoes point


def _smoothstep(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def _pose(action: str, t: float, plan: _Plan, width: int, height: int) -> _Pose:
    mo = _raw()["motion"]
    unit = float(_raw()["figure"]["unit"]) * height      # pixels per figure unit
    cx = 0.5 * width
    ph = plan.phase
    tau = 2.0 * math.pi
    p = _Pose(x=cx)
    if action in ("idle", "camera_zoom", "camera_pan"):
        amp = float(mo["breath_bob"]) * height / unit
        p.bob = amp * 0.5 * (1.0 - math.cos(tau * (float(mo["breath_cycles"]) * t + ph)))
        half = 0.5 * float(mo["blink_length"])
        p.eye_open = min(1.0, abs(t - plan.blink_at) / half) if half > 0 else 1.0
    elif action == "talking":
        p.tilt = math.radians(float(mo["talk_tilt_deg"])) * math.sin(tau * (float(mo["talk_tilt_cycles"]) * t + ph))
        u = float(mo["talk_syllables"]) * t + ph
        p.mouth_open = plan.syllables[int(u) % len(plan.syllables)] * abs(math.sin(math.pi * u))
    elif action == "waving":
        w = tau * (float(mo["wave_cycles"]) * t + ph)
        half = 0.5 * math.radians(float(mo["wave_swing_deg"]))
        upper = -(0.5 * math.pi + 0.30) + 0.10 * math.sin(w - 0.6)
        p.arm_r = (upper, -(math.pi - 0.62) + half * math.sin(w))
    elif action in ("walking", "running"):
        run = action == "running"
        d = plan.direction
        dist = float(mo["run_distance" if run else "walk_distance"]) * width
        cycles = float(mo["run_cycles" if run else "walk_cycles"])
        swing = math.radians(float(mo["run_swing_deg" if run else "walk_swing_deg"]))
        psi = tau * (cycles * t + ph)
        p.x = cx + d * dist * (t - 0.5)
        p.yaw = d * (0.55 if run else 0.5)
        p.facing = d
        p.plant = True
        bend = 1.25 if run else 0.55
        for side, leg_phase in ((-1, psi), (1, psi + math.pi)):
            thigh = d * swing * math.sin(leg_phase)
            shin = thigh - d * bend * max(0.0, math.cos(leg_phase)) - d * (0.35 if run else 0.0)
            if side < 0:
                p.leg_r = (thigh, shin)
            else:
                p.leg_l = (thigh, shin)
        arm_swing = swing * (0.9 if run else 0.75)
        elbow = 1.35 if run else 0.3
        p.arm_r = (-0.1 - d * arm_swing * math.sin(psi), -0.1 - d * arm_swing * math.sin(psi) + d * elbow)
        p.arm_l = (0.1 + d * arm_swing * math.sin(psi), 0.1 + d * arm_swing * math.sin(psi) + d * elbow)
        p.lean = -d * (0.14 if run else 0.04)
        if run:
            p.lift = float(mo["run_bounce"]) * height / unit * 0.5 * (1.0 - math.cos(2.0 * psi))
    elif action == "jumping":
        jumps = max(1, int(mo["jump_count"]))
        u = min(t * jumps, jumps - 1e-9)
        q = u - math.floor(u)
        height_units = float(mo["jump_height"]) * height / unit
        crouch, land = 0.15, 0.85
        if q < crouch:
            env, sq = 0.0, 1.0 - 0.12 * math.sin(math.pi * q / crouch)
        elif q > land:
            env, sq = 0.0, 1.0 - 0.12 * math.sin(math.pi * (q - land) / (1.0 - land))
        else:
            a = (q - crouch) / (land - crouch)
            env = math.sin(math.pi * a)
            sq = 1.0 + 0.03 * math.sin(math.pi * a)
            p.lift = height_units * 4.0 * a * (1.0 - a)
        p.squash = sq
        p.arm_r = (-(0.16 + 2.3 * env), -(0.08 + 2.55 * env))
        p.arm_l = (0.16 + 2.3 * env, 0.08 + 2.55 * env)
        p.leg_r = (-0.03 - 0.12 * env, -0.03 + 0.1 * env)
        p.leg_l = (0.03 + 0.12 * env, 0.03 - 0.1 * env)
    elif action == "turning":
        p.yaw = tau * float(mo["turns"]) * _smoothstep(t)
    return p


def _camera(action: str, t: float, plan: _Plan, width: int, height: int) -> tuple[float, float, float, float]:
    """(zoom, pivot x, pivot y, pan shift in pixels): screen = zoom * (world - pivot) + pivot + (shift, 0)."""
    mo = _raw()["motion"]
    fig = _raw()["figure"]
    pivot = (0.5 * width, (float(fig["ground"]) - _CENTRE_Y * float(fig["unit"])) * height)
    if action == "camera_zoom":
        return 1.0 + (float(mo["zoom_end"]) - 1.0) * _smoothstep(t), pivot[0], pivot[1], 0.0
    if action == "camera_pan":
        return 1.0, pivot[0], pivot[1], -plan.pan * float(mo["pan_distance"]) * width * (_smoothstep(t) - 0.5)
    return 1.0, pivot[0], pivot[1], 0.0


# --------------------------------------------------------------------------- figure


def _face_x(x0: float, c: float, s: float) -> tuple[float, float, float]:
    """Screen x, depth and foreshortening of a face feature at x0 on the front of the head."""
    xp = x0 * c + _FACE_DEPTH * s
    zp = -x0 * s + _FACE_DEPTH * c
    return xp, zp, min(1.0, max(0.3, zp / _FACE_DEPTH))


def _draw_eye(fig: _Figure, lk: _Look, ex: float, f: float, side: int, openness: float) -> None:
    rx, ey = _EYE_RX * f, _EYE_Y
    lash = lk.pal["lash"]
    if openness < 0.3:
        fig.stroke([(ex - rx, ey - 0.012), (ex - 0.4 * rx, ey - 0.026), (ex + 0.4 * rx, ey - 0.026), (ex + rx, ey - 0.012)],
                   lash, 0.014, part="eyes")
        return
    ry = _EYE_RY * openness
    cy = ey - (_EYE_RY - ry) * 0.6
    fig.ellipse(ex, cy, rx, ry, lk.pal["eye_white"], mat="flat", shaded=False, outline=0.5, part="eyes")
    irx, iry, icy = 0.8 * rx, 0.9 * ry, cy - 0.06 * ry
    fig.ellipse(ex, icy, irx, iry, lk.eye, mat="eye", outline=0.0, part="eyes")
    top = _arc(ex, icy, irx, iry, 0.15, math.pi - 0.15, 10)
    fig.add(top, lk.eye_dark, mat="flat", outline=0.0, part="eyes")
    fig.ellipse(ex, icy - 0.08 * ry, 0.36 * rx, 0.42 * ry, lk.pal["pupil"], mat="flat", shaded=False, outline=0.0,
                part="eyes")
    fig.ellipse(ex - 0.3 * rx, cy + 0.38 * ry, 0.3 * rx, 0.24 * ry, lk.pal["highlight"], mat="flat", shaded=False,
                outline=0.0, part="eyes", n=14)
    fig.ellipse(ex + 0.34 * rx, cy - 0.5 * ry, 0.14 * rx, 0.11 * ry, lk.pal["highlight"], mat="flat", shaded=False,
                outline=0.0, part="eyes", n=10)
    lid = _arc(ex, cy, rx * 1.08, ry * 1.02, math.pi - 0.05, 0.05, 12)
    fig.stroke(lid, lash, 0.018, part="eyes")
    if lk.girl:
        outer = (ex + side * rx * 1.05, cy + 0.25 * ry)
        fig.stroke([outer, (outer[0] + side * 0.02, outer[1] + 0.018)], lash, 0.011, part="eyes")


def _fringe(style: dict, shift: float) -> list[tuple[float, float]]:
    """Bangs from left to right, relative to the head centre."""
    hx, hy = _HEAD_C
    n, root, tip, slant = style["tips"], style["root"], style["tip"], style["slant"]
    xs = np.linspace(-0.17, 0.17, n + 1) + shift
    pts: list[tuple[float, float]] = []
    for i in range(n):
        a, b = xs[i], xs[i + 1]
        mid = 0.5 * (a + b)
        if style.get("parted"):
            lean = -1.0 if mid < shift else 1.0
            tip_x = mid + lean * 0.35 * (b - a)
            r = root + (0.04 if abs(a - shift) < 1e-9 else 0.0)
        else:
            tip_x = mid + slant * 0.5 * (b - a)
            r = root
        pts.append((a, hy + r))
        pts.append((tip_x, hy + tip))
    pts.append((xs[-1], hy + root))
    return pts


def _hair_cap_front(style: dict, s: float) -> np.ndarray:
    hx, hy = _HEAD_C
    cy = hy + _HAIR_DY
    rx, ry = _HAIR_RX * style.get("wide", 1.0), _HAIR_RY * style.get("wide", 1.0)
    a0, a1 = math.radians(-12), math.radians(192)
    spikes = style.get("spikes", 0)
    if spikes:
        a = np.linspace(a0, a1, 2 * spikes + 1)
        r = np.where(np.arange(len(a)) % 2 == 1, 1.0 + style["spike_len"], 1.0)
        a = a + np.where(np.arange(len(a)) % 2 == 1, math.radians(5), 0.0)
    else:
        a = np.linspace(a0, a1, 36)
        r = np.ones_like(a)
    outer = np.stack([hx + rx * r * np.cos(a), cy + ry * r * np.sin(a)], axis=1)
    shift = max(-0.06, min(0.06, 0.8 * _FACE_DEPTH * s))
    lock, lock_out, lock_in = style["lock"], style.get("lock_out", 0.235), style.get("lock_in", 0.17)
    left = [(-lock_out, hy + lock), (-lock_in - 0.005, hy + lock + 0.05), (-lock_in + shift * 0.5, hy + 0.01)]
    right = [(lock_in + shift * 0.5, hy + 0.01), (lock_in + 0.005, hy + lock + 0.05), (lock_out, hy + lock)]
    if style.get("round_lock"):
        left = [(-lock_out, hy + lock + 0.03), (-lock_out + 0.03, hy + lock), (-lock_in, hy + lock + 0.01),
                (-lock_in + shift * 0.5, hy + 0.01)]
        right = [(lock_in + shift * 0.5, hy + 0.01), (lock_in, hy + lock + 0.01), (lock_out - 0.03, hy + lock),
                 (lock_out, hy + lock + 0.03)]
    pts = [tuple(p) for p in outer] + left + _fringe(style, shift) + right
    return np.asarray(pts)


def _hair_cap_back(style: dict) -> np.ndarray:
    hx, hy = _HEAD_C
    cy = hy + _HAIR_DY
    w = style.get("wide", 1.0)
    rx, ry = _HAIR_RX * w * 1.02, _HAIR_RY * w * 1.02
    nape = hy + style.get("nape", -0.13)
    spikes = style.get("spikes", 0)
    if spikes:
        a = np.linspace(math.radians(-30), math.radians(210), 2 * spikes + 3)
        r = np.where(np.arange(len(a)) % 2 == 1, 1.0 + style["spike_len"], 1.0)
    else:
        a = np.linspace(math.radians(-40), math.radians(220), 36)
        r = np.ones_like(a)
    outer = np.stack([hx + rx * r * np.cos(a), cy + ry * r * np.sin(a)], axis=1)
    xl, xr = outer[-1, 0], outer[0, 0]
    bottom = [(xl, nape)]
    for i, x in enumerate(np.linspace(xl, xr, 7)[1:-1]):
        bottom.append((x, nape - (0.035 if i % 2 == 0 else 0.0)))
    bottom.append((xr, nape))
    return np.concatenate([outer, np.asarray(bottom)])


def _hair_back_layer(fig: _Figure, lk: _Look, style_name: str, xs: float, xshift: float) -> None:
    """Hair behind the head (front view) or over it (back view); x squashed by ``xs``."""
    hx, hy = _HEAD_C
    hair = lk.hair

    def fit(pts: Any) -> np.ndarray:
        p = np.asarray(pts, dtype=np.float64)
        return np.stack([p[:, 0] * xs + xshift, p[:, 1]], axis=1)

    sh_cyl = lambda x, y0, y1, r: ("cyl", x * xs + xshift, y0, x * xs + xshift, y1, r * abs(xs))  # noqa: E731
    if style_name == "bob":
        pts = _ellipse(hx, hy - 0.01, _HAIR_RX * 1.1, 0.205, 32)
        pts[:, 1] = np.maximum(pts[:, 1], hy - 0.175)
        fig.add(fit(pts), hair, mat="hair", shade=sh_cyl(0.0, hy, hy - 0.2, 0.25), part="hair")
    elif style_name == "long":
        top = _arc(hx, hy + _HAIR_DY, _HAIR_RX, _HAIR_RY, 0.0, math.pi, 14)
        body = [(-0.24, hy - 0.12), (-0.27, 0.30), (-0.25, 0.22), (-0.19, 0.27), (-0.12, 0.21), (-0.04, 0.26),
                (0.04, 0.21), (0.12, 0.27), (0.19, 0.21), (0.25, 0.26), (0.27, 0.30), (0.24, hy - 0.12)]
        pts = np.concatenate([top, np.asarray(body)])
        fig.add(fit(pts), hair, mat="hair", shade=sh_cyl(0.0, hy, 0.2, 0.26), part="hair")
    elif style_name == "twin_tails":
        for side in (-1, 1):
            ctrl = [(0.17, hy + 0.15), (0.29, hy + 0.17), (0.37, hy + 0.06), (0.39, hy - 0.12), (0.36, 0.36),
                    (0.31, 0.25), (0.29, 0.36), (0.28, hy - 0.13), (0.23, hy - 0.01)]
            pts = _smooth([(side * x, y) for x, y in ctrl], 2)
            fig.add(fit(pts), hair, mat="hair", shade=sh_cyl(side * 0.33, hy + 0.1, 0.3, 0.06), part="hair")
            fig.ellipse(side * 0.215 * xs + xshift, hy + 0.13, 0.04 * max(abs(xs), 0.5), 0.035, lk.accent,
                        mat="cloth", part="hair", n=16)
    elif style_name == "ponytail":
        ctrl = [(0.08, hy + 0.19), (0.2, hy + 0.26), (0.34, hy + 0.21), (0.4, hy + 0.04), (0.38, hy - 0.16),
                (0.32, 0.36), (0.31, hy - 0.15), (0.28, hy + 0.04), (0.2, hy + 0.13)]
        fig.add(fit(_smooth(ctrl, 2)), hair, mat="hair", shade=sh_cyl(0.34, hy + 0.15, 0.36, 0.06), part="hair")
        fig.ellipse(0.2 * xs + xshift, hy + 0.2, 0.035 * max(abs(xs), 0.5), 0.035, lk.accent, mat="cloth", part="hair",
                    n=16)


def _draw_head(fig: _Figure, lk: _Look, pose: _Pose, c: float, s: float) -> None:
    hx, hy = _HEAD_C
    style = _HAIR_STYLES[lk.ch.hair_style]
    # Face: a round head with a soft chin.
    a = _circle(40)
    x = _HEAD_RX * a[:, 0]
    y = _HEAD_RY * a[:, 1]
    low = a[:, 1] < 0
    x[low] *= 1.0 - 0.2 * a[low, 1] ** 2
    y[low] *= 1.0 + 0.06 * a[low, 1] ** 2
    fig.add(np.stack([hx + x, hy + y], axis=1), lk.skin, mat="skin", shade=("sph", hx, hy, _HEAD_RX, _HEAD_RY), part="head")
    if c >= 0.0:
        # Ears peek out under the hair on both sides.
        for side in (-1, 1):
            zp = -side * 0.2 * s   # ears sit on the sides of the head, not on the face plane
            if zp > -0.02:
                f = max(0.4, c)
                fig.ellipse(side * 0.2 * c, hy - 0.02, 0.03 * f, 0.04, lk.skin, mat="skin", part="head", n=14)
        for side in (-1, 1):
            xp, zp, f = _face_x(side * 0.125, c, s)
            if zp > 0.02:
                fig.ellipse(xp, 0.598, 0.032 * f, 0.013, _mix(lk.skin, lk.pal["blush"], 0.45), mat="flat",
                            shaded=False, outline=0.0, part="head", n=14)
        for side in (-1, 1):
            xp, zp, f = _face_x(side * _EYE_X, c, s)
            if zp > 0.02:
                _draw_eye(fig, lk, xp, f, side, pose.eye_open)
                brow_y = _EYE_Y + 0.092
                brow = [(xp - 0.8 * _EYE_RX * f, brow_y - 0.006), (xp, brow_y + 0.004),
                        (xp + 0.8 * _EYE_RX * f, brow_y - 0.002)]
                fig.stroke(brow, lk.hair_dark, 0.009, part="eyes")
        mx, mz, mf = _face_x(0.0, c, s)
        fig.stroke([(mx + 0.004, 0.607), (mx - 0.004 * (1 + s), 0.599)], lk.skin_dark, 0.007, part="head")
        mouth = lk.pal["mouth"]
        if pose.mouth_open < 0.12:
            w = 0.02 * mf
            fig.stroke([(mx - w, _MOUTH_Y + 0.004), (mx, _MOUTH_Y - 0.003), (mx + w, _MOUTH_Y + 0.004)],
                       _scale(mouth, 0.7), 0.009, part="mouth")
        else:
            ry = 0.008 + 0.021 * pose.mouth_open
            top = _MOUTH_Y + 0.004
            lip = _arc(mx, top, 0.022 * mf, 2 * ry, math.pi, 2 * math.pi, 12)[1:-1]
            pts = np.concatenate([[(mx - 0.022 * mf, top)], lip,
                                  [(mx + 0.022 * mf, top)]])
            fig.add(pts, mouth, mat="flat", outline=0.55, part="mouth")
            fig.ellipse(mx, top - 1.45 * ry, 0.012 * mf, 0.45 * ry, lk.pal["tongue"], mat="flat", shaded=False,
                        outline=0.0, part="mouth", n=12)
        cap = _hair_cap_front(style, s)
        fig.add(cap, lk.hair, mat="hair", shade=("sph", hx, hy + _HAIR_DY, _HAIR_RX, _HAIR_RY), part="hair")
    else:
        cap = _hair_cap_back(style)
        fig.add(cap, lk.hair, mat="hair", shade=("sph", hx, hy + _HAIR_DY, _HAIR_RX, _HAIR_RY), part="hair")
        fig.stroke([(hx - 0.02, hy + 0.17), (hx - 0.05, hy + 0.06)], lk.hair_dark, 0.008, part="hair")
        fig.stroke([(hx + 0.06, hy + 0.15), (hx + 0.08, hy + 0.02)], lk.hair_dark, 0.008, part="hair")


def _angel_ring(fig: _Figure, lk: _Look) -> None:
    """A flat lighter band across the hair ("2d" only; "3d" gets a specular highlight)."""
    hx, hy = _HEAD_C
    cy = hy + _HAIR_DY
    outer = _arc(hx, cy, _HAIR_RX * 0.86, _HAIR_RY * 0.86, math.radians(128), math.radians(62), 10)
    inner = _arc(hx, cy, _HAIR_RX * 0.74, _HAIR_RY * 0.72, math.radians(66), math.radians(124), 10)
    fig.add(np.concatenate([outer, inner]), lk.hair_light, mat="flat", outline=0.0, part="hair")


def _torso_outline(bx: float, bottom: float, flare: float = 0.0) -> np.ndarray:
    pts = [(-0.065, 0.505), (-0.1, 0.492), (-0.116, 0.462), (-0.098, 0.37), (-0.088, 0.335),
           (-0.098 - flare, bottom), (0.098 + flare, bottom), (0.088, 0.335), (0.098, 0.37), (0.116, 0.462),
           (0.1, 0.492), (0.065, 0.505)]
    p = np.asarray(pts)
    p[:, 0] *= bx
    return p


def _sq(pts: Any, bx: float, dx: float = 0.0) -> np.ndarray:
    p = np.array(pts, dtype=np.float64)
    p[:, 0] = p[:, 0] * bx + dx
    return p


def _outfit_sailor(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    white, blue = lk.pal["white"], lk.outfit
    skirt = _sq([(-0.092, 0.34), (0.092, 0.34), (0.165, 0.165), (-0.165, 0.165)], bx)
    fig.add(skirt, blue, shade=("sph", 0.0, 0.28, 0.17 * bx, 0.2))
    for xf in (-0.5, 0.0, 0.5):
        fig.stroke(_sq([(xf * 0.09, 0.33), (xf * 0.165, 0.172)], bx), lk.outfit_dark, 0.006)
    fig.add(_torso_outline(bx, 0.31), white, shade=("sph", 0.0, 0.41, 0.12 * bx, 0.16))
    if front:
        fig.add(_sq([(-0.104, 0.49), (0.104, 0.49), (0.0, 0.372)], bx, dx), blue, outline=0.8)
        fig.stroke(_sq([(-0.078, 0.478), (0.0, 0.392), (0.078, 0.478)], bx, dx), white, 0.007)
        fig.add(_sq([(-0.036, 0.5), (0.036, 0.5), (0.0, 0.445)], bx, dx), lk.skin, mat="skin", outline=0.6)
        fig.add(_sq([(-0.04, 0.43), (0.04, 0.43), (0.0, 0.35)], bx, dx), lk.accent, outline=0.7)
        fig.ellipse(dx, 0.425, 0.02 * bx, 0.015, lk.accent, outline=0.7, n=14)
    else:
        fig.add(_sq([(-0.094, 0.49), (0.094, 0.49), (0.09, 0.41), (-0.09, 0.41)], bx), blue, outline=0.8)
        fig.stroke(_sq([(-0.07, 0.48), (-0.066, 0.425), (0.066, 0.425), (0.07, 0.48)], bx), white, 0.007)


def _outfit_hoodie(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    body = _sq([(-0.075, 0.505), (-0.112, 0.49), (-0.126, 0.458), (-0.112, 0.3), (-0.118, 0.235), (0.118, 0.235),
                (0.112, 0.3), (0.126, 0.458), (0.112, 0.49), (0.075, 0.505)], bx)
    fig.add(body, lk.outfit, shade=("sph", 0.0, 0.38, 0.13 * bx, 0.19))
    fig.add(_sq([(-0.118, 0.262), (0.118, 0.262), (0.118, 0.235), (-0.118, 0.235)], bx), lk.outfit_dark, outline=0.6)
    if front:
        fig.add(_sq([(-0.078, 0.505), (-0.058, 0.462), (0.0, 0.45), (0.058, 0.462), (0.078, 0.505), (0.05, 0.52),
                     (-0.05, 0.52)], bx, dx), lk.outfit_dark, outline=0.7)
        fig.add(_sq([(-0.064, 0.335), (0.064, 0.335), (0.08, 0.272), (-0.08, 0.272)], bx, dx), lk.outfit_dark, outline=0.6)
        for side in (-1, 1):
            fig.stroke(_sq([(side * 0.022, 0.46), (side * 0.026, 0.39)], bx, dx), lk.accent, 0.008)
            fig.ellipse(side * 0.026 * bx + dx, 0.386, 0.008, 0.01, lk.accent, mat="flat", shaded=False, outline=0.4, n=10)
    else:
        fig.ellipse(0.0, 0.46, 0.09 * bx, 0.055, lk.outfit_dark, outline=0.7, n=20)


def _outfit_kimono(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    robe = _sq([(-0.096, 0.35), (0.096, 0.35), (0.128, 0.05), (-0.128, 0.05)], bx)
    fig.add(robe, lk.outfit, shade=("sph", 0.0, 0.22, 0.14 * bx, 0.3))
    fig.add(_torso_outline(bx, 0.33), lk.outfit, shade=("sph", 0.0, 0.41, 0.12 * bx, 0.16))
    if front:
        fig.stroke(_sq([(0.03, 0.35), (0.07, 0.055)], bx, dx), lk.outfit_dark, 0.007)
        for (x, y) in ((-0.06, 0.24), (0.06, 0.14), (-0.03, 0.1), (0.075, 0.28)):
            fig.ellipse(x * bx + dx, y, 0.016, 0.016, lk.accent, mat="flat", shaded=False, outline=0.4, n=5)
        fig.stroke(_sq([(0.046, 0.505), (0.0, 0.42)], bx, dx), lk.pal["white"], 0.02)
        fig.stroke(_sq([(-0.046, 0.505), (0.03, 0.385)], bx, dx), lk.pal["white"], 0.022)
    fig.add(_sq([(-0.1, 0.398), (0.1, 0.398), (0.1, 0.328), (-0.1, 0.328)], bx), lk.accent, outline=0.8,
            shade=("cyl", 0.0, 0.398, 0.0, 0.328, 0.1 * bx))
    fig.stroke(_sq([(-0.1, 0.363), (0.1, 0.363)], bx), lk.pal["white"], 0.008)
    if not front:
        for side in (-1, 1):
            fig.ellipse(side * 0.05 * bx, 0.365, 0.05 * bx, 0.035, lk.accent, outline=0.8, n=18)


def _outfit_jacket(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    fig.add(_torso_outline(bx, 0.25, 0.01), lk.outfit, shade=("sph", 0.0, 0.38, 0.12 * bx, 0.18))
    if front:
        fig.add(_sq([(-0.042, 0.502), (0.042, 0.502), (0.03, 0.255), (-0.03, 0.255)], bx, dx), lk.accent, outline=0.6)
        fig.add(_sq([(-0.022, 0.47), (0.022, 0.47), (0.012, 0.36), (0.0, 0.345), (-0.012, 0.36)], bx, dx),
                lk.pal["outline"], mat="cloth", outline=0.0)
        for side in (-1, 1):
            fig.add(_sq([(side * 0.042, 0.502), (side * 0.08, 0.47), (side * 0.05, 0.44), (side * 0.034, 0.39)], bx, dx),
                    lk.outfit_dark, outline=0.6)
        for y in (0.33, 0.285):
            fig.ellipse(-0.045 * bx + dx, y, 0.009, 0.009, lk.outfit_dark, mat="flat", shaded=False, outline=0.4, n=10)
    else:
        fig.stroke(_sq([(0.0, 0.49), (0.0, 0.26)], bx), lk.outfit_dark, 0.006)


def _outfit_dress(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    hem = [(x, 0.165 + 0.012 * math.cos(i * math.pi)) for i, x in enumerate(np.linspace(0.19, -0.19, 9))]
    skirt = _sq([(-0.086, 0.345), (0.086, 0.345)] + hem, bx)
    fig.add(skirt, lk.outfit, shade=("sph", 0.0, 0.3, 0.2 * bx, 0.22))
    fig.stroke(_sq([(x, y + 0.014) for x, y in hem[::-1]], bx), lk.pal["white"], 0.016)
    fig.add(_torso_outline(bx, 0.33), lk.outfit, shade=("sph", 0.0, 0.41, 0.12 * bx, 0.16))
    fig.add(_sq([(-0.092, 0.355), (0.092, 0.355), (0.09, 0.328), (-0.09, 0.328)], bx), lk.accent, outline=0.6)
    if front:
        for side in (-1, 1):
            fig.ellipse(side * 0.032 * bx + dx, 0.492, 0.034 * bx, 0.02, lk.pal["white"], outline=0.6, n=16)
        for side in (-1, 1):
            fig.add(_sq([(0.0, 0.44), (side * 0.05, 0.468), (side * 0.052, 0.412)], bx, dx), lk.accent, outline=0.7)
        fig.ellipse(dx, 0.44, 0.015, 0.015, lk.accent, outline=0.7, n=12)
    else:
        for side in (-1, 1):
            fig.add(_sq([(0.0, 0.342), (side * 0.06, 0.372), (side * 0.062, 0.31)], bx), lk.accent, outline=0.7)


def _outfit_armor(fig: _Figure, lk: _Look, bx: float, front: bool, dx: float) -> None:
    metal = lk.pal["metal"]
    fig.add(_sq([(-0.1, 0.34), (0.1, 0.34), (0.125, 0.19), (-0.125, 0.19)], bx), lk.outfit,
            shade=("sph", 0.0, 0.27, 0.13 * bx, 0.16))
    for xf in (-0.45, 0.0, 0.45):
        fig.stroke(_sq([(xf * 0.1, 0.33), (xf * 0.125, 0.195)], bx), lk.outfit_dark, 0.006)
    fig.add(_torso_outline(bx, 0.32), lk.outfit, shade=("sph", 0.0, 0.41, 0.12 * bx, 0.16))
    plate = _sq([(-0.092, 0.488), (0.092, 0.488), (0.086, 0.37), (0.0, 0.338), (-0.086, 0.37)], bx, dx if front else 0.0)
    fig.add(plate, metal, mat="metal", shade=("sph", dx, 0.42, 0.1 * bx, 0.1))
    if front:
        fig.stroke(_sq([(-0.08, 0.47), (0.0, 0.455), (0.08, 0.47)], bx, dx), lk.accent, 0.01)
        fig.ellipse(dx, 0.405, 0.022 * bx, 0.022, lk.accent, mat="metal", outline=0.6, n=16)
    fig.add(_sq([(-0.102, 0.348), (0.102, 0.348), (0.102, 0.312), (-0.102, 0.312)], bx), lk.pal["leather"], outline=0.7)
    buckle = _sq([(-0.018, 0.352), (0.018, 0.352), (0.018, 0.308), (-0.018, 0.308)], bx, dx)
    fig.add(buckle, lk.accent, mat="metal", outline=0.6)


_OUTFITS: dict[str, Callable[[_Figure, _Look, float, bool, float], None]] = {
    "sailor_uniform": _outfit_sailor,
    "hoodie": _outfit_hoodie,
    "kimono": _outfit_kimono,
    "jacket": _outfit_jacket,
    "dress": _outfit_dress,
    "armor": _outfit_armor,
}

# Hair shapes: fringe tips / root / tip heights (relative to the head centre), side locks.
_HAIR_STYLES: dict[str, dict[str, Any]] = {
    "spiky": {"spikes": 8, "spike_len": 0.26, "tips": 4, "root": 0.105, "tip": 0.0, "slant": 0.5, "lock": -0.075,
              "nape": -0.1},
    "short": {"tips": 5, "root": 0.095, "tip": 0.028, "slant": 0.0, "lock": -0.065, "nape": -0.1},
    "bob": {"tips": 9, "root": 0.058, "tip": 0.03, "slant": 0.0, "lock": -0.175, "lock_out": 0.25, "lock_in": 0.172,
            "round_lock": True, "wide": 1.05, "nape": -0.17},
    "long": {"tips": 4, "root": 0.1, "tip": 0.0, "slant": 0.0, "parted": True, "lock": -0.34, "lock_out": 0.24,
             "nape": -0.14},
    "twin_tails": {"tips": 5, "root": 0.1, "tip": 0.02, "slant": 0.0, "lock": -0.09, "nape": -0.12},
    "ponytail": {"tips": 4, "root": 0.11, "tip": 0.012, "slant": 0.8, "lock": -0.05, "nape": -0.09},
}


def _draw_arm(fig: _Figure, lk: _Look, side: int, c: float, angles: tuple[float, float]) -> np.ndarray:
    """Draw one arm in the current frame; return its hand centre (figure-frame coordinates)."""
    sh = np.array([side * _SHOULDER_X * c, _SHOULDER_Y])
    elbow = sh + _UPPER_ARM * _dir(angles[0])
    fd = _dir(angles[1])
    wrist = elbow + _FOREARM * fd
    hand = wrist + 0.5 * _HAND_R * fd
    sleeve = lk.pal["white"] if lk.ch.outfit_style == "sailor_uniform" else lk.outfit
    metal = lk.pal["metal"]
    if lk.sleeves == "short":
        fig.limb(sh, elbow, 0.034, 0.029, sleeve)
        fig.limb(elbow, wrist, 0.027, 0.023, lk.skin, mat="skin")
        fig.limb(sh + 0.75 * (elbow - sh), elbow, 0.031, 0.030, lk.outfit, outline=0.7)
    elif lk.sleeves == "puff":
        fig.limb(sh, elbow, 0.027, 0.025, lk.skin, mat="skin")
        fig.limb(elbow, wrist, 0.025, 0.022, lk.skin, mat="skin")
        fig.ellipse(*(sh + 0.3 * (elbow - sh)), 0.045, 0.04, lk.outfit, n=18)
    elif lk.sleeves == "wide":
        fig.limb(sh, elbow, 0.034, 0.034, lk.outfit)
        fig.ellipse(*hand, _HAND_R, _HAND_R, lk.skin, mat="skin", n=16)
        fig.limb(elbow, wrist - 0.2 * _FOREARM * fd, 0.036, 0.05, lk.outfit)
        return hand
    else:
        fig.limb(sh, elbow, 0.033, 0.029, lk.outfit)
        if lk.ch.outfit_style == "armor":
            fig.limb(elbow, wrist, 0.03, 0.028, metal, mat="metal")
        else:
            fig.limb(elbow, wrist, 0.029, 0.026, lk.outfit)
            fig.limb(wrist - 0.25 * _FOREARM * fd, wrist, 0.027, 0.027, lk.outfit_dark, outline=0.7)
    fig.ellipse(*hand, _HAND_R, _HAND_R, lk.skin, mat="skin", n=16)
    if lk.ch.outfit_style == "armor":
        fig.ellipse(*(sh + (0.0, 0.005)), 0.05, 0.038, metal, mat="metal", n=18)
    return hand


def _draw_leg(fig: _Figure, lk: _Look, side: int, c: float, angles: tuple[float, float], facing: int,
              s: float) -> np.ndarray:
    """Draw one leg in the current frame; return its foot centre."""
    hip = np.array([side * _HIP_X * c, _HIP_Y])
    knee = hip + _THIGH * _dir(angles[0])
    ankle = knee + _SHIN * _dir(angles[1])
    thigh_rgb = lk.skin if lk.legs == "skin" else lk.pal["pants"]
    mat = "skin" if lk.legs == "skin" else "cloth"
    shin_rgb = lk.socks if lk.socks is not None else thigh_rgb
    if lk.ch.outfit_style == "armor":
        shin_rgb, shin_mat = lk.pal["metal"], "metal"
    else:
        shin_mat = "cloth" if lk.socks is not None else mat
    foot = ankle + (0.014 * facing * abs(s), 0.0)
    fig.ellipse(foot[0], foot[1], 0.036 + 0.012 * abs(s), _FOOT_RY, lk.shoes, n=18)
    fig.limb(knee, ankle + (0.0, 0.008), 0.032, 0.026, shin_rgb, mat=shin_mat)
    fig.limb(hip, knee, 0.04, 0.033, thigh_rgb, mat=mat)
    return foot


def _build_figure(lk: _Look, pose: _Pose, style3d: bool) -> tuple[list[_Shape], dict[str, np.ndarray]]:
    """The frame's shapes in draw order and its keypoints, in figure units."""
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    front = c >= 0.0
    bx = 0.6 + 0.4 * abs(c)
    dx = 0.035 * s
    lift = pose.lift
    if pose.plant:
        drop = max(_THIGH * math.cos(a[0]) + _SHIN * math.cos(a[1]) for a in (pose.leg_r, pose.leg_l))
        lift += (_THIGH + _SHIN) - drop
    sy = pose.squash
    m_root = _translate(0.0, lift) @ _affine(1.0 / math.sqrt(sy), 0.0, 0.0, sy)
    hip_c = (0.0, _HIP_Y)
    m_up = m_root @ _translate(0.0, pose.bob) @ _rotate(pose.lean, hip_c)
    m_head = m_up @ _rotate(pose.tilt, _NECK)
    fig = _Figure()
    keypoints: dict[str, np.ndarray] = {}

    def apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
        return m[:2, :2] @ p + m[:2, 2]

    # Ground shadow (not lifted): smaller while airborne.
    shrink = 1.0 - 0.45 * min(1.0, pose.lift / 0.3)
    fig.use(np.eye(3), "shadow")
    shadow = lk.pal["shadow"]
    if style3d:
        for f, alpha in ((1.3, 0.10), (1.05, 0.18), (0.8, 0.26)):
            fig.ellipse(0.0, 0.004, 0.17 * shrink * f, 0.032 * shrink * f, shadow, mat="flat", shaded=False,
                        outline=0.0, alpha=alpha, body=False, n=28)
    else:
        fig.ellipse(0.0, 0.004, 0.17 * shrink, 0.032 * shrink, shadow, mat="flat", shaded=False, outline=0.0,
                    alpha=0.3, body=False, n=28)

    jobs: list[tuple[float, Callable[[], None]]] = []
    style_name = lk.ch.hair_style
    hair_xs = (0.55 + 0.45 * abs(c)) * (1.0 if front else -1.0)

    def back_hair() -> None:
        fig.use(m_head, "hair")
        _hair_back_layer(fig, lk, style_name, hair_xs, -0.1 * s)

    jobs.append((-50.0 if front else 50.0, back_hair))

    def leg(side: int, angles: tuple[float, float], name: str) -> Callable[[], None]:
        def draw() -> None:
            fig.use(m_root, name)
            keypoints[name.replace("leg", "foot")] = apply(m_root, _draw_leg(fig, lk, side, c, angles, pose.facing, s))
        return draw

    for side, angles, name in ((-1, pose.leg_r, "right_leg"), (1, pose.leg_l, "left_leg")):
        jobs.append((-20.0 - side * 0.05 * s, leg(side, angles, name)))

    def arm(side: int, angles: tuple[float, float], name: str) -> Callable[[], None]:
        def draw() -> None:
            fig.use(m_up, name)
            keypoints[name.replace("arm", "hand")] = apply(m_up, _draw_arm(fig, lk, side, c, angles))
        return draw

    for side, angles, name in ((-1, pose.arm_r, "right_arm"), (1, pose.arm_l, "left_arm")):
        depth = -side * 0.1 * s
        raised = _dir(angles[0])[1] * _UPPER_ARM + _dir(angles[1])[1] * _FOREARM > 0.0
        z = (40.0 if raised else 10.0) + depth if depth > -0.03 else -10.0 + depth
        jobs.append((z, arm(side, angles, name)))

    def torso() -> None:
        fig.use(m_up, "torso")
        fig.add(_sq([(-0.03, 0.46), (0.03, 0.46), (0.03, 0.54), (-0.03, 0.54)], 1.0), lk.skin, mat="skin",
                shade=("cyl", 0.0, 0.46, 0.0, 0.54, 0.03))
        _OUTFITS[lk.ch.outfit_style](fig, lk, bx, front, dx)

    jobs.append((0.0, torso))

    def head() -> None:
        fig.use(m_head, "head")
        _draw_head(fig, lk, pose, c, s)
        if not style3d and front:
            _angel_ring(fig, lk)
        keypoints["head"] = apply(m_head, np.array(_HEAD_C))

    jobs.append((30.0, head))
    for _, job in sorted(jobs, key=lambda j: j[0]):
        job()
    return fig.shapes, keypoints


# --------------------------------------------------------------------------- rasteriser


def _supersample(height: int) -> int:
    return int(min(4, max(2, round(384 / height))))


@dataclass
class _Layer:
    x0: int
    y0: int
    premult: np.ndarray     # (h, w, 4) float32: rgb * alpha, alpha
    silhouette: np.ndarray  # (h, w) bool: moving parts
    box: tuple[int, int, int, int] | None  # body bounding box, frame pixels (x0, y0, x1, y1), exclusive


def _rasterise(shapes: list[_Shape], k: float, ox: float, oy: float, ss: int, width: int, height: int,
               style3d: bool, moving: frozenset[str] | None, outline_rgb: Sequence[float]) -> _Layer | None:
    """Draw shapes (figure units; screen = (ox + x k, oy - y k)) into a premultiplied layer."""
    screen = [sh.pts * (k, -k) + (ox, oy) for sh in shapes]
    allp = np.concatenate(screen)
    pad = 2.0 + k * max([_OUTLINE] + [sh.width for sh in shapes])
    x0 = max(0, int(math.floor(allp[:, 0].min() - pad)))
    x1 = min(width, int(math.ceil(allp[:, 0].max() + pad)))
    y0 = max(0, int(math.floor(allp[:, 1].min() - pad)))
    y1 = min(height, int(math.ceil(allp[:, 1].max() + pad)))
    if x1 <= x0 or y1 <= y0:
        return None
    w, h = x1 - x0, y1 - y0
    idx = np.zeros((h * ss, w * ss), np.uint16)
    off = np.array([x0 * ss - 0.5 * ss + 0.5, y0 * ss - 0.5 * ss + 0.5])
    rgb: list[Sequence[float]] = [(0.0, 0.0, 0.0)]
    alpha: list[float] = [0.0]
    mov: list[int] = [0]
    body: list[bool] = [False]
    shade: list[tuple] = [(0.0,) * 10]
    flat_row = (0.0,) * 10
    line_k = k * ss

    def entry(colour: Sequence[float], a: float, sh: _Shape, row: tuple) -> int:
        rgb.append(colour)
        alpha.append(a)
        mov.append(255 if moving is None or sh.part in moving else 0)
        body.append(sh.body)
        shade.append(row)
        return len(rgb) - 1

    for sh, pts in zip(shapes, screen):
        ip = np.rint((pts * ss - off) * 16.0).astype(np.int32)
        row = flat_row
        if style3d and sh.mat != "flat":
            amb, dif, spec, shin = _MATERIALS[sh.mat]  # type: ignore[misc]
            if sh.shade is not None:
                cx, cy, ex, ey, r1, r2 = sh.shade
                scx, scy = (ox + cx * k) * ss - off[0], (oy - cy * k) * ss - off[1]
                row = (scx, scy, ex, -ey, 1.0 / (r1 * line_k), 0.0 if math.isinf(r2) else 1.0 / (r2 * line_k),
                       amb, dif, spec, shin)
            else:
                row = (0.0, 0.0, 1.0, 0.0, 0.0, 0.0, amb, dif, spec, shin)
        fid = entry(sh.rgb, sh.alpha, sh, row)
        if sh.width > 0.0:
            thick = max(1, int(round(sh.width * line_k)))
            cv2.polylines(idx, [ip], sh.closed, fid, thick, cv2.LINE_8, 4)
        else:
            cv2.fillPoly(idx, [ip], fid, cv2.LINE_8, 4)
            if not style3d and sh.outline > 0.0:
                oid = entry(outline_rgb, 1.0, sh, flat_row)
                thick = max(1, int(round(_OUTLINE * sh.outline * line_k)))
                cv2.polylines(idx, [ip], True, oid, thick, cv2.LINE_8, 4)
    rgb_t = np.asarray(rgb, np.float32)
    alpha_t = np.asarray(alpha, np.float32)
    # Planar look-ups (np.take on one column at a time is far faster than row gathers).
    planes = [np.take(np.ascontiguousarray(rgb_t[:, c] * alpha_t), idx) for c in range(3)]
    planes.append(np.take(alpha_t, idx))
    if style3d:
        _shade(idx.reshape(-1), idx.shape[1], np.asarray(shade, np.float32), rgb_t, [p.reshape(-1) for p in planes[:3]])
    small = np.dstack([cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA) for p in planes])
    sil = cv2.resize(np.take(np.asarray(mov, np.uint8), idx), (w, h), interpolation=cv2.INTER_AREA) > 0
    body_px = np.take(np.asarray(body, bool), idx)
    rows, cols = np.flatnonzero(body_px.any(axis=1)), np.flatnonzero(body_px.any(axis=0))
    box = None
    if rows.size:
        box = (x0 + cols[0] // ss, y0 + rows[0] // ss, x0 + (cols[-1] + ss) // ss, y0 + (rows[-1] + ss) // ss)
    return _Layer(x0, y0, small, sil, box)


def _shade(flat_idx: np.ndarray, width: int, shade_t: np.ndarray, rgb_t: np.ndarray, planes: list[np.ndarray]) -> None:
    """Deferred "3d" shading of every lit pixel, written into the flat r, g, b ``planes``.

    ``flat_idx`` is the raveled index buffer, ``width`` its row length.
    Each ``shade_t`` row holds a normal model in supersampled ROI pixels: centre (cx, cy),
    unit axis e1 (e2 is its perpendicular), inverse radii along e1 and e2 (0: flat in that
    direction), then ambient, diffuse, specular strength and shininess. The screen-space
    normal (nx, ny) is an affine function of the pixel position, so it is folded into
    per-shape coefficients first. Lit shapes are opaque, so their planes hold plain RGB.
    """
    sel = np.flatnonzero(np.take(shade_t[:, 6] > 0.0, flat_idx))
    if not sel.size:
        return
    cx, cy, ex, ey, ir1, ir2 = (shade_t[:, j].astype(np.float64) for j in range(6))
    m00 = ex * ex * ir1 + ey * ey * ir2
    m01 = ex * ey * (ir1 - ir2)
    m11 = ey * ey * ir1 + ex * ex * ir2
    coef = [np.ascontiguousarray(c, dtype=np.float32)
            for c in (m00, m01, -(cx * m00 + cy * m01), m11, -(cx * m01 + cy * m11))]
    ids = np.take(flat_idx, sel).astype(np.intp)
    ys = sel // width
    xs = (sel - ys * width).astype(np.float32)
    ys = ys.astype(np.float32)
    c01 = np.take(coef[1], ids)
    nx = xs * np.take(coef[0], ids) + ys * c01 + np.take(coef[2], ids)
    ny = xs * c01 + ys * np.take(coef[3], ids) + np.take(coef[4], ids)
    q = nx * nx + ny * ny
    inv = 1.0 / np.sqrt(np.maximum(q, 1.0))
    nx *= inv
    ny *= inv
    nz = np.sqrt(np.maximum(1.0 - q, 0.0))
    lx, ly, lz = (float(v) for v in _LIGHT)
    hx, hy, hz = (float(v) for v in _HALF)
    diffuse = np.maximum(nx * lx + ny * ly + nz * lz, 0.0)
    amb, dif = np.ascontiguousarray(shade_t[:, 6]), np.ascontiguousarray(shade_t[:, 7])
    gain = (np.take(amb, ids) + np.take(dif, ids) * diffuse) * (0.72 + 0.28 * nz)
    ndh = nx * hx + ny * hy + nz * hz
    ks = np.ascontiguousarray(shade_t[:, 8])
    hot = np.flatnonzero((ndh > 0.75) & (np.take(ks, ids) > 0.0))
    spec = None
    if hot.size:
        hid = ids[hot]
        spec = 255.0 * np.take(ks, hid) * np.power(ndh[hot], np.take(np.ascontiguousarray(shade_t[:, 9]), hid))
    for c, plane in enumerate(planes):
        value = np.take(np.ascontiguousarray(rgb_t[:, c]), ids) * gain
        if spec is not None:
            value[hot] += spec
        plane[sel] = np.minimum(value, 255.0)


def _composite(frame: np.ndarray, layer: _Layer) -> None:
    h, w = layer.premult.shape[:2]
    region = frame[layer.y0:layer.y0 + h, layer.x0:layer.x0 + w]
    out = region.astype(np.float32) * (1.0 - layer.premult[..., 3:4]) + layer.premult[..., :3]
    region[...] = np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- backgrounds


class _Canvas:
    """A supersampled background canvas in frame-relative coordinates.

    ``u`` is x / width, ``v`` is y / height; lengths (radii, widths) are in frame heights.
    The canvas covers world pixels [``xa``, ``xb``) horizontally; every element is placed
    in world coordinates, so a wider canvas (for panning) contains the static one.
    """

    def __init__(self, width: int, height: int, ss: int, xa: int, xb: int, style3d: bool, outline_rgb: Sequence[float]):
        self.W, self.H, self.ss, self.xa = width, height, ss, xa
        self.style3d = style3d
        self.outline_rgb = tuple(float(v) for v in outline_rgb)
        self.img = np.zeros((height * ss, (xb - xa) * ss, 3), np.uint8)
        self.outline_px = max(1, int(round(0.008 * height * ss)))

    def to_ss(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, dtype=np.float64)
        x = (uv[:, 0] * self.W - self.xa + 0.5) * self.ss - 0.5
        y = (uv[:, 1] * self.H + 0.5) * self.ss - 0.5
        return np.stack([x, y], axis=1)

    def sky(self, top: Sequence[float], bottom: Sequence[float], bands: int = 4, v0: float = 0.0, v1: float = 1.0) -> None:
        rows = self.img.shape[0]
        v = (np.arange(rows) + 0.5) / rows
        t = np.clip((v - v0) / max(1e-6, v1 - v0), 0.0, 1.0)
        if not self.style3d:
            t = np.minimum(np.floor(t * bands), bands - 1) / max(1, bands - 1)
        col = (np.asarray(top, np.float32)[None, :] * (1.0 - t[:, None])
               + np.asarray(bottom, np.float32)[None, :] * t[:, None])
        sel = (v >= v0) & (v <= v1)
        self.img[sel] = np.rint(col[sel])[:, None, :].astype(np.uint8)

    def poly(self, uv: Any, rgb: Sequence[float], *, outline: float = 1.0, shade: float = 0.35,
             light: tuple[float, float] = (-0.35, -0.94)) -> None:
        pts = self.to_ss(uv)
        ip = np.rint(pts * 16.0).astype(np.int32)
        colour = tuple(float(c) for c in rgb)
        if not self.style3d:
            cv2.fillPoly(self.img, [ip], colour, cv2.LINE_AA, 4)
            if outline > 0.0:
                cv2.polylines(self.img, [ip], True, self.outline_rgb, max(1, int(round(self.outline_px * outline))),
                              cv2.LINE_AA, 4)
            return
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        bx0, by0 = max(0, int(math.floor(lo[0])) - 1), max(0, int(math.floor(lo[1])) - 1)
        bx1 = min(self.img.shape[1], int(math.ceil(hi[0])) + 2)
        by1 = min(self.img.shape[0], int(math.ceil(hi[1])) + 2)
        if bx1 <= bx0 or by1 <= by0:
            return
        mask = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
        cv2.fillPoly(mask, [ip - np.array([bx0, by0], np.int32) * 16], 255, cv2.LINE_AA, 4)
        cover = mask.astype(np.float32)[..., None] / 255.0
        lx, ly = light
        span = abs(lx) * (hi[0] - lo[0]) + abs(ly) * (hi[1] - lo[1]) + 1e-6
        xs = np.arange(bx0, bx1, dtype=np.float32)[None, :]
        ys = np.arange(by0, by1, dtype=np.float32)[:, None]
        ref_x = lo[0] if lx < 0 else hi[0]
        ref_y = lo[1] if ly < 0 else hi[1]
        t = np.clip(((xs - ref_x) * -lx + (ys - ref_y) * -ly) / span, 0.0, 1.0)  # 0 on the lit side
        gain = (1.0 + shade * (0.5 - t))[..., None]
        col = np.clip(np.asarray(colour, np.float32) * gain, 0.0, 255.0)
        region = self.img[by0:by1, bx0:bx1]
        region[...] = np.rint(region * (1.0 - cover) + col * cover).astype(np.uint8)

    def ellipse(self, u: float, v: float, rx: float, ry: float, rgb: Sequence[float], n: int = 32, **kw: Any) -> None:
        pts = _circle(n) * (rx * self.H / self.W, ry) + (u, v)
        kw.setdefault("light", (-0.6, -0.8))
        self.poly(pts, rgb, **kw)

    def rect(self, u0: float, v0: float, u1: float, v1: float, rgb: Sequence[float], **kw: Any) -> None:
        self.poly([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], rgb, **kw)

    def line(self, uv: Any, rgb: Sequence[float], width: float, closed: bool = False) -> None:
        ip = np.rint(self.to_ss(uv) * 16.0).astype(np.int32)
        cv2.polylines(self.img, [ip], closed, tuple(float(c) for c in rgb),
                      max(1, int(round(width * self.H * self.ss))), cv2.LINE_AA, 4)

    def blobs(self, circles: Sequence[tuple[float, float, float]], rgb: Sequence[float], shade: float = 0.35,
              outline: float = 1.0) -> None:
        """A union of circles (clouds, canopies) with one outline around the union."""
        if not self.style3d and outline > 0.0:
            for u, v, r in circles:
                self.ellipse(u, v, r + 0.5 * self.outline_px * outline / (self.H * self.ss), r + 0.5 * self.outline_px
                             * outline / (self.H * self.ss), self.outline_rgb, outline=0.0)
        for u, v, r in circles:
            self.ellipse(u, v, r, r, rgb, outline=0.0, shade=shade)

    def finish(self) -> np.ndarray:
        if self.style3d:
            sigma = 0.0022 * self.H * self.ss
            self.img = cv2.GaussianBlur(self.img, (0, 0), sigma)
        return self.img


def _hills(phase: float, base: float, amp1: float, amp2: float, f1: float = 1.3, f2: float = 2.9) -> np.ndarray:
    u = np.linspace(-0.8, 1.8, 90)
    v = base + amp1 * np.sin(2 * math.pi * (u * f1 + phase)) + amp2 * np.sin(2 * math.pi * (u * f2 + 0.37 + phase))
    return np.concatenate([np.stack([u, v], axis=1), [(1.8, 1.05), (-0.8, 1.05)]])


def _hill_v(u: float, phase: float, base: float, amp1: float, amp2: float, f1: float = 1.3, f2: float = 2.9) -> float:
    return base + amp1 * math.sin(2 * math.pi * (u * f1 + phase)) + amp2 * math.sin(2 * math.pi * (u * f2 + 0.37 + phase))


def _spread(rng: np.random.Generator, n: int, lo: float = -0.75, hi: float = 1.75) -> np.ndarray:
    """n positions spread evenly over [lo, hi) with jitter."""
    step = (hi - lo) / n
    return lo + step * (np.arange(n) + rng.uniform(0.15, 0.85, n))


def _paint_sunny_hills(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["sky_top"], col["sky_bottom"], 4, 0.0, 0.7)
    cv.ellipse(0.82, 0.16, 0.075, 0.075, col["sun"], shade=0.25)
    for u in _spread(rng, 7):
        v = rng.uniform(0.08, 0.3)
        r = rng.uniform(0.04, 0.06)
        cv.blobs([(u - 0.06, v + 0.01, r * 0.8), (u, v - 0.012, r), (u + 0.06, v + 0.008, r * 0.85),
                  (u + 0.02, v + 0.02, r * 0.8)], col["cloud"], shade=0.3)
    cv.poly(_hills(0.1, 0.6, 0.05, 0.025), col["hill_far"], shade=0.3)
    for u in _spread(rng, 10):
        v = _hill_v(u, 0.1, 0.6, 0.05, 0.025) + 0.01
        cv.rect(u - 0.007, v - 0.06, u + 0.007, v, col["trunk"], outline=0.6)
        cv.blobs([(u, v - 0.085, 0.04), (u - 0.02, v - 0.06, 0.03), (u + 0.02, v - 0.06, 0.03)], col["leaf"],
                 outline=0.6)
    cv.poly(_hills(0.55, 0.75, 0.025, 0.01, 0.9, 2.1), col["hill_near"], shade=0.25)
    flowers = (col["flower_a"], col["flower_b"], col["flower_c"])
    for u in _spread(rng, 46):
        v = rng.uniform(0.8, 0.99)
        if rng.random() < 0.5:
            cv.line([(u - 0.01, v), (u, v - 0.025), (u + 0.004, v), (u + 0.012, v - 0.02)], col["grass_dark"], 0.004)
        else:
            cv.ellipse(u, v, 0.009, 0.009, flowers[int(rng.integers(3))], outline=0.4, shade=0.2, n=12)


def _paint_dusk_city(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["sky_top"], col["sky_bottom"], 5, 0.0, 0.8)
    cv.ellipse(0.3, 0.6, 0.14, 0.14, col["sun"], shade=0.2, outline=0.0)
    u = -0.8
    while u < 1.8:
        w = rng.uniform(0.06, 0.12)
        top = rng.uniform(0.28, 0.5)
        cv.rect(u, top, u + w, 0.85, col["far_building"], outline=0.6, shade=0.25)
        u += w + rng.uniform(0.0, 0.03)
    u = -0.8
    while u < 1.8:
        w = rng.uniform(0.1, 0.18)
        top = rng.uniform(0.4, 0.6)
        cv.rect(u, top, u + w, 0.85, col["near_building"], shade=0.3)
        nx = max(1, int(w / 0.035))
        for i in range(nx):
            for j in range(int((0.8 - top) / 0.06)):
                on = rng.random() < 0.55
                wu = u + (i + 0.3) * w / nx
                wv = top + 0.035 + j * 0.06
                cv.rect(wu, wv, wu + 0.4 * w / nx, wv + 0.028, col["window_on" if on else "window_off"], outline=0.0,
                        shade=0.2)
        u += w + rng.uniform(0.01, 0.05)
    cv.rect(-0.8, 0.8, 1.8, 0.86, col["sidewalk"], shade=0.2)
    cv.rect(-0.8, 0.86, 1.8, 1.05, col["street"], outline=0.0, shade=0.25)
    for u in np.arange(-0.8, 1.8, 0.16):
        cv.rect(u, 0.935, u + 0.08, 0.95, col["stripe"], outline=0.0, shade=0.0)
    for u in np.arange(-0.65, 1.8, 0.45) + rng.uniform(-0.05, 0.05):
        cv.line([(u, 0.82), (u, 0.5), (u + 0.03, 0.49)], col["near_building"], 0.008)
        cv.ellipse(u + 0.035, 0.5, 0.014, 0.014, col["lamp"], outline=0.5, n=16)


def _paint_classroom(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["wall_top"], col["wall_bottom"], 3, 0.0, 0.78)
    period = 0.8
    for k in range(-2, 4):
        u0 = k * period - 0.06
        cv.rect(u0 + 0.02, 0.14, u0 + 0.44, 0.52, col["board_frame"], shade=0.2)
        cv.rect(u0 + 0.035, 0.16, u0 + 0.425, 0.5, col["board"], outline=0.6, shade=0.25)
        for j in range(3):
            y = 0.22 + j * 0.08 + rng.uniform(-0.01, 0.01)
            x = u0 + 0.06 + rng.uniform(0.0, 0.04)
            length = rng.uniform(0.15, 0.3)
            xs = np.linspace(x, x + length, 14)
            ys = y + 0.012 * np.sin(xs * rng.uniform(120, 200))
            cv.line(np.stack([xs, ys], axis=1), col["chalk"], 0.005)
        cv.ellipse(u0 + 0.36, 0.42, 0.03, 0.03, col["chalk"], outline=0.0, shade=0.0, n=20)
        cv.ellipse(u0 + 0.36, 0.42, 0.022, 0.022, col["board"], outline=0.0, shade=0.0, n=20)
        wx = u0 + 0.52
        cv.rect(wx, 0.1, wx + 0.22, 0.6, col["window_frame"], shade=0.15)
        for i in range(2):
            for j in range(2):
                cv.rect(wx + 0.015 + i * 0.1, 0.12 + j * 0.235, wx + 0.105 + i * 0.1, 0.345 + j * 0.235,
                        col["window_sky"], outline=0.6, shade=0.4)
        cv.blobs([(wx + 0.07, 0.2, 0.02), (wx + 0.1, 0.19, 0.025), (wx + 0.13, 0.2, 0.02)], col["window_frame"],
                 outline=0.0)
        for side, x in ((-1, wx), (1, wx + 0.22)):
            cv.poly([(x - side * 0.0, 0.08), (x + side * 0.05, 0.08), (x + side * 0.035, 0.35), (x + side * 0.06, 0.62),
                     (x - side * 0.01, 0.62)], col["curtain"], shade=0.3)
        cv.ellipse(u0 + 0.23, 0.07, 0.04, 0.04, col["clock"], n=28)
        cv.line([(u0 + 0.23, 0.07), (u0 + 0.23, 0.045)], col["trim"], 0.005)
        cv.line([(u0 + 0.23, 0.07), (u0 + 0.25, 0.075)], col["trim"], 0.005)
        poster = col["poster_a"] if k % 2 else col["poster_b"]
        pv = rng.uniform(0.2, 0.3)
        cv.rect(u0 - 0.045, pv, u0 + 0.0, pv + 0.12, poster, outline=0.6)
    cv.rect(-0.8, 0.76, 1.8, 0.79, col["trim"], shade=0.3)
    cv.rect(-0.8, 0.79, 1.8, 1.05, col["floor"], outline=0.0, shade=0.3)
    for j, v in enumerate((0.84, 0.9, 0.97)):
        cv.line([(-0.8, v), (1.8, v)], col["floor_line"], 0.004)
        start = -0.8 + rng.uniform(0.0, 0.2)
        for u in np.arange(start, 1.8, 0.22):
            cv.line([(u, v), (u - 0.01, v + (0.06 if j < 2 else 0.08))], col["floor_line"], 0.004)


def _paint_night_sky(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["sky_top"], col["sky_bottom"], 5, 0.0, 0.8)
    for u in _spread(rng, 90):
        v = rng.uniform(0.02, 0.62)
        r = rng.uniform(0.003, 0.008)
        cv.ellipse(u, v, r, r, col["star"], outline=0.0, shade=0.0, n=8)
    for u in _spread(rng, 9):
        v = rng.uniform(0.05, 0.45)
        r = rng.uniform(0.015, 0.025)
        star = []
        for i in range(8):
            a = i * math.pi / 4
            rr = r if i % 2 == 0 else r * 0.3
            star.append((u + rr * math.cos(a) * cv.H / cv.W, v + rr * math.sin(a)))
        cv.poly(star, col["star"], outline=0.0, shade=0.0)
    cv.ellipse(0.78, 0.2, 0.085, 0.085, col["moon"], shade=0.35, n=40)
    for du, dv, r in ((-0.02, -0.02, 0.018), (0.025, 0.02, 0.013), (-0.01, 0.035, 0.01)):
        cv.ellipse(0.78 + du, 0.2 + dv, r, r, col["crater"], outline=0.4, shade=0.3, n=16)
    cv.poly(_hills(0.3, 0.62, 0.05, 0.02), col["hill_far"], shade=0.3)
    for u in _spread(rng, 16):
        v = _hill_v(u, 0.3, 0.62, 0.05, 0.02) + 0.02
        hgt = rng.uniform(0.08, 0.14)
        cv.poly([(u, v - hgt), (u + 0.025, v), (u - 0.025, v)], col["tree"], outline=0.5, shade=0.2)
    cv.poly(_hills(0.8, 0.76, 0.02, 0.01, 0.8, 2.3), col["hill_near"], shade=0.3)
    for u in _spread(rng, 30):
        v = rng.uniform(0.8, 0.98)
        cv.line([(u - 0.008, v), (u, v - 0.02), (u + 0.008, v)], col["ground"], 0.004)


def _paint_forest(cv: _Canvas, col: Mapping[str, tuple], rng: np.random.Generator) -> None:
    cv.sky(col["sky_top"], col["sky_bottom"], 4, 0.0, 0.8)
    for u in _spread(rng, 16):
        v = rng.uniform(0.35, 0.5)
        cv.blobs([(u, v, 0.07), (u + 0.05, v + 0.03, 0.06), (u - 0.05, v + 0.03, 0.055)], col["far_canopy"],
                 outline=0.0, shade=0.25)
    cv.rect(-0.8, 0.55, 1.8, 0.8, col["far_canopy"], outline=0.0, shade=0.2)
    for u in _spread(rng, 11):
        w = rng.uniform(0.018, 0.03)
        cv.poly([(u - w, -0.05), (u + w, -0.05), (u + w * 1.3, 0.8), (u - w * 1.3, 0.8)], col["trunk"], shade=0.4,
                light=(-1.0, 0.0))
        v = rng.uniform(0.05, 0.2)
        cv.blobs([(u, v, 0.09), (u - 0.07, v + 0.05, 0.07), (u + 0.07, v + 0.04, 0.075), (u, v + 0.09, 0.06)],
                 col["canopy"], shade=0.35)
    cv.poly(_hills(0.2, 0.78, 0.012, 0.006, 1.1, 3.1), col["ground"], shade=0.25)
    for u in _spread(rng, 12):
        v = 0.78 + rng.uniform(-0.01, 0.01)
        cv.blobs([(u, v, 0.03), (u + 0.03, v + 0.005, 0.025), (u - 0.03, v + 0.008, 0.022)], col["canopy_dark"],
                 outline=0.6)
    for u in _spread(rng, 40):
        v = rng.uniform(0.84, 0.99)
        r = rng.random()
        if r < 0.55:
            blade = [(u - 0.01, v), (u - 0.002, v - 0.025), (u + 0.003, v), (u + 0.012, v - 0.02)]
            cv.line(blade, col["grass_dark"], 0.004)
        elif r < 0.8:
            cv.rect(u - 0.004, v - 0.02, u + 0.004, v, col["stem"], outline=0.4)
            cv.poly(_arc(u, v - 0.02, 0.016 * cv.H / cv.W, 0.016, math.pi, 2 * math.pi, 10), col["cap"], outline=0.5)
        else:
            cv.ellipse(u, v, 0.008, 0.008, col["flower"], outline=0.4, n=10)


_BACKGROUND_PAINTERS: dict[str, Callable[[_Canvas, Mapping[str, tuple], np.random.Generator], None]] = {
    "sunny_hills": _paint_sunny_hills,
    "dusk_city": _paint_dusk_city,
    "classroom": _paint_classroom,
    "night_sky": _paint_night_sky,
    "forest": _paint_forest,
}


def _background(spec: ClipSpec, plan: _Plan, ss: int, margin: int) -> np.ndarray:
    """The supersampled background covering world pixels [-margin, width + margin)."""
    entry = _raw()["backgrounds"][spec.background]
    colours = {k: tuple(float(c) for c in _rgb(v, f"backgrounds.{spec.background}.colors.{k}"))
               for k, v in entry["colors"].items()}
    outline = tuple(float(c) for c in _rgb(_raw()["palette"]["outline"], "palette.outline"))
    cv = _Canvas(spec.width, spec.height, ss, -margin, spec.width + margin, spec.style == "3d", outline)
    _BACKGROUND_PAINTERS[spec.background](cv, colours, np.random.default_rng(plan.bg_seed))
    return cv.finish()


# --------------------------------------------------------------------------- clip


_MASK_PARTS: dict[str, frozenset[str] | None] = {
    "idle": None,  # None: every part (the whole silhouette)
    "talking": frozenset({"head", "hair", "eyes", "mouth"}),
    "waving": frozenset({"right_arm"}),
    "walking": None,
    "running": None,
    "jumping": None,
    "turning": None,
}
_MOVING_PARTS: dict[str, list[str]] = {
    "idle": ["head", "hair", "eyes", "torso", "right_arm", "left_arm"],
    "talking": ["mouth", "head", "hair", "eyes"],
    "waving": ["right_arm"],
    "walking": ["head", "hair", "torso", "right_arm", "left_arm", "right_leg", "left_leg", "shadow"],
    "running": ["head", "hair", "torso", "right_arm", "left_arm", "right_leg", "left_leg", "shadow"],
    "jumping": ["head", "hair", "torso", "right_arm", "left_arm", "right_leg", "left_leg", "shadow"],
    "turning": ["head", "hair", "eyes", "mouth", "torso", "right_arm", "left_arm", "right_leg", "left_leg"],
    "camera_zoom": ["head", "hair", "eyes", "torso", "right_arm", "left_arm"],
    "camera_pan": ["head", "hair", "eyes", "torso", "right_arm", "left_arm"],
}


def _ss_matrix(ss: int, offset: float = 0.0) -> np.ndarray:
    """Frame pixels (shifted by -offset in x) -> supersampled pixels."""
    return _affine(ss, 0.0, 0.0, ss, (0.5 - offset) * ss - 0.5, 0.5 * ss - 0.5)


def _mean_step(points: np.ndarray) -> float:
    """Mean over consecutive frames of the mean keypoint displacement; points (T, K, 2)."""
    if len(points) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(points, axis=0), axis=2).mean())


def render_clip(spec: ClipSpec) -> RenderedClip:
    """Render ``spec`` into frames, its motion mask and its ground-truth facts.

    ``motion_mask[t]`` (character actions only; None for camera actions) is the silhouette
    of the parts that move in the action at frames t and t+1 (the last frame: t-1 and t),
    dilated by 3 % of min(height, width): the whole figure for idle, walking, running,
    jumping and turning, the head for talking, the right arm for waving.

    ``facts`` (plain JSON types): ``character``, ``action``, ``style``, ``background``,
    ``camera_motion`` ("static", "zoom_in", "pan_left", "pan_right"; panning right moves
    the content left), ``motion_amplitude`` (mean over consecutive frames of the mean
    displacement, in rendered pixels, of the KEYPOINTS, camera motion included),
    ``character_motion`` (the same without the camera), ``moving_parts``, ``num_frames``,
    ``fps``, ``width``, ``height``, ``seed``, ``identity`` (:meth:`Character.identity`),
    ``prompt`` (:func:`describe_clip`), ``direction`` (walking/running: "left"/"right",
    else None), per-frame ``camera_zoom``, ``camera_pan_px`` (content shift in x),
    ``keypoints`` ([T][len(KEYPOINTS)][x, y] in rendered pixels, named by
    ``keypoint_names``), ``character_boxes`` ([x0, y0, x1, y1] of the visible figure, no
    ground shadow, exclusive ends; None if off screen), ``blink_frames`` (eyes closed),
    ``mouth_open`` (0-1) and ``mask_dilation_px``.
    """
    ch = _check_spec(spec)
    raw = _raw()
    plan = _plan(spec.seed)
    W, H, T = int(spec.width), int(spec.height), int(spec.num_frames)
    style3d = spec.style == "3d"
    ss = _supersample(H)
    lk = _look(ch)
    outline_rgb = lk.pal["outline"]
    unit = float(raw["figure"]["unit"]) * H
    ground = float(raw["figure"]["ground"]) * H
    camera_action = spec.action in CAMERA_ACTIONS
    margin = int(math.ceil(0.5 * float(raw["motion"]["pan_distance"]) * W)) + 2 if spec.action == "camera_pan" else 0
    world = _background(spec, plan, ss, margin)
    static_bg = None
    if not camera_action:
        static_bg = cv2.resize(world, (W, H), interpolation=cv2.INTER_AREA)
    else:
        # A box filter of one output pixel's footprint, then one bilinear sample per output
        # pixel: area averaging at any sub-pixel camera position, at output-size cost.
        world = cv2.blur(world, (ss, ss), borderType=cv2.BORDER_REFLECT)
    moving = _MASK_PARTS.get(spec.action)
    frames = np.empty((T, H, W, 3), np.uint8)
    silhouettes = np.zeros((T, H, W), bool) if not camera_action else None
    kp_screen = np.zeros((T, len(KEYPOINTS), 2))
    kp_world = np.zeros((T, len(KEYPOINTS), 2))
    boxes: list[list[int] | None] = []
    blink: list[int] = []
    mouth: list[float] = []
    zooms: list[float] = []
    pans: list[float] = []
    to_world_ss = np.linalg.inv(_ss_matrix(ss, -margin))
    for i in range(T):
        t = i / (T - 1) if T > 1 else 0.0
        pose = _pose(spec.action, t, plan, W, H)
        z, pcx, pcy, shift = _camera(spec.action, t, plan, W, H)
        zooms.append(z)
        pans.append(shift)
        if pose.eye_open < 0.3:
            blink.append(i)
        mouth.append(round(pose.mouth_open, 4))
        shapes, kps = _build_figure(lk, pose, style3d)
        pts = np.array([kps[name] for name in KEYPOINTS])
        kp_world[i] = np.stack([pose.x + pts[:, 0] * unit, ground - pts[:, 1] * unit], axis=1)
        kp_screen[i] = z * (kp_world[i] - (pcx, pcy)) + (pcx + shift, pcy)
        ox = z * (pose.x - pcx) + pcx + shift
        oy = z * (ground - pcy) + pcy
        if static_bg is not None:
            frames[i] = static_bg
        else:
            cam = _affine(z, 0.0, 0.0, z, (1.0 - z) * pcx + shift, (1.0 - z) * pcy)
            m = (cam @ to_world_ss)[:2]
            frames[i] = cv2.warpAffine(world, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        layer = _rasterise(shapes, unit * z, ox, oy, ss, W, H, style3d, moving, outline_rgb)
        if layer is None:
            boxes.append(None)
            continue
        _composite(frames[i], layer)
        boxes.append(list(map(int, layer.box)) if layer.box else None)
        if silhouettes is not None:
            h, w = layer.silhouette.shape
            silhouettes[i, layer.y0:layer.y0 + h, layer.x0:layer.x0 + w] = layer.silhouette
    mask = None
    if silhouettes is not None:
        mask = _motion_mask(silhouettes, max(1, int(round(0.03 * min(H, W)))))
    camera_motion = _camera_motion(spec.action, plan)
    facts: dict[str, Any] = {
        "character": ch.name,
        "action": spec.action,
        "style": spec.style,
        "background": spec.background,
        "camera_motion": camera_motion,
        "motion_amplitude": _mean_step(kp_screen),
        "character_motion": _mean_step(kp_world),
        "moving_parts": list(_MOVING_PARTS[spec.action]),
        "num_frames": T,
        "fps": float(spec.fps),
        "width": W,
        "height": H,
        "seed": int(spec.seed),
        "identity": ch.identity(),
        "prompt": describe_clip(spec),
        "direction": ("right" if plan.direction > 0 else "left") if spec.action in ("walking", "running") else None,
        "camera_zoom": [round(float(v), 5) for v in zooms],
        "camera_pan_px": [round(float(v), 3) for v in pans],
        "keypoint_names": list(KEYPOINTS),
        "keypoints": np.round(kp_screen, 3).tolist(),
        "character_boxes": boxes,
        "blink_frames": blink,
        "mouth_open": mouth,
        "mask_dilation_px": max(1, int(round(0.03 * min(H, W)))) if mask is not None else None,
    }
    return RenderedClip(frames=frames, motion_mask=mask, facts=facts)


def _motion_mask(sil: np.ndarray, radius: int) -> np.ndarray:
    """mask[t] = dilate(sil[t] | sil[t+1]) (the last frame pairs with t-1)."""
    T = len(sil)
    out = np.zeros_like(sil)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    H, W = sil.shape[1:]
    for t in range(T):
        other = t + 1 if t + 1 < T else max(0, t - 1)
        union = sil[t] | sil[other]
        rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
        if not rows.size:
            continue
        y0, y1 = max(0, rows[0] - radius - 1), min(H, rows[-1] + radius + 2)
        x0, x1 = max(0, cols[0] - radius - 1), min(W, cols[-1] + radius + 2)
        sub = union[y0:y1, x0:x1].astype(np.uint8)
        out[t, y0:y1, x0:x1] = cv2.dilate(sub, kernel) > 0
    return out
