"""The ActionCLIP model family (AnimeReward's visual motion) and the features its scorer reads.

Family (loaded once per process through the runtime; weights from the manifest entry
``anime_reward_actionclip``, converted by :func:`anibench.models.actionclip.convert_published`):

* ``actionclip_vit_b16`` — CLIP ViT-B/16 + temporal adapter (:mod:`anibench.models.actionclip`). It runs
  8-frame videos in batches spanning clips. The text embeddings of the two motion prompts are constant: they
  are computed once when the family loads (:attr:`ActionClipViTB16.text`), never per clip.

Features:

* ``anime_reward.actionclip_video`` — the adapter's video embedding (D,) of the 8 motion frames: the published
  24-frame sampling (:data:`anibench.features.anime_reward_inputs.SAMPLING`, 24 of the first 144, the container's
  declared frame count), then ``linspace(0, n - 1, 8).long()`` positions among them
  (:func:`~anibench.features.anime_reward_inputs.motion_positions`); only those 8 frames are decoded for it. Each
  is squashed to 224 x 224 (bicubic, no crop) and CLIP-normalised in the decoding thread; the squashed frame is
  memoised in the clip context (:func:`~anibench.features.anime_reward_inputs.squashed_frame`) so another AnimeReward head reading the same frame at
  224 px reuses it.
* ``anime_reward.actionclip_text`` — the (2, D) text embeddings of the two motion prompts (the family's
  constant). Reads no frames.

Values are float32 arrays (not normalised), persisted in the run store keyed by the clip's sha256 and the
spec's digest (family version, weights' sha256, precision).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from anibench.features.anime_reward_inputs import squashed_frame
from anibench.features.base import Deferred, FrameFeature, ModelFamily

def motion_frame_indices(num_frames: int, fps: float) -> tuple[list[int], list[int]]:
    """(the 24 sampled frame indices, the 8 clip frame indices the motion head reads among them)."""
    from anibench.features.anime_reward_inputs import SAMPLING, motion_positions

    sampled = [int(i) for i in SAMPLING.indices(num_frames, fps)]
    return sampled, [sampled[p] for p in motion_positions(len(sampled))]


class ActionClipViTB16(ModelFamily):
    """AnimeReward's ActionCLIP: CLIP ViT-B/16 + temporal transformer adapter."""

    name = "actionclip_vit_b16"
    version = "1"
    weights = ("anime_reward_actionclip",)
    entry = "anime_reward_actionclip"

    def load(self) -> None:
        from anibench.models.actionclip import load_actionclip, text_embeddings

        resolved = self.runtime.resolve_weights(self.entry)
        self._sha256 = resolved.sha256
        self.model = load_actionclip(resolved.path, self.runtime.torch_device, self.runtime.torch_dtype)
        self.text = text_embeddings(self.model).float().cpu().numpy()  # (2, D), once per load

    def weight_digests(self) -> dict[str, str]:
        return {self.entry: self._sha256}

    def release(self) -> None:
        self.model = None

    def forward(self, batch: Sequence[Any]) -> list[np.ndarray]:
        import torch

        from anibench.models.actionclip import video_embeddings

        rows = video_embeddings(self.model, torch.stack(list(batch)))
        return list(rows.float().cpu().numpy())


def _single_row(rows: list[np.ndarray]) -> np.ndarray:
    return np.asarray(rows[0], dtype=np.float32)


class ActionClipVideo(FrameFeature):
    """``anime_reward.actionclip_video``: the ActionCLIP video embedding of the 8 motion frames."""

    name = "anime_reward.actionclip_video"
    family = "actionclip_vit_b16"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        _, self.indices = motion_frame_indices(clip.info.num_frames, clip.info.fps)
        self.wanted = np.unique(np.asarray(self.indices, dtype=np.int64))
        self._pixels: dict[int, np.ndarray] = {}
        self.deferred = Deferred(_single_row)

    def step(self, t: int) -> None:
        self._pixels[t] = squashed_frame(self.clip, t)

    def finish(self) -> Deferred:
        import torch

        video = torch.from_numpy(np.stack([self._pixels[t] for t in self.indices]))
        self._pixels.clear()
        self.clip.family(self.family).submit(video, self.deferred, tuple(video.shape))
        return self.deferred.seal()


class ActionClipText(FrameFeature):
    """``anime_reward.actionclip_text``: the (2, D) embeddings of the two motion prompts. Reads no frames."""

    name = "anime_reward.actionclip_text"
    family = "actionclip_vit_b16"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.wanted = np.array([], dtype=np.int64)
        self.value = np.array(clip.family(self.family).text, dtype=np.float32, copy=True)

    def step(self, t: int) -> None:
        """Reads no frames."""

    def finish(self) -> np.ndarray:
        return self.value
