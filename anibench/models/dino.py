"""DINO ViT (Caron et al. 2021) as ``transformers.ViTModel``, from DINO's published checkpoints.

Architecture (facebookresearch/dino ``vision_transformer.py`` at 7c446df, ``vit_small`` /
``vit_base``, and ``hubconf.py``): patch embedding by a strided convolution, a CLS token,
learned position embeddings for a 224-pixel grid, pre-norm blocks (LayerNorm eps 1e-6,
multi-head attention with a qkv bias, MLP 4x with exact GELU), a final LayerNorm; the
feature is the CLS token after that final norm (``forward`` returns ``x[:, 0]``). The
hub models have no classifier (``num_classes=0``) and transformers' pooler is not part of
DINO, so the model is built with ``add_pooling_layer=False``.

The published backbone files (``dino_vitbase16_pretrain.pth`` and its ViT-S/16, ViT-S/8,
ViT-B/8 siblings) are plain state dicts that ``hubconf.py`` loads with ``strict=True``;
they have no ``teacher``/``student`` wrapping (only the separate "full checkpoint" files
do, and those are refused with a pointer to the backbone file). The head count is not
recorded in the tensors: every published DINO ViT uses 64-dimensional heads.

Non-square inputs (VBench's subject consistency resizes the short side to 224 and does not
crop) need the position embeddings resampled. DINO and transformers do this differently:
DINO calls ``interpolate`` with ``scale_factor=((H//p + 0.1)/sqrt(N), (W//p + 0.1)/sqrt(N))``
(bicubic, ``align_corners=False``), so the sampling grid follows the scale factor, whereas
transformers 5.23 passes ``size=(H//p, W//p)``. The two differ numerically, so
:class:`DinoViTEmbeddings` reproduces DINO's rule inside an otherwise stock ``ViTModel``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import ViTConfig, ViTModel
from transformers.models.vit.modeling_vit import ViTEmbeddings

from anibench.errors import InputError
from anibench.models.checkpoints import (
    architecture_mismatch,
    check_layout,
    load_pretrained,
    read_torch_state_dict,
    tensors_only,
    write_hf_folder,
)

WHAT = "DINO ViT"
HEAD_DIM = 64
DINO_LAYER_NORM_EPS = 1e-6
DINO_IMAGE_SIZE = 224
# DINO's +0.1 "to avoid floating point error in the interpolation" (vision_transformer.py:184-186).
POSITION_OFFSET = 0.1

# hubconf.py: dino_vits16 / dino_vits8 (vit_small), dino_vitb16 / dino_vitb8 (vit_base).
VARIANTS: dict[str, dict[str, int]] = {
    "vits16": {"hidden_size": 384, "patch_size": 16},
    "vits8": {"hidden_size": 384, "patch_size": 8},
    "vitb16": {"hidden_size": 768, "patch_size": 16},
    "vitb8": {"hidden_size": 768, "patch_size": 8},
}


def dino_config(
    hidden_size: int = 768,
    patch_size: int = 16,
    num_hidden_layers: int = 12,
    image_size: int = DINO_IMAGE_SIZE,
    intermediate_size: int | None = None,
) -> ViTConfig:
    """A ``ViTConfig`` with DINO's architecture (defaults: ViT-B/16); heads are ``hidden_size // 64``."""
    if hidden_size % HEAD_DIM:
        raise ValueError(f"DINO ViTs use {HEAD_DIM}-dimensional heads; hidden size {hidden_size} is not a multiple")
    return ViTConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=hidden_size // HEAD_DIM,
        intermediate_size=intermediate_size or 4 * hidden_size,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=DINO_LAYER_NORM_EPS,
        image_size=image_size,
        patch_size=patch_size,
        num_channels=3,
        qkv_bias=True,
        encoder_stride=patch_size,
    )


