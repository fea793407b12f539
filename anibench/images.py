"""Guide images: strict loading as 8-bit RGB and fitting to a video's frame size."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from anibench.errors import ImageFormatError, InputError
from anibench.fsutil import atomic_open


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


# Formats whose bit depth anibench can check (PNG header, TIFF tags) or that are 8-bit by definition.
_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
_COLOUR_MODES = ("RGB", "RGBA", "P", "PA")
_CONVERT_ADVICE = "save it as an 8-bit sRGB PNG (e.g. ImageMagick: magick IN -colorspace sRGB -depth 8 OUT.png)"


def load_image(path: str | Path) -> np.ndarray:
    """Read ``path`` as (H, W, 3) uint8 RGB, refusing anything that would need a conversion.

    Accepted: 8-bit-per-channel RGB, RGBA whose alpha is fully opaque (alpha dropped) and
    palette images (looked up exactly) in PNG, JPEG, WebP, BMP, TIFF or GIF. Refused with
    :class:`ImageFormatError`, with what to do: unreadable or truncated files, grayscale,
    more than 8 bits per channel (a 48-bit RGB PNG, which Pillow would silently truncate
    to 8 bits, is detected from the PNG header), float images, CMYK, LAB, HSV and YCbCr
    images, any transparent pixel, animated or multi-page files, other formats.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFormatError("image file not found", path=path)
    try:
        with Image.open(path) as image:
            _check_image(image, path)
            image.load()
            if image.mode in ("RGBA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = np.asarray(image.convert("RGBA"))
                if (rgba[..., 3] < 255).any():
                    raise ImageFormatError(
                        "image has transparent pixels (RGBA); composite it onto a background first", path=path
                    )
                array = rgba[..., :3]
            else:
                array = np.asarray(image.convert("RGB"))
    except ImageFormatError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise ImageFormatError(f"cannot read image ({exc})", path=path) from exc
    return np.ascontiguousarray(array, dtype=np.uint8)


def _check_image(image: Image.Image, path: Path) -> None:
    """Refuse what is not plainly 8-bit RGB, opaque RGBA or palette (see :func:`load_image`)."""
    mode = image.mode
    if image.format not in _FORMATS:
        raise ImageFormatError(f"{image.format} images are not supported; {_CONVERT_ADVICE}", path=path)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise ImageFormatError(f"image has {frames} frames (animated or multi-page); give a single still image", path=path)
    if mode in ("L", "LA", "La", "1"):
        raise ImageFormatError(f"image is grayscale (mode {mode}); a colour video's guide frame must be RGB", path=path)
    if mode.startswith("I") or mode == "F":
        raise ImageFormatError(f"image is {_describe_mode(mode)}; anibench needs 8-bit RGB: {_CONVERT_ADVICE}", path=path)
    if mode not in _COLOUR_MODES:
        raise ImageFormatError(f"image is in {mode} colour mode; anibench needs RGB and does not convert colour "
                               f"spaces: {_CONVERT_ADVICE}", path=path)
    bits = _bits_per_channel(image, path)
    if bits > 8:
        raise ImageFormatError(
            f"image has {bits} bits per channel ({bits * len(image.getbands())}-bit {mode}); anibench needs 8 bits "
            f"and does not truncate: {_CONVERT_ADVICE}", path=path,
        )


def _describe_mode(mode: str) -> str:
    return {"F": "32-bit float", "I": "32-bit integer"}.get(mode, f"16-bit (mode {mode})")


def _bits_per_channel(image: Image.Image, path: Path) -> int:
    """Bits per sample as stored: the PNG header's bit depth, TIFF's BitsPerSample; 8 for the other formats.

    Pillow opens 16-bit-per-channel RGB(A) PNG and TIFF files as 8-bit "RGB"/"RGBA",
    dropping the low bits, so the mode alone cannot tell.
    """
    if image.format == "PNG":
        with open(path, "rb") as file:
            header = file.read(26)  # signature (8), IHDR length and type (8), width, height (8), bit depth
        return header[24] if len(header) == 26 and header[12:16] == b"IHDR" else 8
    if image.format == "TIFF":
        bits = image.tag_v2.get(258, (8,))
        return max(bits) if isinstance(bits, tuple) else int(bits)
    return 8


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
    """Save an RGB frame as a JPEG at most ``max_side`` px (for reports); written atomically, mode from the umask."""
    thumb = Image.fromarray(image)
    thumb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    with atomic_open(path, "wb") as fh:
        thumb.save(fh, format="JPEG", quality=85)
    return Path(path)
