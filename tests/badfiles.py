"""Builders of broken inputs, written as real files (the bad-input cases of the foundation issue)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from anibench.video import Video


def write_clip(path: Path, frames: np.ndarray, fps: float = 16.0) -> Path:
    return Video(frames, fps).write(path)


def truncated_mp4(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_mp4(path: Path) -> Path:
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(4000))
    return path


def zero_frame_mp4(path: Path) -> Path:
    """An mp4 with a video track header and no frames."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


def timed_mp4(path: Path, pts: list[int], time_base: int, rate: int = 16, size=(48, 64)) -> Path:
    """An H.264 mp4 whose frames carry the given timestamps (units of 1/time_base s)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, time_base)
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(np.full((*size, 3), (i * 9) % 255, np.uint8), format="rgb24")
            frame.pts = p
            frame.time_base = Fraction(1, time_base)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def wrong_fps_mp4(path: Path) -> Path:
    """Declares 16 fps but a 2 s hole in the timestamps makes the clip average ~6 fps."""
    pts = [i * 62 if i < 10 else i * 62 + 2000 for i in range(20)]
    return timed_mp4(path, pts, 1000, rate=16)


def implausible_fps_mp4(path: Path) -> Path:
    """1000 fps: 20 frames lasting 0.02 s."""
    return timed_mp4(path, list(range(20)), 1000, rate=1000)


def image(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def grayscale_png(path: Path, size=(48, 64)) -> Path:
    return image(path, np.full(size, 128, np.uint8))


def rgba_png(path: Path, size=(48, 64), alpha: int = 100) -> Path:
    array = np.full((*size, 4), 200, np.uint8)
    array[..., 3] = alpha
    return image(path, array)


def png16(path: Path, size=(48, 64)) -> Path:
    Image.fromarray(np.full(size, 40000, np.uint16)).save(path)
    return path


def png48(path: Path, size=(48, 64)) -> Path:
    """A 48-bit RGB PNG (16 bits per channel); Pillow opens it as 8-bit "RGB", dropping the low bits."""
    import cv2

    ramp = np.linspace(0, 65535, size[0] * size[1] * 3).astype(np.uint16).reshape(*size, 3)
    cv2.imwrite(str(path), ramp[..., ::-1])  # OpenCV writes BGR
    return path


def png64_rgba(path: Path, size=(48, 64)) -> Path:
    """A 64-bit RGBA PNG (16 bits per channel, opaque)."""
    import cv2

    array = np.full((*size, 4), 40000, np.uint16)
    array[..., 3] = 65535
    cv2.imwrite(str(path), array)
    return path


def cmyk_jpeg(path: Path, size=(48, 64)) -> Path:
    Image.new("CMYK", (size[1], size[0]), (0, 80, 160, 10)).save(path, format="JPEG")
    return path


def lab_tiff(path: Path, size=(48, 64)) -> Path:
    Image.new("LAB", (size[1], size[0]), (50, 10, 20)).save(path, format="TIFF")
    return path


def ycbcr_tiff(path: Path, size=(48, 64)) -> Path:
    Image.new("YCbCr", (size[1], size[0]), (120, 100, 140)).save(path, format="TIFF")
    return path


def rgb48_tiff(path: Path, size=(48, 64)) -> Path:
    import cv2

    cv2.imwrite(str(path), np.full((*size, 3), 30000, np.uint16))
    return path


def animated_gif(path: Path, size=(48, 64)) -> Path:
    frames = [Image.new("RGB", (size[1], size[0]), (i * 80, 0, 0)) for i in range(3)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:])
    return path


def truncated_png(path: Path, size=(48, 64)) -> Path:
    noise = np.random.default_rng(1).integers(0, 255, (*size, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def palette_png(path: Path, size=(48, 64)) -> Path:
    """An opaque palette image: three colours in stripes."""
    array = np.zeros(size, np.uint8)
    array[:, size[1] // 3 :] = 1
    array[:, 2 * size[1] // 3 :] = 2
    image = Image.fromarray(array, mode="P")
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    image.save(path)
    return path
