"""DreamSim's ensemble (Fu, Tamir et al. 2023) in transformers, from its published checkpoint archive.

What DreamSim runs (ssundaram21/dreamsim at db4d16c; paths below are in that repository), as
``dreamsim(pretrained=True)`` builds it for ``dreamsim_type="ensemble"`` (model.py:251-308,
config.py:3-8): three ViT-B/16 branches whose features are concatenated in this order —

1. **DINO ViT-B/16**, feature ``cls``: ``torch.hub.load('facebookresearch/dino:main', 'dino_vitb16')``
   (feature_extraction/extractor.py:70-72), i.e. DINO's *published backbone*
   ``dino_vitbase16_pretrain.pth`` fetched by hubconf — the same file as the ``dino_vitb16``
   weights entry, not a file of the DreamSim archive. The feature is the CLS token of block 11's
   output, read by a forward hook (extractor.py:206-266, model.py:160-167), i.e. **before** DINO's
   final LayerNorm. ImageNet mean/std (model.py:175-196, constants.py).
2. **CLIP ViT-B/16**, feature ``embedding``: ``clip_vitb16_pretrain.pth.tar`` from the archive, an
   OpenAI CLIP image tower re-keyed into DINO's ``VisionTransformer`` layout
   (load_clip_as_dino.py:12-34): ``pos_drop`` replaced by a LayerNorm (CLIP's ``ln_pre``), the final
   ``norm`` is ``ln_post``, QuickGELU, every LayerNorm eps 1e-5, and ``proj`` popped from the state
   dict; the feature is ``model(x) @ proj`` (extractor.py:171-174). OpenAI CLIP mean/std.
3. **OpenCLIP ViT-B/16**, feature ``embedding``: ``open_clip_vitb16_pretrain.pth.tar``, loaded the
   same way (load_open_clip_as_dino.py:7-23) but keeping DINO's exact GELU. OpenAI CLIP mean/std.

LoRA (``ensemble_lora/``: ``adapter_config.json`` and the adapter weights) is applied with PEFT to
every module named ``qkv`` — the fused query/key/value projection of every block of the three
branches (``target_modules=['qkv']``, training/train.py:199-207) — and the MLP head is the
identity (``lora=True``, model.py:72-73). ``embed`` concatenates the three features (768 + 512 +
512) and, since ``dreamsim()`` passes ``normalize_embeds=True``, subtracts each row's mean and
divides by its L2 norm (model.py:123-124, 311-313). The DreamSim distance is ``1 - cos`` of two
embeddings (model.py:105).

Here (maintained parts, no PEFT or DreamSim code at run time):

* DINO is transformers' ``ViTModel`` from the ``dino_vitb16`` entry's converted folder
  (:mod:`anibench.models.dino`) with its final LayerNorm replaced by the identity, so that
  ``last_hidden_state[:, 0]`` is block 11's CLS token.
* CLIP and OpenCLIP are ``CLIPVisionModelWithProjection`` (``pre_layrnorm`` = ``pos_drop``,
  ``post_layernorm`` = ``norm``, ``visual_projection`` = ``proj.T``; ``hidden_act`` ``quick_gelu``
  or ``gelu``). DINO's patch convolution has a bias and transformers' CLIP embedding has none: the
  bias is added to the patch positions' embeddings instead (``conv(x) + b + pos = conv(x) + (pos + b)``;
  inputs are always 224x224, so no position interpolation ever mixes them).
* LoRA is merged into the weights: ``W_qkv + scaling * B @ A`` (PEFT's ``merge_and_unload`` does the
  same), ``scaling = lora_alpha / r`` (``/ sqrt(r)`` with ``use_rslora``), split into q/k/v. The
  CLIP branches are merged at conversion; DINO's factors are stored and merged when the ensemble is
  loaded over the ``dino_vitb16`` folder (its base weights are another entry).

The archive's ``dino_vitb16_pretrain.pth`` (DINO's training checkpoint) only feeds DINO's
projection head, which the ``cls`` feature never runs (extractor.py:73-83); it must be in the
archive (DreamSim's completeness check, model.py:219-235) but is not read.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch
import torch.nn.functional as F
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, ViTModel

from anibench.errors import InputError, MissingWeightsError
from anibench.models import dino
from anibench.models.checkpoints import (
    architecture_mismatch,
    check_layout,
    load_pretrained,
    tensors_only,
    write_hf_folder,
)

WHAT = "DreamSim ensemble"
WEIGHTS_ENTRY = "dreamsim_ensemble"
CONVERTER_VERSION = "1"

# The archive's members (model.py:219-221, load_clip_as_dino.py:18, load_open_clip_as_dino.py:14, model.py:285).
DINO_HEAD_MEMBER = "dino_vitb16_pretrain.pth"
CLIP_MEMBER = "clip_vitb16_pretrain.pth.tar"
OPEN_CLIP_MEMBER = "open_clip_vitb16_pretrain.pth.tar"
LORA_DIR = "ensemble_lora"
LORA_CONFIG_MEMBER = f"{LORA_DIR}/adapter_config.json"
LORA_WEIGHT_MEMBERS = (f"{LORA_DIR}/adapter_model.safetensors", f"{LORA_DIR}/adapter_model.bin")

# Branch order of the concatenated embedding and of ``extractor_list`` (config.py:5).
BRANCHES = ("dino", "clip", "open_clip")
TOWER_ACTIVATION = {"clip": "quick_gelu", "open_clip": "gelu"}  # load_clip_as_dino.py:25-27
TOWER_LAYER_NORM_EPS = 1e-5  # load_clip_as_dino.py:29-32, load_open_clip_as_dino.py:19-21
LORA_TARGET = "qkv"

# The published towers: ViT-B/16 at 224 px, 512-d projection (model.py EMBED_DIMS).
VIT_B16 = {"width": 768, "layers": 12, "patch": 16, "image_size": 224, "mlp": 3072, "output_dim": 512}

# Converted folder layout.
TOWER_DIRS = {"clip": "clip", "open_clip": "open_clip"}
DINO_LORA_FILE = "dino_lora.safetensors"
RECIPE_FILE = "dreamsim.json"

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # constants.py:2-3
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # constants.py:4-5
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BRANCH_STATISTICS = {"dino": (IMAGENET_MEAN, IMAGENET_STD), "clip": (CLIP_MEAN, CLIP_STD),
                     "open_clip": (CLIP_MEAN, CLIP_STD)}  # fmt: skip
IMAGE_SIZE = 224  # config.py:52

_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?extractor_list\.(\d)\.model\.blocks\.(\d+)\.attn\.qkv\.lora_([AB])\.weight$")


# --- reading the archive --------------------------------------------------------------------


@dataclass(frozen=True)
class LoraSettings:
    """The adapter's rank and scale, from ``adapter_config.json`` (PEFT ``LoraConfig``)."""

    rank: int
    alpha: float
    rslora: bool

    @property
    def scaling(self) -> float:
        """PEFT's ``lora_alpha / r`` (``lora_alpha / sqrt(r)`` with ``use_rslora``)."""
        return self.alpha / (math.sqrt(self.rank) if self.rslora else self.rank)


