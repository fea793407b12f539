"""VBench's subject consistency, background consistency and I2V subject: preprocessing and formulas.

Reproduced in torch from decoded uint8 RGB frames (N, H, W, 3), without torchvision, from
Vchitect/VBench at 45e79ec (paths below are in that repository) and torchvision's tensor
semantics (``transforms/functional.py`` and ``_functional_tensor.py``, 0.28.0):

- ``load_video`` (vbench/utils.py:147-175; the I2V copy, vbench2_beta_i2v/utils.py:168-192, is the
  same) turns the decoded uint8 array into
  ``torch.Tensor(frames).permute(0, 3, 1, 2)``: **float32** (``torch.Tensor`` of a uint8 array),
  values 0-255, channels-last memory. Every resize below therefore runs on float32, which
  torchvision neither rounds nor clamps (it clamps only uint8 bicubic output), so bicubic
  overshoot below 0 and above 255 is kept.
- Resize to a short side ``s`` (torchvision ``_compute_resized_output_size``): the short side
  becomes ``s`` and the long side ``int(s * long / short)`` (truncated); nothing happens when
  the size is unchanged. Interpolation is ``F.interpolate(..., align_corners=False)``.
- CenterCrop: offsets ``int(round((H - c) / 2))`` and ``int(round((W - c) / 2))`` (Python's
  round, halves to even).
- ``x.float().div(255.0)``, then Normalize ``(x - mean) / std`` per channel.

Per dimension:

- subject consistency, ``dino_transform(224)`` (vbench/utils.py:49-54): bilinear resize of the
  short side to 224 with ``antialias=False``, no crop, ImageNet mean/std; DINO ViT-B/16 CLS.
- background consistency, ``clip_transform(224)`` (vbench/utils.py:33-39): bicubic resize to
  224 with ``antialias=False``, CenterCrop 224, CLIP mean/std; CLIP ViT-B/32 image embedding.
- I2V subject, ``dino_transform_internet()`` for the frames (vbench2_beta_i2v/utils.py:56-62):
  bicubic resize of the short side to 256 with torchvision's default antialias (``True``
  since torchvision 0.17; 0.14-0.16 did not antialias tensors by default), CenterCrop 224,
  ImageNet mean/std. The conditioning image goes through
  ``dino_transform_Image_internet()`` (vbench2_beta_i2v/utils.py:64-70) as a PIL image:
  Pillow's bicubic resize (always antialiased, 8-bit), PIL crop, ``ToTensor``, ImageNet
  mean/std; here with Pillow itself.

Subject consistency and I2V subject run the same DINO weights on different pixels (224 short
side, no crop, bilinear vs 256 bicubic antialiased then a 224 crop), so they can share the
loaded model but not the forward pass.

Formulas: features are L2-normalised (``F.normalize``), similarities are
``F.cosine_similarity`` of those, each clamped at 0 (``max(0.0, ...)``) and accumulated in
float64 (``.item()``), as in vbench/subject_consistency.py:49-68,
vbench/background_consistency.py:42-64 and vbench2_beta_i2v/i2v_subject.py:30-64.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from anibench.errors import InputError, NotApplicable

# vbench/utils.py:53 (dino_transform) and vbench2_beta_i2v/utils.py:61 (dino_transform_internet).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# vbench/utils.py:38 (clip_transform).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

SUBJECT_SIZE = 224  # subject_consistency.py:37, dino_transform(224)
BACKGROUND_SIZE = 224  # background_consistency.py:27, clip_transform(224)
I2V_RESIZE = 256  # vbench2_beta_i2v/utils.py:56, resize_size=256
I2V_CROP = 224  # vbench2_beta_i2v/utils.py:56, center_size=224

# vbench2_beta_i2v/i2v_subject.py:23-25.
I2V_MAX_WEIGHT = 0.4
I2V_MEAN_WEIGHT = 0.3
I2V_MIN_WEIGHT = 0.3


# --- preprocessing -------------------------------------------------------------------------


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(new_height, new_width) for torchvision's ``Resize(size)``: short side ``size``, long side truncated."""
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def center_crop_offsets(height: int, width: int, crop: int) -> tuple[int, int]:
    """(top, left) of torchvision's ``CenterCrop(crop)`` on an image at least ``crop`` on each side."""
    if height < crop or width < crop:
        raise ValueError(f"cannot centre-crop {crop}x{crop} from {height}x{width}")
    return int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))


