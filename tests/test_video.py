"""Video I/O with PyAV: round trips, metadata checks, broken files."""

from __future__ import annotations

import numpy as np
import pytest

from anibench.errors import VideoDecodeError
from anibench.video import Video, read_mask_video

from badfiles import corrupt_mp4, implausible_fps_mp4, truncated_mp4, wrong_fps_mp4, write_clip, zero_frame_mp4
from conftest import moving_square


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255**2 / mse) if mse else float("inf")


def test_round_trip_keeps_frames_fps_and_quality(tmp_path):
    frames = moving_square(num_frames=25)
    path = Video(frames, 16.0).write(tmp_path / "clip.mp4")
    back = Video.read(path)
    assert back.num_frames == 25 and back.fps == 16.0
    assert (back.height, back.width) == frames.shape[1:3]
    assert psnr(frames, back.frames) > 35


def test_writing_is_deterministic(tmp_path):
    """x264's defaults (mbtree rate control, threads by core count) gave different bytes run to run."""
    from anibench.smoke.render import ClipSpec, render_clip

    frames = render_clip(ClipSpec("Kaito", "camera_pan", "2d", "night_sky", seed=3)).frames
    first = Video(frames, 16).write(tmp_path / "a.mp4").read_bytes()
    for i in range(4):
        assert Video(frames, 16).write(tmp_path / f"b{i}.mp4").read_bytes() == first


def test_odd_sizes_are_written_losslessly_enough(tmp_path):
    frames = moving_square(num_frames=5, height=45, width=77)
    back = Video.read(Video(frames, 8).write(tmp_path / "odd.mp4"))
    assert back.frames.shape == frames.shape
    assert psnr(frames, back.frames) > 35


def test_fractional_frame_rate_survives(tmp_path):
    back = Video.read(Video(moving_square(num_frames=10), 30000 / 1001).write(tmp_path / "ntsc.mp4"))
    assert back.fps == pytest.approx(29.97, abs=0.01)


def test_write_is_atomic_and_leaves_no_partial_file(tmp_path):
    with pytest.raises(Exception):
        Video(moving_square(num_frames=3), 16).write(tmp_path / "x.mp4", codec="no-such-codec")
    assert list(tmp_path.iterdir()) == []


def test_max_frames_reads_a_prefix(tmp_path):
    path = write_clip(tmp_path / "c.mp4", moving_square(num_frames=20))
    assert Video.read(path, max_frames=7).num_frames == 7


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda p, src: truncated_mp4(p, src), "truncated|corrupt|cannot open"),
        (lambda p, src: corrupt_mp4(p), "cannot open|corrupt"),
        (lambda p, src: zero_frame_mp4(p), "no decodable frames|no video stream"),
        (lambda p, src: wrong_fps_mp4(p), "frame timestamps advance at"),
        (lambda p, src: implausible_fps_mp4(p), "implausible frame rate"),
        (lambda p, src: p, "not found"),
    ],
    ids=["truncated", "corrupt", "zero-frames", "wrong-fps", "implausible-fps", "missing"],
)
def test_broken_videos_raise_errors_naming_the_file(tmp_path, build, message):
    source = write_clip(tmp_path / "good.mp4", moving_square(num_frames=30, height=120, width=160))
    bad = build(tmp_path / "bad.mp4", source)
    with pytest.raises(VideoDecodeError, match=message) as info:
        Video.read(bad)
    assert str(tmp_path / "bad.mp4") in str(info.value)


def test_one_frame_video_decodes(tmp_path):
    path = write_clip(tmp_path / "one.mp4", moving_square(num_frames=1))
    assert Video.read(path).num_frames == 1


def test_mask_video_reads_as_bool(tmp_path):
    mask = np.zeros((4, 32, 48, 3), np.uint8)
    mask[:, 8:24, 10:30] = 255
    region = read_mask_video(Video(mask, 16).write(tmp_path / "m.mp4"))
    assert region.dtype == bool and region.shape == (4, 32, 48)
    assert region[:, 16, 20].all() and not region[:, 2, 2].any()


def test_video_rejects_bad_arrays():
    with pytest.raises(Exception, match="uint8"):
        Video(np.zeros((2, 8, 8, 3), np.float32), 16)
    with pytest.raises(Exception, match="positive"):
        Video(np.zeros((2, 8, 8, 3), np.uint8), 0)
