"""Tiny Wan / AniSora DiTs in the ORIGINAL checkpoint layout, built without the original Wan code.

:func:`write_tiny_anisora_dit` takes the tiny diffusers transformer of ``tests/parity/tiny_wan.py`` (same sizes:
2 heads of 12, 2 layers, in 36, text_dim 32, ffn 32, freq 256, CLIP image_dim 4; Wan2.2 without CLIP parts),
renames its keys back to Wan's names (Wan-AI/Wan2.1 ``wan/modules/model.py``; AniSora's copy
bilibili/Index-anisora @ 171fe63 ``anisoraV3/wan/modules/model_infer.py``) and writes one safetensors plus
Wan's own ``config.json`` (the published Wan2.1-I2V-14B-480P layout: ``dim``, ``ffn_dim``, ``num_heads`` ...).
The renaming here is written independently of diffusers' converter, so a round trip through
``anibench.models.wan_convert`` checks the converter key by key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from anibench.runtime.torchvision_compat import ensure_torchvision

ensure_torchvision()  # before diffusers (peft imports transformers, which imports torchvision)

from diffusers import WanTransformer3DModel  # noqa: E402

from parity.tiny_wan import HEAD_DIM, HEADS, transformer_config  # noqa: E402

WEIGHTS = "diffusion_pytorch_model.safetensors"

# diffusers name fragment -> Wan name fragment, applied in order (each key matches at most one rule per group).
TO_ORIGINAL = (
    (r"^condition_embedder\.time_embedder\.linear_1\.", "time_embedding.0."),
    (r"^condition_embedder\.time_embedder\.linear_2\.", "time_embedding.2."),
    (r"^condition_embedder\.text_embedder\.linear_1\.", "text_embedding.0."),
    (r"^condition_embedder\.text_embedder\.linear_2\.", "text_embedding.2."),
    (r"^condition_embedder\.time_proj\.", "time_projection.1."),
    (r"^condition_embedder\.image_embedder\.norm1\.", "img_emb.proj.0."),
    (r"^condition_embedder\.image_embedder\.ff\.net\.0\.proj\.", "img_emb.proj.1."),
    (r"^condition_embedder\.image_embedder\.ff\.net\.2\.", "img_emb.proj.3."),
    (r"^condition_embedder\.image_embedder\.norm2\.", "img_emb.proj.4."),
    (r"^scale_shift_table$", "head.modulation"),
    (r"^proj_out\.", "head.head."),
    (r"\.attn1\.", ".self_attn."),
    (r"\.attn2\.", ".cross_attn."),
    (r"\.to_q\.", ".q."),
    (r"\.to_k\.", ".k."),
    (r"\.to_v\.", ".v."),
    (r"\.to_out\.0\.", ".o."),
    (r"\.add_k_proj\.", ".k_img."),
    (r"\.add_v_proj\.", ".v_img."),
    (r"\.norm_added_k\.", ".norm_k_img."),
    (r"^(blocks\.\d+)\.norm2\.", r"\1.norm3."),  # diffusers norm2 is Wan's affine cross-attention norm3
    (r"\.ffn\.net\.0\.proj\.", ".ffn.0."),
    (r"\.ffn\.net\.2\.", ".ffn.2."),
    (r"^(blocks\.\d+)\.scale_shift_table$", r"\1.modulation"),
)


def original_name(key: str) -> str:
    """Wan's checkpoint name for a diffusers ``WanTransformer3DModel`` key."""
    for pattern, replacement in TO_ORIGINAL:
        key = re.sub(pattern, replacement, key)
    return key


def original_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The diffusers model's tensors under Wan's names."""
    return {original_name(k): v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def original_config(*, wan22: bool = False) -> dict:
    """Wan's ``config.json`` for the tiny sizes (Wan2.2 I2V experts also say ``model_type`` "i2v")."""
    config = transformer_config(wan22=wan22)
    return {"_class_name": "WanModel", "_diffusers_version": "0.30.0", "model_type": "i2v",
            "dim": HEADS * HEAD_DIM, "eps": config["eps"], "ffn_dim": config["ffn_dim"],
            "freq_dim": config["freq_dim"], "in_dim": config["in_channels"], "num_heads": HEADS,
            "num_layers": config["num_layers"], "out_dim": config["out_channels"], "text_len": 512}


def tiny_transformer(*, wan22: bool = False, seed: int = 1) -> WanTransformer3DModel:
    """The tiny diffusers transformer, weights from ``torch.manual_seed(seed)`` (caller's generator untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return WanTransformer3DModel(**transformer_config(wan22=wan22)).eval()


def write_tiny_anisora_dit(folder: Path, *, wan22: bool = False, seed: int = 1) -> Path:
    """Write a tiny DiT in the original layout (one safetensors + Wan ``config.json``) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(original_state_dict(tiny_transformer(wan22=wan22, seed=seed)), str(folder / WEIGHTS))
    (folder / "config.json").write_text(json.dumps(original_config(wan22=wan22), indent=2) + "\n")
    return folder
