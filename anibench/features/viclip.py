"""The ViCLIP model family and the features VBench's overall consistency reads from it.

Family (loaded once per process through the runtime; weights from the manifest entry
``viclip_internvid_10m_flt``, converted by :func:`anibench.models.viclip.convert_published`):

* ``viclip_l14`` — ViCLIP ViT-L/14 trained on InternVid-10M-FLT (:mod:`anibench.models.viclip`).
  It runs two kinds of inputs, batched separately: 8-frame videos → video embeddings, and token
  rows → text embeddings.

Features:

* ``vbench.viclip_video`` — the video embedding of the 8 frames at the middles of 8 equal
  segments (:func:`~anibench.models.viclip.segment_middle_indices`), each preprocessed in the
  decoding thread with ``clip_transform(224)`` on uint8 frames
  (:func:`~anibench.models.viclip.overall_consistency_pixels`). Only those frames are decoded
  for it; a clip shorter than 8 frames repeats its last frame, as VBench does.
* ``vbench.viclip_text`` — the text embedding of a prompt (parameter ``prompt``), tokenised as
  ViCLIP does (32 tokens). Reads no frames.

Values are float32 vectors (not normalised), persisted in the run store keyed by the clip's
sha256 and the spec's digest (family version, weights' sha256, precision; the prompt is a
parameter of the text feature).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from anibench.features.base import Deferred, FrameFeature, ModelFamily

VIDEO, TEXT = "video", "text"


@dataclass(frozen=True)
class ViClipInput:
    """One input of the family: ``kind`` is ``video`` ((8, 3, 224, 224) pixels) or ``text`` (token ids)."""

    kind: str
    tensor: Any


class ViClipL14(ModelFamily):
    """ViCLIP ViT-L/14, InternVid-10M-FLT (VBench's overall consistency)."""

    name = "viclip_l14"
    version = "1"
    weights = ("viclip_internvid_10m_flt",)
    entry = "viclip_internvid_10m_flt"

    def load(self) -> None:
        from anibench.models.viclip import load_viclip

        resolved = self.runtime.resolve_weights(self.entry)
        self._sha256 = resolved.sha256
        self.model = load_viclip(resolved.path, self.runtime.torch_device, self.runtime.torch_dtype)

    def weight_digests(self) -> dict[str, str]:
        return {self.entry: self._sha256}

    def release(self) -> None:
        self.model = None

    def forward(self, batch: Sequence[ViClipInput]) -> list[np.ndarray]:
        import torch

        from anibench.models.viclip import text_embeddings, video_embeddings

        kinds = {item.kind for item in batch}
        if kinds == {VIDEO}:
            rows = video_embeddings(self.model, torch.stack([item.tensor for item in batch]))
        elif kinds == {TEXT}:
            rows = text_embeddings(self.model, torch.stack([item.tensor for item in batch]))
        else:
            raise ValueError(f"one batch of the ViCLIP family must hold one kind of input, got {sorted(kinds)}")
        return list(rows.float().cpu().numpy())


def _single_row(rows: list[np.ndarray]) -> np.ndarray:
    return np.asarray(rows[0], dtype=np.float32)


class ViClipVideo(FrameFeature):
    """``vbench.viclip_video``: ViCLIP's embedding of the 8 segment-middle frames (VBench's ``sample='middle'``)."""

    name = "vbench.viclip_video"
    family = "viclip_l14"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        from anibench.models.viclip import segment_middle_indices

        self.indices = segment_middle_indices(clip.info.num_frames)
        self.wanted = np.unique(np.asarray(self.indices, dtype=np.int64))
        self._pixels: dict[int, Any] = {}
        self.deferred = Deferred(_single_row)

    def step(self, t: int) -> None:
        from anibench.models.viclip import overall_consistency_pixels

        self._pixels[t] = overall_consistency_pixels(self.clip.frame(t)[None])[0]

    def finish(self) -> Deferred:
        import torch

        video = torch.stack([self._pixels[t] for t in self.indices])
        self._pixels.clear()
        self.clip.family(self.family).submit(ViClipInput(VIDEO, video), self.deferred, (VIDEO, tuple(video.shape)))
        return self.deferred.seal()


class ViClipText(FrameFeature):
    """``vbench.viclip_text``: ViCLIP's embedding of the prompt ``prompt`` (32 tokens). Reads no frames."""

    name = "vbench.viclip_text"
    family = "viclip_l14"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        import torch

        from anibench.models.viclip import tokenize

        self.wanted = np.array([], dtype=np.int64)
        tokens = torch.tensor(tokenize(str(spec.get("prompt", ""))).ids, dtype=torch.long)
        self.deferred = Deferred(_single_row)
        clip.family(self.family).submit(ViClipInput(TEXT, tokens), self.deferred, (TEXT, tuple(tokens.shape)))

    def step(self, t: int) -> None:
        """Reads no frames."""

    def finish(self) -> Deferred:
        return self.deferred.seal()
