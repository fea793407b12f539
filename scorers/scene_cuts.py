"""Scene-cut count with PySceneDetect."""

from __future__ import annotations

import cv2
from scenedetect import ContentDetector
from scenedetect.common import FrameTimecode

from anibench.features import FeatureSpec, FrameFeature
from anibench.features.pixel import shrink
from anibench.scoring import Expect, FrameSampling, Scorer, ScoreInput, ScoreResult


class ContentCuts(FrameFeature):
    """``scene.content_cuts``: frame indices where PySceneDetect's ``ContentDetector`` finds a hard cut."""

    name = "scene.content_cuts"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.max_side = spec.get("max_side")
        min_len = max(1, round(spec.get("min_scene_seconds") * clip.info.fps))
        self.detector = ContentDetector(threshold=spec.get("threshold"), min_scene_len=min_len)
        self.cuts: list[int] = []

    def step(self, t: int) -> None:
        bgr = cv2.cvtColor(shrink(self.clip.frame(t), self.max_side), cv2.COLOR_RGB2BGR)
        self.cuts += [int(tc.frame_num) for tc in self.detector.process_frame(FrameTimecode(t, self.clip.info.fps), bgr)]

    def finish(self) -> list[int]:
        return self.cuts


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
        **{p: Expect.NO_CLAIM for p in ("shake", "flicker", "hold_twos", "stutter", "low_fps", "jitter", "reencode")},
        # Shuffling scatters the shots of a clip with cuts: every change of shot is a cut, but cuts
        # closer than ``min_scene_seconds`` merge, so the count goes either way.
        "shuffle": Expect.NO_CLAIM,
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("scene.content_cuts", max_side=self.sampling.max_side, **self.params)]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        cuts = sample.feature(self.features(sample)[0])
        return self.result(float(len(cuts)), cut_frames=cuts)