def frames_as_vbench_tensor(frames: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """Decoded (N, H, W, 3) uint8 RGB frames as VBench's ``load_video`` returns them: float32 (N, 3, H, W)."""
    tensor = torch.as_tensor(frames)
    if tensor.ndim != 4 or tensor.shape[-1] != 3 or tensor.dtype != torch.uint8:
        raise InputError(f"frames must be (N, H, W, 3) uint8 RGB, got {tuple(tensor.shape)} {tensor.dtype}")
    if tensor.shape[0] == 0:
        raise InputError("no frames")
    return tensor.to(device=device, dtype=torch.float32).permute(0, 3, 1, 2)


def resize_short_side(images: torch.Tensor, size: int, mode: str, antialias: bool) -> torch.Tensor:
    """torchvision ``Resize(size, mode, antialias)`` on float (N, C, H, W): no rounding, no clamping."""
    height, width = images.shape[-2:]
    new_size = short_side_size(height, width, size)
    if new_size == (height, width):
        return images
    return F.interpolate(images, size=new_size, mode=mode, align_corners=False, antialias=antialias)


def center_crop(images: torch.Tensor, crop: int) -> torch.Tensor:
    """torchvision ``CenterCrop(crop)`` on (..., H, W)."""
    top, left = center_crop_offsets(images.shape[-2], images.shape[-1], crop)
    return images[..., top : top + crop, left : left + crop]


def normalize(images_0_255: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``x.float().div(255.0)`` then torchvision ``Normalize(mean, std)``: ``(x - mean) / std``."""
    scaled = images_0_255.float().div(255.0)
    mean_t = torch.as_tensor(mean, dtype=scaled.dtype, device=scaled.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=scaled.dtype, device=scaled.device).view(-1, 1, 1)
    return scaled.sub(mean_t).div(std_t)


def subject_consistency_pixels(
    frames: np.ndarray | torch.Tensor, device: str | torch.device = "cpu", size: int = SUBJECT_SIZE
) -> torch.Tensor:
    """``dino_transform(224)`` (vbench/utils.py:49-54): (N, 3, 224, W') or (N, 3, H', 224), no crop."""
    images = resize_short_side(frames_as_vbench_tensor(frames, device), size, "bilinear", antialias=False)
    return normalize(images, IMAGENET_MEAN, IMAGENET_STD)


def background_consistency_pixels(
    frames: np.ndarray | torch.Tensor, device: str | torch.device = "cpu", size: int = BACKGROUND_SIZE
) -> torch.Tensor:
    """``clip_transform(224)`` (vbench/utils.py:33-39): (N, 3, 224, 224)."""
    images = resize_short_side(frames_as_vbench_tensor(frames, device), size, "bicubic", antialias=False)
    return normalize(center_crop(images, size), CLIP_MEAN, CLIP_STD)


def i2v_subject_frame_pixels(
    frames: np.ndarray | torch.Tensor,
    device: str | torch.device = "cpu",
    antialias: bool = True,
    resize: int = I2V_RESIZE,
    crop: int = I2V_CROP,
) -> torch.Tensor:
    """``dino_transform_internet()`` (vbench2_beta_i2v/utils.py:56-62) on the frames: (N, 3, 224, 224).

    ``antialias`` is torchvision's ``Resize`` default, which VBench does not set: True from
    torchvision 0.17 on (pass False to reproduce runs made with torchvision 0.14-0.16).
    """
    images = resize_short_side(frames_as_vbench_tensor(frames, device), resize, "bicubic", antialias=antialias)
    return normalize(center_crop(images, crop), IMAGENET_MEAN, IMAGENET_STD)


def i2v_subject_image_pixels(
    image: np.ndarray, device: str | torch.device = "cpu", resize: int = I2V_RESIZE, crop: int = I2V_CROP
) -> torch.Tensor:
    """``dino_transform_Image_internet()`` (vbench2_beta_i2v/utils.py:64-70) on the conditioning image.

    ``image`` is (H, W, 3) uint8 RGB (VBench opens the file with PIL; an RGBA or grayscale
    file would give ToTensor the wrong channel count there). Returns (1, 3, 224, 224).
    """
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise InputError(f"conditioning image must be (H, W, 3) uint8 RGB, got {array.shape} {array.dtype}")
    height, width = array.shape[:2]
    new_height, new_width = short_side_size(height, width, resize)
    picture = Image.fromarray(np.ascontiguousarray(array))
    if (new_height, new_width) != (height, width):
        picture = picture.resize((new_width, new_height), Image.Resampling.BICUBIC)
    top, left = center_crop_offsets(new_height, new_width, crop)
    picture = picture.crop((left, top, left + crop, top + crop))
    tensor = torch.from_numpy(np.array(picture, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    return normalize(tensor.to(device), IMAGENET_MEAN, IMAGENET_STD).unsqueeze(0)


# --- formulas ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsistencyScore:
    """One video's consistency: ``value = frame_sum / frame_count`` (``frame_count`` = frames - 1)."""

    value: float
    frame_sum: float
    frame_count: int


def _unit(features: torch.Tensor) -> torch.Tensor:
    return F.normalize(features.float(), dim=-1, p=2)


def _clamped_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``max(0.0, F.cosine_similarity(a, b).item())`` row by row, in float64."""
    return F.cosine_similarity(a, b, dim=-1).double().clamp_min(0.0)


def consistency_terms(features: torch.Tensor) -> torch.Tensor:
    """Per frame i >= 1: ½[max(0, cos(f_{i-1}, f_i)) + max(0, cos(f_0, f_i))] on L2-normalised features.

    ``features`` is (T, D) for one video's frames, in order. float64, length T - 1
    (vbench/subject_consistency.py:53-60, vbench/background_consistency.py:43-51).
    """
    unit = _unit(features)
    previous = _clamped_cosine(unit[:-1], unit[1:])
    first = _clamped_cosine(unit[:1].expand_as(unit[1:]), unit[1:])
    return (previous + first) / 2


def consistency_score(features: torch.Tensor, dimension: str = "consistency") -> ConsistencyScore:
    """VBench's per-video value: the mean of :func:`consistency_terms` (subject_consistency.py:64)."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise NotApplicable(f"{dimension} needs at least 2 frames, got {features.shape[0] if features.ndim else 0}")
    terms = consistency_terms(features)
    frame_sum = float(terms.sum())
    return ConsistencyScore(value=frame_sum / terms.numel(), frame_sum=frame_sum, frame_count=int(terms.numel()))


def frame_weighted_mean(scores: Iterable[ConsistencyScore]) -> float:
    """VBench's aggregate on one process: Σ frame_sum / Σ frame_count over videos (long videos weigh more).

    vbench/subject_consistency.py:65-68 and vbench/background_consistency.py:57-64. (With
    several GPUs VBench's subject consistency becomes a plain mean over videos,
    subject_consistency.py:79-81; background consistency stays frame-weighted.)
    """
    scores = list(scores)
    count = sum(score.frame_count for score in scores)
    if count == 0:
        raise ValueError("no video with at least 2 frames to aggregate")
    return sum(score.frame_sum for score in scores) / count


def i2v_subject_score(image_features: torch.Tensor, frame_features: torch.Tensor) -> float:
    """VBench-I2V subject: 0.4·max_t s(img, f_t) + 0.3·mean_t s(f_{t-1}, f_t) + 0.3·min_t s(f_{t-1}, f_t).

    ``s`` is the cosine of L2-normalised DINO features clamped at 0; the max runs over every
    frame including the first, the mean and min over consecutive pairs
    (vbench2_beta_i2v/i2v_subject.py:42-60). ``image_features`` is (D,) or (1, D); ``frame_features`` (T, D).
    """
    if frame_features.ndim != 2 or frame_features.shape[0] < 2:
        raise NotApplicable("i2v_subject needs at least 2 frames")
    frames = _unit(frame_features)
    image = _unit(image_features.reshape(1, -1)).expand_as(frames)
    conformity = _clamped_cosine(image, frames)
    consecutive = _clamped_cosine(frames[:-1], frames[1:])
    return float(
        I2V_MAX_WEIGHT * conformity.max() + I2V_MEAN_WEIGHT * consecutive.mean() + I2V_MIN_WEIGHT * consecutive.min()
    )


def mean_over_videos(values: Iterable[float]) -> float:
    """I2V subject's aggregate: ``np.mean`` of the per-video values (i2v_subject.py:64)."""
    values = list(values)
    if not values:
        raise ValueError("no video to aggregate")
    return float(np.mean(values))
