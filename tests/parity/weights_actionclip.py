"""Fixed random ActionCLIP weights (AnimeReward's visual motion head) in the published checkpoint format.

Recipe shared by the reference side (scripts/parity/anime_reward_motion_reference.py, the published classes of
bilibili/Index-anisora 171fe63 ``reward/models/{actionclip,adapter,load}.py`` in the parity venv) and anibench's
tests; numpy + torch only.

**Published layout** (``reward/weights/testvl-pre76-top187-rec69.pth``). ``init_actionclip(path, mode='self')``
(models/load.py:45-79) reads it with mmengine's ``_load_checkpoint`` and takes ``checkpoint['state_dict']``,
then ``ActionClip(...).load_state_dict(state_dict)`` — strict — so the state dict holds exactly the keys of
``ActionClip``: ``clip.*`` (the whole OpenAI CLIP ViT-B/16, both towers and ``logit_scale``) and ``adapter.*``
(``frame_position_embeddings.weight`` (segments, embed) and ``transformer.resblocks.{i}.*``, the
``clip.model.Transformer`` block layout). The file written here is an mmengine-style checkpoint
``torch.save({'meta': {...}, 'state_dict': OrderedDict})`` with those keys; ``meta`` holds only plain values.

Sizes (heads are width // 64 in both CLIP towers; the adapter has ``text_width // 64`` heads of width
``embed_dim`` — adapter.py:16-18 reads them from ``ln_final`` and ``text_projection``):

- :data:`FULL`: ViT-B/16 as ``clip.load('ViT-B/16')`` builds it (vision 768 x 12, patch 16, 224 px; text
  512 x 12, 77 positions, vocabulary 49408; embedding 512), 8 adapter segments, 6 adapter layers (ActionCLIP's
  default ``num_adapter_layers``; load.py counts them in the file, so the published count is whatever it holds).
- :data:`SMALL`: the parity fixture's size: 224 px, patch 16, 77 positions, 8 segments and the full vocabulary
  (everything that decides preprocessing and tokenisation), 128-wide 2-layer towers, 64-d embedding, 2 adapter
  layers with 2 heads of 32 (text width 128 // 64: the quirk that the adapter's heads follow the text width).
- :data:`MICRO`: plumbing tests only (patch 32, 64-wide single layers, 32-d embedding).

Values: :func:`parity.weights._values` (one generator per tensor, ``default_rng([seed, crc32(name)])``), with the
scales of ``parity.weights`` (fan-in scaled matrices, QKV gain, LayerNorm weights 1 +- 0.1, small biases).
Frame-position embeddings get std 0.5 so the frame order matters. Values are float32 and are not rounded to
float16: ``clip.load`` on the CPU returns a float32 model (``model.float()``) before ``load_state_dict`` copies
the checkpoint in, so the checkpoint's values are used as stored.

:func:`install_random_actionclip` writes such a file into an anibench weights folder (for benchmarks).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch

from parity.weights import TensorRecipe, _clip_resblocks, _layer_norm, _values, state_dict_sha256

FULL = {"vision_width": 768, "vision_layers": 12, "patch": 16, "embed_dim": 512,
        "text_width": 512, "text_layers": 12, "adapter_layers": 6}  # fmt: skip
SMALL = {"vision_width": 128, "vision_layers": 2, "patch": 16, "embed_dim": 64,
         "text_width": 128, "text_layers": 2, "adapter_layers": 2}  # fmt: skip
MICRO = {"vision_width": 64, "vision_layers": 1, "patch": 32, "embed_dim": 32,
         "text_width": 64, "text_layers": 1, "adapter_layers": 1}  # fmt: skip
SIZES = {"full": FULL, "small": SMALL, "micro": MICRO}
IMAGE_SIZE, CONTEXT, VOCAB, SEGMENTS = 224, 77, 49408, 8
PUBLISHED_FILE = "testvl-pre76-top187-rec69.pth"
ENTRY = "anime_reward_actionclip"


def clip_recipe(size: dict[str, int], prefix: str = "") -> list[TensorRecipe]:
    """Every entry of OpenAI ``clip.model.CLIP.state_dict()`` at ``size``, in its order, under ``prefix``."""
    vw, tw, patch, embed = size["vision_width"], size["text_width"], size["patch"], size["embed_dim"]
    grid = IMAGE_SIZE // patch
    p = prefix
    recipe: list[TensorRecipe] = [
        (f"{p}positional_embedding", (CONTEXT, tw), 0.0, 0.01),
        (f"{p}text_projection", (tw, embed), 0.0, 1 / math.sqrt(tw)),
        (f"{p}logit_scale", (), math.log(1 / 0.07), 0.0),
        (f"{p}visual.class_embedding", (vw,), 0.0, 1.0),
        (f"{p}visual.positional_embedding", (grid * grid + 1, vw), 0.0, 0.5),
        (f"{p}visual.proj", (vw, embed), 0.0, 1 / math.sqrt(vw)),
        (f"{p}visual.conv1.weight", (vw, 3, patch, patch), 0.0, 1 / math.sqrt(3 * patch * patch)),
    ]
    recipe += _layer_norm(f"{p}visual.ln_pre", vw)
    recipe += _clip_resblocks(f"{p}visual.transformer", vw, size["vision_layers"])
    recipe += _layer_norm(f"{p}visual.ln_post", vw)
    recipe += _clip_resblocks(f"{p}transformer", tw, size["text_layers"])
    recipe += [(f"{p}token_embedding.weight", (VOCAB, tw), 0.0, 0.02)]
    recipe += _layer_norm(f"{p}ln_final", tw)
    return recipe


def actionclip_recipe(size: dict[str, int]) -> list[TensorRecipe]:
    """Every entry of the published ``ActionClip.state_dict()`` at ``size``: ``clip.*`` then ``adapter.*``."""
    embed = size["embed_dim"]
    recipe = clip_recipe(size, "clip.")
    recipe += [("adapter.frame_position_embeddings.weight", (SEGMENTS, embed), 0.0, 0.5)]
    recipe += _clip_resblocks("adapter.transformer", embed, size["adapter_layers"])
    return recipe


def actionclip_state_dict(size: dict[str, int], seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    """The published state dict (float32) at ``size`` with the recipe's fixed random values."""
    return OrderedDict((name, torch.from_numpy(_values(name, shape, mean, std, seed)))
                       for name, shape, mean, std in actionclip_recipe(size))  # fmt: skip


