"""The ``static`` baseline: a frozen first guide ("PPT animation")."""

from __future__ import annotations

import numpy as np

from anibench.generation import GenerationRequest, Generator
from anibench.video import Video


class StaticGenerator(Generator):
    """Repeats the earliest guide frame for the whole clip: the floor for every motion metric.

    Under first-last guidance it ignores the last guide, so keyframe adherence shows
    the miss.
    """

    name = "static"
    version = "1"
    requires_prompt = False

    def generate(self, request: GenerationRequest) -> Video:
        first = request.guides[0].image
        return Video(np.repeat(first[None], request.num_frames, axis=0), request.fps)
