"""Motion smoothness as flow-warped frame-interpolation error."""

from __future__ import annotations

import numpy as np

from anibench.features import FeatureSpec
from anibench.features.motion import as_uint8_image, interpolated_frames  # noqa: F401 - the rules, documented there
from anibench.scoring import Expect, FrameSampling, MotionScorer, ScoreInput, ScoreResult


def smoothness(maes: list[float]) -> float:
    """``(255 - mean MAE) / 255`` over the interpolated frames."""
    return (255.0 - float(np.mean(maes))) / 255.0


class MotionSmoothness(MotionScorer):
    """Motion smoothness: ``(255 - mean_t MAE(f_t, I_t)) / 255`` over the odd frames t.

    ``I_t`` is frame t interpolated from its neighbours: ``f_{t-1}`` and ``f_{t+1}`` are
    each warped halfway along the optical flow between them (``f_{t-1}`` sampled at
    ``q - F(t-1→t+1)(q) / 2``, ``f_{t+1}`` at ``q - F(t+1→t-1)(q) / 2``), averaged, and
    stored as uint8 by truncation. Smooth motion is predictable from its neighbours;
    jitter, jumps and flicker are not.

    From VBench ``vbench/motion_smoothness.py`` (commit 45e79ec): the even frames are the
    interpolator's inputs (``extract_frame(start_from=0)``, L63-67 and L120), each pair of
    consecutive even frames gives the frame halfway between them (``embt = 1/2``, L107 and
    L139-146), and the odd original frames are compared with them over the number of
    interpolated frames (``vfi_score``, L156-162), MAE = mean ``cv2.absdiff`` over pixels
    and RGB channels (``get_diff``, L165-167), value ``(255 - mean) / 255`` (L152); the
    interpolated frame is ``(x * 255).clip(0, 255).astype(uint8)``, a truncation
    (``tensor2img``, ``vbench/third_party/amt/utils/utils.py`` L86-89).

    Deliberate differences: the interpolator is DIS-flow warping, not the AMT-S network, so
    no weights are needed and values are not VBench's; frames and flow are at the working
    size ``flow_max_side`` (VBench interpolates at full size, shrinking only when GPU memory
    is short). The construction is symmetric in time: reversing a clip with an odd frame
    count leaves the value unchanged.

    Pixel means: black bars (letterbox) replace pixels by ones that are predicted exactly, so
    letterboxing raises the value whenever the bars hide an error (motion, or the codec
    noise of any real clip; declared in ``expectations``), and a held frame between two equal
    neighbours is predicted exactly too: a high value does not mean the motion is smooth if
    the clip is held or letterboxed — read it with ``held_frames`` and ``black_borders``.
    """

    name = "motion_smoothness"
    version = "2"
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    min_frames = 3
    none_tolerance = 0.002
    expectations = {
        "freeze": Expect.UP,
        "shuffle": Expect.DOWN,
        "shake": Expect.DOWN,
        "reverse": Expect.NONE,
        "flicker": Expect.DOWN,
        "low_fps": Expect.DOWN,
        "speed_up": Expect.DOWN,
        "jitter": Expect.DOWN,
        "letterbox": Expect.UP,
        "channel_swap": Expect.NONE,
        # A hold on twos puts every odd frame between a frame equal to it and the next drawing:
        # the odd frames become easy or hard to predict depending on the phase of the drawings
        # and the size of each step, so the value moves either way.
        "hold_twos": Expect.NO_CLAIM,
        # Duplicated frames are predicted exactly when both neighbours are equal, badly when
        # they sit next to a jump: the sign depends on where the duplicates land.
        "stutter": Expect.NO_CLAIM,
        # Blur, crf 40 and ×4 downscaling remove detail from both the frame and its prediction:
        # the error shrinks on detailed clips and grows where codec noise or ringing appear.
        "blur": Expect.NO_CLAIM,
        "reencode": Expect.NO_CLAIM,
        "downscale": Expect.NO_CLAIM,
        # Two hard cuts add two badly predicted frames at most; on a clip that already moves a
        # lot the inserted shot can be easier to predict than the clip's own motion.
        "splice": Expect.NO_CLAIM,
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("flow.interpolation_errors", max_side=self.params["flow_max_side"])]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        maes = list(sample.feature(self.features(sample)[0]))
        return self.result(smoothness(maes), interpolation_mae=float(np.mean(maes)), frames_interpolated=len(maes))