def openai_clip_state_dict(size: dict[str, int], seed: int) -> "OrderedDict[str, torch.Tensor]":
    """An OpenAI-layout CLIP state dict (no prefix) at ``size``: what ``clip.load`` builds ActionClip's CLIP from
    before the checkpoint overwrites it (the reference uses another seed to show that nothing of it survives)."""
    return OrderedDict((name, torch.from_numpy(_values(name, shape, mean, std, seed)))
                       for name, shape, mean, std in clip_recipe(size))  # fmt: skip


def write_actionclip_checkpoint(path: str | Path, size: dict[str, int], seed: int = 0) -> Path:
    """Write ``testvl-pre76-top187-rec69.pth``-format weights: ``torch.save({'meta': ..., 'state_dict': ...})``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"mmengine_version": "0.10.7", "epoch": 1, "iter": 1, "seed": seed, "experiment_name": "anibench-seeded"}
    torch.save({"meta": meta, "state_dict": actionclip_state_dict(size, seed)}, path)
    return path


def actionclip_state_sha256(size: dict[str, int], seed: int = 0) -> str:
    return state_dict_sha256(actionclip_state_dict(size, seed))


def install_random_actionclip(root: str | Path, size: str = "micro", seed: int = 0) -> str:
    """Put seeded random ActionCLIP weights of ``size`` (micro, small, full) into the weights folder ``root``.

    ``full`` is imported under the real entry :data:`ENTRY` (its converter checks the ViT-B/16 sizes), so the
    scorer resolves it with no alias; ``micro``/``small`` become local entries ``seeded_actionclip_<size>``
    converted with ``convert_any_size`` — run with ``Runtime(weight_aliases={ENTRY: <returned name>})``.
    Returns the entry name to use. **Random weights: for timing and plumbing only, never scores.**
    """
    from anibench.runtime.weights import WeightStore

    root = Path(root)
    store = WeightStore(root)
    scratch = root / ".seeded-files"
    if size == "full":
        source = write_actionclip_checkpoint(scratch / PUBLISHED_FILE, FULL, seed)
        store.import_file(ENTRY, source, replace=True)
        name = ENTRY
    else:
        name = f"seeded_actionclip_{size}"
        source = write_actionclip_checkpoint(scratch / f"actionclip-{size}.pth", SIZES[size], seed)
        store.add_local(name, source, format="torch-state-dict",
                        converter="anibench.models.actionclip:convert_any_size", replace=name in store.entries())
    source.unlink()
    return name
