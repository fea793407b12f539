"""Scene-cut count with PySceneDetect."""

from __future__ import annotations

import cv2
from scenedetect import ContentDetector
from scenedetect.common import FrameTimecode

from anibench.sanity import NO_CLAIM
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
        "reverse": Expect.NONE,
        "blur": Expect.NONE,
        "downscale": Expect.NONE,
        "letterbox": Expect.NONE,
        "channel_swap": Expect.NONE,
        "speed_up": Expect.NONE,
        # These raise the change between consecutive frames (random shifts, brightness jumps,
        # steps doubled by holds, duplicates and dropped frames, sub-pixel jitter, codec blocking):
        # a fast clip near the detector's threshold gains cuts, a calm one does not.
        **{p: NO_CLAIM for p in ("shake", "flicker", "hold_twos", "stutter", "low_fps", "jitter", "reencode")},
        # Shuffling scatters the shots of a clip with cuts: every change of shot is a cut, but cuts
        # closer than ``min_scene_seconds`` merge, so the count goes either way.
        "shuffle": NO_CLAIM,
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
