"""ActionCLIP, AnimeReward's visual-motion network, and its published checkpoint.

Reference: bilibili/Index-anisora at 171fe63, ``reward/models/actionclip.py`` (``ActionClip``),
``reward/models/adapter.py`` (``TransformerAdapter``), ``reward/models/load.py`` (``init_actionclip``) and
``reward/reward_infer.py`` (how the motion score is made); file:line references below are there.

Architecture:

- ``clip``: a whole OpenAI CLIP (actionclip.py:112, ``clip.load('ViT-B/16')`` in ``mode='self'``, load.py:57):
  ViT-B/16 image tower (width 768, 12 layers, patch 16, 224 px) and the 12-layer 512-wide text transformer
  (77 positions, vocabulary 49408, causal mask, feature at the end-of-text token = the largest id), 512-d
  embeddings, QuickGELU, LayerNorm eps 1e-5, heads of 64.
- ``adapter`` (adapter.py): ``frame_position_embeddings`` (``nn.Embedding(segments, embed_dim)``, 8 segments)
  added to the per-frame image embeddings, a ``clip.model.Transformer`` of width ``embed_dim`` with
  ``text_width // 64`` heads (adapter.py:16-18 reads the width from ``text_projection`` and the heads from
  ``ln_final``: 8 heads of 64 for ViT-B/16) and ``num_adapter_layers`` blocks (load.py:65-68 counts them in
  the file), no mask; then ``x + transformer(x + pos)`` (the residual is the embeddings *without* the position
  embedding) averaged over frames (adapter.py:34-46).
- ``encode_video`` (actionclip.py:127-133): (B, N, 3, H, W) → CLIP image embeddings per frame (projected, not
  normalised) → (B, N, D) → adapter → (B, D).

The network is assembled from open_clip 3.3's maintained ``CLIP`` (built with ``quick_gelu=True``) and
``Transformer`` blocks rather than transformers' ``CLIPModel``: open_clip keeps OpenAI's module and parameter
names (``visual.conv1``, ``transformer.resblocks.i.attn.in_proj_weight``, ``text_projection`` as a matrix, ...)
and the same ``nn.MultiheadAttention`` arithmetic, so the published ``clip.*`` and ``adapter.*`` tensors load
key for key with no renaming (transformers would need q/k/v splits and transposed projections), and the
adapter is open_clip's ``Transformer`` with OpenAI's block layout. ViCLIP (:mod:`anibench.models.viclip`)
already uses the same blocks and tokenizer.

Tokenizer: ``clip.tokenize`` (openai-clip, ``context_length=77``, ``truncate=False``: longer texts are an error)
= ``[sot] + bpe(clean(text)) + [eot]`` zero-padded to 77. open_clip's ``SimpleTokenizer`` bundles the same BPE
vocabulary and cleaning (see :mod:`anibench.models.viclip`); the parity fixture checks the ids of the two
motion prompts and of other texts against ``clip.tokenize``.

Score (reward_infer.py:119-134, 152-153, 191-197): text features of the two motion prompts
(:data:`MOTION_PROMPTS`), video features of 8 frames, both L2-normalised; ``softmax(100 * v @ t.T)``; the
motion score is the probability of the first prompt ("large range of movement"). ``100`` is a constant of the
script, not the checkpoint's ``logit_scale`` (which is loaded but unused).

Published file: ``reward/weights/testvl-pre76-top187-rec69.pth`` (HF ``IndexTeam/Index-anisora``), an mmengine
checkpoint; ``init_actionclip`` takes ``checkpoint['state_dict']`` and loads it strictly into ``ActionClip``
(load.py:60-75), so the state dict holds every ``clip.*`` tensor and every ``adapter.*`` tensor. The construction-
time ``clip.load('ViT-B/16')`` download is entirely overwritten by it (strict load of every key; the parity
reference checks every parameter afterwards): **OpenAI's ViT-B-16.pt is not needed**; only its architecture
is, and that is read from the tensors here. Reading: ``torch.load(weights_only=True)``; an mmengine training
checkpoint can also hold mmengine/numpy objects (``message_hub``'s ``HistoryBuffer``, ``meta``) that
``weights_only`` refuses — those globals are replaced by inert stand-ins that run nothing (see
:func:`read_checkpoint`) and only ``state_dict`` is kept.
"""

