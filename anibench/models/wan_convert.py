"""Original Wan / AniSora checkpoints -> diffusers folders (``WanTransformer3DModel``, ``AutoencoderKLWan``).

The key renaming is diffusers' own (``diffusers.loaders.single_file_utils.convert_wan_transformer_to_diffusers``
and ``convert_wan_vae_to_diffusers``, diffusers 0.42.1); this module finds the weights, builds the diffusers
config, checks every key and shape strictly against the diffusers model and writes the folder.

Original layout (Wan-AI/Wan2.1 ``wan/modules/model.py``; AniSora's copy bilibili/Index-anisora @ 171fe63,
``anisoraV3/wan/modules/model_infer.py``): ``patch_embedding``, ``text_embedding.{0,2}``,
``time_embedding.{0,2}``, ``time_projection.1``, ``blocks.N.{self_attn,cross_attn,ffn,norm3,modulation}``,
``head.{head,modulation}`` and, for Wan2.1 I2V with CLIP, ``img_emb.proj.{0,1,3,4}`` (``MLPProj(1280, dim)``)
plus ``cross_attn.{k_img,v_img,norm_k_img}``. Wan2.2 I2V A14B experts (AniSora V3.2,
``anisoraV3.2/wan/modules/model.py``) have in_dim 36 and no CLIP parts. Checkpoints may carry the ComfyUI
prefix ``model.diffusion_model.`` or a ``{"state_dict"|"module": ...}`` wrapper.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from diffusers.loaders.single_file_utils import (
    convert_wan_transformer_to_diffusers,
    convert_wan_vae_to_diffusers,
)
from safetensors import safe_open
from safetensors.torch import save_file

CONVERTER_VERSION = "1"

HEAD_DIM = 128  # every published Wan DiT (1.3B: 12 x 128, 14B: 40 x 128)
TEXT_LEN = 512  # diffusers' WanAttnProcessor hard-codes 512 text tokens before the image tokens
PREFIX = "model.diffusion_model."
WRAPPERS = ("state_dict", "module")
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
WEIGHTS_STEM = "diffusion_pytorch_model"
FLF2V_POS = "img_emb.emb_pos"  # Wan2.1 FLF2V: learned positions of the 2 x 257 CLIP tokens


class WanCheckpointError(ValueError):
    """The checkpoint is not an original Wan model of the expected layout."""


# --------------------------------------------------------------------------------------------- reading


def weight_files(source: Path) -> list[Path]:
    """The weight files of ``source``: the file itself, the shards named by a ``*.index.json``, or every
    ``*.safetensors`` in the folder (else a single ``.pth``/``.pt``/``.bin``/``.ckpt``)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"Wan checkpoint not found: {source}")
    indexes = sorted(source.glob("*.safetensors.index.json"))
    if indexes:
        weight_map = json.loads(indexes[0].read_text())["weight_map"]
        return [source / name for name in sorted(set(weight_map.values()))]
    shards = sorted(source.glob("*.safetensors"))
    if shards:
        return shards
    others = sorted(p for p in source.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if len(others) != 1:
        raise WanCheckpointError(f"{source}: expected *.safetensors shards or one .pth/.pt file, found {others}")
    return others


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one file (safetensors, or ``torch.load(weights_only=True)``), unwrapped and unprefixed."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    else:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        for wrapper in WRAPPERS:
            if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
                state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WanCheckpointError(f"{path}: not a state dict of tensors")
    return {k.removeprefix(PREFIX): v for k, v in state.items()}


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape of one file; a safetensors header is read without loading tensors."""
    if path.suffix != ".safetensors":
        return {k: tuple(v.shape) for k, v in read_state_dict(path).items()}
    with safe_open(str(path), framework="pt") as f:
        return {k.removeprefix(PREFIX): tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def original_config(source: Path) -> dict | None:
    """Wan's ``config.json`` beside the weights (in the folder, or next to the file), if present."""
    source = Path(source)
    path = (source if source.is_dir() else source.parent) / "config.json"
    return json.loads(path.read_text()) if path.is_file() else None


# ------------------------------------------------------------------------------------------ transformer


def renamed(shapes: dict[str, tuple[int, ...]]) -> dict[str, str]:
    """Original key -> diffusers key, by diffusers' own Wan renaming (run per key on empty meta tensors),
    plus the FLF2V CLIP position table, which diffusers' table does not list."""
    names = {}
    for key, shape in shapes.items():
        if key == FLF2V_POS:
            names[key] = "condition_embedder.image_embedder.pos_embed"
            continue
        (new,) = convert_wan_transformer_to_diffusers({key: torch.empty(shape, device="meta")}).keys()
        names[key] = new
    return names


def require(shapes: dict[str, tuple[int, ...]], key: str, where: Path,
            what: str = "original Wan DiT") -> tuple[int, ...]:
    """The shape of ``key``; its absence means ``where`` is not the expected kind of checkpoint."""
    if key not in shapes:
        raise WanCheckpointError(f"{where}: not an {what}, key {key!r} is missing")
    return shapes[key]


def transformer_config(shapes: dict[str, tuple[int, ...]], original: dict | None, where: Path) -> dict:
    """diffusers ``WanTransformer3DModel`` config from the tensor shapes; heads from Wan's config.json
    (``num_heads``) or ``dim / 128``. Values that the config states must agree with the shapes."""
    inner, in_channels, *patch = require(shapes, "patch_embedding.weight", where)
    out = require(shapes, "head.head.weight", where)[0]
    ffn = require(shapes, "blocks.0.ffn.0.weight", where)[0]
    layers = 1 + max(int(m.group(1)) for k in shapes if (m := re.match(r"blocks\.(\d+)\.", k)))
    original = original or {}
    heads = original.get("num_heads", inner // HEAD_DIM)
    if heads <= 0 or inner % heads:
        raise WanCheckpointError(f"{where}: dim {inner} is not divisible into heads (num_heads={heads})")
    clip = "img_emb.proj.1.weight" in shapes
    config = {
        "patch_size": list(patch), "num_attention_heads": heads, "attention_head_dim": inner // heads,
        "in_channels": in_channels, "out_channels": out // math.prod(patch),
        "text_dim": require(shapes, "text_embedding.0.weight", where)[1],
        "freq_dim": require(shapes, "time_embedding.0.weight", where)[1],
        "ffn_dim": ffn, "num_layers": layers,
        "cross_attn_norm": "blocks.0.norm3.weight" in shapes,
        "qk_norm": "rms_norm_across_heads" if "blocks.0.self_attn.norm_q.weight" in shapes else None,
        "eps": original.get("eps", 1e-6),
        "image_dim": shapes["img_emb.proj.1.weight"][1] if clip else None,
        "added_kv_proj_dim": inner if clip else None,
        "pos_embed_seq_len": shapes[FLF2V_POS][1] if FLF2V_POS in shapes else None,
    }
    check_original_config(original, config, inner, where)
    return config


def check_original_config(original: dict, config: dict, inner: int, where: Path) -> None:
    """Wan's config.json (dim, in_dim, out_dim, ffn_dim, freq_dim, num_layers, text_len) must match."""
    stated = {"dim": inner, "in_dim": config["in_channels"], "out_dim": config["out_channels"],
              "ffn_dim": config["ffn_dim"], "freq_dim": config["freq_dim"], "num_layers": config["num_layers"],
              "text_len": TEXT_LEN}
    wrong = {k: (original[k], v) for k, v in stated.items() if k in original and original[k] != v}
    if wrong:
        raise WanCheckpointError(f"{where}: config.json disagrees with the weights (config, weights): {wrong}")


def expected_shapes(model_cls: type, config: dict) -> dict[str, tuple[int, ...]]:
    """Every diffusers parameter/buffer name and shape for ``config`` (built on the meta device)."""
    with init_empty_weights(include_buffers=True):
        model = model_cls.from_config(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_keys(converted: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
               origin: dict[str, str], where: Path) -> None:
    """Strict: no missing, unexpected or mis-shaped key; the error names them (original names where known)."""
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(origin.get(k, k) for k in set(converted) - set(expected))
    misshaped = sorted(f"{origin.get(k, k)}: {converted[k]} != {expected[k]}"
                       for k in set(converted) & set(expected) if converted[k] != expected[k])
    if missing or unexpected or misshaped:
        raise WanCheckpointError(
            f"{where}: does not match the diffusers Wan layout: missing {missing[:20]} ({len(missing)}), "
            f"unexpected {unexpected[:20]} ({len(unexpected)}), mis-shaped {misshaped[:20]} ({len(misshaped)})")


def write_shards(files: list[Path], names: dict[str, str], target: Path, stem: str) -> None:
    """One output safetensors per input file (names renamed), plus a diffusers index when there are several."""
    target.mkdir(parents=True, exist_ok=True)
    if len(files) == 1:
        state = read_state_dict(files[0])
        save_file({names[k]: v.contiguous() for k, v in state.items()}, str(target / f"{stem}.safetensors"))
        return
    weight_map, total = {}, 0
    for i, path in enumerate(files, start=1):
        shard = f"{stem}-{i:05d}-of-{len(files):05d}.safetensors"
        state = {names[k]: v.contiguous() for k, v in read_state_dict(path).items()}
        save_file(state, str(target / shard))
        weight_map.update(dict.fromkeys(state, shard))
        total += sum(v.numel() * v.element_size() for v in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (target / f"{stem}.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def convert_transformer(source: Path, target_dir: Path) -> None:
    """Original Wan/AniSora DiT (file or folder of shards) -> diffusers ``WanTransformer3DModel`` folder.

    Keys are renamed by diffusers' ``convert_wan_transformer_to_diffusers``; the config comes from the shapes
    (and Wan's config.json when present); every key and shape is checked against the diffusers model before
    anything is written. Tensors keep their dtype.
    """
    source, target_dir = Path(source), Path(target_dir)
    files = weight_files(source)
    per_file = {path: read_shapes(path) for path in files}
    shapes = {k: shape for file_shapes in per_file.values() for k, shape in file_shapes.items()}
    located = {k: f"{k} ({path.name})" for path, file_shapes in per_file.items() for k in file_shapes}
    names = renamed(shapes)
    config = transformer_config(shapes, original_config(source), source)
    converted = {names[k]: s for k, s in shapes.items()}
    origin = {new: located[old] for old, new in names.items()}
    check_keys(converted, expected_shapes(WanTransformer3DModel, config), origin, source)
    write_shards(files, names, target_dir, WEIGHTS_STEM)
    with init_empty_weights(include_buffers=True):
        WanTransformer3DModel.from_config(config).save_config(target_dir)


# -------------------------------------------------------------------------------------------------- VAE


def vae_config(shapes: dict[str, tuple[int, ...]], where: Path) -> dict:
    """``AutoencoderKLWan`` config from ``Wan2.1_VAE.pth`` shapes (anisoraV3/wan/modules/vae.py ``Encoder3d``:
    per level ``num_res_blocks`` residual blocks then, except last, a ``Resample`` whose ``time_conv`` marks
    a temporal downsample). Latent statistics stay diffusers' defaults, which are Wan2.1's published ones."""
    base = require(shapes, "encoder.conv1.weight", where, "original Wan VAE")[0]
    z_dim = require(shapes, "conv2.weight", where, "original Wan VAE")[0]
    blocks = sorted({int(m.group(1)) for k in shapes if (m := re.match(r"encoder\.downsamples\.(\d+)\.", k))})
    resamples = [i for i in blocks if f"encoder.downsamples.{i}.resample.1.weight" in shapes]
    if not resamples:
        raise WanCheckpointError(f"{where}: not an original Wan VAE, no encoder downsample layers")
    res_blocks = resamples[0]
    level_out = [shapes[f"encoder.downsamples.{i - 1}.residual.6.weight"][0] for i in resamples]
    level_out.append(shapes[f"encoder.downsamples.{blocks[-1]}.residual.6.weight"][0])
    return {
        "base_dim": base, "z_dim": z_dim, "dim_mult": [c // base for c in level_out],
        "num_res_blocks": res_blocks, "attn_scales": [],
        "temperal_downsample": [f"encoder.downsamples.{i}.time_conv.weight" in shapes for i in resamples],
    }


def convert_vae(source: Path, target_dir: Path) -> None:
    """``Wan2.1_VAE.pth`` (or a safetensors of the same keys) -> diffusers ``AutoencoderKLWan`` folder, by
    diffusers' ``convert_wan_vae_to_diffusers`` (its decoder table covers ``num_res_blocks`` 2 and four
    levels, Wan2.1's layout; anything else fails the strict key check)."""
    source, target_dir = Path(source), Path(target_dir)
    files = weight_files(source)
    state: dict[str, torch.Tensor] = {}
    for path in files:
        state.update(read_state_dict(path))
    config = vae_config({k: tuple(v.shape) for k, v in state.items()}, source)
    converted = convert_wan_vae_to_diffusers(state)
    check_keys({k: tuple(v.shape) for k, v in converted.items()}, expected_shapes(AutoencoderKLWan, config),
               {}, source)
    target_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in converted.items()}, str(target_dir / f"{WEIGHTS_STEM}.safetensors"))
    with init_empty_weights(include_buffers=True):
        AutoencoderKLWan.from_config(config).save_config(target_dir)
