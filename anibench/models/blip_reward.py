"""AnimeReward's BLIP networks: the text-video and image-video consistency heads and the character recogniser.

Reference: bilibili/Index-anisora at 171fe63, ``reward/`` (anisora.md §2.3): ``models/blip_pretrain_text.py``
(text-video), ``models/blip_pretrain.py`` (image-video), both on ``models/vit.py`` + ``models/med.py`` +
``models/blip.py``; the recogniser ``character/BLIP/blip_models/blip_pretrain.py`` with
``character/BLIP/blip_configs/eval_pretrain.yaml``, used by ``character/BLIP/infer_retrieval_pretrain_v2.py``.
The networks are built from transformers' ``BlipVisionModel`` and ``BertModel`` (salesforce-lavis does not
install with this stack); the published checkpoints are converted key by key.

Vision tower (``VisionTransformer``, vit.py; ``create_vit``, blip.py): patch 16 on 224×224, a class token,
learned positions, pre-norm blocks (LayerNorm eps 1e-6, fused ``qkv`` with bias, exact GELU MLP ×4), a final
LayerNorm on every token. ViT-B: width 768, 12 layers, 12 heads; ViT-L (the recogniser): 1024, 24, 16.
``BlipVisionModel`` computes the same (its ``last_hidden_state`` is after ``post_layernorm``).
Drop-path (0.1 for ViT-L) is training-only.

Text tower (med.py ``BertModel`` in ``mode='text'``): BERT-base (``configs/bert_config.json``: 768, 12 layers,
12 heads, 3072, eps 1e-12, 512 positions) with the vocabulary resized to ``len(tokenizer)`` = 30524
(bert-base-uncased + ``[DEC]`` + ``[ENC]``, ``init_tokenizer``). In text mode no cross-attention runs; med's
embeddings are word + absolute position (no token-type embedding), so the converted transformers
``BertModel`` gets a token-type table of one zero row (adds exactly 0). The checkpoint's cross-attention
weights are not used and are dropped.

Heads (``inference``): each of the sampled frames goes through the ViT on its own; the token maps are
averaged over frames and the CLS row taken (= the mean of the frames' CLS rows). Text-video: the prompt is
tokenised with ``padding='max_length', truncation=True, max_length=30`` and the text CLS (``[CLS]``, not
``[ENC]``) is taken. Image-video: the reference image's ViT CLS. Then ``img_proj`` on the video CLS,
``img_key_proj`` on the other CLS (text or image), ``head_diff`` (Linear 2·768→1) on their concatenation,
and a sigmoid: a value in (0, 1), trained with an L1 loss against human scores in [0, 1].

Recogniser (``compute_gallery_embeds`` / ``evaluation``): ``vision_proj(visual_encoder(x)[:, 0, :])`` — the
CLS token after the final LayerNorm, projected to 256, **not** normalised — for gallery crops and query
crops alike; the retrieval takes raw dot products of these.

Published files are ``torch.save({'model': state_dict})`` read here with ``torch.load(weights_only=True)``.
The published loader (``load_checkpoint``, blip.py) loads with ``strict=False`` and silently drops
shape-mismatched tensors; here every tensor the network needs must be present with its exact shape
(else an :class:`InputError` naming the file), and tensors the inference does not use (cross-attention,
momentum encoders, queues, text projection of the training model) are ignored and counted in the
converted ``config.json``. A converted folder is ``config.json`` + ``model.safetensors`` in this module's
layout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anibench.errors import InputError, MissingWeightsError
from anibench.runtime.torchvision_compat import ensure_torchvision

ensure_torchvision()  # transformers' BLIP module imports torchvision through image_utils
from anibench.models.checkpoints import (
    architecture_mismatch, check_layout, read_converted, read_torch_state_dict, tensors_only, write_converted,
)

CHECKPOINT_KEY = "model"  # torch.load(file)['model'] (blip.py load_checkpoint)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
HEAD_DIM = 64  # every published BLIP tower: 768/12, 1024/16, BERT 768/12
VIT_EPS = 1e-6  # vit.py: partial(nn.LayerNorm, eps=1e-6)
BERT_EPS = 1e-12  # bert_config.json layer_norm_eps
PROMPT_TOKENS = 30  # tokenizer(..., max_length=30) in blip_pretrain_text.py inference

TEXT_VIDEO, IMAGE_VIDEO, RECOGNIZER = "text_video", "image_video", "recognizer"
WHAT = {
    TEXT_VIDEO: "AnimeReward text-video consistency (BLIP)",
    IMAGE_VIDEO: "AnimeReward image-video consistency (BLIP)",
    RECOGNIZER: "AnimeReward character recogniser (BLIP ViT-L)",
}
WEIGHTS_ENTRY = {
    TEXT_VIDEO: "anime_reward_text_video_blip",
    IMAGE_VIDEO: "anime_reward_image_video_blip",
    RECOGNIZER: "anime_reward_character_recognizer",
}
TOKENIZER_ENTRY = "anime_reward_bert_base_uncased_tokenizer"


@dataclass(frozen=True)
class ViTArchitecture:
    """A BLIP vision transformer's sizes (heads = width // 64)."""

    width: int
    layers: int
    patch: int
    image_size: int
    mlp: int

    @property
    def heads(self) -> int:
        return self.width // HEAD_DIM

    @property
    def grid(self) -> int:
        return self.image_size // self.patch


