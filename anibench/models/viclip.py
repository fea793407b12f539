"""ViCLIP (InternVid), the video-text model of VBench's overall consistency, and its published checkpoint.

No maintained package ships ViCLIP, so the network is assembled here from maintained blocks whose
math is the same (open_clip 3.3: ``Transformer`` / ``ResidualAttentionBlock`` with
``nn.MultiheadAttention``, ``TextTransformer``, ``QuickGELU``, and its bundled CLIP BPE tokenizer).
Reference: VBench (Vchitect/VBench at 45e79ec) ``vbench/third_party/ViCLIP/`` — ``viclip.py``,
``viclip_vision.py``, ``viclip_text.py``, ``simple_tokenizer.py``; file:line references below are there.

Architecture (``ViCLIP.__init__``, viclip.py:19-51; ``clip_joint_l14``, viclip_vision.py:261-281;
``clip_text_l14``, viclip_text.py:200-240):

- Video tower (``VisionTransformer``, viclip_vision.py:100-194): a bias-free ``Conv3d`` patch embedding
  with kernel (1, 14, 14) (temporal kernel 1: each frame on its own), a class embedding, spatial position
  embeddings for 16x16 patches + class (added to every frame), a temporal position embedding
  (1, 8, 1024) added to each patch token by frame, the patch tokens of all 8 frames in one sequence
  ordered patch-major / frame-minor (``'(b n) t m -> b (n t) m'``) after one class token, ``ln_pre``,
  24 residual blocks (width 1024, 16 heads, MLP 4x, QuickGELU, ``nn.LayerNorm`` eps 1e-5, joint
  space-time attention, no mask), ``ln_post`` on the class token and ``proj`` (1024 x 768). Drop-path
  (rate 0.1) and gradient checkpointing are training-only: the tower is built ``.eval()``.
- Text tower (``CLIP_TEXT``, viclip_text.py:79-173): CLIP's text transformer with ``context_length``
  **32** (``max_txt_l``, viclip.py:25), vocabulary 49408, width 768, 12 layers, 12 heads, causal mask,
  ``ln_final``, the feature at the end-of-text token (the largest id, ``argmax``) times
  ``text_projection`` (768 x 768). open_clip's ``TextTransformer`` computes exactly this.
- ``temp`` (a scalar, training temperature): kept so the keys match; unused for scoring.

The published file (``ViClip-InternVid-10M-FLT.pth``, hub ``OpenGVLab/VBench_Used_Models``) is read by
VBench as ``torch.load(pretrain)['model']`` and loaded strictly (viclip.py:56-59). Here it is read with
``torch.load(weights_only=True)``: the ``model`` entry must be a dict of tensors whose keys and shapes are
exactly this architecture's (:func:`expected_shapes`); they already carry the module names used below
(``vision_encoder.*``, ``text_encoder.*``, ``temp``), so conversion is a strict check plus a re-save as
``model.safetensors`` with a ``config.json`` naming the architecture.

Tokenizer (``CLIP_TEXT.tokenize``, viclip_text.py:122-158, with ``simple_tokenizer.SimpleTokenizer`` on
``bpe_simple_vocab_16e6.txt.gz``): ``[sot] + bpe(clean(text)) + [eot]``, zero padding to 32, truncation
keeping the first 32 tokens with the last replaced by ``eot``. open_clip's ``SimpleTokenizer`` bundles the
same vocabulary file (sha256 924691ac…, as in openai/CLIP) and implements the same BPE, cleaning
(ftfy, double HTML unescape, whitespace collapse, lower case; ftfy removes U+001C-U+001F, the only
characters where ``str.split`` and ``regex``'s ``\\s`` disagree) and truncation. One difference: VBench's
special-token markers are spelt ``<|startoftext|>``/``<|endoftext|>``, open_clip's
``<start_of_text>``/``<end_of_text>``; a prompt containing one of these literal strings would be
tokenised differently (ids 49406/49407 are the same).

Preprocessing (vbench/overall_consistency.py:43-64 with vbench/utils.py): ``read_frames_decord_by_fps(path,
num_frames=8, sample='middle')`` (utils.py:179-200) decodes **uint8** frames at
:func:`segment_middle_indices` (``get_frame_indices``, utils.py:68-106); ``clip_transform(224)``
(utils.py:33-39) then runs on that uint8 tensor: torchvision ``Resize(224, bicubic, antialias=False)``
interpolates in float32 and, the input being uint8, clamps to [0, 255] and rounds back to uint8
(torchvision 0.28 ``_functional_tensor.resize`` lines 462-472), ``CenterCrop(224)``, ``/255``, CLIP
mean/std. (Background consistency resizes float frames and keeps the overshoot; here it is clamped and
rounded.) The 8 frames go to the model as one (1, 8, 3, 224, 224) video.

Score (overall_consistency.py:22-36, 57-60): the cosine of the L2-normalised video and text embeddings
(``clip_feat @ text_feat.T`` after ``/= norm``) in float32; it can be negative.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anibench.errors import InputError, MissingWeightsError
from anibench.runtime.torchvision_compat import ensure_torchvision

ensure_torchvision()  # before checkpoints imports transformers, and open_clip: both import torchvision
from anibench.models.checkpoints import (
    architecture_mismatch, check_layout, read_converted, read_torch_state_dict, tensors_only, write_converted,
)
from anibench.models.clip import bpe_tokenizer, resblock_shapes
from anibench.models.vbench_consistency import (
    CLIP_MEAN,
    CLIP_STD,
    center_crop,
    center_crop_offsets,
    normalize,
    short_side_size,
)

WHAT = "ViCLIP"
WEIGHTS_ENTRY = "viclip_internvid_10m_flt"
HEAD_DIM = 64  # ViT-L/14: 1024 / 16 heads; text: 768 / 12 heads (viclip_vision.py:268, viclip_text.py:205)
CHECKPOINT_KEY = "model"  # torch.load(pretrain)['model'] (viclip.py:58)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

IMAGE_SIZE = 224  # clip_transform(224), overall_consistency.py:46
NUM_FRAMES = 8  # read_frames_decord_by_fps(num_frames=8), overall_consistency.py:54
CONTEXT_LENGTH = 32  # max_txt_l, viclip.py:25
SOT_TOKEN, EOT_TOKEN = 49406, 49407


@dataclass(frozen=True)
class ViCLIPArchitecture:
    """The sizes of a ViCLIP network (heads are ``width // 64`` in both towers)."""

    vision_width: int
    vision_layers: int
    patch: int
    image_size: int
    frames: int
    embed_dim: int
    text_width: int
    text_layers: int
    context_length: int
    vocab_size: int
    text_embed_dim: int

    @property
    def vision_heads(self) -> int:
        return self.vision_width // HEAD_DIM

    @property
    def text_heads(self) -> int:
        return self.text_width // HEAD_DIM

    @property
    def grid(self) -> int:
        return self.image_size // self.patch

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


# ViCLIP.__init__ (viclip.py:25-46), clip_joint_l14 (viclip_vision.py:266-272), clip_text_l14 (viclip_text.py:200-218).
VICLIP_L14 = ViCLIPArchitecture(
    vision_width=1024, vision_layers=24, patch=14, image_size=224, frames=8, embed_dim=768,
    text_width=768, text_layers=12, context_length=32, vocab_size=49408, text_embed_dim=768,
)  # fmt: skip


# --- the network -----------------------------------------------------------------------------------


def _open_clip():
    """open_clip's transformer module (imported on first use)."""
    from open_clip import transformer

    return transformer


class ViCLIPVision(nn.Module):
    """ViCLIP's video tower: joint space-time attention over 8 frames' patches; returns (B, embed_dim)."""

    def __init__(self, arch: ViCLIPArchitecture):
        super().__init__()
        oc = _open_clip()
        width = arch.vision_width
        self.frames = arch.frames
        self.conv1 = nn.Conv3d(3, width, (1, arch.patch, arch.patch), (1, arch.patch, arch.patch), bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.positional_embedding = nn.Parameter(torch.empty(arch.grid * arch.grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, arch.frames, width))
        self.transformer = oc.Transformer(
            width, arch.vision_layers, arch.vision_heads, act_layer=oc.QuickGELU, norm_layer=nn.LayerNorm
        )
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.empty(width, arch.embed_dim))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``video``: (B, T, 3, H, W) normalised frames, T = the architecture's frames (viclip_vision.py:157-194)."""
        x = self.conv1(video.permute(0, 2, 1, 3, 4))  # (B, width, T, grid, grid)
        batch, width, frames, height, wide = x.shape
        if frames != self.frames:
            raise ValueError(f"ViCLIP takes {self.frames} frames per video, got {frames}")
        patches = x.permute(0, 2, 3, 4, 1).reshape(batch, frames, height * wide, width)
        patches = patches + self.positional_embedding[1:].to(x.dtype)
        patches = patches.transpose(1, 2) + self.temporal_positional_embedding.to(x.dtype).unsqueeze(1)
        patches = patches.reshape(batch, height * wide * frames, width)  # (n t): patch-major, frame-minor
        cls = (self.class_embedding + self.positional_embedding[0]).to(x.dtype).expand(batch, 1, width)
        tokens = self.ln_pre(torch.cat([cls, patches], dim=1))
        tokens = self.transformer(tokens)
        return self.ln_post(tokens[:, 0]) @ self.proj


class ViCLIP(nn.Module):
    """The video and text towers of ViCLIP; ``state_dict()`` keys equal the published checkpoint's ``model``."""

    def __init__(self, arch: ViCLIPArchitecture = VICLIP_L14):
        super().__init__()
        oc = _open_clip()
        self.arch = arch
        self.vision_encoder = ViCLIPVision(arch)
        self.text_encoder = oc.TextTransformer(
            context_length=arch.context_length, vocab_size=arch.vocab_size, width=arch.text_width,
            heads=arch.text_heads, layers=arch.text_layers, output_dim=arch.text_embed_dim,
            act_layer=oc.QuickGELU, pool_type="argmax",
        )  # fmt: skip
        self.temp = nn.Parameter(torch.ones([]) / 100.0)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) normalised frames → (B, embed_dim) video embeddings (not normalised)."""
        weight = self.vision_encoder.conv1.weight
        return self.vision_encoder(video.to(device=weight.device, dtype=weight.dtype))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, context_length) token ids → (B, text_embed_dim) text embeddings (not normalised)."""
        return self.text_encoder(tokens.to(device=self.text_encoder.token_embedding.weight.device, dtype=torch.long))


