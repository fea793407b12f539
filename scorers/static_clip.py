"""VBench's static-video filter, as a per-clip flag."""

from __future__ import annotations

from typing import Sequence

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, MotionScorer, ScoreInput, ScoreResult

# VBench static_filter.py (commit 45e79ec) L51: cut_index = int(h*w*0.02), the top 2 % of flow magnitudes.
TOP_FRACTION = 0.02


def static_params(min_side: int, num_frames: int) -> tuple[float, int]:
    """``(thres, count_num)`` = ``(3 * min_side / 256, round(2 * N / 16))`` (VBench ``set_params``).

    ``round`` is Python's (half to even), as in VBench: 4 frames → 0, 12 → 2, 20 → 2.
    """
    return 3.0 * min_side / 256.0, round(2 * (num_frames / 16.0))


def is_static(consecutive: Sequence[float], ends: Sequence[float], thres: float, count_num: int) -> bool:
    """VBench ``check_static``: static unless more than ``count_num`` consecutive pairs move more than
    ``thres`` (strict ``>`` both times), or the first→last or last→first pair moves more than
    ``2 * thres * count_num`` (strict ``>``)."""
    count = 0
    for score in consecutive:
        if score > thres:
            count += 1
        if count > count_num:
            return False
    return not any(score > thres * count_num * 2 for score in ends)


class StaticClip(MotionScorer):
    """Static clip: 1 if VBench's static filter calls the clip static ("PPT animation"), else 0.

    VBench ``static_filter.py`` (commit 45e79ec), rule for rule:

    * every frame is read (``get_frames``, L93-107); the pairs are the consecutive ones
      plus first→last and last→first (``infer``, L83);
    * motion of a pair = mean of the top 2 % optical-flow magnitudes,
      ``k = int(H·W·0.02)`` (``get_score``, L41-55);
    * ``thres = 3 · min(H, W) / 256``, ``count_num = round(2 · N / 16)`` with Python's
      half-to-even ``round``, N = frames (``set_params``, L73-75);
    * static unless more than ``count_num`` consecutive pairs exceed ``thres``, or an end
      pair exceeds ``2 · count_num · thres``, all comparisons strict (``check_static``,
      L58-70; see :func:`is_static`).

    Deliberate differences: flow is OpenCV DIS on grey frames at the working size
    ``flow_max_side`` (H and W taken there) instead of RAFT (20 iterations) on RGB at full
    size, so no model weights are needed; VBench pads frames to a multiple of 8 before
    RAFT and counts the padded border in ``H·W``, anibench does not pad; the top-k count
    is at least 1 (VBench's mean of an empty slice would be NaN on a frame under 50 px).
    Lower is better for a generator: the suite value is the share of static clips.
    """

    name = "static_clip"
    version = "2"
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, False
    expectations = {
        "freeze": Expect.UP,
        "shake": Expect.DOWN,
        "jitter": Expect.DOWN,
        "reverse": Expect.NONE,
        "channel_swap": Expect.NONE,
        # A static clip stays static and a moving one keeps moving in most clips, but a clip
        # near the thresholds can cross them either way: the perturbation changes how much
        # motion each pair carries (holds, duplicates, dropped frames, codec and resampling
        # noise, black bars over moving parts) without a direction.
        **{p: Expect.NO_CLAIM for p in ("shuffle", "flicker", "blur", "low_fps", "splice", "hold_twos", "stutter",
                                 "reencode", "downscale", "letterbox", "speed_up")},
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("flow.peaks", fraction=TOP_FRACTION, ends=True, max_side=self.params["flow_max_side"])]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        indices = self.sampling.indices(sample.num_frames, sample.fps)
        peaks = sample.feature(self.features(sample)[0])
        thres, count_num = static_params(min(peaks["working_size"]), len(indices))
        consecutive, ends = peaks["peaks"], peaks["end_peaks"]
        static = is_static(consecutive, ends, thres, count_num)
        return self.result(
            1.0 if static else 0.0,
            threshold_px=thres,
            pairs_allowed=count_num,
            pairs_above=sum(1 for m in consecutive if m > thres),
            first_last_motion_px=[round(m, 3) for m in ends],
        )