@dataclass(frozen=True)
class BertArchitecture:
    """med.py BertModel sizes (heads = hidden // 64)."""

    hidden: int
    layers: int
    intermediate: int
    vocab_size: int
    max_positions: int

    @property
    def heads(self) -> int:
        return self.hidden // HEAD_DIM


@dataclass(frozen=True)
class BlipArchitecture:
    """One of the three networks: ``kind`` (text_video, image_video, recognizer), its towers and ``proj`` width."""

    kind: str
    vit: ViTArchitecture
    proj: int  # img_proj / img_key_proj out width (768), or the recogniser's vision_proj (256)
    bert: BertArchitecture | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "BlipArchitecture":
        bert = data.get("bert")
        return cls(kind=data["kind"], vit=ViTArchitecture(**data["vit"]), proj=int(data["proj"]),
                   bert=BertArchitecture(**bert) if bert else None)  # fmt: skip


VIT_B16 = ViTArchitecture(width=768, layers=12, patch=16, image_size=224, mlp=3072)  # create_vit('base')
VIT_L16 = ViTArchitecture(width=1024, layers=24, patch=16, image_size=224, mlp=4096)  # create_vit('large')
BERT_BASE_BLIP = BertArchitecture(hidden=768, layers=12, intermediate=3072, vocab_size=30524, max_positions=512)
PUBLISHED = {
    TEXT_VIDEO: BlipArchitecture(TEXT_VIDEO, VIT_B16, 768, BERT_BASE_BLIP),
    IMAGE_VIDEO: BlipArchitecture(IMAGE_VIDEO, VIT_B16, 768),
    RECOGNIZER: BlipArchitecture(RECOGNIZER, VIT_L16, 256),
}


# --- the networks ------------------------------------------------------------------------------------


def _transformers():
    import transformers

    return transformers


def vision_config(arch: ViTArchitecture):
    """transformers ``BlipVisionConfig`` computing vit.py's VisionTransformer of these sizes."""
    return _transformers().BlipVisionConfig(
        hidden_size=arch.width, intermediate_size=arch.mlp, num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads, image_size=arch.image_size, patch_size=arch.patch,
        hidden_act="gelu", layer_norm_eps=VIT_EPS, attention_dropout=0.0,
    )  # fmt: skip


def bert_config(arch: BertArchitecture):
    """transformers ``BertConfig`` for med.py's text mode (one zero token-type row, no cross-attention)."""
    config = _transformers().BertConfig(
        vocab_size=arch.vocab_size, hidden_size=arch.hidden, num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads, intermediate_size=arch.intermediate, hidden_act="gelu",
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=arch.max_positions,
        type_vocab_size=1, layer_norm_eps=BERT_EPS, pad_token_id=0,
    )  # fmt: skip
    config._attn_implementation = "eager"  # med.py's explicit softmax attention
    return config