# --- tokenizer --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """A prompt's token ids as ViCLIP reads them (``ids``: ``context_length`` ints) and whether it was cut."""

    ids: tuple[int, ...]
    length: int  # tokens before truncation, start and end markers included
    truncated: bool


def tokenize(prompt: str, context_length: int = CONTEXT_LENGTH) -> Tokens:
    """``CLIP_TEXT.tokenize(prompt, context_length=32)`` (viclip_text.py:122-158) with open_clip's BPE."""
    tokenizer = bpe_tokenizer()
    body = tokenizer.encode(prompt)
    length = len(body) + 2
    ids = tokenizer([prompt], context_length=context_length)[0].tolist()
    return Tokens(tuple(int(i) for i in ids), length, length > context_length)


# --- preprocessing ----------------------------------------------------------------------------------


def segment_middle_indices(length: int, count: int = NUM_FRAMES) -> list[int]:
    """``get_frame_indices(count, length, sample='middle')`` (vbench/utils.py:68-106).

    The clip is split at ``linspace(0, length, min(count, length) + 1).astype(int)``; each segment
    ``[a, b - 1]`` gives ``(a + b - 1) // 2``; a clip shorter than ``count`` frames gives every
    frame, then the last index repeated up to ``count``.
    """
    if length < 1:
        raise InputError("the clip has no frames")
    samples = min(count, length)
    edges = np.linspace(start=0, stop=length, num=samples + 1).astype(int)
    indices = [int((start + end - 1) // 2) for start, end in zip(edges[:-1], edges[1:])]
    return indices + [indices[-1]] * (count - len(indices))


@dataclass(frozen=True)
class Geometry:
    """Where ``clip_transform(224)`` takes its pixels: the resized size and the crop's top-left corner."""

    resized: tuple[int, int]
    crop_offset: tuple[int, int]


def overall_consistency_geometry(height: int, width: int, size: int = IMAGE_SIZE) -> Geometry:
    resized = short_side_size(height, width, size)
    return Geometry(resized, center_crop_offsets(*resized, size))


def overall_consistency_pixels(
    frames: np.ndarray | torch.Tensor, device: str | torch.device = "cpu", size: int = IMAGE_SIZE
) -> torch.Tensor:
    """``clip_transform(224)`` on decoded uint8 frames (N, H, W, 3) → (N, 3, 224, 224) float32.

    The bicubic resize (no antialias) runs in float32 and is clamped to [0, 255] and rounded to uint8,
    as torchvision does for a uint8 tensor; no resize when the short side is already ``size``.
    """
    tensor = torch.as_tensor(frames)
    if tensor.ndim != 4 or tensor.shape[-1] != 3 or tensor.dtype != torch.uint8:
        raise InputError(f"frames must be (N, H, W, 3) uint8 RGB, got {tuple(tensor.shape)} {tensor.dtype}")
    if tensor.shape[0] == 0:
        raise InputError("no frames")
    images = tensor.to(device).permute(0, 3, 1, 2)  # uint8 (N, 3, H, W), channels-last strides as decord's
    height, width = images.shape[-2:]
    resized = short_side_size(height, width, size)
    if resized != (height, width):
        scaled = F.interpolate(images.float(), size=resized, mode="bicubic", align_corners=False, antialias=False)
        images = scaled.clamp(0, 255).round().to(torch.uint8)
    return normalize(center_crop(images, size), CLIP_MEAN, CLIP_STD)


# --- the score ---------------------------------------------------------------------------------------


def overall_consistency_score(video_embedding: torch.Tensor, text_embedding: torch.Tensor) -> float:
    """cos(video, text): both L2-normalised in float32, then their dot product (overall_consistency.py:22-36, 57-60)."""
    video = video_embedding.reshape(1, -1).float()
    text = text_embedding.reshape(1, -1).float()
    video = video / video.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    return float((video @ text.T)[0, 0])


# --- the published checkpoint ---------------------------------------------------------------------

_VISION_LAYER = re.compile(r"^vision_encoder\.transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$")
_TEXT_LAYER = re.compile(r"^text_encoder\.transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$")


def expected_shapes(arch: ViCLIPArchitecture = VICLIP_L14) -> dict[str, tuple[int, ...]]:
    """Every key of ``ViCLIP.state_dict()`` (VBench's and this module's) with its shape."""
    vw, tw, p = arch.vision_width, arch.text_width, arch.patch
    shapes: dict[str, tuple[int, ...]] = {
        "temp": (),
        "vision_encoder.class_embedding": (vw,),
        "vision_encoder.positional_embedding": (arch.grid * arch.grid + 1, vw),
        "vision_encoder.temporal_positional_embedding": (1, arch.frames, vw),
        "vision_encoder.conv1.weight": (vw, 3, 1, p, p),
        "vision_encoder.ln_pre.weight": (vw,), "vision_encoder.ln_pre.bias": (vw,),
        "vision_encoder.ln_post.weight": (vw,), "vision_encoder.ln_post.bias": (vw,),
        "vision_encoder.proj": (vw, arch.embed_dim),
        "text_encoder.token_embedding.weight": (arch.vocab_size, tw),
        "text_encoder.positional_embedding": (arch.context_length, tw),
        "text_encoder.ln_final.weight": (tw,), "text_encoder.ln_final.bias": (tw,),
        "text_encoder.text_projection": (tw, arch.text_embed_dim),
    }  # fmt: skip
    shapes.update(resblock_shapes("vision_encoder.transformer", vw, arch.vision_layers))
    shapes.update(resblock_shapes("text_encoder.transformer", tw, arch.text_layers))
    return shapes


def read_published(source: Path) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of a published ViCLIP file, read with ``torch.load(weights_only=True)``."""
    source = Path(source)
    loaded = read_torch_state_dict(source, WHAT)
    state = loaded.get(CHECKPOINT_KEY)
    if not isinstance(state, Mapping):
        found = ", ".join(sorted(map(str, loaded))[:5]) or "nothing"
        raise InputError(
            f"not a {WHAT} checkpoint: VBench reads torch.load(file)['{CHECKPOINT_KEY}'], and the file holds {found}",
            path=source,
        )
    return tensors_only(state, source, WHAT)


def infer_architecture(state: Mapping[str, torch.Tensor], path: Path) -> ViCLIPArchitecture:
    """The sizes a state dict was built with, read from its tensors (heads: width // 64)."""
    needed = ("vision_encoder.conv1.weight", "vision_encoder.positional_embedding",
              "vision_encoder.temporal_positional_embedding", "vision_encoder.proj",
              "text_encoder.token_embedding.weight", "text_encoder.positional_embedding",
              "text_encoder.text_projection")  # fmt: skip
    missing = [key for key in needed if key not in state]
    if missing:
        raise InputError(f"not a {WHAT} checkpoint: missing {', '.join(missing)}", path=path)
    conv = state["vision_encoder.conv1.weight"]
    positions = int(state["vision_encoder.positional_embedding"].shape[0]) - 1
    grid = math.isqrt(max(positions, 0))
    if conv.ndim != 5 or grid * grid != positions:
        raise InputError(f"not a {WHAT} checkpoint: patch embedding {tuple(conv.shape)}, {positions} positions",
                         path=path)
    arch = ViCLIPArchitecture(
        vision_width=int(conv.shape[0]),
        vision_layers=sum(1 for key in state if _VISION_LAYER.match(key)),
        patch=int(conv.shape[-1]),
        image_size=grid * int(conv.shape[-1]),
        frames=int(state["vision_encoder.temporal_positional_embedding"].shape[1]),
        embed_dim=int(state["vision_encoder.proj"].shape[-1]),
        text_width=int(state["text_encoder.token_embedding.weight"].shape[1]),
        text_layers=sum(1 for key in state if _TEXT_LAYER.match(key)),
        context_length=int(state["text_encoder.positional_embedding"].shape[0]),
        vocab_size=int(state["text_encoder.token_embedding.weight"].shape[0]),
        text_embed_dim=int(state["text_encoder.text_projection"].shape[-1]),
    )
    if arch.vision_width % HEAD_DIM or arch.text_width % HEAD_DIM or not arch.vision_layers or not arch.text_layers:
        raise InputError(f"not a {WHAT} checkpoint: {arch}", path=path)
    return arch


def convert_checkpoint(
    source: Path, target_dir: Path, *, expect: ViCLIPArchitecture | None = None
) -> ViCLIPArchitecture:
    """Check a ViCLIP file key by key and write ``config.json`` + ``model.safetensors`` to ``target_dir``.

    The architecture is read from the tensors; every key and shape must be exactly that
    architecture's (:func:`expected_shapes`). With ``expect`` another architecture is refused,
    naming the difference. Tensors are stored as float32. Returns the architecture.
    """
    source = Path(source)
    state = read_published(source)
    arch = infer_architecture(state, source)
    check_layout(state, expected_shapes(arch), source, WHAT)
    if expect is not None:
        mismatch = architecture_mismatch(arch.to_dict(), expect.to_dict())
        if mismatch:
            raise InputError(f"{WHAT} checkpoint of another architecture: {mismatch}", path=source)
    write_converted(target_dir, state, {"model": WHAT, "architecture": arch.to_dict()})
    return arch


def convert_published(source: Path, target_dir: Path) -> None:
    """Convert the published ``ViClip-InternVid-10M-FLT.pth`` (ViT-L/14); other architectures are refused."""
    convert_checkpoint(source, target_dir, expect=VICLIP_L14)


def convert_any_size(source: Path, target_dir: Path) -> None:
    """Convert a ViCLIP file of any size in the published layout (small seeded models in tests)."""
    convert_checkpoint(source, target_dir)


def load_viclip(
    folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> ViCLIP:
    """The model of a converted folder (``config.json`` + ``model.safetensors``), in eval mode on ``device``."""
    folder = Path(folder)
    config, state = read_converted(folder, WHAT, WEIGHTS_ENTRY)
    try:
        arch = ViCLIPArchitecture(**config["architecture"])
    except (KeyError, TypeError) as exc:
        raise MissingWeightsError(f"{folder / CONFIG_FILE} describes no {WHAT} architecture ({exc}); convert the "
                                  f"published checkpoint with `anibench weights import {WEIGHTS_ENTRY} FILE`",
                                  path=folder) from exc
    check_layout(state, expected_shapes(arch), folder / WEIGHTS_FILE, WHAT)
    with torch.device("meta"):
        model = ViCLIP(arch)
    model.load_state_dict(state, strict=True, assign=True)
    # The causal mask is a non-persistent buffer: rebuilt off the meta device.
    model.text_encoder.register_buffer("attn_mask", model.text_encoder.build_causal_mask(), persistent=False)
    return model.to(device=device, dtype=dtype).eval()


def video_embeddings(model: ViCLIP, videos: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Video embeddings (B, D) of (T, 3, 224, 224) clips, one batch; on the model's device and dtype."""
    batch = torch.stack(list(videos)) if not isinstance(videos, torch.Tensor) else videos
    with torch.inference_mode():
        return model.encode_video(batch)


def text_embeddings(model: ViCLIP, token_ids: Sequence[Sequence[int]] | torch.Tensor) -> torch.Tensor:
    """Text embeddings (B, D) of token id rows (``context_length`` each)."""
    tokens = torch.as_tensor(token_ids, dtype=torch.long)
    with torch.inference_mode():
        return model.encode_text(tokens)
