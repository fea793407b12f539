"""The CoTracker2 model family and the point tracks VBench-I2V's camera motion reads.

Family ``cotracker2`` — CoTracker2 (:mod:`anibench.models.cotracker`) from the ``cotracker2``
weights entry, loaded once per process, always run in float32 (as VBench runs it; the
family's digest says so whatever ``--dtype`` asks). A clip is tracked as one item: the
family's batch size is 1, so a clip is tracked as soon as its last frame is decoded, in the
decoding worker, while the next clip decodes.

Feature ``vbench.cotracker_grid_tracks`` (``grid_size``, VBench: 10) — every frame, resized
as it is decoded to the model resolution (384x512, bilinear, ``align_corners=True``, on the
0-255 float values as VBench's predictor does), then the tracks of a ``grid_size``² first-frame
grid: a (T, grid_size², 2) float32 array of (x, y) in the clip's pixels, frame 0 holding the
query points. Persisted in the run store (keyed by the clip's sha256, the weights' sha256 and
the grid size). Memory: the resized frames (2.4 MB each at 384x512, never the decoded ones) and
the feature maps of one tracker window (8 x 6.3 MB) — VBench holds the decoded clip as float,
its resized and padded copies and the maps of every frame at once.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from anibench.features.base import Deferred, FrameFeature, ModelFamily

# vbench2_beta_i2v/camera_motion.py (45e79ec) line 38: CameraPredict.grid_size.
VBENCH_GRID_SIZE = 10


class CoTracker2Family(ModelFamily):
    """CoTracker2 (VBench-I2V's camera motion: torch.hub ``facebookresearch/co-tracker`` ``cotracker2``)."""

    name = "cotracker2"
    version = "1"
    weights = ("cotracker2",)
    entry = "cotracker2"

    def load(self) -> None:
        from anibench.models.cotracker import load_cotracker2

        resolved = self.runtime.resolve_weights(self.entry)
        self._sha256 = resolved.sha256
        self.model = load_cotracker2(resolved.path, self.runtime.torch_device)
        self.batch_size = 1  # one item is a whole clip

    @property
    def model_resolution(self) -> tuple[int, int]:
        return tuple(self.model.config.model_resolution)

    def digest(self) -> dict[str, Any]:
        return {**super().digest(), "precision": "fp32"}

    def weight_digests(self) -> dict[str, str]:
        return {self.entry: self._sha256}

    def forward(self, batch: Sequence[Any]) -> list[np.ndarray]:
        from anibench.models.cotracker import track_grid

        outputs = []
        for resized, grid_size, height, width in batch:
            tracks = track_grid(self.model, resized.to(self.runtime.torch_device), grid_size, height, width)
            outputs.append(tracks.cpu().numpy().astype(np.float32))
        return outputs

    def release(self) -> None:
        self.model = None


class CoTrackerGridTracks(FrameFeature):
    """``vbench.cotracker_grid_tracks``: CoTracker2 tracks of a first-frame grid, (T, grid_size², 2) float32."""

    name = "vbench.cotracker_grid_tracks"
    version = "1"
    family = "cotracker2"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.grid_size = int(spec.get("grid_size", VBENCH_GRID_SIZE))
        self.resolution = clip.family(self.family).model_resolution
        self.resized: list = []
        self.deferred = Deferred(lambda parts: parts[0])

    def step(self, t: int) -> None:
        import torch

        from anibench.models.cotracker import resize_frames

        frame = torch.from_numpy(np.ascontiguousarray(self.clip.frame(t))).permute(2, 0, 1)[None].float()
        self.resized.append(resize_frames(frame, self.resolution)[0])

    def finish(self) -> Deferred:
        import torch

        video = torch.stack(self.resized)
        self.resized = []
        info = self.clip.info
        self.clip.family(self.family).submit((video, self.grid_size, info.height, info.width), self.deferred)
        return self.deferred.seal()