@dataclass(frozen=True)
class PublishedEnsemble:
    """The tensors of a DreamSim ensemble archive that the ensemble runs."""

    towers: dict[str, dict[str, torch.Tensor]]  # "clip" / "open_clip": DINO-layout state + "proj"
    lora: LoraSettings
    lora_factors: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]]  # (branch, block) -> (A, B)


def _members(archive: zipfile.ZipFile, path: Path) -> dict[str, str]:
    """Map each needed member name to its name in the archive (at the root or under one top folder)."""
    names = [n for n in archive.namelist() if not n.startswith("__MACOSX/") and not n.endswith("/")]
    wanted = (DINO_HEAD_MEMBER, CLIP_MEMBER, OPEN_CLIP_MEMBER, LORA_CONFIG_MEMBER, *LORA_WEIGHT_MEMBERS)
    found: dict[str, str] = {}
    for member in wanted:
        hits = [n for n in names if n == member or (n.endswith("/" + member) and len(PurePosixPath(n).parts)
                                                     == len(PurePosixPath(member).parts) + 1)]
        if len(hits) > 1:
            raise InputError(f"the {WHAT} archive holds {member} more than once: {hits}", path=path)
        if hits:
            found[member] = hits[0]
    required = (DINO_HEAD_MEMBER, CLIP_MEMBER, OPEN_CLIP_MEMBER, LORA_CONFIG_MEMBER)
    missing = [m for m in required if m not in found]
    if not any(m in found for m in LORA_WEIGHT_MEMBERS):
        missing.append(" or ".join(LORA_WEIGHT_MEMBERS))
    if missing:
        raise InputError(
            f"not a {WHAT} checkpoint archive (dreamsim_ensemble_checkpoint.zip): missing {', '.join(missing)}"
            + (" (a single-branch DreamSim archive?)" if any("single_lora" in n for n in names) else ""),
            path=path,
        )
    return found


