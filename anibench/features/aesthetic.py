"""The CLIP ViT-L/14 + LAION aesthetic family and the per-frame aesthetic scores VBench averages.

Family ``clip_vit_l14_aesthetic`` (loaded once per process through the runtime; weights from the
manifest): OpenAI CLIP ViT-L/14's image tower (entry ``clip_vit_l14``, converted to transformers by
:func:`anibench.models.clip.convert_openai_vit_l14`) and the LAION aesthetic head (entry
``laion_aesthetic_vit_l14``, :func:`anibench.models.aesthetic.load_laion_head`). One forward pass
takes a batch of preprocessed frames to their raw LAION scores, as VBench does per batch
(``vbench/aesthetic_quality.py`` at 45e79ec, :53-63): ``encode_image`` → float32 → L2 norm → head.

Feature ``vbench.laion_aesthetic_frames``: every frame's raw LAION score (float32, frame order),
frames preprocessed with ``clip_transform(224)`` in the decoding threads; batches span clips.

Why the head sits in the family rather than a separate embedding feature: the runtime gives a
feature one family, and VBench applies the head to every batch it embeds, so one family holding
both networks keeps one model pass per frame and persists 1 float per frame instead of 768. No
other VBench-I2V dimension reads OpenAI CLIP ViT-L/14 embeddings (overall consistency runs ViCLIP's
own ViT-L/14 weights; I2V background runs DreamSim). A scorer needing the raw ViT-L/14 embeddings
would add a feature on a ``clip_vit_l14`` family with :func:`anibench.models.clip.image_embeds`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anibench.features.base import Deferred, FrameFeature, ModelFamily

CLIP_ENTRY = "clip_vit_l14"
HEAD_ENTRY = "laion_aesthetic_vit_l14"


class ClipViTL14Aesthetic(ModelFamily):
    """OpenAI CLIP ViT-L/14 image tower + LAION aesthetic head (VBench's aesthetic quality)."""

    name = "clip_vit_l14_aesthetic"
    weights = (CLIP_ENTRY, HEAD_ENTRY)

    def load(self) -> None:
        from transformers.utils import logging as transformers_logging

        from anibench.models.aesthetic import load_laion_head
        from anibench.models.clip import load_clip

        transformers_logging.disable_progress_bar()  # per-tensor loading bars would flood the run's output
        clip_weights = self.runtime.resolve_weights(CLIP_ENTRY)
        head_weights = self.runtime.resolve_weights(HEAD_ENTRY)
        self._sha256 = {CLIP_ENTRY: clip_weights.sha256, HEAD_ENTRY: head_weights.sha256}
        self.model = load_clip(Path(clip_weights.path), self.runtime.torch_device, self.runtime.torch_dtype,
                               weights_entry=CLIP_ENTRY)
        self.head = load_laion_head(Path(head_weights.path), self.runtime.torch_device)

    def weight_digests(self) -> dict[str, str]:
        return dict(self._sha256)

    def forward(self, batch):
        import torch

        from anibench.models.aesthetic import laion_scores
        from anibench.models.clip import image_embeds

        scores = laion_scores(self.head, image_embeds(self.model, torch.stack(batch)))
        return list(scores.float().cpu().numpy())

    def release(self) -> None:
        self.model = None
        self.head = None


def _scores(rows: list[Any]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).reshape(-1)


class LaionAestheticFrames(FrameFeature):
    """``vbench.laion_aesthetic_frames``: the raw LAION score of every frame (``clip_transform(224)``), (T,) float32."""

    name = "vbench.laion_aesthetic_frames"
    family = "clip_vit_l14_aesthetic"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.deferred = Deferred(_scores)

    def step(self, t: int) -> None:
        from anibench.models.aesthetic import aesthetic_pixels

        pixels = aesthetic_pixels(self.clip.frame(t)[None])[0]
        self.clip.family(self.family).submit(pixels, self.deferred, tuple(pixels.shape))

    def finish(self) -> Deferred:
        return self.deferred.seal()
