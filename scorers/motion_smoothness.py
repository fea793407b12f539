"""Motion smoothness as flow-warped frame-interpolation error."""

from __future__ import annotations

import numpy as np

from anibench.features import backward_warp
from anibench.sanity import NO_CLAIM
from anibench.scoring import Expect, FrameSampling, MotionScorer, ScoreInput, ScoreResult


def interpolated_frames(num_frames: int) -> list[int]:
    """The odd frames VBench scores: one between each pair of consecutive even frames.

    Even frames ``0, 2, 4, …`` are the interpolator's inputs; the frame between two of them
    is compared with the original odd frame. With an even frame count the last (odd) frame
    has no right neighbour and is not scored.
    """
    return list(range(1, num_frames - 1, 2))


def as_uint8_image(predicted: np.ndarray) -> np.ndarray:
    """An interpolated frame as VBench stores it: clipped to [0, 255] and *truncated* to uint8."""
    return np.clip(predicted, 0, 255).astype(np.uint8)


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
        "hold_twos": NO_CLAIM,
        # Duplicated frames are predicted exactly when both neighbours are equal, badly when
        # they sit next to a jump: the sign depends on where the duplicates land.
        "stutter": NO_CLAIM,
        # Blur, crf 40 and ×4 downscaling remove detail from both the frame and its prediction:
        # the error shrinks on detailed clips and grows where codec noise or ringing appear.
        "blur": NO_CLAIM,
        "reencode": NO_CLAIM,
        "downscale": NO_CLAIM,
        # Two hard cuts add two badly predicted frames at most; on a clip that already moves a
        # lot the inserted shot can be easier to predict than the clip's own motion.
        "splice": NO_CLAIM,
    }

    def compute(self, sample: ScoreInput) -> ScoreResult:
        motion = self.motion(sample)
        maes = []
        for t in interpolated_frames(sample.video.num_frames):
            before, after = t - 1, t + 1
            from_before = backward_warp(motion.rgb(before), motion.flow(before, after), -0.5).astype(np.float32)
            from_after = backward_warp(motion.rgb(after), motion.flow(after, before), -0.5).astype(np.float32)
            predicted = as_uint8_image(0.5 * (from_before + from_after))
            maes.append(float(np.abs(motion.rgb(t).astype(np.int16) - predicted).mean()))
        return self.result(smoothness(maes), interpolation_mae=float(np.mean(maes)), frames_interpolated=len(maes))