from __future__ import annotations

import math
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anibench.errors import InputError, MissingWeightsError
from anibench.runtime.torchvision_compat import ensure_torchvision

ensure_torchvision()  # before open_clip (imports torchvision) and checkpoints (imports transformers)
from anibench.models.checkpoints import (
    architecture_mismatch, check_layout, read_converted, tensors_only, write_converted,
)
from anibench.models.clip import bpe_tokenizer, resblock_shapes

WHAT = "ActionCLIP (AnimeReward visual motion)"
WEIGHTS_ENTRY = "anime_reward_actionclip"
PUBLISHED_FILE = "testvl-pre76-top187-rec69.pth"
CHECKPOINT_KEY = "state_dict"  # checkpoint['state_dict'] (load.py:60-61)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
HEAD_DIM = 64
SOT_TOKEN, EOT_TOKEN = 49406, 49407
SIMILARITY_SCALE = 100.0  # reward_infer.py:196

# reward_infer.py:121-122 (the two-class variant; the score is the probability of the first).
MOTION_PROMPTS = (
    "The protagonist has a large range of movement, such as running, jumping, dancing, or waving arms.",
    "The protagonist remain stationary in the video with no apparent movement.",
)


@dataclass(frozen=True)
class ActionClipArchitecture:
    """The sizes of an ActionCLIP network (CLIP heads: width // 64; adapter heads: text_width // 64)."""

    vision_width: int
    vision_layers: int
    patch: int
    image_size: int
    embed_dim: int
    text_width: int
    text_layers: int
    context_length: int
    vocab_size: int
    segments: int
    adapter_layers: int

    @property
    def grid(self) -> int:
        return self.image_size // self.patch

    @property
    def adapter_heads(self) -> int:
        return self.text_width // HEAD_DIM  # adapter.py:16-18: ln_final width // 64

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


# ``clip.load('ViT-B/16')`` + 8 adapter segments (load.py:57-58); the adapter depth is whatever the file holds.
VIT_B16 = {"vision_width": 768, "vision_layers": 12, "patch": 16, "image_size": 224, "embed_dim": 512,
           "text_width": 512, "text_layers": 12, "context_length": 77, "vocab_size": 49408, "segments": 8}  # fmt: skip


# --- the network -----------------------------------------------------------------------------------


def _open_clip():
    import open_clip.model
    import open_clip.transformer

    return open_clip


class TemporalAdapter(nn.Module):
    """``TransformerAdapter`` (adapter.py): frame-position embeddings, a transformer, residual, mean over frames."""

    def __init__(self, arch: ActionClipArchitecture):
        super().__init__()
        oc = _open_clip()
        self.segments = arch.segments
        self.frame_position_embeddings = nn.Embedding(arch.segments, arch.embed_dim)
        self.transformer = oc.transformer.Transformer(
            arch.embed_dim, arch.adapter_layers, arch.adapter_heads, act_layer=oc.transformer.QuickGELU,
            norm_layer=nn.LayerNorm,
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, N, D) per-frame embeddings, N <= segments → (B, D)."""
        count = frames.shape[1]
        if count > self.segments:
            raise ValueError(f"the adapter has {self.segments} frame positions, got {count} frames")
        x = frames + self.frame_position_embeddings.weight[:count].to(frames.dtype).unsqueeze(0)
        x = self.transformer(x)  # batch-first (open_clip); adapter.py transposes to (N, B, D) for OpenAI's
        return (x.to(frames.dtype) + frames).mean(dim=1)


class ActionClip(nn.Module):
    """CLIP + temporal adapter; ``state_dict()`` keys equal the published checkpoint's ``state_dict``."""

    def __init__(self, arch: ActionClipArchitecture):
        super().__init__()
        oc = _open_clip()
        self.arch = arch
        vision = oc.model.CLIPVisionCfg(layers=arch.vision_layers, width=arch.vision_width, head_width=HEAD_DIM,
                                        patch_size=arch.patch, image_size=arch.image_size)
        text = oc.model.CLIPTextCfg(context_length=arch.context_length, vocab_size=arch.vocab_size,
                                    width=arch.text_width, heads=arch.text_width // HEAD_DIM, layers=arch.text_layers)
        self.clip = oc.model.CLIP(arch.embed_dim, vision, text, quick_gelu=True)
        self.adapter = TemporalAdapter(arch)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, H, W) normalised frames → (B, embed_dim) video embeddings (not normalised)."""
        weight = self.clip.visual.conv1.weight
        video = video.to(device=weight.device, dtype=weight.dtype)
        batch, count = video.shape[:2]
        frames = self.clip.encode_image(video.reshape(batch * count, *video.shape[2:]))
        return self.adapter(frames.reshape(batch, count, -1))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 77) token ids → (B, embed_dim) text embeddings (not normalised)."""
        return self.clip.encode_text(tokens.to(device=self.clip.token_embedding.weight.device, dtype=torch.long))