class BlipReward(nn.Module):
    """One AnimeReward BLIP network in anibench's layout.

    ``vision`` (BlipVisionModel) always; ``text`` (BertModel) for text-video; ``video_proj`` (published
    ``img_proj``), ``key_proj`` (``img_key_proj``) and ``head`` (``head_diff``) for the two heads;
    ``vision_proj`` for the recogniser.
    """

    def __init__(self, arch: BlipArchitecture):
        super().__init__()
        tf = _transformers()
        self.arch = arch
        self.vision = tf.BlipVisionModel(vision_config(arch.vit))
        if arch.kind == RECOGNIZER:
            self.vision_proj = nn.Linear(arch.vit.width, arch.proj)
            return
        key_width = arch.bert.hidden if arch.kind == TEXT_VIDEO else arch.vit.width
        if arch.kind == TEXT_VIDEO:
            self.text = tf.BertModel(bert_config(arch.bert), add_pooling_layer=False)
        self.video_proj = nn.Linear(arch.vit.width, arch.proj)
        self.key_proj = nn.Linear(key_width, arch.proj)
        self.head = nn.Linear(2 * arch.proj, 1)

    @property
    def device(self) -> torch.device:
        return self.vision.embeddings.patch_embedding.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.vision.embeddings.patch_embedding.weight.dtype

    def image_cls(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised pixels → (N, width): the ViT's CLS token after the final LayerNorm."""
        pixels = pixels.to(device=self.device, dtype=self.dtype)
        return self.vision(pixel_values=pixels).last_hidden_state[:, 0]

    def text_cls(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids and mask → (B, hidden): BERT's first ([CLS]) output row, text mode."""
        device = self.device
        out = self.text(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                        token_type_ids=torch.zeros_like(input_ids, device=device))  # fmt: skip
        return out.last_hidden_state[:, 0]

    def value(self, video_cls: torch.Tensor, key_cls: torch.Tensor) -> torch.Tensor:
        """sigmoid(head_diff([img_proj(video), img_key_proj(key)])) per row: (B,) in (0, 1)."""
        video = self.video_proj(video_cls.to(device=self.device, dtype=self.dtype))
        key = self.key_proj(key_cls.to(device=self.device, dtype=self.dtype))
        return torch.sigmoid(self.head(torch.cat([video, key], dim=-1)))[:, 0]

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """Recogniser: (N, 3, 224, 224) crops → (N, 256) ``vision_proj(CLS)``, not normalised."""
        return self.vision_proj(self.image_cls(pixels))


# --- published key names -------------------------------------------------------------------------------


def vit_key_map(arch: ViTArchitecture, published: str = "visual_encoder.", ours: str = "vision.") -> dict[str, str]:
    """Published vit.py key → BlipVisionModel key, for every tensor of the tower (shared by the three networks)."""
    mapping = {
        published + "cls_token": ours + "embeddings.class_embedding",
        published + "pos_embed": ours + "embeddings.position_embedding",
        published + "patch_embed.proj.weight": ours + "embeddings.patch_embedding.weight",
        published + "patch_embed.proj.bias": ours + "embeddings.patch_embedding.bias",
        published + "norm.weight": ours + "post_layernorm.weight",
        published + "norm.bias": ours + "post_layernorm.bias",
    }
    parts = {"norm1": "layer_norm1", "attn.qkv": "self_attn.qkv", "attn.proj": "self_attn.projection",
             "norm2": "layer_norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}  # fmt: skip
    for i in range(arch.layers):
        for theirs, mine in parts.items():
            for leaf in ("weight", "bias"):
                mapping[f"{published}blocks.{i}.{theirs}.{leaf}"] = f"{ours}encoder.layers.{i}.{mine}.{leaf}"
    return mapping


def vit_shapes(arch: ViTArchitecture, prefix: str = "visual_encoder.") -> dict[str, tuple[int, ...]]:
    """Published vit.py tensor shapes."""
    w, p, n = arch.width, arch.patch, arch.grid * arch.grid + 1
    shapes: dict[str, tuple[int, ...]] = {
        prefix + "cls_token": (1, 1, w), prefix + "pos_embed": (1, n, w),
        prefix + "patch_embed.proj.weight": (w, 3, p, p), prefix + "patch_embed.proj.bias": (w,),
        prefix + "norm.weight": (w,), prefix + "norm.bias": (w,),
    }  # fmt: skip
    for i in range(arch.layers):
        b = f"{prefix}blocks.{i}."
        shapes.update({
            b + "norm1.weight": (w,), b + "norm1.bias": (w,),
            b + "attn.qkv.weight": (3 * w, w), b + "attn.qkv.bias": (3 * w,),
            b + "attn.proj.weight": (w, w), b + "attn.proj.bias": (w,),
            b + "norm2.weight": (w,), b + "norm2.bias": (w,),
            b + "mlp.fc1.weight": (arch.mlp, w), b + "mlp.fc1.bias": (arch.mlp,),
            b + "mlp.fc2.weight": (w, arch.mlp), b + "mlp.fc2.bias": (w,),
        })  # fmt: skip
    return shapes


_BERT_LAYER_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                     "output.dense", "output.LayerNorm")  # fmt: skip


def bert_shapes(arch: BertArchitecture, prefix: str = "text_encoder.") -> dict[str, tuple[int, ...]]:
    """Published med.py text-mode tensor shapes (cross-attention excluded: unused in text mode)."""
    h, m = arch.hidden, arch.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        prefix + "embeddings.word_embeddings.weight": (arch.vocab_size, h),
        prefix + "embeddings.position_embeddings.weight": (arch.max_positions, h),
        prefix + "embeddings.LayerNorm.weight": (h,), prefix + "embeddings.LayerNorm.bias": (h,),
    }  # fmt: skip
    sizes = {"intermediate.dense": (m, h), "output.dense": (h, m)}
    for i in range(arch.layers):
        for part in _BERT_LAYER_PARTS:
            out_in = sizes.get(part, (h, h))
            key = f"{prefix}encoder.layer.{i}.{part}."
            if part.endswith("LayerNorm"):
                shapes[key + "weight"], shapes[key + "bias"] = (h,), (h,)
            else:
                shapes[key + "weight"], shapes[key + "bias"] = out_in, (out_in[0],)
    return shapes


def published_shapes(arch: BlipArchitecture) -> dict[str, tuple[int, ...]]:
    """Every tensor the published inference reads, with its shape."""
    shapes = vit_shapes(arch.vit)
    if arch.kind == RECOGNIZER:
        shapes.update({"vision_proj.weight": (arch.proj, arch.vit.width), "vision_proj.bias": (arch.proj,)})
        return shapes
    key_width = arch.bert.hidden if arch.kind == TEXT_VIDEO else arch.vit.width
    shapes.update({
        "img_proj.weight": (arch.proj, arch.vit.width), "img_proj.bias": (arch.proj,),
        "img_key_proj.weight": (arch.proj, key_width), "img_key_proj.bias": (arch.proj,),
        "head_diff.weight": (1, 2 * arch.proj), "head_diff.bias": (1,),
    })  # fmt: skip
    if arch.kind == TEXT_VIDEO:
        shapes.update(bert_shapes(arch.bert))
    return shapes


def key_map(arch: BlipArchitecture) -> dict[str, str]:
    """Published key → this module's key, for every tensor of :func:`published_shapes`."""
    mapping = vit_key_map(arch.vit)
    if arch.kind == RECOGNIZER:
        mapping.update({"vision_proj.weight": "vision_proj.weight", "vision_proj.bias": "vision_proj.bias"})
        return mapping
    for theirs, mine in (("img_proj", "video_proj"), ("img_key_proj", "key_proj"), ("head_diff", "head")):
        for leaf in ("weight", "bias"):
            mapping[f"{theirs}.{leaf}"] = f"{mine}.{leaf}"
    if arch.kind == TEXT_VIDEO:
        for key in bert_shapes(arch.bert):
            mapping[key] = "text." + key[len("text_encoder."):]
    return mapping


# --- reading and converting -------------------------------------------------------------------------------

_VIT_BLOCK = re.compile(r"^visual_encoder\.blocks\.(\d+)\.attn\.qkv\.weight$")
_BERT_LAYER = re.compile(r"^text_encoder\.encoder\.layer\.(\d+)\.attention\.self\.query\.weight$")


def read_published(source: Path, kind: str) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of a published BLIP file (``torch.load(weights_only=True)``)."""
    source = Path(source)
    loaded = read_torch_state_dict(source, WHAT[kind])
    state = loaded.get(CHECKPOINT_KEY)
    if not isinstance(state, Mapping):
        found = ", ".join(sorted(map(str, loaded))[:5]) or "nothing"
        raise InputError(
            f"not a {WHAT[kind]} checkpoint: BLIP reads torch.load(file)['{CHECKPOINT_KEY}'], and the file "
            f"holds {found}",
            path=source,
        )
    return tensors_only(state, source, WHAT[kind])


def _count(pattern: re.Pattern, state: Mapping[str, torch.Tensor]) -> int:
    return sum(1 for key in state if pattern.match(key))


def infer_architecture(state: Mapping[str, torch.Tensor], kind: str, path: Path) -> BlipArchitecture:
    """The sizes a published state dict was built with, read from its tensors (heads: width // 64)."""
    what = WHAT[kind]
    needed = ["visual_encoder.patch_embed.proj.weight", "visual_encoder.pos_embed",
              "visual_encoder.blocks.0.mlp.fc1.weight"]
    needed += ["vision_proj.weight"] if kind == RECOGNIZER else ["img_proj.weight"]
    if kind == TEXT_VIDEO:
        needed += ["text_encoder.embeddings.word_embeddings.weight",
                   "text_encoder.embeddings.position_embeddings.weight",
                   "text_encoder.encoder.layer.0.intermediate.dense.weight"]
    missing = [key for key in needed if key not in state]
    if missing:
        hint = ""
        if kind != RECOGNIZER and "vision_proj.weight" in state:
            hint = " (it looks like the character recogniser's checkpoint)"
        elif kind == RECOGNIZER and "img_proj.weight" in state:
            hint = " (it looks like a consistency head's checkpoint)"
        elif kind == TEXT_VIDEO and "img_proj.weight" in state:
            hint = " (it has no text encoder: the image-video head's checkpoint?)"
        raise InputError(f"not a {what} checkpoint: missing {', '.join(missing)}{hint}", path=path)
    patch = state["visual_encoder.patch_embed.proj.weight"]
    positions = int(state["visual_encoder.pos_embed"].shape[1]) - 1
    grid = math.isqrt(max(positions, 0))
    if patch.ndim != 4 or grid * grid != positions:
        raise InputError(f"not a {what} checkpoint: patch embedding {tuple(patch.shape)}, {positions} positions",
                         path=path)  # fmt: skip
    vit = ViTArchitecture(width=int(patch.shape[0]), layers=_count(_VIT_BLOCK, state), patch=int(patch.shape[-1]),
                          image_size=grid * int(patch.shape[-1]),
                          mlp=int(state["visual_encoder.blocks.0.mlp.fc1.weight"].shape[0]))  # fmt: skip
    proj_key = "vision_proj.weight" if kind == RECOGNIZER else "img_proj.weight"
    bert = None
    if kind == TEXT_VIDEO:
        bert = BertArchitecture(
            hidden=int(state["text_encoder.embeddings.word_embeddings.weight"].shape[1]),
            layers=_count(_BERT_LAYER, state),
            intermediate=int(state["text_encoder.encoder.layer.0.intermediate.dense.weight"].shape[0]),
            vocab_size=int(state["text_encoder.embeddings.word_embeddings.weight"].shape[0]),
            max_positions=int(state["text_encoder.embeddings.position_embeddings.weight"].shape[0]),
        )
        if bert.hidden % HEAD_DIM or not bert.layers:
            raise InputError(f"not a {what} checkpoint: text encoder {bert}", path=path)
    if vit.width % HEAD_DIM or not vit.layers:
        raise InputError(f"not a {what} checkpoint: vision encoder {vit}", path=path)
    return BlipArchitecture(kind, vit, int(state[proj_key].shape[0]), bert)


def convert_checkpoint(
    source: Path, target_dir: Path, kind: str, *, expect: BlipArchitecture | None = None
) -> BlipArchitecture:
    """Check a published BLIP file key by key and write ``config.json`` + ``model.safetensors``.

    The sizes are read from the tensors; every tensor the published inference reads must be present with
    exactly that architecture's shape; the others (unused by inference) are ignored and counted. With
    ``expect``, another architecture is refused naming the difference. Tensors are stored as float32.
    """
    source = Path(source)
    state = read_published(source, kind)
    arch = infer_architecture(state, kind, source)
    expected = published_shapes(arch)
    used = {key: state[key] for key in expected if key in state}
    check_layout(used, expected, source, WHAT[kind])
    if expect is not None:
        mismatch = architecture_mismatch(_flat(arch), _flat(expect))
        if mismatch:
            raise InputError(f"{WHAT[kind]} checkpoint of another architecture: {mismatch}", path=source)
    mapping = key_map(arch)
    tensors = {mapping[key]: value.detach().to(torch.float32).contiguous() for key, value in used.items()}
    if arch.kind == TEXT_VIDEO:  # med.py has no token-type embedding: one zero row adds nothing
        tensors["text.embeddings.token_type_embeddings.weight"] = torch.zeros(1, arch.bert.hidden)
    ignored = sorted(set(state) - set(expected))
    write_converted(target_dir, tensors, {
        "model": WHAT[kind], "architecture": arch.to_dict(), "source_tensors": len(state),
        "ignored_tensors": len(ignored), "ignored_prefixes": sorted({_prefix(k) for k in ignored})})
    return arch


def _flat(arch: BlipArchitecture) -> dict[str, object]:
    out: dict[str, object] = {"kind": arch.kind, "proj": arch.proj}
    out.update({f"vit.{k}": v for k, v in asdict(arch.vit).items()})
    if arch.bert is not None:
        out.update({f"bert.{k}": v for k, v in asdict(arch.bert).items()})
    return out


def _prefix(key: str) -> str:
    parts = key.split(".")
    if parts[0] == "text_encoder" and "crossattention" in parts:
        return "text_encoder.*.crossattention"
    if parts[0] == "text_encoder":
        return key
    return parts[0]


def convert_text_video(source: Path, target_dir: Path) -> None:
    """Convert the published ``checkpoint_05.pth`` (ViT-B/16 + BERT-base); other architectures are refused."""
    convert_checkpoint(source, target_dir, TEXT_VIDEO, expect=PUBLISHED[TEXT_VIDEO])


def convert_image_video(source: Path, target_dir: Path) -> None:
    """Convert the published ``checkpoint_06.pth`` (ViT-B/16); other architectures are refused."""
    convert_checkpoint(source, target_dir, IMAGE_VIDEO, expect=PUBLISHED[IMAGE_VIDEO])


def convert_recognizer(source: Path, target_dir: Path) -> None:
    """Convert the published ``animate_recoginzer.pth`` (ViT-L/16 + 256-d vision_proj; the rest is ignored)."""
    convert_checkpoint(source, target_dir, RECOGNIZER, expect=PUBLISHED[RECOGNIZER])


def convert_text_video_any_size(source: Path, target_dir: Path) -> None:
    """Any-size text-video file in the published layout (small seeded models in tests)."""
    convert_checkpoint(source, target_dir, TEXT_VIDEO)


def convert_image_video_any_size(source: Path, target_dir: Path) -> None:
    convert_checkpoint(source, target_dir, IMAGE_VIDEO)


def convert_recognizer_any_size(source: Path, target_dir: Path) -> None:
    convert_checkpoint(source, target_dir, RECOGNIZER)


def our_shapes(arch: BlipArchitecture) -> dict[str, tuple[int, ...]]:
    """The converted ``model.safetensors`` keys and shapes."""
    mapping = key_map(arch)
    shapes = {mapping[key]: shape for key, shape in published_shapes(arch).items()}
    if arch.kind == TEXT_VIDEO:
        shapes["text.embeddings.token_type_embeddings.weight"] = (1, arch.bert.hidden)
    return shapes


def load_blip(
    folder: str | Path, kind: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> BlipReward:
    """The network of a converted folder, in eval mode on ``device``; a clear error naming the entry otherwise."""
    folder = Path(folder)
    config, state = read_converted(folder, WHAT[kind], WEIGHTS_ENTRY[kind])
    try:
        arch = BlipArchitecture.from_dict(config["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MissingWeightsError(f"{folder / CONFIG_FILE} describes no {WHAT[kind]} architecture ({exc}); convert "
                                  f"the published checkpoint with `anibench weights import {WEIGHTS_ENTRY[kind]} FILE`",
                                  path=folder) from exc
    if arch.kind != kind:
        raise MissingWeightsError(
            f"{folder} holds the {WHAT.get(arch.kind, arch.kind)}, not the {WHAT[kind]} "
            f"(weights entry {WEIGHTS_ENTRY[kind]})",
            path=folder,
        )
    check_layout(state, our_shapes(arch), folder / WEIGHTS_FILE, WHAT[kind])
    model = _build(arch)
    model.load_state_dict(state, strict=True)
    return model.to(device=device, dtype=dtype).eval()


def _build(arch: BlipArchitecture) -> BlipReward:
    """The module with its parameters allocated but not initialised (they are all overwritten)."""
    skip = None
    for where in ("transformers.initialization", "transformers.modeling_utils"):  # 5.x, 4.x
        try:
            skip = getattr(__import__(where, fromlist=["no_init_weights"]), "no_init_weights", None)
        except ImportError:
            continue
        if skip is not None:
            break
    if skip is None:  # pragma: no cover - transformers without the context manager
        return BlipReward(arch)
    with skip():
        return BlipReward(arch)


# --- inference ------------------------------------------------------------------------------------------


def _as_tensor(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(pixels)
    if tensor.ndim != 4 or tensor.shape[1] != 3:
        raise InputError(f"pixels must be (N, 3, H, W), got {tuple(tensor.shape)}")
    return tensor


def image_cls(model: BlipReward, pixels: np.ndarray | torch.Tensor, batch: int = 24) -> torch.Tensor:
    """(N, 3, 224, 224) normalised pixels → (N, width) ViT CLS rows (each image on its own), float32 CPU."""
    tensor = _as_tensor(pixels)
    rows = []
    with torch.inference_mode():
        for start in range(0, len(tensor), batch):
            rows.append(model.image_cls(tensor[start:start + batch]).float().cpu())
    return torch.cat(rows)


def video_cls(model: BlipReward, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The heads' video feature: the mean over frames of the ViT CLS rows, (width,) float32."""
    return image_cls(model, frames).mean(dim=0)


def embed_crops(model: BlipReward, crops: np.ndarray | torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Recogniser embeddings of (N, 3, 224, 224) normalised crops → (N, 256) float32 CPU, **not** normalised.

    ``model.vision_proj(model.visual_encoder(x)[:, 0, :])`` as ``compute_gallery_embeds`` (gallery) and
    ``evaluation`` (query crops) do before ``query @ gallery.T`` (infer_retrieval_pretrain_v2.py).
    """
    if model.arch.kind != RECOGNIZER:
        raise ValueError(f"embed_crops needs the recogniser, got the {model.arch.kind} network")
    tensor = _as_tensor(crops)
    rows = []
    with torch.inference_mode():
        for start in range(0, len(tensor), batch):
            rows.append(model.embed(tensor[start:start + batch]).float().cpu())
    if not rows:
        return torch.zeros(0, model.arch.proj)
    return torch.cat(rows)


def video_half(model: BlipReward, video: torch.Tensor | np.ndarray) -> float:
    """The video's part of the head logit: ``head_diff.weight[:, :P] · img_proj(video)`` (no bias)."""
    proj = model.arch.proj
    with torch.inference_mode():
        v = model.video_proj(torch.as_tensor(video).reshape(1, -1).to(model.device, model.dtype))
        return float((v[0] * model.head.weight[0, :proj]).sum().float())


def key_half(model: BlipReward, key: torch.Tensor | np.ndarray) -> float:
    """The key's (text or image CLS) part: ``head_diff.weight[:, P:] · img_key_proj(key) + head_diff.bias``."""
    proj = model.arch.proj
    with torch.inference_mode():
        k = model.key_proj(torch.as_tensor(key).reshape(1, -1).to(model.device, model.dtype))
        return float(((k[0] * model.head.weight[0, proj:]).sum() + model.head.bias[0]).float())


def sigmoid(logit: float) -> float:
    """The published ``F.sigmoid`` on a float64 logit (the value in (0, 1) the heads report)."""
    return float(1.0 / (1.0 + math.exp(-logit))) if logit >= 0 else float(math.exp(logit) / (1.0 + math.exp(logit)))


def head_value(
    model: BlipReward, video: torch.Tensor | np.ndarray, key: torch.Tensor | np.ndarray
) -> tuple[float, float]:
    """``(sigmoid, logit)`` of the head on one video feature and one key (text or image CLS) feature."""
    with torch.inference_mode():
        v = model.video_proj(torch.as_tensor(video).reshape(1, -1).to(model.device, model.dtype))
        k = model.key_proj(torch.as_tensor(key).reshape(1, -1).to(model.device, model.dtype))
        logit = model.head(torch.cat([v, k], dim=-1))[0, 0].float()
    return float(torch.sigmoid(logit)), float(logit)


# --- tokenizer --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """A prompt as the text tower reads it: ids and mask (padded to 30 when cut), and its full length."""

    ids: tuple[int, ...]
    mask: tuple[int, ...]
    length: int  # tokens of the whole prompt, [CLS] and [SEP] included
    truncated: bool


def load_tokenizer(folder: str | Path):
    """``init_tokenizer()`` (blip.py): BertTokenizer of the folder + ``[DEC]`` (bos) + ``[ENC]`` (additional)."""
    from transformers import BertTokenizer

    folder = Path(folder)
    try:
        tokenizer = BertTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as exc:
        raise MissingWeightsError(
            f"cannot load the bert-base-uncased tokenizer from {folder} ({type(exc).__name__}: {exc}); import it "
            f"with `anibench weights import {TOKENIZER_ENTRY} FOLDER`",
            path=folder if folder.exists() else None,
        ) from exc
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


def tokenize(tokenizer, prompt: str, *, truncate: bool = True, max_positions: int = 512) -> Tokens:
    """The published ``tokenizer(prompt, padding='max_length', truncation=True, max_length=30)``.

    ``truncate=False`` keeps the whole prompt (no padding); a prompt longer than the text tower's
    ``max_positions`` is then an :class:`InputError`.
    """
    full = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    length = len(full)
    if truncate:
        enc = tokenizer(prompt, padding="max_length", truncation=True, max_length=PROMPT_TOKENS)
        return Tokens(tuple(enc["input_ids"]), tuple(enc["attention_mask"]), length, length > PROMPT_TOKENS)
    if length > max_positions:
        raise InputError(
            f"the prompt has {length} BERT tokens, over the text encoder's limit of {max_positions} positions "
            f"(truncate_prompt=true cuts it to {PROMPT_TOKENS}, as published)"
        )
    return Tokens(tuple(full), (1,) * length, length, False)


def text_cls(model: BlipReward, tokens: Tokens) -> torch.Tensor:
    """(hidden,) float32: the text tower's [CLS] output for one tokenised prompt."""
    ids = torch.tensor([tokens.ids], dtype=torch.long)
    mask = torch.tensor([tokens.mask], dtype=torch.long)
    with torch.inference_mode():
        return model.text_cls(ids, mask)[0].float().cpu()
