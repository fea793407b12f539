"""OpenAI CLIP ViT image tower as ``transformers.CLIPVisionModelWithProjection``, from OpenAI's files.

Architecture (openai/CLIP ``clip/model.py`` at d05afc4, ``VisionTransformer`` and
``build_model``): a bias-free patch convolution (``conv1``), a class embedding, learned
position embeddings, LayerNorm before the transformer (``ln_pre``), residual blocks with
``nn.MultiheadAttention`` (packed ``in_proj``), LayerNorm eps 1e-5, MLP 4x with QuickGELU
(``x * sigmoid(1.702 x)``), ``ln_post`` on the class token and a projection matrix
(``proj``, width x output). ``build_model`` reads the architecture from the tensors: width
from ``visual.conv1.weight``, layers by counting ``.attn.in_proj_weight``, patch size from the
convolution, image size from the position count; heads are ``width // 64`` (model.py:272).

Published forms accepted by :func:`convert_openai_checkpoint`:
- OpenAI's release files (``ViT-B-32.pt``) are TorchScript archives. As ``clip.load`` does
  (clip.py:129-139), their state dict is read with ``torch.jit.load(...).state_dict()``:
  TorchScript's own loader, which does not unpickle arbitrary Python objects; the archive's
  code is never run. Its tensors are float16 and are stored as float32 (exact), as
  ``clip.load`` does on the CPU (``model.float()``, clip.py:141).
- A plain state dict with the same keys, read with ``torch.load(weights_only=True)``.

Two published image towers have a named converter and an expected architecture:
ViT-B/32 (:func:`convert_openai`, VBench's background consistency) and ViT-L/14
(:func:`convert_openai_vit_l14`, under the LAION aesthetic head in VBench's aesthetic
quality). Everything else is shared: the architecture is read from the tensors, so the
same code converts any OpenAI ViT (and the tests' small-config archives).

Only the image tower (``visual.*``) is converted; the text tower and ``logit_scale`` are
ignored for now (no anibench scorer reads them yet). ResNet CLIPs (``visual.layer1``...) are
refused.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from anibench.errors import InputError
from anibench.models.checkpoints import (
    architecture_mismatch,
    check_layout,
    is_torchscript_archive,
    load_pretrained,
    read_torch_state_dict,
    tensors_only,
    write_hf_folder,
)

WHAT = "OpenAI CLIP ViT"
HEAD_DIM = 64
OPENAI_LAYER_NORM_EPS = 1e-5
PREFIX = "visual."

# clip.available_models() "ViT-B/32": width 768, 12 layers, patch 32, 224 px, 512-d embedding.
VIT_B32 = {"width": 768, "layers": 12, "patch": 32, "image_size": 224, "output_dim": 512}
# clip.available_models() "ViT-L/14": width 1024 (16 heads), 24 layers, patch 14, 224 px, 768-d embedding
# (openai/CLIP model-card and build_model on the published ViT-L-14.pt; the LAION head reads 768 inputs).
VIT_L14 = {"width": 1024, "layers": 24, "patch": 14, "image_size": 224, "output_dim": 768}

_LAYER_INDEX = re.compile(r"^transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$")
_TOP_KEYS = {
    "class_embedding": "vision_model.embeddings.class_embedding",
    "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "ln_post.weight": "vision_model.post_layernorm.weight",
    "ln_post.bias": "vision_model.post_layernorm.bias",
}
_BLOCK_KEYS = {
    "ln_1": "layer_norm1",
    "attn.out_proj": "self_attn.out_proj",
    "ln_2": "layer_norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
_QKV = ("q_proj", "k_proj", "v_proj")


def openai_vision_config(
    width: int = 768, layers: int = 12, patch: int = 32, image_size: int = 224, output_dim: int = 512
) -> CLIPVisionConfig:
    """A ``CLIPVisionConfig`` with OpenAI's ViT image tower (defaults: ViT-B/32)."""
    if width % HEAD_DIM:
        raise ValueError(f"OpenAI CLIP ViTs use {HEAD_DIM}-dimensional heads; width {width} is not a multiple")
    return CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=layers,
        num_attention_heads=width // HEAD_DIM,
        num_channels=3,
        image_size=image_size,
        patch_size=patch,
        projection_dim=output_dim,
        hidden_act="quick_gelu",
        layer_norm_eps=OPENAI_LAYER_NORM_EPS,
        attention_dropout=0.0,
    )


