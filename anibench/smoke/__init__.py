"""Procedural anime-style clips with known ground truth: the built-in "smoke" suite's renderer."""

from anibench.smoke.render import (
    ACTIONS,
    CAMERA_ACTIONS,
    CHARACTER_ACTIONS,
    KEYPOINTS,
    STYLES,
    Character,
    ClipSpec,
    RenderedClip,
    backgrounds,
    characters,
    describe_clip,
    render_clip,
)

__all__ = [
    "ACTIONS",
    "CAMERA_ACTIONS",
    "CHARACTER_ACTIONS",
    "KEYPOINTS",
    "STYLES",
    "Character",
    "ClipSpec",
    "RenderedClip",
    "backgrounds",
    "characters",
    "describe_clip",
    "render_clip",
]
