"""Fixed random weights in the published formats of VBench's aesthetic-quality models.

Recipe shared by the reference side (scripts/parity/vbench_aesthetic_quality_reference.py, VBench's own
code in the parity venv) and anibench's tests; numpy + torch only. Built on the recipe helpers of
:mod:`parity.weights` (same value generator, same scales, same TorchScript writer), which it only reads.

- ``ViT-L-14.pt`` (OpenAI CLIP ViT-L/14): the state dict ``clip.model.build_model`` expects, written as a
  TorchScript archive like the published file (``clip.load`` on torch 2.13 cannot read a plain state dict:
  see :mod:`parity.weights`). Two vision configurations:

  * :data:`PARITY_VISION` (the CI fixture): ViT-L/14's patch (14), input size (224, so a 16 x 16 grid
    and 257 tokens) and output size (768, what the LAION head reads), on a narrow, shallow trunk
    (width 256 = 4 heads of 64, 4 layers). ``build_model`` reads every architecture number from the
    tensors (width from ``conv1``, layers by counting blocks, patch from the kernel, grid from the
    position count, heads = width // 64), so VBench's ``clip.load`` builds exactly this network. What
    the narrow trunk does not exercise: the width-1024/24-layer sizes, which change no code path (the
    ViT-B/32 parity fixture already runs a full-size 768-wide, 12-layer trunk through the same converter).
  * :data:`FULL_VISION`: the published ViT-L/14 image tower (width 1024, 24 layers, 16 heads), for the
    timing benchmark (1.2 GB of float32).

  The text tower, which VBench's aesthetic quality never runs (it calls ``encode_image`` only), is kept
  minimal in both (width 64, 1 layer, vocabulary 1000, context 77) so the archive stays small;
  ``build_model`` reads its sizes from the tensors too. ``embed_dim`` (``text_projection``'s columns)
  equals the image output size, as ``build_model`` requires.
- ``sa_0_4_vit_l_14_linear.pth`` (LAION aesthetic predictor V1): ``torch.save`` of ``nn.Linear(768, 1)``'s
  state dict, keys ``weight`` (1, 768) and ``bias`` (1,), float32 — the published file's exact layout
  (checked on the file committed to LAION-AI/aesthetic-predictor, sha256 2cd4e60f…, whose weight has std
  1.02 and bias 3.53; the recipe draws weight std 1.0 around 0 and bias 3.5 ± 0.5).

CLIP values are float16-representable, as in :mod:`parity.weights` (``clip.load`` rounds to float16).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from parity.weights import (
    TensorRecipe,
    _clip_resblocks,
    _layer_norm,
    _save,
    _state_module,
    _tensors,
    state_dict_sha256,
)

# Vision configurations: OpenAI CLIP architecture dicts (anibench.models.clip's keys).
PARITY_VISION = {"width": 256, "layers": 4, "patch": 14, "image_size": 224, "output_dim": 768}
FULL_VISION = {"width": 1024, "layers": 24, "patch": 14, "image_size": 224, "output_dim": 768}
VISIONS = {"parity": PARITY_VISION, "full": FULL_VISION}

TEXT_WIDTH, TEXT_LAYERS, TEXT_CONTEXT, TEXT_VOCAB = 64, 1, 77, 1000

AESTHETIC_INPUT = 768  # vbench/aesthetic_quality.py:35, nn.Linear(768, 1)
AESTHETIC_WEIGHT_STD = 1.0
AESTHETIC_BIAS_MEAN, AESTHETIC_BIAS_STD = 3.5, 0.5


def clip_l14_recipe(vision: dict[str, int]) -> list[TensorRecipe]:
    """Every float entry of an OpenAI CLIP state dict with this image tower and the minimal text tower."""
    vw, out = vision["width"], vision["output_dim"]
    patch, grid = vision["patch"], vision["image_size"] // vision["patch"]
    recipe: list[TensorRecipe] = [
        ("positional_embedding", (TEXT_CONTEXT, TEXT_WIDTH), 0.0, 0.01),
        ("text_projection", (TEXT_WIDTH, out), 0.0, 1 / math.sqrt(TEXT_WIDTH)),
        ("logit_scale", (), math.log(1 / 0.07), 0.0),
        ("visual.class_embedding", (vw,), 0.0, 1.0),
        ("visual.positional_embedding", (grid * grid + 1, vw), 0.0, 0.5),
        ("visual.proj", (vw, out), 0.0, 1 / math.sqrt(vw)),
        ("visual.conv1.weight", (vw, 3, patch, patch), 0.0, 1 / math.sqrt(3 * patch * patch)),
    ]
    recipe += _layer_norm("visual.ln_pre", vw)
    recipe += _clip_resblocks("visual.transformer", vw, vision["layers"])
    recipe += _layer_norm("visual.ln_post", vw)
    recipe += _clip_resblocks("transformer", TEXT_WIDTH, TEXT_LAYERS)
    recipe += [("token_embedding.weight", (TEXT_VOCAB, TEXT_WIDTH), 0.0, 0.02)]
    recipe += _layer_norm("ln_final", TEXT_WIDTH)
    return recipe


def clip_l14_state_dict(config: str = "parity", seed: int = 0) -> dict[str, torch.Tensor]:
    """The CLIP state dict for ``config`` (``parity`` or ``full``) plus ``build_model``'s three integer entries."""
    vision = VISIONS[config]
    state = dict(_tensors(clip_l14_recipe(vision), seed, fp16_representable=True))
    state["input_resolution"] = torch.tensor(vision["image_size"])
    state["context_length"] = torch.tensor(TEXT_CONTEXT)
    state["vocab_size"] = torch.tensor(TEXT_VOCAB)
    return state


def write_clip_l14_checkpoint(path: str | Path, config: str = "parity", seed: int = 0) -> Path:
    """Write ``ViT-L-14.pt``-format weights (a TorchScript archive, as published) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(_state_module(clip_l14_state_dict(config, seed))), str(path))
    return path


def aesthetic_head_recipe() -> list[TensorRecipe]:
    return [
        ("weight", (1, AESTHETIC_INPUT), 0.0, AESTHETIC_WEIGHT_STD),
        ("bias", (1,), AESTHETIC_BIAS_MEAN, AESTHETIC_BIAS_STD),
    ]


def aesthetic_head_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """``nn.Linear(768, 1).state_dict()`` layout (float32) with the recipe's values."""
    return dict(_tensors(aesthetic_head_recipe(), seed, fp16_representable=False))


def write_aesthetic_head_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Write ``sa_0_4_vit_l_14_linear.pth``-format weights (torch.save of the state dict) to ``path``."""
    return _save(aesthetic_head_state_dict(seed), path)


__all__ = [
    "FULL_VISION",
    "PARITY_VISION",
    "aesthetic_head_state_dict",
    "clip_l14_state_dict",
    "state_dict_sha256",
    "write_aesthetic_head_checkpoint",
    "write_clip_l14_checkpoint",
]
