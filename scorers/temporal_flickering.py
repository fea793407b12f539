"""VBench temporal flickering."""

from __future__ import annotations

import numpy as np

from anibench.features import FeatureSpec
from anibench.features.pixel import sampling_params
from anibench.scoring import Expect, FrameSampling, Scorer, ScoreInput, ScoreResult


def flickering(maes: np.ndarray) -> float:
    """``(255 - mean MAE) / 255``."""
    return (255.0 - float(np.mean(maes))) / 255.0


class TemporalFlickering(Scorer):
    """Temporal flickering: ``(255 - mean_t MAE(f_t, f_t+1)) / 255`` over all frames.

    VBench ``vbench/temporal_flickering.py`` (commit 45e79ec): every frame is read
    (``get_frames``, L16-27), every consecutive pair is scored (``mae_seq``, L30-34), MAE
    is the mean of ``cv2.absdiff`` over pixels and channels (``calculate_mae``, L37-42;
    channel order does not matter), and the value is ``(255 - mean) / 255`` (``cal_score``,
    L45-49). 1 = identical consecutive frames.

    Deliberate difference: VBench applies it only to clips its static filter keeps
    (``cal_score`` says "please ensure the video is static"; then it measures flicker,
    not motion); anibench scores every clip and reports the filter as ``static_clip``, so
    on moving clips the value mostly measures motion.

    Pixel means: black bars (letterbox) replace pixels by ones that never change, and a
    held frame adds a pair with no difference while the next pair's difference is at most
    the sum of the two it replaces, so letterboxing, holds on twos and stutter never lower
    the value and *raise* it whenever they hide a change — motion, or the codec noise of
    any real clip (declared in ``expectations``); read it with ``held_frames`` and
    ``black_borders``.
    """

    name = "temporal_flickering"
    version = "1"
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    expectations = {
        "freeze": Expect.UP,
        "shuffle": Expect.DOWN,
        "shake": Expect.DOWN,
        "reverse": Expect.NONE,
        "flicker": Expect.DOWN,
        "blur": Expect.UP,
        "low_fps": Expect.DOWN,
        "splice": Expect.DOWN,
        "hold_twos": Expect.UP,
        "stutter": Expect.UP,
        "downscale": Expect.UP,
        "letterbox": Expect.UP,
        "channel_swap": Expect.NONE,
        "speed_up": Expect.DOWN,
        "jitter": Expect.DOWN,
        # crf 40 drops small changes (skipped blocks) but adds block noise that changes from
        # frame to frame: which wins depends on the clip's motion and texture.
        "reencode": Expect.NO_CLAIM,
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("pixel.pair_mean_abs_diff", **sampling_params(self.sampling))]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        maes = sample.feature(self.features(sample)[0])
        return self.result(flickering(maes), mean_abs_diff=float(maes.mean()), max_abs_diff=float(maes.max()))
