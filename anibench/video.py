"""Video: uint8 RGB frames plus a frame rate, read and written with PyAV.

Reading decodes every frame (the frame count comes from decoding, not from the
container's metadata) and checks the timing metadata, so that a truncated file or a
clip whose declared frame rate disagrees with its timestamps is reported instead of
silently changing fps-dependent scores (VBench's dynamic degree stride, for one).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from anibench.errors import InputError, VideoDecodeError
from anibench.fsutil import atomic_path

# x264 with a fixed thread count and no macroblock-tree rate control gives byte-identical
# files for identical frames on any machine; its default (mbtree, threads = 1.5 x cores)
# does not, which made content-keyed caches and runs differ between machines.
X264_PARAMS = "mbtree=0:threads=4"
MIN_PLAUSIBLE_FPS = 1.0
MAX_PLAUSIBLE_FPS = 240.0
# Declared fps and the mean frame interval may differ by this much (rounding of
# NTSC rates, the last frame's duration) before the metadata counts as wrong.
FPS_TOLERANCE = 0.10


@dataclass
class Video:
    """A clip in memory: ``frames`` is (T, H, W, 3) uint8 RGB, ``fps`` frames per second."""

    frames: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        frames = np.asarray(self.frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise InputError(f"Video frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        if not (self.fps > 0):
            raise InputError(f"Video fps must be positive, got {self.fps}")
        self.frames = frames
        self.fps = float(self.fps)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @classmethod
    def read(cls, path: str | Path, *, max_frames: int | None = None) -> "Video":
        """Decode ``path`` (every frame, or the first ``max_frames``) into RGB frames.

        Raises :class:`VideoDecodeError` for a missing, corrupt or truncated file, a file
        without frames, and a frame rate that is implausible or contradicts the timestamps.
        """
        path = Path(path)
        if not path.is_file():
            raise VideoDecodeError("video file not found", path=path)
        try:
            container = av.open(str(path))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise VideoDecodeError(f"cannot open video ({exc})", path=path) from exc
        with container:
            if not container.streams.video:
                raise VideoDecodeError("file has no video stream", path=path)
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            declared_frames = int(stream.frames or 0)
            declared_fps = _declared_fps(stream)
            frames: list[np.ndarray] = []
            times: list[float] = []
            try:
                for frame in container.decode(stream):
                    frames.append(frame.to_ndarray(format="rgb24"))
                    if frame.pts is not None and frame.time_base is not None:
                        times.append(float(frame.pts * frame.time_base))
                    if max_frames is not None and len(frames) >= max_frames:
                        break
            except (av.error.FFmpegError, ValueError) as exc:
                raise VideoDecodeError(
                    f"decoding failed after {len(frames)} frame(s) ({exc}); the file is corrupt or truncated",
                    path=path,
                ) from exc
        if not frames:
            raise VideoDecodeError("video has no decodable frames", path=path)
        complete = max_frames is None or len(frames) < max_frames
        if complete and declared_frames and len(frames) < declared_frames:
            raise VideoDecodeError(
                f"only {len(frames)} of the {declared_frames} frames the container declares could be "
                "decoded; the file is truncated",
                path=path,
            )
        fps = _checked_fps(declared_fps, times, path)
        return cls(np.stack(frames), fps)

    def write(self, path: str | Path, *, crf: int = 12, codec: str = "libx264") -> Path:
        """Encode to ``path`` (H.264 by default) atomically: a killed write leaves no partial file.

        The file is created with the umask's permissions (:func:`anibench.fsutil.atomic_path`);
        a temporary left by a killed process is removed by the next run.

        Deterministic: the same frames give the same bytes on every machine (``X264_PARAMS``).
        Odd frame sizes are written as yuv444p (4:2:0 needs even sizes); others as yuv420p.
        """
        path = Path(path)
        with atomic_path(path) as tmp_name:
            rate = Fraction(self.fps).limit_denominator(1001)
            with av.open(str(tmp_name), "w", format="mp4") as container:
                stream = container.add_stream(codec, rate=rate)
                stream.width, stream.height = self.width, self.height
                even = self.width % 2 == 0 and self.height % 2 == 0
                stream.pix_fmt = "yuv420p" if even else "yuv444p"
                if codec == "libx264":
                    stream.options = {"crf": str(crf), "preset": "medium", "x264-params": X264_PARAMS}
                for i, rgb in enumerate(self.frames):
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    frame.pts = i
                    frame.time_base = 1 / rate
                    for packet in stream.encode(frame):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
        return path


def _declared_fps(stream: "av.video.stream.VideoStream") -> float | None:
    for rate in (stream.guessed_rate, stream.average_rate, stream.base_rate):
        if rate:
            return float(rate)
    return None


def _checked_fps(declared: float | None, times: list[float], path: Path) -> float:
    if declared is None or not (MIN_PLAUSIBLE_FPS <= declared <= MAX_PLAUSIBLE_FPS):
        raise VideoDecodeError(
            f"implausible frame rate in the metadata ({declared} fps); expected "
            f"{MIN_PLAUSIBLE_FPS:g}-{MAX_PLAUSIBLE_FPS:g}. Re-mux the file with its true frame rate",
            path=path,
        )
    if len(times) >= 3 and times[-1] > times[0]:
        measured = (len(times) - 1) / (times[-1] - times[0])
        if abs(measured - declared) > FPS_TOLERANCE * declared:
            raise VideoDecodeError(
                f"declares {declared:g} fps but its frame timestamps advance at {measured:.3g} fps on "
                "average (wrong or variable frame-rate metadata). Re-encode it at a constant frame rate",
                path=path,
            )
    return declared


def read_mask_video(path: str | Path) -> np.ndarray:
    """Decode a mask video into (T, H, W) bool: pixels brighter than mid-grey are True."""
    video = Video.read(path)
    return video.frames.mean(axis=-1) > 127.5
