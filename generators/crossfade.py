"""The ``crossfade`` baseline: linear blends between guide keyframes."""

from __future__ import annotations

import numpy as np

from anibench.generation import GenerationRequest, Generator
from anibench.video import Video


class CrossfadeGenerator(Generator):
    """Places every guide at its frame index and blends linearly in between.

    Frame t between keyframes at ``i < t < j`` is ``(1 - a) * K_i + a * K_j`` with
    ``a = (t - i) / (j - i)``; frames before the first keyframe and after the last hold
    it. With a single guide (i2v) this is the ``static`` baseline. It hits every
    keyframe exactly but moves nothing: a dissolve, not motion.
    """

    name = "crossfade"
    version = "1"
    requires_prompt = False

    def generate(self, request: GenerationRequest) -> Video:
        keys = sorted({g.frame_index: g.image for g in request.guides}.items())
        indices = np.array([i for i, _ in keys])
        images = np.stack([img for _, img in keys]).astype(np.float32)
        frames = np.empty((request.num_frames, request.height, request.width, 3), np.uint8)
        for t in range(request.num_frames):
            j = int(np.searchsorted(indices, t))
            if j == 0:
                frames[t] = images[0]
            elif j == len(indices):
                frames[t] = images[-1]
            elif indices[j] == t:
                frames[t] = images[j]
            else:
                a = (t - indices[j - 1]) / (indices[j] - indices[j - 1])
                frames[t] = np.clip(np.rint((1 - a) * images[j - 1] + a * images[j]), 0, 255)
        return Video(frames, request.fps)
