"""Fixed random ViCLIP weights in the published checkpoint format, at full size or at a small size.

Recipe shared by the reference side (scripts/parity/vbench_overall_consistency_reference.py, VBench's own
code in a separate venv) and anibench's tests; numpy + torch only.

The published ``ViClip-InternVid-10M-FLT.pth`` is read by VBench as ``torch.load(pretrain)['model']``
and loaded strictly into ``ViCLIP`` (vbench/third_party/ViCLIP/viclip.py:56-59 at 45e79ec), so the file
written here is ``torch.save({'model': state_dict})`` with exactly ``ViCLIP.state_dict()``'s keys:
``temp``, ``vision_encoder.*`` (Conv3d patch embedding, class/position/temporal embeddings, residual
blocks, ``ln_post``, ``proj``) and ``text_encoder.*`` (CLIP text transformer).

Sizes: :data:`FULL` is ViCLIP ViT-L/14 as VBench builds it (1024-wide 24-layer video tower, 768-wide
12-layer text tower, 8 frames, 32 text positions). :data:`SMALL` keeps everything that decides the
preprocessing and the tokenizer (224 px, patch 14, 8 frames, 32 positions, vocabulary 49408) and shrinks
widths and depths (128 wide, 2 layers, 2 heads of 64, 64-d embeddings), so the same code paths run in a
fraction of a second. VBench's own ``ViCLIP`` hard-codes the L/14 sizes in ``clip_joint_l14`` and
``clip_text_l14``; the reference script builds the small network with VBench's own ``VisionTransformer``
and ``CLIP_TEXT`` classes at these sizes (see that script).

Values: :func:`parity.weights._values` (one generator per tensor, ``default_rng([seed, crc32(name)])``,
uniform with the given mean and standard deviation), with the scales of ``parity.weights``: fan-in scaled
matrices, query/key/value at ``QKV_GAIN``, LayerNorm weights 1 +- 0.1, small biases; class, position and
temporal embeddings large enough to matter (a temporal embedding of zeros, its initial value, would make
the frame order invisible).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from parity.weights import (
    TensorRecipe,
    _clip_resblocks,
    _layer_norm,
    _linear,
    _values,
    state_dict_sha256,
)

# (vision width, vision layers, embed dim, text width, text layers, text embed dim); heads are width // 64.
FULL = {"vision_width": 1024, "vision_layers": 24, "embed_dim": 768,
        "text_width": 768, "text_layers": 12, "text_embed_dim": 768}  # fmt: skip
SMALL = {"vision_width": 128, "vision_layers": 2, "embed_dim": 64,
         "text_width": 128, "text_layers": 2, "text_embed_dim": 64}  # fmt: skip
# For tests of the plumbing only (battery, sessions): patch 28 (8 x 8 patches per frame, 513 tokens
# instead of 2049), one 64-wide layer per tower. Not a VBench size; the parity fixture uses SMALL.
MICRO = {"vision_width": 64, "vision_layers": 1, "embed_dim": 32,
         "text_width": 64, "text_layers": 1, "text_embed_dim": 32, "patch": 28}  # fmt: skip
PATCH, IMAGE_SIZE, FRAMES, CONTEXT, VOCAB = 14, 224, 8, 32, 49408


def _resblocks(prefix: str, width: int, layers: int) -> list[TensorRecipe]:
    """open_clip's ``Transformer`` under ``prefix.transformer``: the CLIP block layout of the shared recipe."""
    return _clip_resblocks(f"{prefix}.transformer", width, layers)


def viclip_recipe(size: dict[str, int]) -> list[TensorRecipe]:
    """Every entry of ``ViCLIP.state_dict()`` at ``size`` (:data:`FULL`, :data:`SMALL`, :data:`MICRO`)."""
    vw, tw = size["vision_width"], size["text_width"]
    patch = size.get("patch", PATCH)
    grid = IMAGE_SIZE // patch
    recipe: list[TensorRecipe] = [
        ("temp", (), 0.01, 0.0),
        ("vision_encoder.class_embedding", (vw,), 0.0, 1.0),
        ("vision_encoder.positional_embedding", (grid * grid + 1, vw), 0.0, 0.5),
        ("vision_encoder.temporal_positional_embedding", (1, FRAMES, vw), 0.0, 0.5),
        ("vision_encoder.proj", (vw, size["embed_dim"]), 0.0, 1 / math.sqrt(vw)),
        ("vision_encoder.conv1.weight", (vw, 3, 1, patch, patch), 0.0, 1 / math.sqrt(3 * patch * patch)),
    ]
    recipe += _layer_norm("vision_encoder.ln_pre", vw)
    recipe += _resblocks("vision_encoder", vw, size["vision_layers"])
    recipe += _layer_norm("vision_encoder.ln_post", vw)
    recipe += [
        ("text_encoder.positional_embedding", (CONTEXT, tw), 0.0, 0.5),
        ("text_encoder.text_projection", (tw, size["text_embed_dim"]), 0.0, 1 / math.sqrt(tw)),
    ]
    recipe += _resblocks("text_encoder", tw, size["text_layers"])
    recipe += [("text_encoder.token_embedding.weight", (VOCAB, tw), 0.0, 0.5)]
    recipe += _layer_norm("text_encoder.ln_final", tw)
    return recipe


def viclip_state_dict(size: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """ViCLIP's state dict (float32) at ``size`` with the recipe's fixed random values."""
    return {name: torch.from_numpy(_values(name, shape, mean, std, seed)) for name, shape, mean, std in
            viclip_recipe(size)}  # fmt: skip


def write_viclip_checkpoint(path: str | Path, size: dict[str, int], seed: int = 0) -> Path:
    """Write ``ViClip-InternVid-10M-FLT.pth``-format weights: ``torch.save({'model': state_dict})``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": viclip_state_dict(size, seed)}, path)
    return path


def viclip_state_sha256(size: dict[str, int], seed: int = 0) -> str:
    return state_dict_sha256(viclip_state_dict(size, seed))
