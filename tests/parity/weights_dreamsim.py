"""Fixed random weights in DreamSim's published ensemble format (``dreamsim_ensemble_checkpoint.zip``).

Recipe shared by the reference side (scripts/parity/vbench_i2v_background_reference.py: VBench's
``i2v_background`` with DreamSim's own loader, in the parity venv) and anibench's tests; numpy,
torch and safetensors only. The DINO backbone DreamSim's DINO branch starts from is DINO's published
``dino_vitbase16_pretrain.pth`` — :func:`parity.weights.write_dino_vitb16_checkpoint` at full size,
:func:`write_tiny_dino_checkpoint` for the small configuration.

The archive (members at its root, as ``dreamsim.model.download_weights`` extracts them):

- ``clip_vitb16_pretrain.pth.tar`` / ``open_clip_vitb16_pretrain.pth.tar``: ``{"state_dict": ...}`` in
  DINO's ``VisionTransformer`` layout (dreamsim feature_extraction/vision_transformer.py ``vit_base``:
  qkv bias, patch conv with bias) plus ``pos_drop.weight``/``pos_drop.bias`` (the LayerNorm DreamSim
  puts there) and ``proj`` (width x output), loaded by ``load_clip_as_dino`` /
  ``load_open_clip_as_dino`` with ``strict=True`` after ``proj`` is popped.
- ``ensemble_lora/adapter_config.json`` (PEFT ``LoraConfig``: r, lora_alpha, dropout, bias none,
  ``target_modules ["qkv"]``) and ``ensemble_lora/adapter_model.safetensors`` with PEFT's saved keys
  ``base_model.model.extractor_list.{branch}.model.blocks.{i}.attn.qkv.lora_{A,B}.weight``.
- ``dino_vitb16_pretrain.pth``: DINO's training checkpoint, of which DreamSim's loader reads only the
  seven projection-head tensors under ``student`` and assigns them with ``.data =`` to a head the
  ensemble's ``cls`` feature never runs. They are written as one-element placeholders (the real head
  is ~70 MB of values nothing reads); anibench does not read this member at all.

Values: one generator per tensor, ``numpy.random.default_rng([seed, crc32(branch + "/" + name)])``,
uniform with the tensor's mean and standard deviation (as tests/parity/weights.py), scaled so random
towers give discriminative features (fan-in scaled matrices, query/key/value at twice that, LayerNorm
weights 1 +- 0.1, a patch-convolution bias large enough that moving it onto the position embeddings
is exercised) and LoRA updates of about a quarter of the qkv weights' scale, so a LoRA left out
or applied twice moves the values.

Two sizes: ``FULL`` (the published ViT-B/16 architecture, for the parity fixture) and ``TINY``
(width 128 = two heads, 2 blocks; anibench's fast tests — DreamSim's own loader hard-codes ``vit_base`` and block
11, so only ``FULL`` runs on VBench's side).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from parity.weights import state_dict_sha256

BRANCHES = ("dino", "clip", "open_clip")
LN_WEIGHT_STD, LN_BIAS_STD, BIAS_STD, PATCH_BIAS_STD = 0.1, 0.05, 0.02, 0.2
QKV_GAIN = 2.0
LORA_DROPOUT = 0.3
# LoRA update std relative to the qkv weights' std (QKV_GAIN / sqrt(width)).
LORA_RELATIVE_SCALE = 0.25


@dataclass(frozen=True)
class EnsembleSize:
    """Tower and LoRA sizes (all three branches share width and depth, as DreamSim's ``vit_base``)."""

    width: int
    depth: int
    mlp: int
    patch: int
    grid: int
    output_dim: int
    lora_rank: int
    lora_alpha: float


FULL = EnsembleSize(width=768, depth=12, mlp=3072, patch=16, grid=14, output_dim=512, lora_rank=16, lora_alpha=8.0)
TINY = EnsembleSize(width=128, depth=2, mlp=256, patch=16, grid=14, output_dim=32, lora_rank=4, lora_alpha=2.0)

TensorRecipe = tuple[str, tuple[int, ...], float, float]


def _layer_norm(prefix: str, width: int) -> list[TensorRecipe]:
    return [(f"{prefix}.weight", (width,), 1.0, LN_WEIGHT_STD), (f"{prefix}.bias", (width,), 0.0, LN_BIAS_STD)]


def _linear(prefix: str, out_features: int, in_features: int, gain: float = 1.0) -> list[TensorRecipe]:
    return [(f"{prefix}.weight", (out_features, in_features), 0.0, gain / math.sqrt(in_features)),
            (f"{prefix}.bias", (out_features,), 0.0, BIAS_STD)]


def vit_recipe(size: EnsembleSize, *, tower: bool) -> list[TensorRecipe]:
    """DINO ``VisionTransformer`` keys in state-dict order; a tower adds ``pos_drop`` (LayerNorm) and ``proj``."""
    d, p = size.width, size.patch
    recipe: list[TensorRecipe] = [
        ("cls_token", (1, 1, d), 0.0, 1.0),
        ("pos_embed", (1, size.grid * size.grid + 1, d), 0.0, 0.5),
        ("patch_embed.proj.weight", (d, 3, p, p), 0.0, 1 / math.sqrt(3 * p * p)),
        ("patch_embed.proj.bias", (d,), 0.0, PATCH_BIAS_STD if tower else BIAS_STD),
    ]
    if tower:
        recipe += _layer_norm("pos_drop", d)
    for i in range(size.depth):
        block = f"blocks.{i}"
        recipe += _layer_norm(f"{block}.norm1", d)
        recipe += _linear(f"{block}.attn.qkv", 3 * d, d, gain=QKV_GAIN)
        recipe += _linear(f"{block}.attn.proj", d, d)
        recipe += _layer_norm(f"{block}.norm2", d)
        recipe += _linear(f"{block}.mlp.fc1", size.mlp, d)
        recipe += _linear(f"{block}.mlp.fc2", d, size.mlp)
    recipe += _layer_norm("norm", d)
    if tower:
        recipe += [("proj", (d, size.output_dim), 0.0, 1 / math.sqrt(d))]
    return recipe


def _values(stream: str, shape: tuple[int, ...], mean: float, std: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng([seed, zlib.crc32(stream.encode("utf-8"))])
    half_width = std * math.sqrt(3.0)
    values = mean + half_width * (2.0 * rng.random(shape, dtype=np.float64) - 1.0)
    return torch.from_numpy(np.asarray(values, dtype=np.float32))


def tower_state_dict(branch: str, size: EnsembleSize = FULL, seed: int = 0) -> dict[str, torch.Tensor]:
    """A CLIP or OpenCLIP tower as DreamSim stores it (DINO layout + ``pos_drop`` + ``proj``)."""
    return {name: _values(f"{branch}/{name}", shape, mean, std, seed)
            for name, shape, mean, std in vit_recipe(size, tower=True)}


def tiny_dino_state_dict(size: EnsembleSize = TINY, seed: int = 0) -> dict[str, torch.Tensor]:
    """A small DINO backbone in ``dino_vitbase16_pretrain.pth``'s layout (the tiny ensemble's DINO branch)."""
    return {name: _values(f"dino/{name}", shape, mean, std, seed)
            for name, shape, mean, std in vit_recipe(size, tower=False)}


def lora_scaling(size: EnsembleSize) -> float:
    return size.lora_alpha / size.lora_rank


def lora_state_dict(size: EnsembleSize = FULL, seed: int = 0) -> dict[str, torch.Tensor]:
    """PEFT's saved adapter tensors for the three branches' ``qkv`` of every block."""
    d, r = size.width, size.lora_rank
    # scaling * B @ A has entries of std scaling * sqrt(r) * std_A * std_B; aim at LORA_RELATIVE_SCALE * qkv std.
    std_a = 1 / math.sqrt(d)
    std_b = LORA_RELATIVE_SCALE * QKV_GAIN / (lora_scaling(size) * math.sqrt(r))
    state = {}
    for index, branch in enumerate(BRANCHES):
        for i in range(size.depth):
            key = f"base_model.model.extractor_list.{index}.model.blocks.{i}.attn.qkv"
            state[f"{key}.lora_A.weight"] = _values(f"lora/{key}.A", (r, d), 0.0, std_a, seed)
            state[f"{key}.lora_B.weight"] = _values(f"lora/{key}.B", (3 * d, r), 0.0, std_b, seed)
    return state


def adapter_config(size: EnsembleSize = FULL) -> dict:
    """``adapter_config.json`` as PEFT writes it for DreamSim's training (training/train.py:199-207)."""
    return {"peft_type": "LORA", "task_type": None, "base_model_name_or_path": None, "inference_mode": True,
            "r": size.lora_rank, "lora_alpha": size.lora_alpha, "lora_dropout": LORA_DROPOUT, "bias": "none",
            "target_modules": ["qkv"], "fan_in_fan_out": False, "modules_to_save": None,
            "init_lora_weights": True, "layers_to_transform": None, "layers_pattern": None,
            "rank_pattern": {}, "alpha_pattern": {}}  # fmt: skip


def head_placeholder() -> dict:
    """``dino_vitb16_pretrain.pth``: the seven ``student`` head tensors DreamSim's loader assigns, as placeholders."""
    keys = ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "mlp.4.weight", "mlp.4.bias",
            "last_layer.weight"]
    return {"student": {f"module.head.{key}": torch.zeros(1) for key in keys}}


def _torch_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def write_dreamsim_archive(path: str | Path, size: EnsembleSize = FULL, seed: int = 0, *,
                           lora_weights: str = "safetensors") -> dict:
    """Write ``dreamsim_ensemble_checkpoint.zip`` at ``path``; returns the recipe (digests per member).

    ``lora_weights``: ``safetensors`` (``adapter_model.safetensors``, what current PEFT writes) or
    ``bin`` (``adapter_model.bin``, older PEFT).
    """
    from safetensors.torch import save as save_safetensors

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    towers = {branch: tower_state_dict(branch, size, seed) for branch in ("clip", "open_clip")}
    lora = lora_state_dict(size, seed)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("dino_vitb16_pretrain.pth", _torch_bytes(head_placeholder()))
        archive.writestr("clip_vitb16_pretrain.pth.tar", _torch_bytes({"state_dict": towers["clip"]}))
        archive.writestr("open_clip_vitb16_pretrain.pth.tar", _torch_bytes({"state_dict": towers["open_clip"]}))
        archive.writestr("ensemble_lora/adapter_config.json", json.dumps(adapter_config(size), indent=2))
        if lora_weights == "safetensors":
            archive.writestr("ensemble_lora/adapter_model.safetensors", save_safetensors(lora))
        else:
            archive.writestr("ensemble_lora/adapter_model.bin", _torch_bytes(lora))
    return {
        "writer": "tests/parity/weights_dreamsim.py:write_dreamsim_archive",
        "seed": seed,
        "size": asdict(size),
        "format": "zip: clip/open_clip *_pretrain.pth.tar, ensemble_lora (adapter_config.json, adapter_model."
                  f"{'safetensors' if lora_weights == 'safetensors' else 'bin'}), dino_vitb16_pretrain.pth (head placeholders)",
        "state_dict_sha256": {"clip": state_dict_sha256(towers["clip"]),
                              "open_clip": state_dict_sha256(towers["open_clip"]),
                              "lora": state_dict_sha256(lora)},
        "adapter_config": adapter_config(size),
    }


def write_tiny_dino_checkpoint(path: str | Path, size: EnsembleSize = TINY, seed: int = 0) -> Path:
    """A small DINO backbone file (plain state dict) for the tiny ensemble."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tiny_dino_state_dict(size, seed), path)
    return path
