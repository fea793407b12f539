"""Shared setup for the VBench reference scripts (run with the parity venv's python, never by anibench).

Puts VBench's source tree (extracted at a pinned commit by setup_vbench_env.sh), the recipe package
``tests/parity`` and the torchvision shim on ``sys.path``, and lays out a work folder the way VBench's
local mode (``--load_ckpt_from_local``) expects it:

- ``$VBENCH_CACHE_DIR/dino_model/facebookresearch_dino_main/``: the dino repository at its pinned commit
  (``torch.hub.load(..., source='local')`` imports its hubconf.py);
- ``$TORCH_HOME/hub/checkpoints/dino_vitbase16_pretrain.pth``: where hubconf's ``dino_vitb16`` really reads
  the weights (``torch.hub.load_state_dict_from_url``; the ``path`` VBench passes is ignored); a copy also
  sits at ``$VBENCH_CACHE_DIR/dino_model/`` so VBench's init_submodules does not try to download it;
- ``$VBENCH_CACHE_DIR/clip_model/ViT-B-32.pt``: the file VBench's local mode hands to ``clip.load``, written
  as a TorchScript archive like the published file (``clip.load`` cannot read a plain state dict on torch 2.13).

``VBENCH_CACHE_DIR`` is read by vbench.utils at import time, so :func:`prepare` must run before any
vbench module is imported.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARITY_HOME = Path(os.environ.get("PARITY_HOME", "/work/parity-work"))
VBENCH_TREE = PARITY_HOME / "VBench"
DINO_TREE = PARITY_HOME / "dino"
VBENCH_REPO_URL = "https://github.com/Vchitect/VBench"
DINO_REPO_URL = "https://github.com/facebookresearch/dino"


def _commit(tree: Path) -> str:
    marker = tree / ".commit"
    if not marker.is_file():
        raise SystemExit(f"{tree} is missing: run scripts/parity/setup_vbench_env.sh first")
    return marker.read_text().strip()


def add_import_paths() -> None:
    """VBench, the recipe (``parity`` package under tests/) and the shim, shim imported first."""
    for path in (VBENCH_TREE, REPO / "tests", Path(__file__).resolve().parent):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import torchvision_shim  # noqa: F401  (must precede every torchvision import)


def prepare(work: Path, seed: int) -> dict:
    """Create the cache layout in ``work`` with the recipe's weights; returns what was placed where."""
    add_import_paths()
    from parity.weights import (
        clip_vitb32_state_dict,
        dino_vitb16_state_dict,
        state_dict_sha256,
        write_clip_vitb32_checkpoint,
        write_dino_vitb16_checkpoint,
    )

    cache = work / "vbench_cache"
    torch_home = work / "torch_home"
    os.environ["VBENCH_CACHE_DIR"] = str(cache)
    os.environ["TORCH_HOME"] = str(torch_home)

    hub_repo = cache / "dino_model" / "facebookresearch_dino_main"
    if hub_repo.exists():
        shutil.rmtree(hub_repo)
    shutil.copytree(DINO_TREE, hub_repo)
    dino_file = write_dino_vitb16_checkpoint(cache / "dino_model" / "dino_vitbase16_pretrain.pth", seed=seed)
    hub_file = torch_home / "hub" / "checkpoints" / "dino_vitbase16_pretrain.pth"
    hub_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dino_file, hub_file)
    clip_file = write_clip_vitb32_checkpoint(cache / "clip_model" / "ViT-B-32.pt", seed=seed, torchscript=True)
    return {
        "dino": {
            "writer": "tests/parity/weights.py:write_dino_vitb16_checkpoint",
            "seed": seed,
            "format": "plain state dict (torch.save), as published",
            "state_dict_sha256": state_dict_sha256(dino_vitb16_state_dict(seed)),
            "placed_at": ["$TORCH_HOME/hub/checkpoints/dino_vitbase16_pretrain.pth (read by hubconf)",
                          "$VBENCH_CACHE_DIR/dino_model/dino_vitbase16_pretrain.pth"],
        },
        "clip": {
            "writer": "tests/parity/weights.py:write_clip_vitb32_checkpoint",
            "seed": seed,
            "state_dict_sha256": state_dict_sha256(clip_vitb32_state_dict(seed)),
            "format": "TorchScript archive (torchscript=True), as published; clip.load cannot read a plain "
                      "state dict on torch 2.13 (EOFError after the failed jit.load)",
            "placed_at": [f"$VBENCH_CACHE_DIR/clip_model/{clip_file.name} (clip.load, VBench local mode)"],
        },
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def environment() -> dict:
    import torch

    return {
        "vbench": {"repo": VBENCH_REPO_URL, "commit": _commit(VBENCH_TREE)},
        "dino": {"repo": DINO_REPO_URL, "commit": _commit(DINO_TREE)},
        "clip_source": {
            "package": f"openai-clip=={_version('openai-clip')} (PyPI; VBench requirements.txt lists `openai-clip`)",
            "note": "its clip/model.py ViT code equals openai/CLIP at b46f5ac (2022-05); only the ResNet "
                    "AttentionPool2d differs from later commits",
        },
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in
                     ("torch", "torchvision", "numpy", "pillow", "av", "decord", "openai-clip")},
        "torch_num_threads": torch.get_num_threads(),
        "device": "cpu",
        "dtype": "float32",
    }
