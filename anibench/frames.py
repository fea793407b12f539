"""Frame sources: a clip's frames streamed in order, decoded once, never all held at once.

A :class:`FrameSource` yields ``(index, frame)`` pairs in ascending order, limited to
the indices its consumers asked for, and stops decoding after the last one: a scorer
that reads 24 of the first 144 frames does not pay for a full decode of a 481-frame
clip, and memory never grows with the clip's length (consumers keep what they need).

* :class:`FileFrames` decodes a video file with PyAV, with the same checks as
  :meth:`anibench.video.Video.read` (missing, corrupt or truncated files, implausible or
  inconsistent frame rates), applied to what was decoded.
* :class:`ArrayFrames` serves frames already in memory (a trainer's uint8 tensor, a
  perturbed clip of the battery).

The declared frame count of a file (container metadata) is known before decoding and
is what frame samplings that need a count use; a stream that ends early raises
:class:`~anibench.errors.VideoDecodeError` (truncated file).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from anibench.errors import InputError, VideoDecodeError
from anibench.video import Video, _checked_fps, _declared_fps


@dataclass(frozen=True)
class ClipInfo:
    """What is known about a clip before its frames are decoded."""

    num_frames: int
    fps: float
    height: int
    width: int


class FrameSource(ABC):
    """A clip's frames in order. ``info`` is known up front; :meth:`frames` streams."""

    info: ClipInfo
    path: Path | None = None

    @abstractmethod
    def frames(self, wanted: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(index, frame)`` for every index in ``wanted`` (ascending; None = every frame).

        Frames are (H, W, 3) uint8 RGB. Decoding stops after the last wanted index.
        """


class ArrayFrames(FrameSource):
    """Frames already in memory: (T, H, W, 3) uint8."""

    def __init__(self, frames: np.ndarray, fps: float):
        video = Video(frames, fps)  # validates shape, dtype and fps
        self._frames = video.frames
        self.info = ClipInfo(video.num_frames, video.fps, video.height, video.width)

    @classmethod
    def of(cls, video: Video) -> "ArrayFrames":
        return cls(video.frames, video.fps)

    def frames(self, wanted: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
        indices = range(self.info.num_frames) if wanted is None else (int(i) for i in wanted)
        for index in indices:
            if 0 <= index < self.info.num_frames:
                yield index, self._frames[index]


class FileFrames(FrameSource):
    """A video file decoded with PyAV, one frame at a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoDecodeError("video file not found", path=self.path)
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise VideoDecodeError("file has no video stream", path=self.path)
                stream = container.streams.video[0]
                self._declared_frames = int(stream.frames or 0)
                declared_fps = _declared_fps(stream)
                width, height = stream.codec_context.width, stream.codec_context.height
                counted = self._declared_frames or _count_packets(container, stream)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise VideoDecodeError(f"cannot open video ({exc})", path=self.path) from exc
        if not counted:
            raise VideoDecodeError("video has no decodable frames", path=self.path)
        fps = _checked_fps(declared_fps, [], self.path)
        self.info = ClipInfo(counted, fps, int(height), int(width))

    def frames(self, wanted: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
        wanted_set = None if wanted is None else set(int(i) for i in wanted)
        last_wanted = None if wanted is None else (max(wanted_set) if wanted_set else -1)
        if last_wanted is not None and last_wanted < 0:
            return
        times: list[float] = []
        decoded = 0
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise VideoDecodeError(f"cannot open video ({exc})", path=self.path) from exc
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    index = decoded
                    decoded += 1
                    if frame.pts is not None and frame.time_base is not None:
                        times.append(float(frame.pts * frame.time_base))
                    if wanted_set is None or index in wanted_set:
                        yield index, frame.to_ndarray(format="rgb24")
                    if last_wanted is not None and index >= last_wanted:
                        break
            except (av.error.FFmpegError, ValueError) as exc:
                raise VideoDecodeError(
                    f"decoding failed after {decoded} frame(s) ({exc}); the file is corrupt or truncated",
                    path=self.path,
                ) from exc
        if decoded == 0:
            raise VideoDecodeError("video has no decodable frames", path=self.path)
        complete = last_wanted is None or decoded <= last_wanted
        if complete and self._declared_frames and decoded < self._declared_frames:
            raise VideoDecodeError(
                f"only {decoded} of the {self._declared_frames} frames the container declares could be "
                "decoded; the file is truncated",
                path=self.path,
            )
        if complete and last_wanted is not None and decoded <= last_wanted:
            raise VideoDecodeError(
                f"frame {last_wanted} was asked for but the video has {decoded} frame(s)", path=self.path
            )
        _checked_fps(self.info.fps, times, self.path)


def _count_packets(container: "av.container.InputContainer", stream: "av.video.stream.VideoStream") -> int:
    """Frames of a stream whose container does not declare a count: its packets, without decoding."""
    count = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0)
    return count


def open_frames(source: "str | Path | Video | FrameSource") -> FrameSource:
    """A :class:`FrameSource` for a file path, an in-memory :class:`Video` or a source."""
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, Video):
        return ArrayFrames.of(source)
    if isinstance(source, (str, Path)):
        return FileFrames(source)
    raise InputError(f"cannot read frames from a {type(source).__name__}")


def read_frames(source: FrameSource, indices: np.ndarray) -> np.ndarray:
    """The frames at ``indices`` (ascending, unique) as one (N, H, W, 3) array."""
    frames = dict(source.frames(indices))
    missing = [int(i) for i in indices if int(i) not in frames]
    if missing:
        raise VideoDecodeError(f"frame(s) {missing[:5]} are beyond the clip's end", path=source.path)
    return np.stack([frames[int(i)] for i in indices])
