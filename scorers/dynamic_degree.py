"""VBench dynamic degree, with classical optical flow."""

from __future__ import annotations

from typing import Sequence

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, MotionScorer, ScoreInput, ScoreResult

# VBench vbench/dynamic_degree.py (commit 45e79ec) L52: cut_index = int(h*w*0.05), the top 5 %.
TOP_FRACTION = 0.05


def dynamic_params(min_side: int, num_sampled: int) -> tuple[float, int]:
    """``(thres, count_num)`` = ``(6 * min_side / 256, round(4 * N / 16))`` (VBench ``set_params``).

    ``round`` is Python's (half to even), as in VBench: 2 sampled frames → 0, 6 → 2, 10 → 2.
    """
    return 6.0 * min_side / 256.0, round(4 * (num_sampled / 16.0))


def is_dynamic(motions: Sequence[float], thres: float, count_num: int) -> bool:
    """VBench ``check_move``: walk the pairs, count those with motion ``> thres`` (strict) and
    return True as soon as the count is ``>= count_num``; False if the pairs run out first.

    So a clip with no pair at all is never dynamic, and with ``count_num == 0`` (two sampled
    frames) one pair of any motion is enough.
    """
    count = 0
    for score in motions:
        if score > thres:
            count += 1
        if count >= count_num:
            return True
    return False


class DynamicDegree(MotionScorer):
    """Dynamic degree: 1 if the clip moves, by VBench's rule, else 0; the suite value is the share.

    VBench ``vbench/dynamic_degree.py`` (commit 45e79ec), rule for rule:

    * every ``max(1, round(fps / 8))``-th frame from frame 0, fps from the container
      (``get_frames``, L99-100; ``extract_frame``, L116-120);
    * the pairs are consecutive sampled frames (``infer``, L74); motion of a pair = mean of
      the top 5 % optical-flow magnitudes, ``k = int(H·W·0.05)`` (``get_score``, L42-56);
    * ``thres = 6 · min(H, W) / 256``, ``count_num = round(4 · N / 16)``, Python's
      half-to-even ``round``, N = sampled frames (``set_params``, L59-61);
    * dynamic once ``count_num`` pairs exceed ``thres`` (``>`` for a pair, ``>=`` for the
      count, early return; no pairs → not dynamic: ``check_move``, L84-93, see
      :func:`is_dynamic`).

    Deliberate differences: flow is OpenCV DIS on grey frames at the working size
    ``flow_max_side`` (H and W taken there) instead of RAFT (20 iterations) on RGB at full
    size, so per-pair magnitudes differ somewhat from VBench's and no weights are needed;
    anibench does not pad frames to a multiple of 8 (VBench counts RAFT's padded border in
    ``H·W``); the top-k count is at least 1.
    """

    name = "dynamic_degree"
    version = "2"
    sampling = FrameSampling("fps_stride", target_fps=8)
    lower, upper, higher_is_better = 0.0, 1.0, True
    expectations = {
        "freeze": Expect.DOWN,
        "shake": Expect.UP,
        "reverse": Expect.NONE,
        "channel_swap": Expect.NONE,
        # These change how much motion each sampled pair carries (holds, duplicates, dropped or
        # inserted frames, codec and resampling noise, sub-threshold jitter, bars over moving
        # parts): only clips near the threshold cross it, and not all the same way.
        **{p: Expect.NO_CLAIM for p in ("shuffle", "flicker", "blur", "low_fps", "splice", "hold_twos", "stutter",
                                 "reencode", "downscale", "letterbox", "speed_up", "jitter")},
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("flow.peaks", target_fps=self.sampling.target_fps, fraction=TOP_FRACTION,
                               max_side=self.params["flow_max_side"])]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        indices = self.sampling.indices(sample.num_frames, sample.fps)
        peaks = sample.feature(self.features(sample)[0])
        thres, count_num = dynamic_params(min(peaks["working_size"]), len(indices))
        motions = peaks["peaks"]
        return self.result(
            1.0 if is_dynamic(motions, thres, count_num) else 0.0,
            stride=self.sampling.stride(sample.fps),
            threshold_px=thres,
            pairs_needed=count_num,
            pairs_above=sum(1 for m in motions if m > thres),
            pair_motion_px=[round(m, 3) for m in motions],
        )