def read_openai_state_dict(source: Path) -> dict[str, torch.Tensor]:
    """The tensors of an OpenAI CLIP file: a TorchScript archive or a plain state dict (see module doc)."""
    source = Path(source)
    if source.is_file() and is_torchscript_archive(source):
        try:
            with warnings.catch_warnings():
                # torch marks TorchScript deprecated; it is still the only reader of OpenAI's release files.
                warnings.simplefilter("ignore", DeprecationWarning)
                state = dict(torch.jit.load(str(source), map_location="cpu").state_dict())
        except RuntimeError as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise InputError(f"cannot read the TorchScript archive: {first_line}", path=source) from exc
    else:
        state = read_torch_state_dict(source, WHAT)
    return tensors_only(state, source, WHAT)


def visual_tensors(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The image tower's tensors with the ``visual.`` prefix removed; other architectures refused."""
    visual = {key[len(PREFIX):]: value for key, value in state.items() if key.startswith(PREFIX)}
    if not visual:
        raise InputError(f"not a {WHAT} checkpoint: no '{PREFIX}*' keys (the image tower)", path=path)
    if "proj" not in visual:
        kind = " (a ResNet CLIP such as RN50, not supported)" if "layer1.0.conv1.weight" in visual else ""
        raise InputError(f"not a {WHAT} checkpoint: no '{PREFIX}proj'{kind}", path=path)
    return visual


def infer_architecture(visual: Mapping[str, torch.Tensor], path: Path) -> dict[str, int]:
    """Width, layers, patch, image size and output size as ``build_model`` reads them (model.py:399-407)."""
    for key in ("conv1.weight", "positional_embedding"):
        if key not in visual:
            raise InputError(f"not a {WHAT} checkpoint: missing {PREFIX}{key}", path=path)
    width = int(visual["conv1.weight"].shape[0])
    patch = int(visual["conv1.weight"].shape[-1])
    positions = int(visual["positional_embedding"].shape[0]) - 1
    grid = math.isqrt(positions)
    layers = sum(1 for key in visual if _LAYER_INDEX.match(key))
    if grid * grid != positions or width % HEAD_DIM or layers == 0:
        raise InputError(
            f"not a {WHAT} checkpoint: {positions} position embeddings, width {width}, {layers} layers",
            path=path,
        )
    return {"width": width, "layers": layers, "patch": patch, "image_size": grid * patch,
            "output_dim": int(visual["proj"].shape[-1])}  # fmt: skip


def resblock_shapes(prefix: str, width: int, layers: int) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of OpenAI CLIP's ``Transformer`` blocks (``<prefix>.resblocks.<i>.…``: pre-norm
    attention with a packed q/k/v projection, a 4× MLP), the layout open_clip keeps, ViCLIP and ActionCLIP use."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(layers):
        b = f"{prefix}.resblocks.{i}."
        shapes.update({
            b + "ln_1.weight": (width,), b + "ln_1.bias": (width,),
            b + "attn.in_proj_weight": (3 * width, width), b + "attn.in_proj_bias": (3 * width,),
            b + "attn.out_proj.weight": (width, width), b + "attn.out_proj.bias": (width,),
            b + "ln_2.weight": (width,), b + "ln_2.bias": (width,),
            b + "mlp.c_fc.weight": (4 * width, width), b + "mlp.c_fc.bias": (4 * width,),
            b + "mlp.c_proj.weight": (width, 4 * width), b + "mlp.c_proj.bias": (width,),
        })  # fmt: skip
    return shapes


_BPE_TOKENIZER = None


def bpe_tokenizer():
    """OpenAI CLIP's BPE tokenizer (open_clip's ``SimpleTokenizer``, vocabulary bundled), built once."""
    global _BPE_TOKENIZER
    if _BPE_TOKENIZER is None:
        from open_clip.tokenizer import SimpleTokenizer

        _BPE_TOKENIZER = SimpleTokenizer()
    return _BPE_TOKENIZER


