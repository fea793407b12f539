"""MUSIQ (Ke et al., ICCV 2021) as pyiqa implements it, loading pyiqa's published checkpoints.

VBench's imaging quality (``vbench/imaging_quality.py`` at Vchitect/VBench 45e79ec) scores every
frame with ``pyiqa.archs.musiq_arch.MUSIQ(pretrained_model_path=musiq_spaq_ckpt-358bb6af.pth)``.
pyiqa itself is not a dependency (it requires ``opencv-python``, the GUI build that shares the
``cv2`` folder with the headless build anibench uses, plus tensorboard, facexlib, imgaug and more;
``import pyiqa.archs.musiq_arch`` runs pyiqa's package ``__init__``, which imports every metric).
So the network is written here, module for module, with pyiqa's parameter names: the published
state dict loads key for key (after pyiqa's own ``module.`` prefix cleaning). The facts below are
from pyiqa 0.1.10 (the version VBench's issue #92 reports as known-good; the MUSIQ code is the
same in chaofengc/IQA-PyTorch 01ae427): ``pyiqa/archs/musiq_arch.py``,
``pyiqa/data/multiscale_trans_util.py``, ``pyiqa/matlab_utils/padding.py``,
``pyiqa/archs/arch_util.py``.

Input pipeline (``MUSIQ.forward`` outside training; VBench sets ``model.training = False``):

1. ``x`` in [0, 1], (1, 3, H, W); ``x = (x - 0.5) * 2``.
2. ``get_multiscale_patches`` with ``longer_side_lengths = [224, 384]``,
   ``max_seq_len_from_original_res = -1``, patch 32, stride 32, hash grid 10: for each length ``L``
   (ascending; scale id 0, 1) the image is resized with ``F.interpolate(bicubic,
   align_corners=False)`` (no antialias) to ``(round(H * r), round(W * r))``, ``r = L / max(H, W)``
   (Python's ``round``: halves to even); then the original image (scale id 2). Each image is padded
   TensorFlow-"SAME" style with zeros (pad = (ceil(n/32) - 1) * 32 + 32 - n, split floor/ceil) and cut
   into 32x32 patches by ``F.unfold`` (channel-major, then rows, then columns); each patch carries its
   hashed spatial position (row index ``nearest``-interpolated from ``arange(10)`` to the patch-row
   count, times 10, plus the column index likewise), its scale id and a mask of 1. The two resized
   scales are zero-padded to ``ceil(L / 32) ** 2`` patches (mask 0, position 0, scale 0); the original
   resolution keeps all its patches. Rows: (patches, 3 * 32 * 32 + 3).
3. Each patch goes through a ResNet root: weight-standardised conv 7x7/2 (``StdConv``: weight minus its
   per-filter mean, divided by its unbiased std + 1e-5; "SAME" zero padding), GroupNorm(32, eps 1e-6),
   ReLU, "SAME" zero padding, max-pool 3/2, one bottleneck (StdConv 1x1, 3x3, 1x1 with GroupNorm eps
   1e-4, a projection StdConv + GroupNorm, ReLU after the sum): 32x32x3 -> 8x8x256, flattened
   channels-last (height, width, channel) and projected by ``embedding`` to 384.
4. Transformer encoder: add ``position_emb[hash position]`` and ``scale_emb[scale id]``, prepend the
   CLS token (mask 1), 14 pre-norm blocks (LayerNorm eps 1e-6; 6-head attention with biased q/k/v,
   scores ``q k^T / sqrt(64)`` with entries where either token is padding filled with -1000 before the
   softmax; MLP 1152 with exact GELU), final LayerNorm eps 1e-6.
5. ``head`` on the CLS token: ``Linear(384, 1)`` for the single-score checkpoints (SPAQ, KonIQ,
   PaQ-2-PiQ: ``num_class=1`` when ``pretrained_model_path`` is given); ``dist_to_mos`` of a single
   class is the value itself. The SPAQ model's output is on SPAQ's MOS scale, 0-100.

Dropout rates and drop-path are 0 in every published configuration, so train/eval mode does not
change the network (VBench sets only the top module's ``training`` flag).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anibench.errors import InputError
from anibench.runtime.torchvision_compat import ensure_torchvision

ensure_torchvision()  # before checkpoints imports transformers, which imports torchvision

from anibench.models.checkpoints import (  # noqa: E402
    check_layout, read_converted, read_torch_state_dict, tensors_only, write_converted,
)

WHAT = "MUSIQ"
WEIGHTS_ENTRY = "musiq_spaq"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

# pyiqa musiq_arch.py MUSIQ.__init__ defaults (the published checkpoints' architecture).
PATCH_SIZE = 32
HEAD_DIM = 64  # 384 hidden / 6 heads; the head count is not recorded in the tensors
RESNET_TOKEN_DIM = 64
BOTTLENECK_EXPANSION = 4
GROUP_NORM_GROUPS = 32
ROOT_GN_EPS = 1e-6
BLOCK_GN_EPS = 1e-4
LAYER_NORM_EPS = 1e-6
STD_CONV_EPS = 1e-5
MASKED_SCORE = -1e3  # musiq_arch.py MultiHeadAttention: masked_fill(mask2d == 0, -1e3)
LONGER_SIDE_LENGTHS = (224, 384)
HASH_GRID_SIZE = 10

# VBench's 'longer' preprocessing (vbench/imaging_quality.py:27-31): long side above 512 -> 512.
VBENCH_LONGER_SIDE = 512


@dataclass(frozen=True)
class MusiqConfig:
    """MUSIQ's architecture; the defaults are pyiqa's (the published SPAQ/KonIQ/PaQ-2-PiQ models)."""

    hidden_size: int = 384
    mlp_dim: int = 1152
    num_heads: int = 6
    num_layers: int = 14
    num_class: int = 1
    hash_grid_size: int = HASH_GRID_SIZE
    longer_side_lengths: tuple[int, ...] = LONGER_SIDE_LENGTHS

    @property
    def num_scales(self) -> int:
        """Scale embeddings: one per resized scale plus the original resolution."""
        return len(self.longer_side_lengths) + 1

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> "MusiqConfig":
        fields = dict(values)
        fields["longer_side_lengths"] = tuple(fields.get("longer_side_lengths", LONGER_SIDE_LENGTHS))
        return cls(**fields)  # type: ignore[arg-type]


SPAQ = MusiqConfig()


# --- VBench's frame preprocessing ------------------------------------------------------------


def vbench_longer_side_size(height: int, width: int, limit: int = VBENCH_LONGER_SIDE) -> tuple[int, int]:
    """(h, w) after VBench's ``transform(images, 'longer')``: ``scale = 512. / max(h, w)`` and
    ``(int(scale * h), int(scale * w))`` (truncated) when ``max(h, w) > 512``; else unchanged."""
    if max(height, width) <= limit:
        return height, width
    scale = float(limit) / max(height, width)
    return int(scale * height), int(scale * width)


def vbench_frame(frame: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One decoded (H, W, 3) uint8 RGB frame as VBench feeds MUSIQ: (1, 3, h, w) float32 in [0, 1].

    ``load_video`` gives ``torch.Tensor(frames).permute(0, 3, 1, 2)`` (float32 0-255, channels-last
    memory); ``transform(..., 'longer')`` resizes it with torchvision ``Resize((h, w),
    antialias=False)`` — bilinear ``F.interpolate(align_corners=False)`` on float32, no rounding —
    when the long side exceeds 512, then divides by 255 (vbench/imaging_quality.py:18-37).
    """
    tensor = torch.as_tensor(frame)
    if tensor.ndim != 3 or tensor.shape[-1] != 3 or tensor.dtype != torch.uint8:
        raise InputError(f"a frame must be (H, W, 3) uint8 RGB, got {tuple(tensor.shape)} {tensor.dtype}")
    images = tensor[None].to(torch.float32).permute(0, 3, 1, 2)
    height, width = images.shape[-2:]
    size = vbench_longer_side_size(height, width)
    if size != (height, width):
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=False)
    return images / 255.0