# --- tokenizer --------------------------------------------------------------------------------------



def tokenize(text: str, context_length: int = 77) -> list[int]:
    """``clip.tokenize(text)[0]`` (77 ids, zero padded); a text over ``context_length`` tokens is refused, as
    ``clip.tokenize(truncate=False)`` does."""
    ids = [SOT_TOKEN, *bpe_tokenizer().encode(text), EOT_TOKEN]
    if len(ids) > context_length:
        raise InputError(f"text of {len(ids)} tokens is longer than CLIP's context of {context_length}: {text[:60]!r}")
    return ids + [0] * (context_length - len(ids))


# --- the score ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionScore:
    """The two-prompt softmax: ``probabilities[0]`` is the motion score; ``cosines`` per prompt."""

    probabilities: tuple[float, float]
    cosines: tuple[float, float]

    @property
    def value(self) -> float:
        return self.probabilities[0]


def motion_score(video_embedding: torch.Tensor | np.ndarray, text_embeddings: torch.Tensor | np.ndarray) -> MotionScore:
    """``softmax(100 * v̂ @ t̂.T)`` of the L2-normalised video (D,) and text (2, D) embeddings, float32
    (reward_infer.py:194-197)."""
    video = torch.as_tensor(video_embedding).reshape(1, -1).float()
    text = torch.as_tensor(text_embeddings).reshape(-1, video.shape[-1]).float()
    video = video / video.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    cosines = video @ text.T
    probabilities = (SIMILARITY_SCALE * cosines).softmax(dim=-1)[0]
    return MotionScore(tuple(float(p) for p in probabilities), tuple(float(c) for c in cosines[0]))  # type: ignore[arg-type]


# --- the published checkpoint ---------------------------------------------------------------------

_VISION_LAYER = re.compile(r"^clip\.visual\.transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$")
_TEXT_LAYER = re.compile(r"^clip\.transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$")
_ADAPTER_LAYER = re.compile(r"^adapter\..*\.attn\.in_proj_weight$")  # load.py:65-68


def expected_shapes(arch: ActionClipArchitecture) -> dict[str, tuple[int, ...]]:
    """Every key of the published ``ActionClip.state_dict()`` (and of :class:`ActionClip`) with its shape."""
    vw, tw, p, d = arch.vision_width, arch.text_width, arch.patch, arch.embed_dim
    shapes: dict[str, tuple[int, ...]] = {
        "clip.positional_embedding": (arch.context_length, tw),
        "clip.text_projection": (tw, d),
        "clip.logit_scale": (),
        "clip.visual.class_embedding": (vw,),
        "clip.visual.positional_embedding": (arch.grid * arch.grid + 1, vw),
        "clip.visual.proj": (vw, d),
        "clip.visual.conv1.weight": (vw, 3, p, p),
        "clip.visual.ln_pre.weight": (vw,), "clip.visual.ln_pre.bias": (vw,),
        "clip.visual.ln_post.weight": (vw,), "clip.visual.ln_post.bias": (vw,),
        "clip.token_embedding.weight": (arch.vocab_size, tw),
        "clip.ln_final.weight": (tw,), "clip.ln_final.bias": (tw,),
        "adapter.frame_position_embeddings.weight": (arch.segments, d),
    }  # fmt: skip
    shapes.update(resblock_shapes("clip.visual.transformer", vw, arch.vision_layers))
    shapes.update(resblock_shapes("clip.transformer", tw, arch.text_layers))
    shapes.update(resblock_shapes("adapter.transformer", d, arch.adapter_layers))
    return shapes


