"""``smoke.yaml``: loading and checking it, the cast, the background ids, spec validation and the prompt.

:func:`_data` checks the file against the renderer's own tables (hair styles, outfit
painters, background painters), so this module imports those; the figure, the
animation and :func:`~anibench.smoke.render.render_clip` read the data through
:func:`_raw`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from anibench.resources import load_yaml
from anibench.smoke.geometry import _HAIR_STYLES
from anibench.smoke.outfits import _OUTFITS
from anibench.smoke.scenes import _BACKGROUND_PAINTERS
from anibench.smoke.spec import (
    _DATA_FILE, _MIN_SIZE, ACTIONS, STYLES, Character, ClipSpec, _FrozenDict, _Plan, _plan, _rgb,
)


# --------------------------------------------------------------------------- data


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
    for name in ("num_frames", "width", "height", "seed", "cadence"):
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
    if spec.cadence < 1:
        raise ValueError(f"ClipSpec.cadence: must be >= 1 frame per drawing, got {spec.cadence}")
    return cast[spec.character]


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
