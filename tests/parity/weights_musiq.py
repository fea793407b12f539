"""Fixed random weights in pyiqa's published MUSIQ checkpoint format (``musiq_spaq_ckpt-358bb6af.pth``).

Recipe shared by the reference side (scripts/parity/vbench_imaging_quality_reference.py: VBench's
``vbench/imaging_quality.py`` at 45e79ec with pyiqa 0.1.10's ``MUSIQ``, in the parity venv) and
anibench's tests; numpy + torch only (it must not import anibench: the parity venv has no
transformers).

The layout is pyiqa ``MUSIQ(pretrained_model_path=...)``'s state dict (``pyiqa/archs/musiq_arch.py``,
0.1.10): a ResNet root (``conv_root``, ``gn_root``, ``block1``), ``embedding`` (16384 -> hidden),
``transformer_encoder`` (hash position embedding on a 10x10 grid, 3 scale embeddings, CLS, blocks
``encoderblock_i`` with ``norm1``/``attention.{query,key,value,out}``/``norm2``/``mlp.fc1``/``mlp.fc2``,
``encoder_norm``) and a one-output ``head``. pyiqa loads the file with ``strict=True``, so VBench's
side checks the layout; anibench's tests compare it key by key with ``anibench.models.musiq``.
The published file is a plain state dict written by ``torch.save``, as here.

Values follow tests/parity/weights.py (one generator per tensor, ``default_rng([seed, crc32(name)])``,
uniform with the tensor's mean and std, float32), scaled so a random network gives scores that differ
between frames: fan-in scaled matrices, query/key/value twice that, position/scale/CLS embeddings of
std 0.5 (so hashed positions and scales matter), LayerNorm/GroupNorm weights 1 +- 0.1, and a head of
std 8/sqrt(hidden) with bias 50, which puts scores in tens around 50 as on SPAQ's 0-100 MOS scale.
StdConv standardises its weights, so the convolutions' scale does not matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from parity.weights import TensorRecipe, _tensors, state_dict_sha256

__all__ = ["MusiqSize", "SPAQ_SIZE", "TINY_SIZE", "musiq_recipe", "musiq_state_dict", "state_dict_sha256",
           "write_musiq_checkpoint"]

RESNET_TOKEN_DIM, BOTTLENECK_WIDTH, PATCH, HASH_GRID, SCALES = 64, 256, 32, 10, 3
NORM_WEIGHT_STD, NORM_BIAS_STD, BIAS_STD = 0.1, 0.05, 0.02
QKV_GAIN = 2.0
EMBEDDING_STD = 0.5
HEAD_GAIN, HEAD_BIAS = 8.0, 50.0


@dataclass(frozen=True)
class MusiqSize:
    hidden: int
    mlp: int
    layers: int


SPAQ_SIZE = MusiqSize(hidden=384, mlp=1152, layers=14)  # pyiqa's defaults (every published checkpoint)
TINY_SIZE = MusiqSize(hidden=64, mlp=96, layers=2)  # for cheap battery runs in anibench's tests


def _norm(prefix: str, width: int) -> list[TensorRecipe]:
    return [(f"{prefix}.weight", (width,), 1.0, NORM_WEIGHT_STD), (f"{prefix}.bias", (width,), 0.0, NORM_BIAS_STD)]


def _linear(prefix: str, out_features: int, in_features: int, gain: float = 1.0, bias_mean: float = 0.0,
            bias_std: float = BIAS_STD) -> list[TensorRecipe]:
    return [(f"{prefix}.weight", (out_features, in_features), 0.0, gain / math.sqrt(in_features)),
            (f"{prefix}.bias", (out_features,), bias_mean, bias_std)]


def _conv(name: str, out_channels: int, in_channels: int, kernel: int) -> TensorRecipe:
    return (name, (out_channels, in_channels, kernel, kernel), 0.0, 1.0 / math.sqrt(in_channels * kernel * kernel))


def musiq_recipe(size: MusiqSize = SPAQ_SIZE) -> list[TensorRecipe]:
    """(name, shape, mean, std) of every tensor, in pyiqa's ``state_dict()`` order."""
    dim, mlp = size.hidden, size.mlp
    recipe: list[TensorRecipe] = [_conv("conv_root.weight", RESNET_TOKEN_DIM, 3, 7), *_norm("gn_root", RESNET_TOKEN_DIM)]
    recipe += [_conv("block1.conv1.weight", RESNET_TOKEN_DIM, RESNET_TOKEN_DIM, 1), *_norm("block1.gn1", RESNET_TOKEN_DIM),
               _conv("block1.conv2.weight", RESNET_TOKEN_DIM, RESNET_TOKEN_DIM, 3), *_norm("block1.gn2", RESNET_TOKEN_DIM),
               _conv("block1.conv3.weight", BOTTLENECK_WIDTH, RESNET_TOKEN_DIM, 1), *_norm("block1.gn3", BOTTLENECK_WIDTH),
               _conv("block1.conv_proj.weight", BOTTLENECK_WIDTH, RESNET_TOKEN_DIM, 1),
               *_norm("block1.gn_proj", BOTTLENECK_WIDTH)]
    recipe += _linear("embedding", dim, BOTTLENECK_WIDTH * (PATCH // 4) ** 2)
    encoder = "transformer_encoder"
    recipe += [(f"{encoder}.cls", (1, 1, dim), 0.0, EMBEDDING_STD),  # the encoder's own parameter comes first
               (f"{encoder}.posembed_input.position_emb", (1, HASH_GRID * HASH_GRID, dim), 0.0, EMBEDDING_STD),
               (f"{encoder}.scaleembed_input.scale_emb", (SCALES, dim), 0.0, EMBEDDING_STD),
               *_norm(f"{encoder}.encoder_norm", dim)]
    for i in range(size.layers):
        block = f"{encoder}.transformer.encoderblock_{i}"
        recipe += _norm(f"{block}.norm1", dim)
        for projection in ("query", "key", "value"):
            recipe += _linear(f"{block}.attention.{projection}", dim, dim, gain=QKV_GAIN)
        recipe += _linear(f"{block}.attention.out", dim, dim)
        recipe += _norm(f"{block}.norm2", dim)
        recipe += _linear(f"{block}.mlp.fc1", mlp, dim) + _linear(f"{block}.mlp.fc2", dim, mlp)
    recipe += _linear("head", 1, dim, gain=HEAD_GAIN, bias_mean=HEAD_BIAS, bias_std=0.0)
    return recipe


def musiq_state_dict(seed: int = 0, size: MusiqSize = SPAQ_SIZE) -> dict[str, torch.Tensor]:
    """The recipe's MUSIQ state dict (float32)."""
    return dict(_tensors(musiq_recipe(size), seed, fp16_representable=False))


def write_musiq_checkpoint(path: str | Path, seed: int = 0, size: MusiqSize = SPAQ_SIZE) -> Path:
    """Write ``musiq_spaq_ckpt-358bb6af.pth``-format weights (``torch.save`` of a dict of tensors) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(musiq_state_dict(seed, size), path)
    return path
