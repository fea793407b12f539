"""Guide images: strict loading as 8-bit RGB and fitting to a video's frame size."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from anibench.errors import ImageFormatError, InputError


class GuideFit(str, Enum):
    """How a guide image whose size differs from the video is brought to the frame size.

    ``exact``: sizes must match, anything else is an error (the default: a mismatch
    usually means the wrong file). ``center-crop``: crop the centre to the frame's aspect
    ratio, then resize, as AniSora does with conditioning images. ``resize``: resize,
    squashing the aspect ratio.
    """

    EXACT = "exact"
    CENTER_CROP = "center-crop"
    RESIZE = "resize"


def load_image(path: str | Path) -> np.ndarray:
    """Read ``path`` as (H, W, 3) uint8 RGB.

    Refused with :class:`ImageFormatError`: unreadable files, grayscale or palette-less
    single-channel images, 16-bit or float images, and RGBA with any transparent pixel
    (an opaque alpha channel is dropped). anibench does not guess how to convert these.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFormatError("image file not found", path=path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F") or image.info.get("bitdepth", 8) > 8:
                raise ImageFormatError(
                    f"image is {_describe_mode(mode)}; anibench needs 8-bit RGB. "
                    "Convert it (e.g. with Pillow: img.convert('RGB') after scaling to 0-255)",
                    path=path,
                )
            if mode in ("L", "LA", "1"):
                raise ImageFormatError(
                    f"image is grayscale (mode {mode}); a colour video's guide frame must be RGB",
                    path=path,
                )
            if mode in ("RGBA", "PA") or (mode == "P" and "transparency" in image.info):
                rgba = np.asarray(image.convert("RGBA"))
                if (rgba[..., 3] < 255).any():
                    raise ImageFormatError(
                        "image has transparent pixels (RGBA); composite it onto a background first",
                        path=path,
                    )
                return np.ascontiguousarray(rgba[..., :3])
            array = np.asarray(image.convert("RGB"))
    except ImageFormatError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageFormatError(f"cannot read image ({exc})", path=path) from exc
    if array.dtype != np.uint8:
        raise ImageFormatError(f"image has {array.dtype} samples; anibench needs 8-bit RGB", path=path)
    return np.ascontiguousarray(array)


def _describe_mode(mode: str) -> str:
    return {"F": "32-bit float", "I": "32-bit integer"}.get(mode, f"16-bit (mode {mode})")


def fit_image(
    image: np.ndarray, height: int, width: int, fit: GuideFit | str = GuideFit.EXACT, *, path: str | Path | None = None
) -> np.ndarray:
    """Return ``image`` at (height, width) following ``fit`` (see :class:`GuideFit`)."""
    fit = GuideFit(fit)
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    if fit is GuideFit.EXACT:
        raise InputError(
            f"guide image is {w}x{h} but the video is {width}x{height}; use a guide of the video's size "
            "or set the suite's guide_fit to 'center-crop' or 'resize'",
            path=path,
        )
    if fit is GuideFit.CENTER_CROP:
        target_aspect = width / height
        if w / h > target_aspect:
            new_w = max(1, round(h * target_aspect))
            x0 = (w - new_w) // 2
            image = image[:, x0 : x0 + new_w]
        else:
            new_h = max(1, round(w / target_aspect))
            y0 = (h - new_h) // 2
            image = image[y0 : y0 + new_h, :]
    shrinking = image.shape[0] * image.shape[1] > height * width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)


def write_thumbnail(image: np.ndarray, path: str | Path, max_side: int = 320) -> Path:
    """Save an RGB frame as a JPEG at most ``max_side`` px (for reports); written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    thumb = Image.fromarray(image)
    thumb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    partial = path.with_name(f".part-{path.name}")
    thumb.save(partial, format="JPEG", quality=85)
    partial.replace(path)
    return path
