"""Deterministic small clips (and I2V conditioning images) for the VBench parity fixtures.

Recipe shared by the reference side (scripts/parity/vbench_reference.py, run in a separate venv with
VBench's own code) and anibench's parity tests: both call :func:`write_parity_clips` and must then
decode identical RGB frames (compare :func:`frames_sha256` of the decoded frames with the
``decoded_sha256`` recorded in the fixtures before comparing scores).

Frames are drawn procedurally in normalised image coordinates (numpy only), so one scene can be
rendered at the clip's size and, with another aspect ratio, as the conditioning image (VBench-I2V's
conditioning crops rarely share the clip's aspect). Clips are written with PyAV as H.264 (libx264,
yuv420p, CRF 12, preset medium, ``mbtree=0:threads=4``): a fixed thread count and no macroblock-tree
make the bytes identical on every machine for the same PyAV/x264 build. Images are RGB PNGs (VBench-I2V
opens them without ``convert('RGB')``, so they must not carry alpha).

The clip set covers: non-square landscape and portrait frames that VBench's DINO resize upsamples
(aspect kept, so DINO interpolates its position embeddings), a square clip (no interpolation), a
clip larger than 224 px that every resize downsamples (where antialiasing matters) with a long side
that is not a multiple of 16 after resizing, and a hard scene cut.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

FPS = 16
CRF = 12
X264_PARAMS = "mbtree=0:threads=4"


@dataclass(frozen=True)
class ClipSpec:
    """One parity clip: ``width`` x ``height`` pixels, ``frames`` frames at ``fps``; the conditioning
    image is the first frame's scene rendered at ``image_width`` x ``image_height``."""

    name: str
    width: int
    height: int
    frames: int
    seed: int
    scene_cut_at: int | None = None
    image_width: int = 0
    image_height: int = 0
    fps: int = FPS


PARITY_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("landscape_96x64", 96, 64, 17, seed=11, image_width=112, image_height=112),
    ClipSpec("portrait_64x96_cut", 64, 96, 12, seed=12, scene_cut_at=6, image_width=90, image_height=120),
    ClipSpec("square_80x80", 80, 80, 10, seed=13, image_width=128, image_height=80),
    ClipSpec("downscale_320x240", 320, 240, 9, seed=14, image_width=512, image_height=288),
)
# A 49-frame 480p clip for the timing benchmark (not part of the score fixtures).
TIMING_CLIP = ClipSpec("timing_848x480", 848, 480, 49, seed=21, image_width=640, image_height=480)


def _scene(rng: np.random.Generator) -> dict:
    """Random but resolution-independent scene parameters: palette, texture waves, camera pan, moving shapes."""
    return {
        "sky_top": rng.uniform(40, 220, 3),
        "sky_bottom": rng.uniform(40, 220, 3),
        "ground": rng.uniform(20, 200, 3),
        "hill_freq": rng.uniform(1.5, 4.0),
        "hill_phase": rng.uniform(0, 2 * np.pi),
        "waves": rng.uniform(-1, 1, (6, 4)) * np.array([14.0, 14.0, 2 * np.pi, 18.0]),
        # Fine texture near the small clips' Nyquist limit: makes the resampling method matter.
        "fine_waves": np.column_stack([rng.uniform(18, 40, 3) * rng.choice([-1, 1], 3),
                                       rng.uniform(18, 40, 3) * rng.choice([-1, 1], 3),
                                       rng.uniform(0, 2 * np.pi, 3), rng.uniform(10, 22, 3)]),
        "pan": rng.uniform(-0.012, 0.012, 2),
        "stripe_freq": rng.uniform(30, 50),
        "disc_color": rng.uniform(0, 255, 3),
        "disc_start": rng.uniform(0.15, 0.45, 2),
        "disc_velocity": rng.uniform(-0.05, 0.05, 2) + np.array([0.035, 0.0]),
        "disc_radius": rng.uniform(0.12, 0.22),
        "box_color": rng.uniform(0, 255, 3),
        "box_start": rng.uniform(0.5, 0.8, 2),
        "box_velocity": rng.uniform(-0.04, 0.04, 2),
        "box_half": rng.uniform(0.08, 0.16, 2),
    }