def variant_config(name: str) -> ViTConfig:
    """The config of a published DINO ViT: ``vits16``, ``vits8``, ``vitb16`` or ``vitb8``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown DINO variant {name!r}; known: {sorted(VARIANTS)}")
    return dino_config(**VARIANTS[name])


class DinoViTEmbeddings(ViTEmbeddings):
    """transformers' ViT embeddings with DINO's position-embedding interpolation.

    Same parameters and forward as ``ViTEmbeddings``; only ``interpolate_pos_encoding``
    follows ``VisionTransformer.interpolate_pos_encoding`` (dino vision_transformer.py:174-194):
    the embeddings are returned unchanged when the patch count matches and the input is
    square (in pixels), else resampled bicubically with DINO's scale factors. Resampling is
    done in float32 (DINO runs in float32) and cast back to the parameters' precision.
    """

    def interpolate_pos_encoding(self, embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        num_patches = embeddings.shape[1] - 1
        num_positions = self.position_embeddings.shape[1] - 1
        if num_patches == num_positions and height == width:
            return self.position_embeddings
        grid = int(math.sqrt(num_positions))
        patch = self.patch_size if isinstance(self.patch_size, int) else self.patch_size[0]
        rows, cols = height // patch, width // patch
        dim = embeddings.shape[-1]
        class_position = self.position_embeddings[:, :1]
        patch_position = self.position_embeddings[:, 1:].float().reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
        side = math.sqrt(num_positions)
        patch_position = F.interpolate(
            patch_position,
            scale_factor=((rows + POSITION_OFFSET) / side, (cols + POSITION_OFFSET) / side),
            mode="bicubic",
            align_corners=False,
        )
        if tuple(patch_position.shape[-2:]) != (rows, cols):
            raise RuntimeError(f"position grid resampled to {tuple(patch_position.shape[-2:])}, not {(rows, cols)}")
        patch_position = patch_position.permute(0, 2, 3, 1).reshape(1, rows * cols, dim)
        return torch.cat((class_position, patch_position.to(class_position.dtype)), dim=1)


def use_dino_position_interpolation(model: ViTModel) -> ViTModel:
    """Swap ``model.embeddings`` for :class:`DinoViTEmbeddings`, sharing the same parameter tensors."""
    old = model.embeddings
    with torch.device("meta"):
        new = DinoViTEmbeddings(model.config, use_mask_token=old.mask_token is not None)
    new.load_state_dict(old.state_dict(), strict=True, assign=True)
    new.train(old.training)
    model.embeddings = new
    return model


# DINO key (with {i} for the block index) -> transformers ViTModel key.
_BLOCK_KEYS = {
    "norm1": "layernorm_before",
    "attn.proj": "attention.o_proj",
    "norm2": "layernorm_after",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_TOP_KEYS = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}
_QKV = ("q_proj", "k_proj", "v_proj")
_BLOCK_INDEX = re.compile(r"^blocks\.(\d+)\.")


def expected_shapes(config: ViTConfig) -> dict[str, tuple[int, ...]]:
    """DINO's state-dict keys and shapes for the architecture ``config`` describes."""
    d, m, p, c = config.hidden_size, config.intermediate_size, config.patch_size, config.num_channels
    grid = config.image_size // p
    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, d),
        "pos_embed": (1, grid * grid + 1, d),
        "patch_embed.proj.weight": (d, c, p, p),
        "patch_embed.proj.bias": (d,),
        "norm.weight": (d,),
        "norm.bias": (d,),
    }
    for i in range(config.num_hidden_layers):
        b = f"blocks.{i}."
        shapes.update({
            b + "norm1.weight": (d,), b + "norm1.bias": (d,),
            b + "attn.qkv.weight": (3 * d, d), b + "attn.qkv.bias": (3 * d,),
            b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
            b + "norm2.weight": (d,), b + "norm2.bias": (d,),
            b + "mlp.fc1.weight": (m, d), b + "mlp.fc1.bias": (m,),
            b + "mlp.fc2.weight": (d, m), b + "mlp.fc2.bias": (d,),
        })  # fmt: skip
    return shapes


def infer_config(state: Mapping[str, torch.Tensor], path: Path) -> ViTConfig:
    """The DINO ViT architecture a state dict holds, read from its tensors (then checked key by key)."""
    needed = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight")
    absent = [key for key in needed if key not in state]
    if absent:
        raise InputError(f"not a {WHAT} checkpoint: missing {', '.join(absent)}", path=path)
    hidden = int(state["cls_token"].shape[-1])
    patch = int(state["patch_embed.proj.weight"].shape[-1])
    positions = int(state["pos_embed"].shape[1]) - 1
    grid = math.isqrt(positions)
    if grid * grid != positions or hidden % HEAD_DIM:
        raise InputError(
            f"not a {WHAT} checkpoint: {positions} position embeddings (not a square grid) or width {hidden} "
            f"(not a multiple of {HEAD_DIM})",
            path=path,
        )
    layers = 1 + max(int(m.group(1)) for key in state if (m := _BLOCK_INDEX.match(key)))
    return dino_config(
        hidden_size=hidden,
        patch_size=patch,
        num_hidden_layers=layers,
        image_size=grid * patch,
        intermediate_size=int(state["blocks.0.mlp.fc1.weight"].shape[0]),
    )


def architecture(config: ViTConfig) -> dict[str, int]:
    """The fields that identify a DINO ViT architecture (for comparisons and messages)."""
    return {
        "width": config.hidden_size,
        "layers": config.num_hidden_layers,
        "patch": config.patch_size,
        "image_size": config.image_size,
        "mlp": config.intermediate_size,
    }


