"""Shared fixtures: the real AniSora sample clips beside the checkout, an isolated cache, tiny clips."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")

if importlib.util.find_spec("torch") is not None:  # the neural extra: torchvision needs the shim before any import
    from anibench.runtime.torchvision_compat import ensure_torchvision

    ensure_torchvision()

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ANIBENCH_SHARED", REPO.parent / "shared"))
SAMPLES = SHARED / "media" / "anisora-samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """../shared/media/anisora-samples: real published AniSora clips (present in CI beside the checkout)."""
    if not (SAMPLES / "manifest.json").is_file():
        raise RuntimeError(
            f"real test media not found at {SAMPLES}; CI provides ../shared beside the checkout "
            "(set ANIBENCH_SHARED to point elsewhere)"
        )
    return SAMPLES


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """Built suites and model weights go to per-session folders, never the user's ~/.cache."""
    cache = tmp_path_factory.mktemp("anibench-cache")
    os.environ["ANIBENCH_CACHE"] = str(cache)
    os.environ["ANIBENCH_WEIGHTS"] = str(tmp_path_factory.mktemp("anibench-weights"))
    os.environ.pop("ANIBENCH_WEIGHT_ALIASES", None)
    return cache


SMALL_SMOKE = {"name": "smoke", "per_action": 1}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The README's main job on a smaller smoke suite (one case per action and style): (results, run dir)."""
    from anibench.runner import run
    from anibench.runspec import RunSpec

    out = tmp_path_factory.mktemp("smoke-run")
    return run(RunSpec(suite=SMALL_SMOKE), out), out


@pytest.fixture(scope="session")
def reference_rerun(tmp_path_factory, smoke_run):
    """A second run of the reference model alone, same suite and conditions: its run dir."""
    from anibench.runner import run
    from anibench.runspec import RunSpec

    out = tmp_path_factory.mktemp("reference-rerun")
    run(RunSpec(suite=SMALL_SMOKE, generators=["reference"]), out)
    return out


def textured(height: int, width: int, seed: int = 0, level: int = 90) -> np.ndarray:
    """A smooth random texture (blurred luma noise, tinted): trackable by optical flow, compressible."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 40, (height, width)).astype(np.float32), (0, 0), 1.5)
    tint = np.array([1.0, 0.85, 0.7], np.float32)
    return np.clip(level + noise[..., None] * tint, 0, 255).astype(np.uint8)


def moving_square(num_frames: int = 17, height: int = 64, width: int = 96, step: float = 2.0, seed: int = 0) -> np.ndarray:
    """A textured square sliding right by ``step`` px per frame over a textured, static background."""
    base = textured(height, width, seed)
    patch = textured(20, 20, seed + 1, level=190)
    frames = np.repeat(base[None], num_frames, axis=0)
    for t in range(num_frames):
        x = int(round(8 + step * t)) % (width - 20)
        frames[t, 20:40, x : x + 20] = patch
    return frames