def _inert(name: str) -> type:
    """A class standing in for the global ``name`` while unpickling: it accepts any arguments and state, keeps
    nothing and runs nothing (so ``weights_only`` loading can step over training-state objects)."""
    module, _, qualname = name.rpartition(".")
    return type(qualname or name, (), {
        "__module__": module, "__new__": staticmethod(lambda cls, *args, **kwargs: object.__new__(cls)),
        "__init__": lambda self, *args, **kwargs: None, "__setstate__": lambda self, state: None,
        "__call__": lambda self, *args, **kwargs: None,
    })  # fmt: skip


def read_checkpoint(source: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The ``state_dict`` of a published ActionCLIP file and the globals that were stepped over.

    ``torch.load(weights_only=True)`` first. An mmengine training checkpoint may also pickle objects besides
    tensors (``message_hub`` history buffers, numpy scalars in ``meta``); ``weights_only`` refuses them. Then
    the file's non-allow-listed globals are listed (``torch.serialization.get_unsafe_globals_in_checkpoint``)
    and loaded as :func:`_inert` stand-ins inside ``torch.serialization.safe_globals``: still the restricted
    unpickler, no code of the file or of those packages runs, and only ``state_dict`` (tensors) is kept.
    """
    source = Path(source)
    if not source.is_file():
        raise InputError(f"{WHAT} checkpoint not found", path=source)
    stepped_over: list[str] = []
    try:
        try:
            loaded = torch.load(source, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "weights_only" not in str(exc).lower() and "unsupported global" not in str(exc).lower():
                raise
            stepped_over = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(source))
            with torch.serialization.safe_globals([(_inert(name), name) for name in stepped_over]):
                loaded = torch.load(source, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile,
            AttributeError, TypeError) as exc:  # fmt: skip
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        blocked = [line for line in lines if "GLOBAL" in line or "global" in line.split(":")[0]]
        if blocked:  # torch refuses some modules (os, posix, subprocess, ...) even as stand-ins
            raise InputError(f"refusing the {WHAT} checkpoint: it pickles a global that is never loaded "
                             f"({blocked[0]})", path=source) from exc
        first = lines[0] if lines else type(exc).__name__
        raise InputError(f"cannot read the {WHAT} checkpoint: not a complete torch file ({first})", path=source) from exc
    state = loaded.get(CHECKPOINT_KEY) if isinstance(loaded, Mapping) else None
    if not isinstance(state, Mapping):
        found = ", ".join(sorted(map(str, loaded))[:5]) if isinstance(loaded, Mapping) else type(loaded).__name__
        raise InputError(f"not a {WHAT} checkpoint: init_actionclip reads torch.load(file)['{CHECKPOINT_KEY}'] and "
                         f"the file holds {found or 'nothing'}", path=source)
    return tensors_only(state, source, WHAT), stepped_over


def infer_architecture(state: Mapping[str, torch.Tensor], path: Path) -> ActionClipArchitecture:
    """The sizes a state dict was built with, as ``clip.model.build_model`` and load.py read them."""
    needed = ("clip.visual.conv1.weight", "clip.visual.positional_embedding", "clip.text_projection",
              "clip.positional_embedding", "clip.token_embedding.weight", "clip.ln_final.weight",
              "adapter.frame_position_embeddings.weight")  # fmt: skip
    missing = [key for key in needed if key not in state]
    if missing:
        kind = " (it looks like a plain CLIP file without the clip./adapter. prefixes)" if "visual.proj" in state else ""
        raise InputError(f"not a {WHAT} checkpoint: missing {', '.join(missing)}{kind}", path=path)
    conv = state["clip.visual.conv1.weight"]
    positions = int(state["clip.visual.positional_embedding"].shape[0]) - 1
    grid = math.isqrt(max(positions, 0))
    if conv.ndim != 4 or grid * grid != positions:
        raise InputError(f"not a {WHAT} checkpoint: patch embedding {tuple(conv.shape)}, {positions} positions",
                         path=path)
    arch = ActionClipArchitecture(
        vision_width=int(conv.shape[0]),
        vision_layers=sum(1 for key in state if _VISION_LAYER.match(key)),
        patch=int(conv.shape[-1]),
        image_size=grid * int(conv.shape[-1]),
        embed_dim=int(state["clip.text_projection"].shape[-1]),
        text_width=int(state["clip.ln_final.weight"].shape[0]),
        text_layers=sum(1 for key in state if _TEXT_LAYER.match(key)),
        context_length=int(state["clip.positional_embedding"].shape[0]),
        vocab_size=int(state["clip.token_embedding.weight"].shape[0]),
        segments=int(state["adapter.frame_position_embeddings.weight"].shape[0]),
        adapter_layers=sum(1 for key in state if _ADAPTER_LAYER.match(key)),
    )
    if (arch.vision_width % HEAD_DIM or arch.text_width % HEAD_DIM or not arch.vision_layers
            or not arch.text_layers or not arch.adapter_layers):  # fmt: skip
        raise InputError(f"not a {WHAT} checkpoint: {arch}", path=path)
    return arch


def convert_checkpoint(source: Path, target_dir: Path, *, expect: Mapping[str, int] | None = None
                       ) -> ActionClipArchitecture:  # fmt: skip
    """Check an ActionCLIP file key by key and write ``config.json`` + ``model.safetensors`` to ``target_dir``.

    The architecture is read from the tensors; every key and shape must be exactly that architecture's
    (:func:`expected_shapes`, as the published strict ``load_state_dict``). With ``expect`` (fields of
    :class:`ActionClipArchitecture`) another architecture is refused naming the difference. float32 storage.
    """
    source = Path(source)
    state, stepped_over = read_checkpoint(source)
    arch = infer_architecture(state, source)
    check_layout(state, expected_shapes(arch), source, WHAT)
    if expect is not None:
        mismatch = architecture_mismatch(arch.to_dict(), expect)
        if mismatch:
            raise InputError(f"{WHAT} checkpoint of another architecture: {mismatch}", path=source)
    write_converted(target_dir, state, {"model": WHAT, "architecture": arch.to_dict(), "source_file": source.name,
                                        "unpickled_as_inert": stepped_over})
    return arch


def convert_published(source: Path, target_dir: Path) -> None:
    """Convert the published ``testvl-pre76-top187-rec69.pth`` (CLIP ViT-B/16, 8 segments; any adapter depth)."""
    convert_checkpoint(source, target_dir, expect=VIT_B16)


def convert_any_size(source: Path, target_dir: Path) -> None:
    """Convert an ActionCLIP file of any size in the published layout (small seeded models in tests)."""
    convert_checkpoint(source, target_dir)


def load_actionclip(folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
                    ) -> ActionClip:  # fmt: skip
    """The model of a converted folder (``config.json`` + ``model.safetensors``), in eval mode on ``device``."""
    folder = Path(folder)
    config, state = read_converted(folder, WHAT, WEIGHTS_ENTRY)
    try:
        arch = ActionClipArchitecture(**config["architecture"])
    except (KeyError, TypeError) as exc:
        raise MissingWeightsError(f"{folder / CONFIG_FILE} describes no {WHAT} architecture ({exc}); convert the "
                                  f"published checkpoint with `anibench weights import {WEIGHTS_ENTRY} "
                                  f"{PUBLISHED_FILE}`", path=folder) from exc
    check_layout(state, expected_shapes(arch), folder / WEIGHTS_FILE, WHAT)
    with torch.device("meta"):
        model = ActionClip(arch)
    model.load_state_dict(state, strict=True, assign=True)
    # The causal text mask is a non-persistent buffer: rebuilt off the meta device (open_clip's build_causal_mask).
    mask = torch.full((arch.context_length, arch.context_length), float("-inf")).triu_(1)
    model.clip.register_buffer("attn_mask", mask, persistent=False)
    return model.to(device=device, dtype=dtype).eval()


def video_embeddings(model: ActionClip, videos: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Video embeddings (B, D) of (N, 3, 224, 224) clips in one batch, on the model's device and dtype."""
    batch = torch.stack(list(videos)) if not isinstance(videos, torch.Tensor) else videos
    with torch.inference_mode():
        return model.encode_video(batch)


def text_embeddings(model: ActionClip, texts: Sequence[str] = MOTION_PROMPTS) -> torch.Tensor:
    """Text embeddings (len(texts), D) of ``texts`` tokenised as ``clip.tokenize`` does."""
    tokens = torch.tensor([tokenize(text, model.arch.context_length) for text in texts], dtype=torch.long)
    with torch.inference_mode():
        return model.encode_text(tokens)


def as_float32(rows: torch.Tensor) -> np.ndarray:
    return rows.float().cpu().numpy()