def expected_shapes(arch: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """OpenAI's image-tower keys (without ``visual.``) and shapes for an architecture."""
    d, p, out = arch["width"], arch["patch"], arch["output_dim"]
    grid = arch["image_size"] // p
    shapes: dict[str, tuple[int, ...]] = {
        "class_embedding": (d,),
        "conv1.weight": (d, 3, p, p),
        "positional_embedding": (grid * grid + 1, d),
        "ln_pre.weight": (d,), "ln_pre.bias": (d,),
        "ln_post.weight": (d,), "ln_post.bias": (d,),
        "proj": (d, out),
    }  # fmt: skip
    shapes.update(resblock_shapes("transformer", d, arch["layers"]))
    return shapes


def openai_to_hf(visual: Mapping[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """Rename image-tower keys to ``CLIPVisionModelWithProjection`` keys.

    ``in_proj`` splits into q/k/v (``nn.MultiheadAttention`` packs them in that order) and
    ``proj`` (used as ``x @ proj``) becomes the projection's weight ``proj.T``.
    """
    out = {hf: visual[key] for key, hf in _TOP_KEYS.items()}
    out["visual_projection.weight"] = visual["proj"].t()
    for i in range(layers):
        b, h = f"transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        for key, hf in _BLOCK_KEYS.items():
            for kind in ("weight", "bias"):
                out[f"{h}{hf}.{kind}"] = visual[f"{b}{key}.{kind}"]
        for kind, packed in (("weight", "attn.in_proj_weight"), ("bias", "attn.in_proj_bias")):
            for name, part in zip(_QKV, visual[b + packed].chunk(3, dim=0)):
                out[f"{h}self_attn.{name}.{kind}"] = part
    return out


def hf_to_openai(state: Mapping[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """The inverse of :func:`openai_to_hf`, with the ``visual.`` prefix restored."""
    visual = {key: state[hf] for key, hf in _TOP_KEYS.items()}
    visual["proj"] = state["visual_projection.weight"].t()
    for i in range(layers):
        b, h = f"transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        for key, hf in _BLOCK_KEYS.items():
            for kind in ("weight", "bias"):
                visual[f"{b}{key}.{kind}"] = state[f"{h}{hf}.{kind}"]
        for kind, packed in (("weight", "attn.in_proj_weight"), ("bias", "attn.in_proj_bias")):
            visual[b + packed] = torch.cat([state[f"{h}self_attn.{name}.{kind}"] for name in _QKV], dim=0)
    return {PREFIX + key: value for key, value in visual.items()}


def convert_openai_checkpoint(
    source: Path, target_dir: Path, *, expect: Mapping[str, int] | None = None
) -> CLIPVisionConfig:
    """Convert an OpenAI CLIP ViT file at ``source`` into a transformers folder at ``target_dir``.

    The architecture is read from the tensors as ``build_model`` does and every image-tower
    key and shape is checked; with ``expect`` (an architecture dict like :data:`VIT_B32`)
    another architecture is refused naming the difference. Returns the config written.
    """
    source = Path(source)
    visual = visual_tensors(read_openai_state_dict(source), source)
    arch = infer_architecture(visual, source)
    check_layout(visual, expected_shapes(arch), source, WHAT)
    if expect is not None:
        mismatch = architecture_mismatch(arch, expect)
        if mismatch:
            raise InputError(f"{WHAT} checkpoint of another architecture: {mismatch}", path=source)
    config = openai_vision_config(**arch)
    write_hf_folder(CLIPVisionModelWithProjection, config, openai_to_hf(visual, arch["layers"]), Path(target_dir))
    return config


def convert_openai(source: Path, target_dir: Path) -> None:
    """Convert OpenAI's published ViT-B/32 (``ViT-B-32.pt``) to a transformers folder."""
    convert_openai_checkpoint(source, target_dir, expect=VIT_B32)


def convert_openai_vit_l14(source: Path, target_dir: Path) -> None:
    """Convert OpenAI's published ViT-L/14 (``ViT-L-14.pt``) to a transformers folder."""
    convert_openai_checkpoint(source, target_dir, expect=VIT_L14)


def load_clip(
    source: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    weights_entry: str = "clip_vit_b32",
) -> CLIPVisionModelWithProjection:
    """The image tower in eval mode from a converted folder or a hub id (e.g. ``openai/clip-vit-base-patch32``).

    ``weights_entry`` is the manifest entry named when the folder is missing (``clip_vit_b32``,
    ``clip_vit_l14``).
    """
    return load_pretrained(CLIPVisionModelWithProjection, source, device, dtype, WHAT, weights_entry)


def image_embeds(
    model: CLIPVisionModelWithProjection, pixel_values: torch.Tensor, batch_size: int | None = None
) -> torch.Tensor:
    """CLIP's image embedding (``encode_image``: projected, not normalised), (N, output_dim).

    ``pixel_values`` is (N, 3, S, S) normalised at the model's image size; ``batch_size``
    bounds how many images go through at once. Returned on the model's device, in its dtype.
    """
    weight = model.visual_projection.weight
    chunks = [pixel_values] if batch_size is None else pixel_values.split(batch_size)
    outputs = []
    with torch.inference_mode():
        for chunk in chunks:
            chunk = chunk.to(device=weight.device, dtype=weight.dtype)
            outputs.append(model(pixel_values=chunk).image_embeds)
    return torch.cat(outputs)