def _render(scene: dict, t: int, width: int, height: int) -> np.ndarray:
    """Frame ``t`` of ``scene`` as (height, width, 3) uint8; coordinates are normalised to [0, 1]."""
    v, u = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij")
    sky = scene["sky_top"] * (1 - v[..., None]) + scene["sky_bottom"] * v[..., None]
    horizon = 0.62 + 0.08 * np.sin(scene["hill_freq"] * 2 * np.pi * u + scene["hill_phase"] + 0.05 * t)
    image = np.where((v > horizon)[..., None], scene["ground"], sky)
    texture = np.zeros_like(u)
    for fu, fv, phase, amplitude in scene["waves"]:
        texture += amplitude * np.sin(2 * np.pi * (fu * u + fv * v) + phase)
    pu, pv = u + t * scene["pan"][0], v + t * scene["pan"][1]  # the fine texture pans with the camera
    for fu, fv, phase, amplitude in scene["fine_waves"]:
        texture += amplitude * np.sin(2 * np.pi * (fu * pu + fv * pv) + phase)
    image = image + texture[..., None] * np.array([1.0, 0.8, 0.6])

    # A flat-coloured disc with a dark outline (a stand-in for a character) moving across the frame.
    centre = scene["disc_start"] + t * scene["disc_velocity"]
    aspect = width / height
    dist = np.hypot((u - centre[0]) * aspect, v - centre[1])
    radius = scene["disc_radius"]
    stripes = 40.0 * np.sign(np.sin(2 * np.pi * scene["stripe_freq"] * (u - centre[0])))
    disc = scene["disc_color"] + stripes[..., None]
    image = np.where((dist < radius)[..., None], disc, image)
    image = np.where((np.abs(dist - radius) < 0.02)[..., None], 20.0, image)
    # A box drifting the other way, partly occluding.
    box = scene["box_start"] + t * scene["box_velocity"]
    inside = (np.abs(u - box[0]) < scene["box_half"][0]) & (np.abs(v - box[1]) < scene["box_half"][1])
    image = np.where(inside[..., None], scene["box_color"], image)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _scenes(spec: ClipSpec) -> tuple[dict, dict]:
    rng = np.random.default_rng(spec.seed)
    return _scene(rng), _scene(rng)


def render_clip_frames(spec: ClipSpec) -> np.ndarray:
    """The clip's source frames (before encoding): (frames, height, width, 3) uint8 RGB."""
    first, second = _scenes(spec)
    frames = []
    for t in range(spec.frames):
        cut = spec.scene_cut_at is not None and t >= spec.scene_cut_at
        frames.append(_render(second if cut else first, t, spec.width, spec.height))
    return np.stack(frames)


def render_condition_image(spec: ClipSpec) -> np.ndarray:
    """The conditioning image: the first frame's scene at the image size, (h, w, 3) uint8 RGB."""
    first, _ = _scenes(spec)
    return _render(first, 0, spec.image_width, spec.image_height)


def write_h264(frames: np.ndarray, fps: int, path: Path) -> Path:
    """Encode (T, H, W, 3) uint8 RGB (even H and W) to ``path`` deterministically (see module doc)."""
    rate = Fraction(fps)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(CRF), "preset": "medium", "x264-params": X264_PARAMS}
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = index
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frames_sha256(frames: np.ndarray) -> str:
    """sha256 of decoded frames as one C-contiguous (T, H, W, 3) uint8 array."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    return hashlib.sha256(frames.tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_clip(spec: ClipSpec, folder: str | Path) -> dict:
    """Write one clip (``<name>.mp4``) and its conditioning image (``<name>.png``) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    video = write_h264(render_clip_frames(spec), spec.fps, folder / f"{spec.name}.mp4")
    image = folder / f"{spec.name}.png"
    Image.fromarray(render_condition_image(spec), mode="RGB").save(image, format="PNG")
    return {
        "spec": asdict(spec),
        "video": str(video),
        "image": str(image),
        "video_file_sha256": file_sha256(video),
        "image_pixels_sha256": frames_sha256(np.asarray(Image.open(image).convert("RGB"))[None]),
    }


def write_parity_clips(folder: str | Path, specs: tuple[ClipSpec, ...] = PARITY_CLIPS) -> dict[str, dict]:
    """Write the parity clips and conditioning images into ``folder``.

    Returns ``{name: {"spec": {...ClipSpec fields}, "video": path, "image": path,
    "video_file_sha256": ..., "image_pixels_sha256": ...}}`` in the order of ``specs``.
    """
    return {spec.name: write_clip(spec, folder) for spec in specs}
