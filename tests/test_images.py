"""Guide images: strict 8-bit RGB loading and fitting to the frame size."""

from __future__ import annotations

import numpy as np
import pytest

from anibench.errors import ImageFormatError, InputError
from anibench.images import GuideFit, fit_image, load_image

from badfiles import grayscale_png, image, png16, rgba_png


def test_rgb_png_and_jpeg_load_as_uint8_rgb(tmp_path):
    array = np.zeros((10, 12, 3), np.uint8)
    array[..., 0] = 200
    for name in ("a.png", "a.jpg"):
        loaded = load_image(image(tmp_path / name, array))
        assert loaded.shape == (10, 12, 3) and loaded.dtype == np.uint8
        assert abs(int(loaded[5, 5, 0]) - 200) < 4 and loaded[5, 5, 1] < 4


def test_opaque_rgba_drops_alpha(tmp_path):
    loaded = load_image(rgba_png(tmp_path / "o.png", alpha=255))
    assert loaded.shape == (48, 64, 3)


@pytest.mark.parametrize(
    "build, message",
    [
        (grayscale_png, "grayscale"),
        (rgba_png, "transparent"),
        (png16, "16-bit"),
        (lambda p: p.with_suffix(".missing"), "not found"),
        (lambda p: (p.write_bytes(b"not an image"), p)[1], "cannot read"),
    ],
    ids=["grayscale", "rgba", "16-bit", "missing", "garbage"],
)
def test_unusable_images_are_refused_naming_the_file(tmp_path, build, message):
    path = build(tmp_path / "bad.png")
    with pytest.raises(ImageFormatError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_exact_fit_refuses_a_size_mismatch_with_advice():
    with pytest.raises(InputError, match="64x48 but the video is 32x32.*guide_fit"):
        fit_image(np.zeros((48, 64, 3), np.uint8), 32, 32, GuideFit.EXACT, path="g.png")


def test_center_crop_keeps_the_centre():
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 100:200] = 255  # only the central third is white
    out = fit_image(wide, 50, 50, GuideFit.CENTER_CROP)
    assert out.shape == (50, 50, 3) and out.min() > 200


def test_resize_squashes():
    out = fit_image(np.zeros((100, 300, 3), np.uint8), 30, 40, "resize")
    assert out.shape == (30, 40, 3)
