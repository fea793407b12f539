"""Guide images: strict 8-bit RGB loading and fitting to the frame size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from anibench.errors import ImageFormatError, InputError
from anibench.images import GuideFit, fit_image, load_image

import badfiles as bad
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


@pytest.mark.parametrize(
    "build, suffix, message",
    [
        (bad.png48, ".png", "16 bits per channel \\(48-bit RGB\\).*does not truncate"),
        (bad.png64_rgba, ".png", "16 bits per channel \\(64-bit RGBA\\)"),
        (bad.rgb48_tiff, ".tif", "16 bits per channel \\(48-bit RGB\\)"),
        (bad.cmyk_jpeg, ".jpg", "CMYK colour mode.*8-bit sRGB PNG"),
        (bad.lab_tiff, ".tif", "LAB colour mode"),
        (bad.ycbcr_tiff, ".tif", "YCbCr colour mode"),
        (bad.animated_gif, ".gif", "3 frames \\(animated"),
        (bad.truncated_png, ".png", "cannot read image.*truncated"),
    ],
    ids=["48-bit-png", "64-bit-rgba-png", "48-bit-tiff", "cmyk-jpeg", "lab-tiff", "ycbcr-tiff", "animated-gif",
         "truncated-png"],
)
def test_images_that_would_need_a_conversion_are_refused(tmp_path, build, suffix, message):
    path = build(tmp_path / f"guide{suffix}")
    with pytest.raises(ImageFormatError, match=message) as info:
        load_image(path)
    assert info.value.path == str(path)


def test_a_48_bit_png_is_caught_although_pillow_opens_it_as_8_bit_rgb(tmp_path):
    path = bad.png48(tmp_path / "deep.png")
    with Image.open(path) as opened:
        assert opened.mode == "RGB"  # what a mode check alone would accept, truncating every sample
    with pytest.raises(ImageFormatError, match="48-bit"):
        load_image(path)


def test_other_formats_are_refused_with_advice(tmp_path):
    path = tmp_path / "guide.ppm"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(ImageFormatError, match="PPM images are not supported.*8-bit sRGB PNG"):
        load_image(path)


def test_an_opaque_palette_image_is_looked_up_exactly(tmp_path):
    loaded = load_image(bad.palette_png(tmp_path / "p.png"))
    assert loaded.dtype == np.uint8 and loaded.shape == (48, 64, 3)
    assert loaded[0, 0].tolist() == [255, 0, 0] and loaded[0, 30].tolist() == [0, 255, 0]
    assert loaded[0, 63].tolist() == [0, 0, 255]
