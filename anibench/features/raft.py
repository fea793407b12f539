"""RAFT optical flow as a model family, and the per-pair motion VBench's dynamic degree reads from it.

* family ``raft_things`` — torchvision's ``raft_large`` with the published ``raft-things.pth``
  converted (:mod:`anibench.models.raft`), float32, 20 flow updates, loaded once per process;
* feature ``vbench.raft_peaks`` — for every pair of consecutive *sampled* frames (every
  ``max(1, round(fps / 8))``-th frame from frame 0), VBench's pair motion: the mean of the top 5 %
  flow magnitudes over the frames padded to multiples of 8 (``vbench/dynamic_degree.py`` 45e79ec,
  ``get_frames`` L96-113, ``infer`` L64-81, ``get_score`` L42-56). Value: float64 array, one entry
  per pair, in frame order; persisted in the run store.

Not the weight-free ``flow.peaks`` feature (OpenCV DIS flow at a working size) behind the
``dynamic_degree`` scorer: that one approximates VBench without weights; this one is VBench's RAFT.

Frames go to the family as uint8 pairs and are batched across clips by padded size; a batch
holds at most :data:`MAX_PAIRS_PER_BATCH` pairs (a 480p pair's correlation volume is ~160 MB).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from anibench.features.base import Deferred, FrameFeature, ModelFamily
from anibench.features.sampling import FrameSampling

# VBench dynamic_degree.py L100: interval = max(1, round(fps / 8)).
TARGET_FPS = 8
MAX_PAIRS_PER_BATCH = 4


def raft_sampling(target_fps: float = TARGET_FPS) -> FrameSampling:
    """VBench's frame sampling for dynamic degree: every ``max(1, round(fps / 8))``-th frame from frame 0."""
    return FrameSampling("fps_stride", target_fps=target_fps)


class RaftThings(ModelFamily):
    """RAFT-large with ``raft-things.pth`` (VBench's dynamic degree); inputs are (first, second) uint8 RGB pairs."""

    name = "raft_things"
    weights = ("raft_things",)
    entry = "raft_things"

    def load(self) -> None:
        from anibench.models.raft import load_raft

        resolved = self.runtime.resolve_weights(self.entry)
        self._sha256 = resolved.sha256
        self.model = load_raft(Path(resolved.path), self.runtime.torch_device)
        self.batch_size = max(1, min(self.batch_size, MAX_PAIRS_PER_BATCH))

    def forward(self, batch: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[float]:
        import torch

        from anibench.models.raft import flow, peak_magnitude

        first = torch.from_numpy(np.stack([pair[0] for pair in batch])).permute(0, 3, 1, 2)
        second = torch.from_numpy(np.stack([pair[1] for pair in batch])).permute(0, 3, 1, 2)
        flows = flow(self.model, first, second).cpu().numpy()
        return [peak_magnitude(field) for field in flows]

    def weight_digests(self) -> dict[str, str]:
        return {self.entry: self._sha256}

    def release(self) -> None:
        self.model = None


def _peaks(parts: list[float]) -> np.ndarray:
    return np.asarray(parts, dtype=np.float64)


class RaftPairPeaks(FrameFeature):
    """``vbench.raft_peaks``: VBench's per-pair motion (top-5 % mean RAFT flow magnitude, padded frames).

    Parameters: ``target_fps`` (8, VBench's). Frames smaller than RAFT can take (under 128 px
    a side once padded to multiples of 8) are refused with an :class:`~anibench.errors.InputError`.
    """

    name = "vbench.raft_peaks"
    family = "raft_things"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        from anibench.models.raft import check_frame_size

        info = clip.info
        check_frame_size(info.height, info.width)
        sampling = raft_sampling(float(spec.get("target_fps", TARGET_FPS)))
        self.stride = sampling.stride(info.fps)
        self.wanted = sampling.indices(info.num_frames, info.fps)
        self.lookback = self.stride
        self.deferred = Deferred(_peaks)

    def step(self, t: int) -> None:
        if t == self.wanted[0]:
            return
        pair = (self.clip.frame(t - self.stride), self.clip.frame(t))
        self.clip.family(self.family).submit(pair, self.deferred, pair[0].shape)

    def finish(self) -> Any:
        return self.deferred.seal()
