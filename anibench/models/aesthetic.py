"""VBench's aesthetic quality: the LAION aesthetic head, the preprocessing and the formula.

Follows Vchitect/VBench at 45e79ec, ``vbench/aesthetic_quality.py`` (line numbers below are in that
file unless another is named):

- Networks: OpenAI CLIP ViT-L/14's image tower (``clip.load(vit_path)``, :42-88; here converted to
  ``transformers.CLIPVisionModelWithProjection`` by :func:`anibench.models.clip.convert_openai_vit_l14`)
  and the LAION aesthetic predictor V1, ``nn.Linear(768, 1)`` loaded from
  ``sa_0_4_vit_l_14_linear.pth`` (``get_aesthetic_model``, :23-39). VBench reads the head with a bare
  ``torch.load``; here it is read with ``torch.load(weights_only=True)`` (the published file is a plain
  ``OrderedDict`` of two float32 tensors, so nothing is lost), its keys and shapes are checked, and
  the manifest's converter (:func:`convert_laion_head`) stores it as ``model.safetensors``.
- Frames: every frame of the video (``load_video(video_path)``, :49: no sampling), as float32 0-255
  (vbench/utils.py:147-175), through ``clip_transform(224)`` (vbench/utils.py:33-39): bicubic resize of
  the short side to 224 without antialias, CenterCrop 224, /255, CLIP mean/std — the same transform
  as background consistency, :func:`anibench.models.vbench_consistency.background_consistency_pixels`.
- Per frame, in batches of 32 frames (:20, :53-63): ``encode_image`` cast to float32, L2-normalised
  (``F.normalize(dim=-1, p=2)``), through the head: the raw LAION score (about 1-10 on real images).
- Per video (:65-67): ``mean(scores / 10)`` over every frame, in float32, returned with ``.item()``.
- Aggregate (:68-72): ``sum(per-video values) / number of videos`` — a plain mean over videos, not
  frame-weighted (with several GPUs too, :89-91).

The head always runs in float32 on float32 embeddings, whatever the backbone's precision, as in VBench
(``.to(torch.float32)`` before the normalisation, :59; the head is never cast).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anibench.errors import InputError, NotApplicable
from anibench.models.checkpoints import check_layout, read_torch_state_dict, tensors_only
from anibench.models.vbench_consistency import background_consistency_pixels

WHAT = "LAION aesthetic predictor (ViT-L/14)"
EMBEDDING_SIZE = 768  # aesthetic_quality.py:35, nn.Linear(768, 1): CLIP ViT-L/14's image embedding
SCORE_SCALE = 10.0  # aesthetic_quality.py:66, aesthetic_scores / 10
VBENCH_BATCH_SIZE = 32  # aesthetic_quality.py:20
CLIP_SIZE = 224  # aesthetic_quality.py:50, clip_transform(224)
HEAD_SHAPES = {"weight": (1, EMBEDDING_SIZE), "bias": (1,)}
CONVERTED_FILE = "model.safetensors"
CONVERTER_VERSION = "1"  # bump when convert_laion_head would write other values (the store records it)


def read_laion_head(source: Path) -> dict[str, torch.Tensor]:
    """The head's tensors from ``sa_0_4_vit_l_14_linear.pth``, read with ``torch.load(weights_only=True)``.

    Refuses, naming the file: a missing, truncated or non-torch file, one holding Python objects,
    and another layout (e.g. the ViT-B/32 head ``sa_0_4_vit_b_32_linear.pth``, ``Linear(512, 1)``).
    """
    source = Path(source)
    state = tensors_only(read_torch_state_dict(source, WHAT), source, WHAT)
    check_layout(state, HEAD_SHAPES, source, WHAT)
    return state


def convert_laion_head(source: Path, target_dir: Path) -> None:
    """The manifest's converter: the published ``.pth`` checked and written as ``target_dir/model.safetensors``."""
    from safetensors.torch import save_file

    state = {key: value.to(torch.float32).contiguous() for key, value in read_laion_head(source).items()}
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(target_dir / CONVERTED_FILE))


def load_laion_head(source: Path, device: str | torch.device = "cpu") -> nn.Linear:
    """``nn.Linear(768, 1)``, float32, in eval mode on ``device``, from a converted folder or the published file."""
    source = Path(source)
    if source.is_dir():
        from safetensors.torch import load_file

        converted = source / CONVERTED_FILE
        if not converted.is_file():
            raise InputError(f"no {CONVERTED_FILE} in the converted {WHAT} folder", path=source)
        state = load_file(str(converted))
        check_layout(state, HEAD_SHAPES, converted, WHAT)
    else:
        state = read_laion_head(source)
    head = nn.Linear(EMBEDDING_SIZE, 1)
    head.load_state_dict({key: value.to(torch.float32) for key, value in state.items()})
    return head.to(device).eval()


def aesthetic_pixels(frames: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """``clip_transform(224)`` (vbench/utils.py:33-39) on decoded (N, H, W, 3) uint8 frames: (N, 3, 224, 224)."""
    return background_consistency_pixels(frames, device, size=CLIP_SIZE)


def laion_scores(head: nn.Linear, image_embeds: torch.Tensor) -> torch.Tensor:
    """Raw LAION scores (N,): ``head(F.normalize(embeds.float(), dim=-1, p=2)).squeeze(-1)`` (:59-61)."""
    if image_embeds.ndim != 2 or image_embeds.shape[-1] != EMBEDDING_SIZE:
        raise InputError(f"{WHAT} reads (N, {EMBEDDING_SIZE}) image embeddings, got {tuple(image_embeds.shape)}")
    weight = head.weight
    unit = F.normalize(image_embeds.to(device=weight.device, dtype=torch.float32), dim=-1, p=2)
    with torch.inference_mode():
        return head(unit).squeeze(dim=-1)


def aesthetic_quality_score(frame_scores: torch.Tensor | np.ndarray) -> float:
    """VBench's per-video value: ``mean(scores / 10)`` over every frame, in float32 (:65-67)."""
    scores = torch.as_tensor(frame_scores, dtype=torch.float32).reshape(-1)
    if scores.numel() == 0:
        raise NotApplicable("aesthetic_quality needs at least one frame")
    return float(torch.mean(scores / SCORE_SCALE, dim=0))


def mean_over_videos(values: Iterable[float]) -> float:
    """VBench's aggregate: ``sum(values) / len(values)``, a plain mean over videos (:68-72)."""
    values = list(values)
    if not values:
        raise ValueError("no video to aggregate")
    total = 0.0
    for value in values:
        total += value
    return total / len(values)
