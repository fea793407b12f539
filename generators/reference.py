"""The ``reference`` baseline: the ground truth itself."""

from __future__ import annotations

from pathlib import Path

from anibench.conditions import GuidePlacement
from anibench.errors import NotApplicable
from anibench.generation import GenerationRequest, Generator


class ReferenceGenerator(Generator):
    """Returns the case's ground-truth video file unchanged (byte for byte).

    The oracle row of a table ("GT" in AniSora's): what a perfect model would score.
    Cases without a ground-truth video are not applicable.
    """

    name = "reference"
    version = "1"
    requires_prompt = False
    guide_placement = GuidePlacement.NEAREST  # the ground truth is a given clip: its guides are at the nearest frames

    def generate(self, request: GenerationRequest) -> Path:
        if request.ground_truth is None:
            raise NotApplicable("the case has no ground-truth video", case_id=request.case_id)
        return request.ground_truth