# --- MUSIQ's multi-scale patch input ---------------------------------------------------------


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one axis: (before, after), the extra pixel after (pyiqa
    ``exact_padding_2d``; never negative for MUSIQ's kernels and strides)."""
    total = (math.ceil(size / stride) - 1) * stride + kernel - size
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad (N, C, H, W) so a ``kernel``/``stride`` window covers it as TensorFlow's "SAME" does."""
    top, bottom = same_padding(x.shape[-2], kernel, stride)
    left, right = same_padding(x.shape[-1], kernel, stride)
    return F.pad(x, (left, right, top, bottom))


def hashed_positions(rows: int, columns: int, grid: int = HASH_GRID_SIZE) -> torch.Tensor:
    """Hash-based spatial position of each patch, row-major: ``grid * hash(row) + hash(column)``,
    where ``hash`` maps ``n`` patch indices onto ``arange(grid)`` by nearest-neighbour resampling."""
    axis = torch.arange(grid, dtype=torch.float32).view(1, 1, grid)
    row_hash = F.interpolate(axis, size=rows, mode="nearest").view(rows, 1)
    column_hash = F.interpolate(axis, size=columns, mode="nearest").view(1, columns)
    return (row_hash * grid + column_hash).reshape(-1)


def scale_patches(image: torch.Tensor, scale_id: int, max_patches: int | None, grid: int = HASH_GRID_SIZE,
                  patch: int = PATCH_SIZE) -> torch.Tensor:
    """Rows (patches, 3 * patch * patch + 3) of one scale: pixels, hashed position, scale id, mask;
    zero rows appended (or rows cut) to ``max_patches`` unless it is None."""
    height, width = image.shape[-2:]
    pixels = F.unfold(pad_same(image, patch, patch), patch, stride=patch)[0]  # (C * p * p, patches)
    positions = hashed_positions(math.ceil(height / patch), math.ceil(width / patch), grid).to(pixels)
    count = positions.numel()
    extra = torch.stack([positions, torch.full_like(positions, float(scale_id)), torch.ones_like(positions)])
    rows = torch.cat([pixels, extra], dim=0)
    if max_patches is not None:
        rows = torch.cat([rows, rows.new_zeros(rows.shape[0], max_patches)], dim=1)[:, :max_patches]
    assert rows.shape[1] == (count if max_patches is None else max_patches)
    return rows.transpose(0, 1)


def multiscale_patches(image_01: torch.Tensor, config: MusiqConfig = SPAQ) -> torch.Tensor:
    """MUSIQ's input for one (1, 3, H, W) image in [0, 1]: (sequence, 3 * 32 * 32 + 3) rows.

    Maps the image to [-1, 1], then the resized scales (ascending long sides, bicubic, sizes
    rounded with Python's ``round``, each padded to ``ceil(L / 32) ** 2`` patches) and the
    original resolution (every patch), in that order.
    """
    image = (image_01 - 0.5) * 2
    height, width = image.shape[-2:]
    parts = []
    for scale_id, longer in enumerate(sorted(config.longer_side_lengths)):
        ratio = longer / max(height, width)
        size = (round(height * ratio), round(width * ratio))
        resized = F.interpolate(image, size=size, mode="bicubic", align_corners=False)
        parts.append(scale_patches(resized, scale_id, math.ceil(longer / PATCH_SIZE) ** 2, config.hash_grid_size))
    parts.append(scale_patches(image, len(config.longer_side_lengths), None, config.hash_grid_size))
    return torch.cat(parts, dim=0)


def sequence_length(height: int, width: int, config: MusiqConfig = SPAQ) -> int:
    """Rows of :func:`multiscale_patches` for an ``height`` x ``width`` image (without the CLS token)."""
    resized = sum(math.ceil(length / PATCH_SIZE) ** 2 for length in config.longer_side_lengths)
    return resized + math.ceil(height / PATCH_SIZE) * math.ceil(width / PATCH_SIZE)


# --- the network (pyiqa's parameter names) ---------------------------------------------------


class StdConv(nn.Conv2d):
    """Weight-standardised convolution with "SAME" zero padding (pyiqa ``StdConv``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size[0], self.stride[0])
        weight = self.weight - self.weight.mean((1, 2, 3), keepdim=True)
        weight = weight / (weight.std((1, 2, 3), keepdim=True) + STD_CONV_EPS)
        return F.conv2d(x, weight, self.bias, self.stride)


class Bottleneck(nn.Module):
    """ResNet-v2-style bottleneck (width = input channels) with a projected shortcut."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.conv1 = StdConv(channels, channels, 1, 1, bias=False)
        self.gn1 = nn.GroupNorm(GROUP_NORM_GROUPS, channels, eps=BLOCK_GN_EPS)
        self.conv2 = StdConv(channels, channels, 3, 1, bias=False)
        self.gn2 = nn.GroupNorm(GROUP_NORM_GROUPS, channels, eps=BLOCK_GN_EPS)
        self.conv3 = StdConv(channels, out_channels, 1, 1, bias=False)
        self.gn3 = nn.GroupNorm(GROUP_NORM_GROUPS, out_channels, eps=BLOCK_GN_EPS)
        self.conv_proj = StdConv(channels, out_channels, 1, 1, bias=False)
        self.gn_proj = nn.GroupNorm(GROUP_NORM_GROUPS, out_channels, eps=BLOCK_GN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.gn_proj(self.conv_proj(x))
        x = F.relu(self.gn1(self.conv1(x)))
        x = F.relu(self.gn2(self.conv2(x)))
        x = self.gn3(self.conv3(x))
        return F.relu(x + shortcut)


class Attention(nn.Module):
    """Multi-head self-attention; pairs involving a padding token score -1000 before the softmax."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        return x.reshape(batch, tokens, self.num_heads, dim // self.num_heads).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        query, key, value = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = (query @ key.transpose(-2, -1)) * self.scale
        both_valid = valid.view(batch, 1, tokens, 1) & valid.view(batch, 1, 1, tokens)
        weights = scores.masked_fill(~both_valid, MASKED_SCORE).softmax(dim=-1)
        return self.out((weights @ value).transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attention(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, mlp_dim: int, num_heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attention = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), valid)
        return x + self.mlp(self.norm2(x))


class HashPositionEmbedding(nn.Module):
    """Learned embeddings of the grid x grid hashed positions (read by :class:`Encoder`)."""

    def __init__(self, grid: int, dim: int):
        super().__init__()
        self.position_emb = nn.Parameter(torch.zeros(1, grid * grid, dim))


class ScaleEmbedding(nn.Module):
    """Learned embeddings of the scale ids (resized scales, then the original resolution)."""

    def __init__(self, num_scales: int, dim: int):
        super().__init__()
        self.scale_emb = nn.Parameter(torch.zeros(num_scales, dim))


class Encoder(nn.Module):
    """Adds hashed-position and scale embeddings, prepends CLS, runs the blocks, final LayerNorm."""

    def __init__(self, config: MusiqConfig):
        super().__init__()
        dim = config.hidden_size
        self.posembed_input = HashPositionEmbedding(config.hash_grid_size, dim)
        self.scaleembed_input = ScaleEmbedding(config.num_scales, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.transformer = nn.ModuleDict(
            {f"encoderblock_{i}": EncoderBlock(dim, config.mlp_dim, config.num_heads) for i in range(config.num_layers)}
        )

    def forward(self, x: torch.Tensor, positions: torch.Tensor, scales: torch.Tensor, valid: torch.Tensor):
        x = x + self.posembed_input.position_emb[0][positions.long()]
        x = x + self.scaleembed_input.scale_emb[scales.long()]
        batch = x.shape[0]
        x = torch.cat([self.cls.expand(batch, -1, -1), x], dim=1)
        valid = torch.cat([valid.new_ones(batch, 1), valid], dim=1)
        for block in self.transformer.values():
            x = block(x, valid)
        return self.encoder_norm(x)


class Musiq(nn.Module):
    """MUSIQ on pre-extracted multi-scale patch rows (:func:`multiscale_patches`): one score per row set."""

    def __init__(self, config: MusiqConfig = SPAQ):
        super().__init__()
        self.config = config
        width = RESNET_TOKEN_DIM * BOTTLENECK_EXPANSION
        tokens_per_side = PATCH_SIZE // 4
        self.conv_root = StdConv(3, RESNET_TOKEN_DIM, 7, 2, bias=False)
        self.gn_root = nn.GroupNorm(GROUP_NORM_GROUPS, RESNET_TOKEN_DIM, eps=ROOT_GN_EPS)
        self.block1 = Bottleneck(RESNET_TOKEN_DIM, width)
        self.embedding = nn.Linear(width * tokens_per_side**2, config.hidden_size)
        self.transformer_encoder = Encoder(config)
        if config.num_class > 1:
            self.head = nn.Sequential(nn.Linear(config.hidden_size, config.num_class), nn.Softmax(dim=-1))
        else:
            self.head = nn.Linear(config.hidden_size, config.num_class)

    def patch_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3 * 32 * 32) patch pixels -> (N, 8 * 8 * 256) ResNet-root features, channels last."""
        x = pixels.reshape(-1, 3, PATCH_SIZE, PATCH_SIZE)
        x = F.relu(self.gn_root(self.conv_root(x)))
        x = F.max_pool2d(pad_same(x, 3, 2), 3, 2)
        x = self.block1(x)
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """(B, sequence, 3 * 32 * 32 + 3) rows -> (B,) mean opinion scores."""
        batch, length, _ = rows.shape
        tokens = self.patch_tokens(rows[..., :-3]).reshape(batch, length, -1)
        encoded = self.transformer_encoder(self.embedding(tokens), rows[..., -3], rows[..., -2], rows[..., -1].bool())
        scores = self.head(encoded[:, 0])
        return mean_opinion_score(scores)


def mean_opinion_score(scores: torch.Tensor) -> torch.Tensor:
    """pyiqa ``dist_to_mos``: sum_k (k + 1) p_k over the classes; a single class is its own value."""
    classes = torch.arange(1, scores.shape[-1] + 1, dtype=scores.dtype, device=scores.device)
    return (scores * classes).sum(dim=-1)


# --- checkpoints -----------------------------------------------------------------------------


def expected_layout(config: MusiqConfig = SPAQ) -> dict[str, tuple[int, ...]]:
    """pyiqa MUSIQ's state-dict keys and shapes for ``config``, in its ``state_dict()`` order (what the
    published files hold; :class:`Musiq` registers the same names in the same order)."""
    width = RESNET_TOKEN_DIM * BOTTLENECK_EXPANSION
    dim, mlp = config.hidden_size, config.mlp_dim
    layout: dict[str, tuple[int, ...]] = {
        "conv_root.weight": (RESNET_TOKEN_DIM, 3, 7, 7),
        "gn_root.weight": (RESNET_TOKEN_DIM,),
        "gn_root.bias": (RESNET_TOKEN_DIM,),
    }
    # block1: (conv, its GroupNorm) pairs in registration order; kernels 1, 3, 1 and the 1x1 projection.
    convolutions = [("conv1", "gn1", RESNET_TOKEN_DIM, 1), ("conv2", "gn2", RESNET_TOKEN_DIM, 3),
                    ("conv3", "gn3", width, 1), ("conv_proj", "gn_proj", width, 1)]
    for conv, norm, out_channels, kernel in convolutions:
        layout[f"block1.{conv}.weight"] = (out_channels, RESNET_TOKEN_DIM, kernel, kernel)
        layout[f"block1.{norm}.weight"] = (out_channels,)
        layout[f"block1.{norm}.bias"] = (out_channels,)
    layout["embedding.weight"] = (dim, width * (PATCH_SIZE // 4) ** 2)
    layout["embedding.bias"] = (dim,)
    encoder = "transformer_encoder"
    layout[f"{encoder}.cls"] = (1, 1, dim)
    layout[f"{encoder}.posembed_input.position_emb"] = (1, config.hash_grid_size**2, dim)
    layout[f"{encoder}.scaleembed_input.scale_emb"] = (config.num_scales, dim)
    layout[f"{encoder}.encoder_norm.weight"] = (dim,)
    layout[f"{encoder}.encoder_norm.bias"] = (dim,)
    for i in range(config.num_layers):
        prefix = f"{encoder}.transformer.encoderblock_{i}"
        layout[f"{prefix}.norm1.weight"] = layout[f"{prefix}.norm1.bias"] = (dim,)
        for projection in ("query", "key", "value", "out"):
            layout[f"{prefix}.attention.{projection}.weight"] = (dim, dim)
            layout[f"{prefix}.attention.{projection}.bias"] = (dim,)
        layout[f"{prefix}.norm2.weight"] = layout[f"{prefix}.norm2.bias"] = (dim,)
        layout[f"{prefix}.mlp.fc1.weight"] = (mlp, dim)
        layout[f"{prefix}.mlp.fc1.bias"] = (mlp,)
        layout[f"{prefix}.mlp.fc2.weight"] = (dim, mlp)
        layout[f"{prefix}.mlp.fc2.bias"] = (dim,)
    head = "head.0" if config.num_class > 1 else "head"
    layout[f"{head}.weight"] = (config.num_class, dim)
    layout[f"{head}.bias"] = (config.num_class,)
    return layout


def clean_published(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pyiqa ``clean_state_dict``: drop a leading ``module.`` (from DataParallel training) from each key."""
    return {key[len("module."):] if key.startswith("module.") else key: value for key, value in state.items()}


def config_from_state(state: Mapping[str, torch.Tensor], path: Path) -> MusiqConfig:
    """The architecture a MUSIQ state dict describes (heads: hidden size / 64, as the published models)."""
    try:
        dim = state["embedding.weight"].shape[0]
        blocks = {int(m.group(1)) for key in state if (m := re.match(r"transformer_encoder\.transformer\.encoderblock_(\d+)\.", key))}
        mlp = state["transformer_encoder.transformer.encoderblock_0.mlp.fc1.weight"].shape[0]
        grid = math.isqrt(state["transformer_encoder.posembed_input.position_emb"].shape[1])
        scales = state["transformer_encoder.scaleembed_input.scale_emb"].shape[0]
        head = state["head.weight"] if "head.weight" in state else state["head.0.weight"]
    except (KeyError, IndexError, AttributeError) as exc:
        raise InputError(f"not a {WHAT} checkpoint: no {exc} tensor", path=path) from None
    if scales != len(LONGER_SIDE_LENGTHS) + 1:
        raise InputError(f"not a {WHAT} checkpoint of pyiqa's layout: {scales} scale embeddings (expected "
                         f"{len(LONGER_SIDE_LENGTHS) + 1})", path=path)
    return MusiqConfig(hidden_size=int(dim), mlp_dim=int(mlp), num_heads=max(1, int(dim) // HEAD_DIM),
                       num_layers=len(blocks), num_class=int(head.shape[0]), hash_grid_size=int(grid))


def convert_checkpoint(source: Path, target_dir: Path, expect: MusiqConfig | None = None) -> MusiqConfig:
    """Check a pyiqa MUSIQ checkpoint key by key and write it as ``config.json`` + ``model.safetensors``.

    The file is read with ``torch.load(weights_only=True)``; keys are cleaned as pyiqa does and must be
    exactly :func:`expected_layout` of the architecture they describe (of ``expect`` when given).
    """
    source = Path(source)
    state = clean_published(tensors_only(read_torch_state_dict(source, WHAT), source, WHAT))
    config = config_from_state(state, source)
    if expect is not None and config != expect:
        found, wanted = asdict(config), asdict(expect)
        diffs = ", ".join(f"{name} {found[name]} (expected {wanted[name]})" for name in wanted if found[name] != wanted[name])
        raise InputError(f"not the expected {WHAT} architecture: {diffs}", path=source)
    check_layout(state, expected_layout(config), source, WHAT)
    write_converted(target_dir, state, {"architecture": "pyiqa MUSIQ", **asdict(config)})
    return config


def convert_published(source: Path, target_dir: Path) -> None:
    """Convert pyiqa's published ``musiq_spaq_ckpt-358bb6af.pth`` (the SPAQ architecture, one output)."""
    convert_checkpoint(source, target_dir, expect=SPAQ)


def load_musiq(folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Musiq:
    """A :class:`Musiq` in eval mode from a converted folder (:func:`convert_checkpoint`)."""
    values, state = read_converted(folder, WHAT, WEIGHTS_ENTRY)
    values.pop("architecture", None)
    config = MusiqConfig.from_dict(values)
    with torch.device("meta"):
        model = Musiq(config)
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()


def musiq_scores(model: Musiq, rows: torch.Tensor) -> torch.Tensor:
    """Scores (B,) float32 for a batch of equal-length patch rows (B, sequence, 3075), no autograd."""
    parameter = model.embedding.weight
    with torch.inference_mode():
        return model(rows.to(device=parameter.device, dtype=parameter.dtype)).float()
