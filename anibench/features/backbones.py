"""Backbone model families and the features VBench's dimensions read from them.

Families (loaded once per process through the runtime; weights from the manifest):

* ``dino_vitb16`` — DINO ViT-B/16 (:mod:`anibench.models.dino`), CLS token after the final norm;
* ``clip_vit_b32`` — OpenAI CLIP ViT-B/32 image tower (:mod:`anibench.models.clip`), projected embedding.

Features (frames preprocessed exactly as VBench does, :mod:`anibench.models.vbench_consistency`,
in the decoding threads; the model runs on batches spanning clips):

* ``vbench.dino_frames`` — DINO features of every frame; ``transform`` ``subject``
  (``dino_transform(224)``: subject consistency) or ``i2v`` (``dino_transform_internet()``:
  I2V subject). The two transforms give different pixels, so they are two features of
  one family: one model load, one decoding pass, two sets of rows.
* ``vbench.dino_image`` — DINO features of the conditioning image (``dino_transform_Image_internet``).
* ``vbench.clip_frames`` — CLIP image embeddings of every frame (``clip_transform(224)``).

Values are float32 arrays (rows in frame order), persisted in the run store keyed by the
clip's sha256 and the spec's digest (family version, weights' sha256, precision).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, Callable

import numpy as np

from anibench.errors import NotApplicable
from anibench.features.base import Deferred, FrameFeature, ModelFamily
from anibench.images import load_image


class _TorchFamily(ModelFamily):
    """A transformers backbone from a converted folder (or hub id) resolved through the weights manifest."""

    entry: str

    def load(self) -> None:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # per-tensor loading bars would flood the run's output
        resolved = self.runtime.resolve_weights(self.entry)
        self._sha256 = resolved.sha256
        self.model = self.build(resolved.path)

    @abstractmethod
    def build(self, path: Path) -> Any:
        """The model from its converted folder, on the runtime's device and dtype, in eval mode."""

    def weight_digests(self) -> dict[str, str]:
        return {self.entry: self._sha256}

    def release(self) -> None:
        self.model = None


class DinoViTB16(_TorchFamily):
    """DINO ViT-B/16 (VBench's subject consistency and I2V subject)."""

    name = "dino_vitb16"
    weights = ("dino_vitb16",)
    entry = "dino_vitb16"

    def build(self, path: Path) -> Any:
        from anibench.models.dino import load_dino

        return load_dino(path, self.runtime.torch_device, self.runtime.torch_dtype)

    def forward(self, batch):
        import torch

        from anibench.models.dino import cls_features

        rows = cls_features(self.model, torch.stack(batch))
        return list(rows.float().cpu().numpy())


class ClipViTB32(_TorchFamily):
    """OpenAI CLIP ViT-B/32 image tower (VBench's background consistency)."""

    name = "clip_vit_b32"
    weights = ("clip_vit_b32",)
    entry = "clip_vit_b32"

    def build(self, path: Path) -> Any:
        from anibench.models.clip import load_clip

        return load_clip(path, self.runtime.torch_device, self.runtime.torch_dtype)

    def forward(self, batch):
        import torch

        from anibench.models.clip import image_embeds

        rows = image_embeds(self.model, torch.stack(batch))
        return list(rows.float().cpu().numpy())


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


class _FramesThroughFamily(FrameFeature):
    """Every frame, preprocessed by ``pixels`` and run through the family; value: (T, D) float32."""

    persist = True

    @abstractmethod
    def pixels(self, frame: np.ndarray) -> Any:
        """One frame preprocessed for the family's model: a (3, H, W) float tensor."""

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.deferred = Deferred(_stack)

    def step(self, t: int) -> None:
        pixels = self.pixels(self.clip.frame(t))
        self.clip.family(self.family).submit(pixels, self.deferred, tuple(pixels.shape))

    def finish(self) -> Deferred:
        return self.deferred.seal()


class DinoFrames(_FramesThroughFamily):
    """``vbench.dino_frames``: DINO ViT-B/16 features of every frame (``transform``: ``subject`` or ``i2v``)."""

    name = "vbench.dino_frames"
    family = "dino_vitb16"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        from anibench.models import vbench_consistency as vb

        transform = spec.get("transform", "subject")
        if transform == "subject":
            self._pixels: Callable = vb.subject_consistency_pixels
        elif transform == "i2v":
            antialias = bool(spec.get("antialias", True))
            self._pixels = lambda frames: vb.i2v_subject_frame_pixels(frames, antialias=antialias)
        else:
            raise ValueError(f"unknown DINO transform {transform!r}; use subject or i2v")

    def pixels(self, frame: np.ndarray) -> Any:
        return self._pixels(frame[None])[0]


class ClipFrames(_FramesThroughFamily):
    """``vbench.clip_frames``: CLIP ViT-B/32 image embeddings of every frame (``clip_transform(224)``)."""

    name = "vbench.clip_frames"
    family = "clip_vit_b32"

    def pixels(self, frame: np.ndarray) -> Any:
        from anibench.models.vbench_consistency import background_consistency_pixels

        return background_consistency_pixels(frame[None])[0]


class DinoImage(FrameFeature):
    """``vbench.dino_image``: DINO features of the conditioning image (its file, as VBench-I2V reads it).

    The image is the clip's first guide: its original file when it came from one (``image``
    parameter), else the guide frame itself. Reads no frames of the clip.
    """

    name = "vbench.dino_image"
    family = "dino_vitb16"
    persist = False

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        from anibench.models.vbench_consistency import i2v_subject_image_pixels

        self.wanted = np.array([], dtype=np.int64)
        image = conditioning_image(clip.sample)
        pixels = i2v_subject_image_pixels(image)[0]
        self.deferred = Deferred(_stack)
        clip.family(self.family).submit(pixels, self.deferred, tuple(pixels.shape))

    def step(self, t: int) -> None:
        """Reads no frames."""

    def finish(self) -> Deferred:
        return self.deferred.seal()


def conditioning_image(sample: Any) -> np.ndarray:
    """The image an I2V clip was conditioned on: the first guide's file, else its frame."""
    guide = _first_guide(sample)
    source = Path(guide.source) if guide.source else None
    if source is not None and source.is_file():
        return load_image(source)
    return guide.image


def _first_guide(sample: Any):
    guides = getattr(sample, "guides", ())
    first = [g for g in guides if g.position == 0.0]
    if not first:
        raise NotApplicable("I2V scores need a first-frame guide (the conditioning image)")
    return first[0]


def conditioning_image_record(sample: Any, image: np.ndarray) -> dict[str, Any]:
    """What an I2V score (subject, background) was computed against, for the clip's ``details``.

    VBench-I2V feeds each model an image pre-cropped to the model's aspect ratio
    (``vbench2_beta_i2v/crop_to_diff_ratio.py``: 1-1, 8-5, 7-4 or 16-9 crops of its image suite) and
    compares clips with that same crop. anibench compares a clip with the image its case gave the
    generator, uncropped, and records it: the image's source, sizes and reduced ratios of image and
    clip, the published crop the image's aspect matches and whether image and clip aspects agree
    within 1 % (:func:`anibench.models.vbench_i2v_background.ratio_details`); where they do not, VBench's
    protocol would have used another crop and the score is not comparable with VBench's table.
    """
    from anibench.models.vbench_i2v_background import ratio_details

    guide = _first_guide(sample)
    height, width = image.shape[:2]
    return {"image": str(guide.source) if guide.source else "guide frame",
            "crop": "none (the case's own image, as the generator received it)",
            **ratio_details((int(width), int(height)), (sample.info.width, sample.info.height))}
