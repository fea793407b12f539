"""Scene-cut count with PySceneDetect."""

from __future__ import annotations

import cv2
from scenedetect import ContentDetector
from scenedetect.common import FrameTimecode

from anibench.scoring import Expect, FrameSampling, Scorer, ScoreInput, ScoreResult


class SceneCuts(Scorer):
    """Scene cuts: the number of hard cuts in the clip (0 for a single shot).

    PySceneDetect's ``ContentDetector``: a cut where the weighted mean change of hue,
    saturation and luma between consecutive frames exceeds ``threshold`` (default 27, the
    library's) and the previous cut is at least ``min_scene_seconds`` ago. A generated
    single-shot clip should have none; lower is better.
    """

    name = "scene_cuts"
    version = "1"
    sampling = FrameSampling("all", max_side=256)
    default_params = {"threshold": 27.0, "min_scene_seconds": 0.5}
    lower, upper, higher_is_better, unit = 0.0, float("inf"), False, "cuts"
    expectations = {
        "splice": Expect.UP,
        "freeze": Expect.DOWN,
    }

    def compute(self, sample: ScoreInput) -> ScoreResult:
        indices, frames = sample.frames(self.sampling)
        fps = sample.video.fps
        min_len = max(1, round(self.params["min_scene_seconds"] * fps))
        detector = ContentDetector(threshold=self.params["threshold"], min_scene_len=min_len)
        cuts = []
        for index, frame in zip(indices, frames):
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            cuts += [int(tc.frame_num) for tc in detector.process_frame(FrameTimecode(int(index), fps), bgr)]
        return self.result(float(len(cuts)), cut_frames=cuts)
