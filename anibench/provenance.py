"""Provenance: what produced a result (versions, git commit, machine) and file hashes."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import anibench

# Libraries whose versions can change a score; reported when installed (never imported here).
TRACKED_DISTRIBUTIONS = (
    "numpy", "av", "opencv-python-headless", "opencv-python", "scikit-image", "scipy", "pandas",
    "scenedetect-headless", "pillow", "torch", "torchvision", "transformers", "diffusers",
    "open-clip-torch", "safetensors", "huggingface-hub", "httpx2", "pydantic",
)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"anibench": anibench.__version__, "python": platform.python_version()}
    for dist in TRACKED_DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    try:
        import av

        versions["ffmpeg (libavcodec)"] = ".".join(str(v) for v in av.library_versions["libavcodec"])
    except (ImportError, KeyError, AttributeError):
        pass
    return versions


@lru_cache(maxsize=1)
def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the checkout anibench runs from (None outside a git checkout)."""
    source = Path(anibench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def environment() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor_count": _cpu_count(),
        "python_executable": sys.executable,
    }


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
