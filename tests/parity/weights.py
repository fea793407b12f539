"""Fixed random weights in the published checkpoint formats of VBench's DINO and CLIP models.

Recipe shared by the reference side (scripts/parity/vbench_reference.py, VBench's own code in a
separate venv) and anibench's parity tests; numpy + torch only.

- ``dino_vitbase16_pretrain.pth`` (DINO ViT-B/16, torch.hub ``facebookresearch/dino`` ``dino_vitb16``):
  a plain state dict of DINO's ``VisionTransformer`` (vision_transformer.py at dino commit
  7c446df5b9f45747937fb0d72314eb9f7b66930a: embed 768, depth 12, 12 heads, MLP 3072, qkv bias,
  LayerNorm eps 1e-6, patch 16, ``pos_embed`` for 14x14 patches + CLS, no head), loaded by hubconf
  with ``strict=True``.
- ``ViT-B-32.pt`` (OpenAI CLIP ViT-B/32): the state dict ``clip.model.build_model`` expects, both
  towers, plus the ``input_resolution``/``context_length``/``vocab_size`` entries it deletes. Written
  either as a plain state dict (``torch.load(weights_only=True)`` reads it) or, like the published file,
  as a TorchScript archive whose module ``state_dict()`` is that state dict. VBench needs the latter:
  ``clip.load`` (openai-clip 1.0.1, clip/clip.py) tries ``torch.jit.load(opened_file)`` and on failure
  ``torch.load(opened_file)`` on the same file object, which torch 2.13's ``jit.load`` has already read
  to the end, so a plain state dict fails there with ``EOFError``.

Values: every tensor has its own generator, ``numpy.random.default_rng([seed, crc32(name)])``, drawing
``random()`` (float64 in [0, 1), platform independent) mapped to a uniform distribution with the
tensor's mean and standard deviation, then cast to float32. Scales are chosen so random networks give
discriminative features (different frames give clearly different cosine similarities): fan-in
scaled matrices (std 1/sqrt(fan_in); query/key/value projections QKV_GAIN/sqrt(fan_in)), LayerNorm
weights 1 +- 0.1, small biases, and position/class embeddings large enough that position-embedding
interpolation matters. The result: consecutive-frame cosines of 0.4-0.9 on the parity clips.

Every CLIP value is rounded to the nearest float16 (stored as float32): ``build_model`` converts the
conv/linear/attention/projection weights to float16 (``convert_weights``) before loading the state dict
and ``clip.load`` casts back to float32 on CPU, so unrounded values would be silently rounded on
VBench's side only. The published ViT-B-32.pt holds float16 weights, so this loses nothing.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

# (name, shape, mean, std) per tensor.
TensorRecipe = tuple[str, tuple[int, ...], float, float]

DINO_EMBED, DINO_DEPTH, DINO_MLP, DINO_PATCH, DINO_GRID = 768, 12, 3072, 16, 14
CLIP_VISION_WIDTH, CLIP_VISION_LAYERS, CLIP_PATCH, CLIP_GRID = 768, 12, 32, 7
CLIP_TEXT_WIDTH, CLIP_TEXT_LAYERS, CLIP_CONTEXT, CLIP_VOCAB, CLIP_EMBED = 512, 12, 77, 49408, 512
CLIP_RESOLUTION = CLIP_PATCH * CLIP_GRID

LN_WEIGHT_STD = 0.1
LN_BIAS_STD = 0.05
BIAS_STD = 0.02
# Query/key/value projections get twice the fan-in scale: sharper, content-dependent attention. With
# gain 1 the CLS feature is nearly an average over patches and consecutive frames give cos ~0.999.
QKV_GAIN = 2.0


def _layer_norm(prefix: str, width: int) -> list[TensorRecipe]:
    return [(f"{prefix}.weight", (width,), 1.0, LN_WEIGHT_STD), (f"{prefix}.bias", (width,), 0.0, LN_BIAS_STD)]


def _linear(prefix: str, out_features: int, in_features: int, gain: float = 1.0) -> list[TensorRecipe]:
    return [
        (f"{prefix}.weight", (out_features, in_features), 0.0, gain / math.sqrt(in_features)),
        (f"{prefix}.bias", (out_features,), 0.0, BIAS_STD),
    ]


def dino_vitb16_recipe() -> list[TensorRecipe]:
    """Every entry of ``dino_vitbase16_pretrain.pth`` in DINO's ``VisionTransformer.state_dict()`` order."""
    width = DINO_EMBED
    fan_in_patch = 3 * DINO_PATCH * DINO_PATCH
    recipe: list[TensorRecipe] = [
        ("cls_token", (1, 1, width), 0.0, 1.0),
        ("pos_embed", (1, DINO_GRID * DINO_GRID + 1, width), 0.0, 0.5),
        ("patch_embed.proj.weight", (width, 3, DINO_PATCH, DINO_PATCH), 0.0, 1 / math.sqrt(fan_in_patch)),
        ("patch_embed.proj.bias", (width,), 0.0, BIAS_STD),
    ]
    for i in range(DINO_DEPTH):
        block = f"blocks.{i}"
        recipe += _layer_norm(f"{block}.norm1", width)
        recipe += _linear(f"{block}.attn.qkv", 3 * width, width, gain=QKV_GAIN)
        recipe += _linear(f"{block}.attn.proj", width, width)
        recipe += _layer_norm(f"{block}.norm2", width)
        recipe += _linear(f"{block}.mlp.fc1", DINO_MLP, width)
        recipe += _linear(f"{block}.mlp.fc2", width, DINO_MLP)
    recipe += _layer_norm("norm", width)
    return recipe


