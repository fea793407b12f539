"""The DreamSim ensemble as a model family, and the features VBench-I2V background reads from it.

Family ``dreamsim_ensemble`` (:mod:`anibench.models.dreamsim`): DINO ViT-B/16 + CLIP ViT-B/16 +
OpenCLIP ViT-B/16 with DreamSim's LoRA merged, loaded once per process from two manifest entries:
``dino_vitb16`` (DINO's published backbone, which DreamSim's DINO branch starts from — the same file
VBench's subject consistency uses) and ``dreamsim_ensemble`` (the DreamSim archive: CLIP towers and
LoRA). Its output per input is DreamSim's ``embed`` (1792 floats, centred, unit norm).

Features (preprocessed as VBench-I2V does, :mod:`anibench.models.vbench_i2v_background`, in the
decoding threads; the family batches frames and images across clips, all 3x224x224):

* ``vbench.dreamsim_frames`` — the embedding of every frame (``dreamsim_transform(224)``: squashed).
* ``vbench.dreamsim_image`` — the embedding of the conditioning image (``dreamsim_transform_Image(224)``).

Values are float32 (rows in frame order); frame rows are persisted in the run store.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anibench.features.backbones import conditioning_image
from anibench.features.base import Deferred, FrameFeature, ModelFamily


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


class DreamSimEnsembleFamily(ModelFamily):
    """DreamSim's ensemble (VBench-I2V background): DINO + CLIP + OpenCLIP ViT-B/16 with LoRA."""

    name = "dreamsim_ensemble"
    weights = ("dino_vitb16", "dreamsim_ensemble")

    def load(self) -> None:
        from transformers.utils import logging as transformers_logging

        from anibench.models.dreamsim import load_ensemble

        transformers_logging.disable_progress_bar()
        dino = self.runtime.resolve_weights("dino_vitb16")
        ensemble = self.runtime.resolve_weights("dreamsim_ensemble")
        self._digests = {"dino_vitb16": dino.sha256, "dreamsim_ensemble": ensemble.sha256}
        self.model = load_ensemble(ensemble.path, dino.path, self.runtime.torch_device, self.runtime.torch_dtype)

    def weight_digests(self) -> dict[str, str]:
        return dict(self._digests)

    def forward(self, batch):
        import torch

        from anibench.models.dreamsim import embed

        rows = embed(self.model, torch.stack(batch))
        return list(rows.float().cpu().numpy())

    def release(self) -> None:
        self.model = None


class DreamSimFrames(FrameFeature):
    """``vbench.dreamsim_frames``: DreamSim embeddings of every frame, squashed to 224x224; value (T, 1792)."""

    name = "vbench.dreamsim_frames"
    family = "dreamsim_ensemble"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.deferred = Deferred(_stack)

    def step(self, t: int) -> None:
        from anibench.models.vbench_i2v_background import frame_pixels

        pixels = frame_pixels(self.clip.frame(t)[None])[0]
        self.clip.family(self.family).submit(pixels, self.deferred, tuple(pixels.shape))

    def finish(self) -> Deferred:
        return self.deferred.seal()


class DreamSimImage(FrameFeature):
    """``vbench.dreamsim_image``: the DreamSim embedding of the conditioning image; value (1, 1792).

    The image is the clip's first guide (its original file when it came from one). Reads no frames.
    """

    name = "vbench.dreamsim_image"
    family = "dreamsim_ensemble"
    persist = False

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        from anibench.models.vbench_i2v_background import image_pixels

        self.wanted = np.array([], dtype=np.int64)
        pixels = image_pixels(conditioning_image(clip.sample))[0]
        self.deferred = Deferred(_stack)
        clip.family(self.family).submit(pixels, self.deferred, tuple(pixels.shape))

    def step(self, t: int) -> None:
        """Reads no frames."""

    def finish(self) -> Any:
        return self.deferred.seal()
