"""AMT-S frame interpolation: the model family and the feature VBench's motion smoothness reads.

* Family ``amt_s`` — AMT-S (:mod:`anibench.models.amt`), weights entry ``amt_s`` (the published
  ``amt-s.pth``, converted to safetensors by ``anibench.models.amt:convert_published``).
* Feature ``vbench.amt_errors`` — for each odd frame ``2k+1`` between two kept even frames:
  ``mean |frame_{2k+1} − AMT-S(frame_{2k}, frame_{2k+2})|`` over pixels and channels, on uint8
  frames as VBench compares them (``vbench/motion_smoothness.py`` L111-167 at 45e79ec). Value:
  float64 array, one error per interpolated frame in order.

The feature streams the clip with a look-back of two frames (never the whole clip in memory,
unlike VBench, which decodes every frame first); each triple (frame before, frame after, frame
between) goes to the family's batcher, which runs pairs of equal size together across clips.
Batching does not change values: every step of AMT-S is per sample. The network runs in float32 on
every device, whatever the runtime's precision (VBench never casts it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from anibench.errors import NotApplicable
from anibench.features.base import Deferred, FrameFeature, ModelFamily

# Correlation volume elements per forward pass (float32: 512 MiB, plus the pooled levels and the
# transposed copy). One 848x480 pair is (106·60)² = 40 M elements, so three pairs run together.
CORRELATION_BUDGET = 2**27


def interpolated_frames(num_frames: int) -> list[int]:
    """The odd frames VBench scores: ``1, 3, …`` up to the last one with an even frame after it.

    VBench keeps frames ``0, 2, 4, …``, interpolates one frame between each consecutive pair and
    compares the ``k``-th interpolated frame with original frame ``2k+1`` for every interpolated
    frame (motion_smoothness.py L63-67, L156-162): with an even frame count the last frame is unused.
    """
    return list(range(1, num_frames - 1, 2))


class AmtS(ModelFamily):
    """AMT-S (VBench's motion smoothness). Inputs: (before, after, middle, geometry); outputs: one error each."""

    name = "amt_s"
    version = "1"
    weights = ("amt_s",)
    entry = "amt_s"

    def load(self) -> None:
        import torch

        from anibench.models.amt import load_amt

        resolved = self.runtime.resolve_weights(self.entry)
        self._sha256 = resolved.sha256
        # float32 on every device, as VBench runs it (it never casts AMT-S): a 3 M-parameter network whose
        # flows and uint8 truncation are sensitive to precision, cheap enough not to need bf16.
        self.dtype = torch.float32
        self.model = load_amt(Path(resolved.path), self.runtime.torch_device, self.dtype)

    def weight_digests(self) -> dict[str, str]:
        return {self.entry: self._sha256}

    def release(self) -> None:
        self.model = None

    def forward(self, batch: Sequence[Any]) -> list[float]:
        from anibench.models.amt import interpolation_errors

        geometry = batch[0][3]
        height, width = geometry.network_size
        per_pass = max(1, CORRELATION_BUDGET // ((height // 8) * (width // 8)) ** 2)
        errors: list[float] = []
        for start in range(0, len(batch), per_pass):
            chunk = batch[start : start + per_pass]
            before, after, middle = (np.stack([item[i] for item in chunk]) for i in range(3))
            errors += interpolation_errors(self.model, before, after, middle, geometry,
                                           self.runtime.torch_device, self.dtype)
        return errors


def _as_array(errors: list[float]) -> np.ndarray:
    return np.asarray(errors, dtype=np.float64)


class AmtErrors(FrameFeature):
    """``vbench.amt_errors``: AMT-S interpolation error of every odd frame VBench scores (see module doc).

    Parameter ``vram_bytes``: None (VBench's CPU rule, no downscale) or a GPU's total memory, to
    reproduce VBench's downscaling on that GPU (:func:`anibench.models.amt.vbench_scale`).
    """

    name = "vbench.amt_errors"
    version = "1"
    family = "amt_s"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        from anibench.models.amt import vbench_geometry

        self.odd = interpolated_frames(clip.info.num_frames)
        if not self.odd:
            raise NotApplicable(f"VBench's motion smoothness needs at least 3 frames (it interpolates the frame "
                                f"between frames 0 and 2); the clip has {clip.info.num_frames}")
        self.geometry = vbench_geometry(clip.info.height, clip.info.width, spec.get("vram_bytes"))
        self.geometry.check()
        self.wanted = np.arange(0, self.odd[-1] + 2)
        self.lookback = 2
        self.deferred = Deferred(_as_array)

    def step(self, t: int) -> None:
        if t % 2 or t == 0:
            return
        item = (self.clip.frame(t - 2), self.clip.frame(t), self.clip.frame(t - 1), self.geometry)
        self.clip.family(self.family).submit(item, self.deferred, ("amt", self.geometry))

    def finish(self) -> Deferred:
        return self.deferred.seal()