def _torch_member(archive: zipfile.ZipFile, name: str, path: Path) -> object:
    try:
        return torch.load(io.BytesIO(archive.read(name)), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read {name} in the {WHAT} archive (truncated, corrupt, or it holds Python "
                         f"objects that are not loaded for safety): {_first_line(exc)}", path=path) from exc


def _tower_state(loaded: object, member: str, path: Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a ``*_pretrain.pth.tar`` (load_clip_as_dino.py:18), tensors only."""
    if not isinstance(loaded, Mapping) or not isinstance(loaded.get("state_dict"), Mapping):
        raise InputError(f"{member} in the {WHAT} archive has no 'state_dict'", path=path)
    return tensors_only(loaded["state_dict"], path, f"{WHAT} {member}")


def read_lora_settings(config: Mapping[str, object], path: Path) -> LoraSettings:
    """Rank and scale from ``adapter_config.json``; options this merge does not reproduce are refused."""
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise InputError(f"{LORA_CONFIG_MEMBER}: peft_type {config.get('peft_type')!r} is not LORA", path=path)
    targets = config.get("target_modules")
    if targets not in ([LORA_TARGET], LORA_TARGET, (LORA_TARGET,)):
        raise InputError(f"{LORA_CONFIG_MEMBER}: target_modules {targets!r}, expected ['{LORA_TARGET}']", path=path)
    unsupported = {
        "bias": config.get("bias", "none") != "none",
        "use_dora": bool(config.get("use_dora")),
        "fan_in_fan_out": bool(config.get("fan_in_fan_out")),
        "rank_pattern": bool(config.get("rank_pattern")),
        "alpha_pattern": bool(config.get("alpha_pattern")),
        "layers_to_transform": config.get("layers_to_transform") is not None,
    }
    bad = [name for name, is_set in unsupported.items() if is_set]
    if bad:
        raise InputError(f"{LORA_CONFIG_MEMBER}: unsupported LoRA options {bad}", path=path)
    try:
        return LoraSettings(rank=int(config["r"]), alpha=float(config["lora_alpha"]),
                            rslora=bool(config.get("use_rslora", False)))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{LORA_CONFIG_MEMBER}: no valid r / lora_alpha ({exc})", path=path) from exc


def _lora_tensors(archive: zipfile.ZipFile, members: dict[str, str], path: Path) -> dict[str, torch.Tensor]:
    safetensors_member, bin_member = LORA_WEIGHT_MEMBERS
    if safetensors_member in members:
        from safetensors import SafetensorError
        from safetensors.torch import load as load_safetensors

        try:
            return load_safetensors(archive.read(members[safetensors_member]))
        except (SafetensorError, ValueError, OSError) as exc:
            raise InputError(f"cannot read {safetensors_member} in the {WHAT} archive: {_first_line(exc)}",
                             path=path) from exc
    loaded = _torch_member(archive, members[bin_member], path)
    if not isinstance(loaded, Mapping):
        raise InputError(f"{bin_member} in the {WHAT} archive is not a state dict", path=path)
    return tensors_only(loaded, path, f"{WHAT} {bin_member}")


def lora_factors(tensors: Mapping[str, torch.Tensor], depth: int, rank: int, width: int,
                 path: Path) -> dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]]:
    """``{(branch, block): (A, B)}`` from PEFT's adapter keys, every qkv of the three branches exactly once.

    Keys: ``base_model.model.extractor_list.{branch}.model.blocks.{block}.attn.qkv.lora_{A,B}.weight``;
    A is (r, width), B is (3 * width, r).
    """
    parts: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    unexpected = []
    for key, value in tensors.items():
        match = _LORA_KEY.match(key)
        if not match or int(match.group(1)) >= len(BRANCHES) or int(match.group(2)) >= depth:
            unexpected.append(key)
            continue
        parts.setdefault((int(match.group(1)), int(match.group(2))), {})[match.group(3)] = value
    expected = [(b, i) for b in range(len(BRANCHES)) for i in range(depth)]
    missing = [f"extractor_list.{b}.model.blocks.{i}.attn.qkv.lora_{kind}" for b, i in expected
               for kind in "AB" if kind not in parts.get((b, i), {})]
    if unexpected or missing:
        detail = "; ".join(filter(None, [f"missing {_listed(missing)}" if missing else "",
                                         f"unexpected {_listed(unexpected)}" if unexpected else ""]))
        raise InputError(f"the {WHAT} LoRA adapter does not match the ensemble: {detail}", path=path)
    factors = {}
    for key in expected:
        a, b = parts[key]["A"], parts[key]["B"]
        if tuple(a.shape) != (rank, width) or tuple(b.shape) != (3 * width, rank):
            raise InputError(f"the {WHAT} LoRA factors of branch {BRANCHES[key[0]]} block {key[1]} have shapes "
                             f"{tuple(a.shape)}, {tuple(b.shape)}; expected {(rank, width)}, {(3 * width, rank)}",
                             path=path)
        factors[key] = (a.float(), b.float())
    return factors


def read_archive(path: Path) -> PublishedEnsemble:
    """The CLIP/OpenCLIP towers, the LoRA settings and factors of ``dreamsim_ensemble_checkpoint.zip``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{WHAT} archive not found", path=path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _members(archive, path)
            towers = {"clip": _tower_state(_torch_member(archive, members[CLIP_MEMBER], path), CLIP_MEMBER, path),
                      "open_clip": _tower_state(_torch_member(archive, members[OPEN_CLIP_MEMBER], path),
                                                OPEN_CLIP_MEMBER, path)}
            try:
                adapter_config = json.loads(archive.read(members[LORA_CONFIG_MEMBER]))
            except (ValueError, UnicodeDecodeError) as exc:
                raise InputError(f"{LORA_CONFIG_MEMBER} in the {WHAT} archive is not JSON: {exc}", path=path) from exc
            lora_tensors = _lora_tensors(archive, members, path)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InputError(f"cannot read the {WHAT} archive (not a complete zip file): {_first_line(exc)}",
                         path=path) from exc
    if not isinstance(adapter_config, Mapping):
        raise InputError(f"{LORA_CONFIG_MEMBER} in the {WHAT} archive is not a JSON object", path=path)
    lora = read_lora_settings(adapter_config, path)
    clip_arch = tower_architecture(towers["clip"], path)
    factors = lora_factors(lora_tensors, clip_arch["layers"], lora.rank, clip_arch["width"], path)
    return PublishedEnsemble(towers=towers, lora=lora, lora_factors=factors)


# --- towers: DINO layout -> transformers CLIP ------------------------------------------------


def tower_architecture(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, int]:
    """A tower's width, layers, patch, image size, MLP size and projection size, read from its tensors."""
    body = {key: value for key, value in state.items() if key != "proj"}
    if "proj" not in state:
        raise InputError(f"not a {WHAT} CLIP tower: no 'proj'", path=path)
    config = dino.infer_config(body, path)
    return {"width": config.hidden_size, "layers": config.num_hidden_layers, "patch": config.patch_size,
            "image_size": config.image_size, "mlp": config.intermediate_size,
            "output_dim": int(state["proj"].shape[-1])}  # fmt: skip


def tower_shapes(arch: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """A tower's keys and shapes: DINO's ``vit_base`` keys, ``pos_drop`` as a LayerNorm, and ``proj``."""
    config = dino.dino_config(hidden_size=arch["width"], patch_size=arch["patch"], num_hidden_layers=arch["layers"],
                              image_size=arch["image_size"], intermediate_size=arch["mlp"])
    shapes = dino.expected_shapes(config)
    shapes.update({"pos_drop.weight": (arch["width"],), "pos_drop.bias": (arch["width"],),
                   "proj": (arch["width"], arch["output_dim"])})  # fmt: skip
    return shapes


def tower_config(arch: Mapping[str, int], branch: str) -> CLIPVisionConfig:
    """``CLIPVisionConfig`` of a tower as DreamSim runs it (activation per branch, LayerNorm eps 1e-5)."""
    return CLIPVisionConfig(
        hidden_size=arch["width"],
        intermediate_size=arch["mlp"],
        num_hidden_layers=arch["layers"],
        num_attention_heads=arch["width"] // dino.HEAD_DIM,
        num_channels=3,
        image_size=arch["image_size"],
        patch_size=arch["patch"],
        projection_dim=arch["output_dim"],
        hidden_act=TOWER_ACTIVATION[branch],
        layer_norm_eps=TOWER_LAYER_NORM_EPS,
        attention_dropout=0.0,
    )


def merged_qkv(weight: torch.Tensor, factors: tuple[torch.Tensor, torch.Tensor], scaling: float) -> torch.Tensor:
    """LoRA merged into a fused qkv weight: ``W + scaling * B @ A`` (float32)."""
    a, b = factors
    return weight.float() + scaling * (b.float() @ a.float())


def tower_to_hf(state: Mapping[str, torch.Tensor], layers: int, lora: LoraSettings,
                factors: Mapping[int, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A DINO-layout tower (LoRA merged into ``qkv``) as ``CLIPVisionModelWithProjection`` tensors."""
    v = "vision_model."
    position = state["pos_embed"][0].float().clone()
    position[1:] += state["patch_embed.proj.bias"].float()  # the patch conv's bias, moved onto the patch positions
    out = {
        v + "embeddings.class_embedding": state["cls_token"].reshape(-1),
        v + "embeddings.patch_embedding.weight": state["patch_embed.proj.weight"],
        v + "embeddings.position_embedding.weight": position,
        v + "pre_layrnorm.weight": state["pos_drop.weight"], v + "pre_layrnorm.bias": state["pos_drop.bias"],
        v + "post_layernorm.weight": state["norm.weight"], v + "post_layernorm.bias": state["norm.bias"],
        "visual_projection.weight": state["proj"].t(),
    }  # fmt: skip
    renames = {"norm1": "layer_norm1", "attn.proj": "self_attn.out_proj", "norm2": "layer_norm2",
               "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}  # fmt: skip
    for i in range(layers):
        b, h = f"blocks.{i}.", f"{v}encoder.layers.{i}."
        for key, hf in renames.items():
            for kind in ("weight", "bias"):
                out[f"{h}{hf}.{kind}"] = state[f"{b}{key}.{kind}"]
        qkv = {"weight": merged_qkv(state[b + "attn.qkv.weight"], factors[i], lora.scaling),
               "bias": state[b + "attn.qkv.bias"]}
        for kind, packed in qkv.items():
            for name, part in zip(("q_proj", "k_proj", "v_proj"), packed.chunk(3, dim=0)):
                out[f"{h}self_attn.{name}.{kind}"] = part
    return out


# --- the converter ----------------------------------------------------------------------------


def convert_archive(source: Path, target_dir: Path, *, expect: Mapping[str, int] | None = None) -> dict[str, object]:
    """Convert a DreamSim ensemble archive into ``target_dir``; returns the recipe written to ``dreamsim.json``.

    Writes ``clip/`` and ``open_clip/`` (transformers folders, LoRA merged), ``dino_lora.safetensors``
    (DINO's LoRA factors, merged at load time over the ``dino_vitb16`` weights) and ``dreamsim.json``.
    Every tower key and shape is checked; with ``expect`` (like :data:`VIT_B16`) towers of another
    architecture are refused naming the difference.
    """
    source, target_dir = Path(source), Path(target_dir)
    published = read_archive(source)
    archs = {}
    for branch, state in published.towers.items():
        arch = tower_architecture(state, source)
        check_layout(state, tower_shapes(arch), source, f"{WHAT} {branch} tower")
        if expect is not None:
            mismatch = architecture_mismatch(arch, expect)
            if mismatch:
                raise InputError(f"{WHAT} {branch} tower of another architecture: {mismatch}", path=source)
        archs[branch] = arch
    if archs["clip"]["width"] != archs["open_clip"]["width"] or archs["clip"]["layers"] != archs["open_clip"]["layers"]:
        raise InputError(f"the {WHAT} CLIP and OpenCLIP towers differ in width or depth: {archs}", path=source)
    for branch, state in published.towers.items():
        index = BRANCHES.index(branch)
        factors = {i: published.lora_factors[(index, i)] for i in range(archs[branch]["layers"])}
        write_hf_folder(CLIPVisionModelWithProjection, tower_config(archs[branch], branch),
                        tower_to_hf(state, archs[branch]["layers"], published.lora, factors),
                        target_dir / TOWER_DIRS[branch])
    from safetensors.torch import save_file

    dino_index = BRANCHES.index("dino")
    dino_factors = {}
    for (branch, block), (a, b) in published.lora_factors.items():
        if branch == dino_index:
            dino_factors[f"blocks.{block}.attn.qkv.lora_A"] = a.contiguous()
            dino_factors[f"blocks.{block}.attn.qkv.lora_B"] = b.contiguous()
    save_file(dino_factors, str(target_dir / DINO_LORA_FILE))
    recipe = {
        "what": WHAT,
        "converter_version": CONVERTER_VERSION,
        "branches": list(BRANCHES),
        "dino_layers": archs["clip"]["layers"],
        "dino_width": archs["clip"]["width"],
        "lora": {"rank": published.lora.rank, "alpha": published.lora.alpha, "use_rslora": published.lora.rslora,
                 "scaling": published.lora.scaling, "target_modules": [LORA_TARGET]},
        "towers": archs,
    }
    (target_dir / RECIPE_FILE).write_text(json.dumps(recipe, indent=2))
    return recipe


def convert_published(source: Path, target_dir: Path) -> None:
    """Convert DreamSim's published ``dreamsim_ensemble_checkpoint.zip`` (v0.2.0-checkpoints)."""
    convert_archive(source, target_dir, expect=VIT_B16)


# --- the ensemble -------------------------------------------------------------------------------


class DreamSimEnsemble(torch.nn.Module):
    """DreamSim's ``embed``: DINO CLS (before the final norm) ++ CLIP ++ OpenCLIP embeddings, centred, unit norm."""

    def __init__(self, dino_model: ViTModel, clip_model: CLIPVisionModelWithProjection,
                 open_clip_model: CLIPVisionModelWithProjection):
        super().__init__()
        self.dino = dino_model
        self.clip = clip_model
        self.open_clip = open_clip_model

    def branch_features(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each branch's feature for (N, 3, 224, 224) pixels in [0, 1] (as DreamSim's ``embed`` takes them)."""
        parameter = self.dino.embeddings.cls_token
        pixels = pixels.to(device=parameter.device, dtype=parameter.dtype)
        return {
            "dino": self.dino(pixel_values=_normalised(pixels, "dino")).last_hidden_state[:, 0],
            "clip": self.clip(pixel_values=_normalised(pixels, "clip")).image_embeds,
            "open_clip": self.open_clip(pixel_values=_normalised(pixels, "open_clip")).image_embeds,
        }

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """DreamSim embeddings (N, 1792): the concatenated features minus their row mean, over their L2 norm."""
        features = self.branch_features(pixels)
        return normalize_embedding(torch.cat([features[name] for name in BRANCHES], dim=-1))


def _normalised(pixels: torch.Tensor, branch: str) -> torch.Tensor:
    """``transforms.Normalize(mean, std)`` of the branch (model.py:175-176)."""
    mean, std = BRANCH_STATISTICS[branch]
    mean_t = torch.as_tensor(mean, dtype=pixels.dtype, device=pixels.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=pixels.dtype, device=pixels.device).view(-1, 1, 1)
    return pixels.sub(mean_t).div(std_t)


def normalize_embedding(embed: torch.Tensor) -> torch.Tensor:
    """DreamSim's ``normalize_embedding`` (model.py:311-313): subtract each row's mean, divide by its L2 norm."""
    centred = embed - embed.mean(dim=-1, keepdim=True)
    return centred / centred.norm(dim=-1, keepdim=True)


def embed(model: DreamSimEnsemble, pixels: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """DreamSim embeddings (N, D) of (N, 3, 224, 224) pixels in [0, 1], ``batch_size`` images at a time."""
    chunks = [pixels] if batch_size is None else pixels.split(batch_size)
    with torch.inference_mode():
        return torch.cat([model(chunk) for chunk in chunks])


def dreamsim_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """DreamSim's perceptual distance between embeddings: ``1 - cos`` (model.py:105)."""
    return 1 - F.cosine_similarity(a, b, dim=-1)


def _dino_branch(dino_dir: Path, ensemble_dir: Path, scaling: float) -> ViTModel:
    """DINO ViT-B/16 from the ``dino_vitb16`` folder, LoRA merged, final LayerNorm removed (float32, CPU)."""
    from safetensors.torch import load_file

    model = dino.load_dino(dino_dir, "cpu", torch.float32)
    factors = load_file(str(ensemble_dir / DINO_LORA_FILE))
    layers = model.config.num_hidden_layers
    state = model.state_dict()
    expected = {f"blocks.{i}.attn.qkv.lora_{kind}" for i in range(layers) for kind in "AB"}
    if set(factors) != expected:
        raise InputError(f"{DINO_LORA_FILE} has LoRA factors for another depth than the DINO model's {layers} layers",
                         path=ensemble_dir / DINO_LORA_FILE)
    width = model.config.hidden_size
    for i in range(layers):
        names = [f"layers.{i}.attention.{name}.weight" for name in ("q_proj", "k_proj", "v_proj")]
        fused = torch.cat([state[name] for name in names], dim=0)
        a, b = factors[f"blocks.{i}.attn.qkv.lora_A"], factors[f"blocks.{i}.attn.qkv.lora_B"]
        if a.shape[-1] != width or b.shape[0] != 3 * width:
            raise InputError(f"{DINO_LORA_FILE}: LoRA factors of width {a.shape[-1]}, the DINO model has {width}",
                             path=ensemble_dir / DINO_LORA_FILE)
        for name, part in zip(names, merged_qkv(fused, (a, b), scaling).chunk(3, dim=0)):
            state[name] = part
    model.load_state_dict(state, strict=True)
    model.layernorm = torch.nn.Identity()  # DreamSim reads block 11's output, before DINO's final norm
    return model


def load_ensemble(ensemble_dir: str | Path, dino_dir: str | Path, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> DreamSimEnsemble:
    """The ensemble in eval mode from a converted ``dreamsim_ensemble`` folder and a converted ``dino_vitb16`` folder."""
    ensemble_dir, dino_dir = Path(ensemble_dir), Path(dino_dir)
    recipe_path = ensemble_dir / RECIPE_FILE
    if not recipe_path.is_file():
        raise MissingWeightsError(
            f"{ensemble_dir} is not a converted {WHAT} folder (no {RECIPE_FILE}); import the published archive with "
            f"`anibench weights import {WEIGHTS_ENTRY} dreamsim_ensemble_checkpoint.zip`",
            path=ensemble_dir if ensemble_dir.exists() else None,
        )
    recipe = json.loads(recipe_path.read_text())
    dino_model = _dino_branch(dino_dir, ensemble_dir, float(recipe["lora"]["scaling"]))
    if dino_model.config.hidden_size != recipe["dino_width"] or dino_model.config.num_hidden_layers != recipe["dino_layers"]:
        raise InputError(f"the DINO weights ({dino_model.config.hidden_size} wide, {dino_model.config.num_hidden_layers} "
                         f"layers) do not fit the {WHAT}'s LoRA ({recipe['dino_width']}, {recipe['dino_layers']})",
                         path=dino_dir)
    towers = {branch: load_pretrained(CLIPVisionModelWithProjection, ensemble_dir / folder, "cpu", torch.float32, WHAT,
                                      WEIGHTS_ENTRY) for branch, folder in TOWER_DIRS.items()}
    model = DreamSimEnsemble(dino_model, towers["clip"], towers["open_clip"])
    return model.to(device=device, dtype=dtype).eval()


def _listed(keys: list[str], shown: int = 5) -> str:
    more = len(keys) - shown
    return ", ".join(keys[:shown]) + (f" and {more} more" if more > 0 else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
