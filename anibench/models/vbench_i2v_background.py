"""VBench-I2V background: preprocessing, formula and the conditioning image's ratio.

From Vchitect/VBench at 45e79ec (paths below are in that repository) and torchvision 0.28's
tensor and PIL semantics:

- Frames: ``load_video`` (vbench2_beta_i2v/utils.py:129-194) gives float32 0-255 (T, 3, H, W)
  (``torch.Tensor`` of decord's uint8 frames); ``dreamsim_transform(224)`` (utils.py:72-76) is
  ``Resize((224, 224), BICUBIC)`` — both sides set, so the **aspect is squashed**, no crop —
  with torchvision's default ``antialias=True`` on that float tensor (no rounding, no clamping:
  bicubic overshoot is kept), then ``/ 255``. Applied to the whole video at once
  (i2v_background.py:40-41); the model then sees one frame per call (i2v_background.py:46-57).
- The conditioning image: ``Image.open(image_path)`` without ``convert`` (i2v_background.py:33),
  ``dreamsim_transform_Image(224)`` (utils.py:78-82) = Pillow's bicubic resize to 224x224 (uint8)
  and ``ToTensor`` (``/ 255``). anibench reads the image through :func:`anibench.images.load_image`
  (RGB); VBench would fail on an RGBA file there (four channels reach a 3-channel ``Normalize``).
- No normalisation here: DreamSim's ``embed`` normalises per branch (:mod:`anibench.models.dreamsim`).
- Per video (i2v_background.py:20-65): ``s(a, b) = max(0, cos(a, b))`` of L2-normalised DreamSim
  embeddings (already centred and unit-norm; VBench normalises again, a no-op);
  ``0.4·max_t s(img, f_t) + 0.3·mean_t s(f_{t-1}, f_t) + 0.3·min_t s(f_{t-1}, f_t)`` — the max
  over every frame including the first, mean and min over consecutive pairs; the same formula
  as I2V subject (:func:`anibench.models.vbench_consistency.i2v_subject_score`). A single-frame
  clip has no pair (VBench's ``np.min([])`` raises). Aggregate: ``np.mean`` over videos (line 65).
- Which image: VBench-I2V does not choose a crop from the clip. ``--ratio`` (``evaluate_i2v.py``,
  ``resolution`` in ``init_submodules``, utils.py:300-336, default ``1-1`` in
  ``VBenchI2V.evaluate``) names the folder ``vbench2_beta_i2v/data/crop/{ratio}/`` the suite's
  images are read from (``load_i2v_dimension_info``, utils.py:278-286); custom inputs give
  ``custom_image_path``. Crops are published for 1-1, 8-5, 7-4 and 16-9;
  ``crop_to_diff_ratio.py`` makes any other ratio in [1:1, 16:9) (lines 27-53). The squash to
  224x224 then hides any aspect difference between image and clip, so the ratio is recorded,
  not enforced (:func:`ratio_details`).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from anibench.errors import InputError, NotApplicable
from anibench.models.vbench_consistency import frames_as_vbench_tensor, i2v_subject_score

SIZE = 224  # dreamsim_transform(224), i2v_background.py:28-29
# VBench-I2V's published crops (vbench2_beta_i2v/README.md §2.4) and the range crop_to_diff_ratio.py makes.
PUBLISHED_CROPS = {"1-1": (1, 1), "8-5": (8, 5), "7-4": (7, 4), "16-9": (16, 9)}
CROPPABLE = (1.0, 1.7778)  # crop_to_diff_ratio.py:30: assert 1.0 <= ratio_w/ratio_h < 1.7778
# How close two aspects must be to count as the same ratio (an 848x480 clip is 1.7667, 16:9 is 1.7778).
SAME_ASPECT = 0.01


def frame_pixels(frames: np.ndarray | torch.Tensor, device: str | torch.device = "cpu", size: int = SIZE) -> torch.Tensor:
    """``dreamsim_transform(224)`` on decoded (N, H, W, 3) uint8 frames: (N, 3, 224, 224) float32, [0, 1] ± overshoot."""
    images = frames_as_vbench_tensor(frames, device)
    if tuple(images.shape[-2:]) != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return images.div(255.0)


def image_pixels(image: np.ndarray, device: str | torch.device = "cpu", size: int = SIZE) -> torch.Tensor:
    """``dreamsim_transform_Image(224)`` on the (H, W, 3) uint8 RGB conditioning image: (1, 3, 224, 224)."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise InputError(f"conditioning image must be (H, W, 3) uint8 RGB, got {array.shape} {array.dtype}")
    picture = Image.fromarray(np.ascontiguousarray(array))
    if picture.size != (size, size):
        picture = picture.resize((size, size), Image.Resampling.BICUBIC)
    tensor = torch.from_numpy(np.array(picture, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    return tensor.to(device=device, dtype=torch.float32).div(255.0).unsqueeze(0)


def i2v_background_score(image_embedding: torch.Tensor, frame_embeddings: torch.Tensor) -> float:
    """``0.4·max_t s(img, f_t) + 0.3·mean_t s(f_{t-1}, f_t) + 0.3·min_t s(f_{t-1}, f_t)``, ``s`` = clamped cosine.

    ``image_embedding`` is (D,) or (1, D), ``frame_embeddings`` (T, D) in frame order (i2v_background.py:44-61).
    """
    if frame_embeddings.ndim != 2 or frame_embeddings.shape[0] < 2:
        count = frame_embeddings.shape[0] if frame_embeddings.ndim else 0
        raise NotApplicable(f"i2v_background needs at least 2 frames (consecutive pairs), got {count}")
    return i2v_subject_score(image_embedding, frame_embeddings)


def mean_over_videos(values: list[float]) -> float:
    """The dimension's aggregate: ``np.mean`` of the per-video values (i2v_background.py:65)."""
    if not values:
        raise ValueError("no video to aggregate")
    return float(np.mean(values))


def _ratio_name(width: int, height: int) -> str:
    ratio = Fraction(width, height)
    return f"{ratio.numerator}-{ratio.denominator}"


def nearest_published_crop(width: int, height: int) -> tuple[str, float]:
    """The published VBench-I2V crop closest in aspect to ``width`` x ``height`` and the relative difference."""
    aspect = width / height
    name, (w, h) = min(PUBLISHED_CROPS.items(), key=lambda item: abs(aspect / (item[1][0] / item[1][1]) - 1))
    return name, abs(aspect / (w / h) - 1)


def ratio_details(image_size: tuple[int, int], frame_size: tuple[int, int]) -> dict[str, Any]:
    """What the scorer records about the conditioning image's crop and the clip's ratio.

    Sizes are (width, height). ``image_ratio``/``frame_ratio``: the reduced ratios (VBench's
    ``W-H`` folder names); ``vbench_crop``: the published crop folder the image's aspect matches
    (within 1 %) or None; ``croppable``: whether ``crop_to_diff_ratio.py`` can make that ratio;
    ``aspect_matches``: image and clip aspects within 1 %.
    """
    (image_w, image_h), (frame_w, frame_h) = image_size, frame_size
    crop, crop_difference = nearest_published_crop(image_w, image_h)
    image_aspect, frame_aspect = image_w / image_h, frame_w / frame_h
    return {
        "image_size": [image_w, image_h],
        "frame_size": [frame_w, frame_h],
        "image_ratio": _ratio_name(image_w, image_h),
        "frame_ratio": _ratio_name(frame_w, frame_h),
        "vbench_crop": crop if crop_difference <= SAME_ASPECT else None,
        "croppable": CROPPABLE[0] <= image_aspect < CROPPABLE[1],
        "aspect_matches": abs(image_aspect / frame_aspect - 1) <= SAME_ASPECT,
    }