def dino_to_hf(state: Mapping[str, torch.Tensor], config: ViTConfig) -> dict[str, torch.Tensor]:
    """Rename DINO keys to transformers ``ViTModel`` keys; ``attn.qkv`` splits into q/k/v (in that order)."""
    out = {hf: state[dino] for dino, hf in _TOP_KEYS.items()}
    for i in range(config.num_hidden_layers):
        b, h = f"blocks.{i}.", f"layers.{i}."
        for dino, hf in _BLOCK_KEYS.items():
            for kind in ("weight", "bias"):
                out[f"{h}{hf}.{kind}"] = state[f"{b}{dino}.{kind}"]
        for kind in ("weight", "bias"):
            for name, part in zip(_QKV, state[f"{b}attn.qkv.{kind}"].chunk(3, dim=0)):
                out[f"{h}attention.{name}.{kind}"] = part
    return out


def hf_to_dino(state: Mapping[str, torch.Tensor], num_hidden_layers: int) -> dict[str, torch.Tensor]:
    """The inverse of :func:`dino_to_hf`: a ``ViTModel`` state dict (no pooler) back to DINO's keys."""
    out = {dino: state[hf] for dino, hf in _TOP_KEYS.items()}
    for i in range(num_hidden_layers):
        b, h = f"blocks.{i}.", f"layers.{i}."
        for dino, hf in _BLOCK_KEYS.items():
            for kind in ("weight", "bias"):
                out[f"{b}{dino}.{kind}"] = state[f"{h}{hf}.{kind}"]
        for kind in ("weight", "bias"):
            out[f"{b}attn.qkv.{kind}"] = torch.cat([state[f"{h}attention.{name}.{kind}"] for name in _QKV], dim=0)
    return out


def convert_checkpoint(source: Path, target_dir: Path, *, expect: ViTConfig | None = None) -> ViTConfig:
    """Convert a DINO backbone state dict at ``source`` into a transformers folder at ``target_dir``.

    The architecture is read from the tensors and every key and shape is checked against it;
    with ``expect``, a checkpoint of another architecture is refused naming the difference.
    Returns the config written.
    """
    source = Path(source)
    loaded = read_torch_state_dict(source, WHAT)
    if "teacher" in loaded or "student" in loaded:
        raise InputError(
            "this is DINO's full training checkpoint (teacher/student networks); use the backbone-only "
            "*_pretrain.pth file that hubconf.py loads",
            path=source,
        )
    state = tensors_only(loaded, source, WHAT)
    config = infer_config(state, source)
    check_layout(state, expected_shapes(config), source, WHAT)
    if expect is not None:
        mismatch = architecture_mismatch(architecture(config), architecture(expect))
        if mismatch:
            raise InputError(f"{WHAT} checkpoint of another architecture: {mismatch}", path=source)
    write_hf_folder(ViTModel, config, dino_to_hf(state, config), Path(target_dir), add_pooling_layer=False)
    return config


def convert_published(source: Path, target_dir: Path) -> None:
    """Convert DINO's published ViT-B/16 backbone (``dino_vitbase16_pretrain.pth``) to a transformers folder."""
    convert_checkpoint(source, target_dir, expect=variant_config("vitb16"))


def load_dino(
    source: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> ViTModel:
    """A DINO ``ViTModel`` in eval mode from a converted folder or a hub id (e.g. ``facebook/dino-vitb16``).

    Uses ``from_pretrained`` (offline when ``HF_HUB_OFFLINE`` is set) and installs DINO's
    position-embedding interpolation (:class:`DinoViTEmbeddings`).
    """
    model = load_pretrained(ViTModel, source, device, dtype, WHAT, "dino_vitb16", add_pooling_layer=False)
    return use_dino_position_interpolation(model)


def cls_features(model: ViTModel, pixel_values: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """DINO's feature: the CLS token after the final norm, (N, hidden) for (N, 3, H, W) normalised pixels.

    Any H and W (position embeddings interpolated as DINO does); ``batch_size`` bounds how
    many images go through the model at once. Returned on the model's device, in its dtype.
    """
    parameter = model.embeddings.cls_token
    chunks = [pixel_values] if batch_size is None else pixel_values.split(batch_size)
    outputs = []
    with torch.inference_mode():
        for chunk in chunks:
            chunk = chunk.to(device=parameter.device, dtype=parameter.dtype)
            hidden = model(pixel_values=chunk, interpolate_pos_encoding=True).last_hidden_state
            outputs.append(hidden[:, 0])
    return torch.cat(outputs)