def _clip_resblocks(prefix: str, width: int, layers: int) -> list[TensorRecipe]:
    recipe: list[TensorRecipe] = []
    for i in range(layers):
        block = f"{prefix}.resblocks.{i}"
        recipe += [
            (f"{block}.attn.in_proj_weight", (3 * width, width), 0.0, QKV_GAIN / math.sqrt(width)),
            (f"{block}.attn.in_proj_bias", (3 * width,), 0.0, BIAS_STD),
        ]
        recipe += _linear(f"{block}.attn.out_proj", width, width)
        recipe += _layer_norm(f"{block}.ln_1", width)
        recipe += _linear(f"{block}.mlp.c_fc", 4 * width, width)
        recipe += _linear(f"{block}.mlp.c_proj", width, 4 * width)
        recipe += _layer_norm(f"{block}.ln_2", width)
    return recipe


def clip_vitb32_recipe() -> list[TensorRecipe]:
    """Every float entry of OpenAI CLIP ViT-B/32's state dict, in ``clip.model.CLIP.state_dict()`` order."""
    vw, tw = CLIP_VISION_WIDTH, CLIP_TEXT_WIDTH
    recipe: list[TensorRecipe] = [
        ("positional_embedding", (CLIP_CONTEXT, tw), 0.0, 0.01),
        ("text_projection", (tw, CLIP_EMBED), 0.0, 1 / math.sqrt(tw)),
        ("logit_scale", (), math.log(1 / 0.07), 0.0),
        ("visual.class_embedding", (vw,), 0.0, 1.0),
        ("visual.positional_embedding", (CLIP_GRID * CLIP_GRID + 1, vw), 0.0, 0.5),
        ("visual.proj", (vw, CLIP_EMBED), 0.0, 1 / math.sqrt(vw)),
        ("visual.conv1.weight", (vw, 3, CLIP_PATCH, CLIP_PATCH), 0.0, 1 / math.sqrt(3 * CLIP_PATCH * CLIP_PATCH)),
    ]
    recipe += _layer_norm("visual.ln_pre", vw)
    recipe += _clip_resblocks("visual.transformer", vw, CLIP_VISION_LAYERS)
    recipe += _layer_norm("visual.ln_post", vw)
    recipe += _clip_resblocks("transformer", tw, CLIP_TEXT_LAYERS)
    recipe += [("token_embedding.weight", (CLIP_VOCAB, tw), 0.0, 0.02)]
    recipe += _layer_norm("ln_final", tw)
    return recipe


def _values(name: str, shape: tuple[int, ...], mean: float, std: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    half_width = std * math.sqrt(3.0)  # uniform on [mean - a, mean + a) has std a / sqrt(3)
    values = mean + half_width * (2.0 * rng.random(shape, dtype=np.float64) - 1.0)
    return np.asarray(values, dtype=np.float32)


def _tensors(recipe: list[TensorRecipe], seed: int, fp16_representable: bool) -> Iterator[tuple[str, torch.Tensor]]:
    for name, shape, mean, std in recipe:
        values = _values(name, shape, mean, std, seed)
        if fp16_representable:
            values = values.astype(np.float16).astype(np.float32)
        yield name, torch.from_numpy(values)


def dino_vitb16_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """DINO ViT-B/16 state dict (float32) with the recipe's fixed random values."""
    return dict(_tensors(dino_vitb16_recipe(), seed, fp16_representable=False))


def clip_vitb32_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """OpenAI CLIP ViT-B/32 state dict (float32 holding float16-representable values) + its three
    integer entries (``input_resolution`` 224, ``context_length`` 77, ``vocab_size`` 49408)."""
    state = dict(_tensors(clip_vitb32_recipe(), seed, fp16_representable=True))
    state["input_resolution"] = torch.tensor(CLIP_RESOLUTION)
    state["context_length"] = torch.tensor(CLIP_CONTEXT)
    state["vocab_size"] = torch.tensor(CLIP_VOCAB)
    return state


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """Digest of names, dtypes, shapes and values in key order (independent of the file container)."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _save(state: dict[str, torch.Tensor], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def write_dino_vitb16_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Write ``dino_vitbase16_pretrain.pth``-format weights (torch.save of a dict of tensors) to ``path``."""
    return _save(dino_vitb16_state_dict(seed), path)


class _StateNode(torch.nn.Module):
    """A scriptable module that only holds parameters/buffers (TorchScript needs a ``forward``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _state_module(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Nested modules whose ``state_dict()`` equals ``state`` (floats as parameters, integers as buffers)."""
    root = _StateNode()
    for key, tensor in state.items():
        *path, leaf = key.split(".")
        node = root
        for part in path:
            if part not in node._modules:
                node.add_module(part, _StateNode())
            node = node._modules[part]
        if tensor.is_floating_point():
            node.register_parameter(leaf, torch.nn.Parameter(tensor, requires_grad=False))
        else:
            node.register_buffer(leaf, tensor)
    return root


def write_clip_vitb32_checkpoint(path: str | Path, seed: int = 0, *, torchscript: bool = False) -> Path:
    """Write OpenAI ``ViT-B-32.pt`` weights to ``path``: a plain state dict (torch.save), or with
    ``torchscript=True`` a TorchScript archive (torch.jit.save) as published and as VBench's
    ``clip.load`` needs it; both hold exactly :func:`clip_vitb32_state_dict`."""
    state = clip_vitb32_state_dict(seed)
    if not torchscript:
        return _save(state, path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(_state_module(state)), str(path))
    return path
