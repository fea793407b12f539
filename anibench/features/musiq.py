"""MUSIQ-SPAQ: the model family and frame feature of VBench's imaging quality.

* Family ``musiq_spaq`` — pyiqa's MUSIQ trained on SPAQ (:mod:`anibench.models.musiq`), weights
  entry ``musiq_spaq`` (``musiq_spaq_ckpt-358bb6af.pth``, converted by
  :func:`anibench.models.musiq.convert_published`), loaded once per process.
* Feature ``vbench.musiq_frames`` — MUSIQ's score of every frame, as VBench's
  ``technical_quality`` computes it (vbench/imaging_quality.py:39-56 at 45e79ec): each decoded
  frame is resized by VBench's ``'longer'`` rule (long side above 512 -> 512, bilinear, no
  antialias, on float32 0-255) and scaled to [0, 1] (:func:`~anibench.models.musiq.vbench_frame`),
  then cut into MUSIQ's multi-scale patch rows (:func:`~anibench.models.musiq.multiscale_patches`)
  in the decoding threads; the family runs the network on batches of frames of equal sequence
  length, across clips. Value: (T,) float32 scores in frame order (SPAQ's MOS scale, 0-100).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from anibench.features.base import Deferred, FrameFeature, ModelFamily


# Frames per forward pass on a CPU. One 480p frame is already ~350 tokens (and ~5,600 patches through
# the ResNet root for 16 frames: activations of ~370 MB each), so batching only adds memory traffic:
# measured on 2 cores, 49-frame 848x480 clip, 0.5 s/frame at batch 1 against 1.0 s/frame at batch 16.
CPU_BATCH_SIZE = 1


class MusiqSpaq(ModelFamily):
    """pyiqa's MUSIQ with the SPAQ checkpoint (VBench's imaging quality).

    Batches frames of equal sequence length on accelerators (the runtime's batch size); one
    frame per pass on a CPU (:data:`CPU_BATCH_SIZE`). Batching never changes a frame's score
    beyond float rounding: every frame is its own sequence.
    """

    name = "musiq_spaq"
    weights = ("musiq_spaq",)
    entry = "musiq_spaq"

    def load(self) -> None:
        from anibench.models.musiq import load_musiq

        if self.runtime.torch_device.type == "cpu":
            self.batch_size = min(self.batch_size, CPU_BATCH_SIZE)
        resolved = self.runtime.resolve_weights(self.entry)
        self._sha256 = resolved.sha256
        self.model = load_musiq(Path(resolved.path), self.runtime.torch_device, self.runtime.torch_dtype)

    def weight_digests(self) -> dict[str, str]:
        return {self.entry: self._sha256}

    def release(self) -> None:
        self.model = None

    def forward(self, batch: Sequence[Any]) -> list[float]:
        import torch

        from anibench.models.musiq import musiq_scores

        return [float(score) for score in musiq_scores(self.model, torch.stack(list(batch))).cpu()]


def _scores(parts: list[float]) -> np.ndarray:
    return np.asarray(parts, dtype=np.float32)


class MusiqFrames(FrameFeature):
    """``vbench.musiq_frames``: MUSIQ-SPAQ's score of every frame after VBench's ``'longer'`` resize."""

    name = "vbench.musiq_frames"
    family = "musiq_spaq"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.deferred = Deferred(_scores)

    def step(self, t: int) -> None:
        from anibench.models.musiq import multiscale_patches, vbench_frame

        rows = multiscale_patches(vbench_frame(self.clip.frame(t)))
        self.clip.family(self.family).submit(rows, self.deferred, tuple(rows.shape))

    def finish(self) -> Deferred:
        return self.deferred.seal()
