"""Every "VBench formula" claim of the weight-free scorers, one test per claim, on hand-computed values.

The rules are checked against VBench's source at commit 45e79ec (``Vchitect/VBench``); each
test names the file and lines it follows. Where anibench differs on purpose (DIS flow at a
working size instead of RAFT or AMT-S, no padding, top-k of at least 1) the test pins the
difference instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from anibench.features import FeatureCache, compute_features, top_fraction_mean
from anibench.frames import ArrayFrames
from anibench.scoring import FrameSampling, ScoreInput, create_scorer
from anibench.scorers import dynamic_degree, motion_smoothness, static_clip
from anibench.video import Video

from conftest import moving_square


def sample_of(frames: np.ndarray, fps: float = 16.0) -> ScoreInput:
    return ScoreInput("formula", Video(frames, fps))


# --------------------------------------------------------------------------- static filter


def test_static_filter_averages_the_top_two_percent_of_flow_magnitudes():
    """static_filter.py L49-53: ``cut_index = int(h*w*0.02)``; mean of the ``cut_index`` largest magnitudes."""
    assert static_clip.TOP_FRACTION == 0.02
    magnitudes = np.arange(100, dtype=np.float32).reshape(10, 10)  # 0 … 99
    assert top_fraction_mean(magnitudes, static_clip.TOP_FRACTION) == pytest.approx((99 + 98) / 2)
    # int() truncates: 149 values → int(2.98) = 2 largest
    assert top_fraction_mean(np.arange(149, dtype=np.float32), static_clip.TOP_FRACTION) == pytest.approx(147.5)


def test_static_clip_scores_pairs_with_the_two_percent_statistic():
    """static_filter.py L41-55 (``get_score``) is the per-pair motion of every pair the filter checks:
    the scorer's first→last motion is the top 2 % mean of that flow, not the top 5 %."""
    frames = moving_square(num_frames=9, step=3.0)
    sample = sample_of(frames)
    result = create_scorer("static_clip").score(sample)
    motion = FeatureCache(sample.video.frames)
    two = motion.peak_motion(0, 8, 0.02)
    assert result.details["first_last_motion_px"][0] == round(two, 3)
    assert two != pytest.approx(motion.peak_motion(0, 8, 0.05), abs=1e-3)  # the fraction matters on this clip


@pytest.mark.parametrize("frames,count_num", [(49, 6), (4, 0), (12, 2), (20, 2), (28, 4), (36, 4)])
def test_static_filter_parameters(frames, count_num):
    """static_filter.py L73-75: ``thres = 3.0*(min(H, W)/256)``, ``count_num = round(2*(N/16))`` with
    Python's half-to-even ``round`` (4 frames: round(0.5) = 0; 20: round(2.5) = 2; 28: round(3.5) = 4)."""
    thres, count = static_clip.static_params(128, frames)
    assert thres == pytest.approx(1.5) and count == count_num


def test_static_filter_counts_pairs_strictly_above_the_threshold():
    """static_filter.py L58-66: a pair counts when ``score > thres`` (strict); the clip stops being static
    when ``count > count_num`` (strict), so exactly ``count_num`` moving pairs still pass."""
    thres, count_num = 1.5, 2
    assert static_clip.is_static([1.5] * 10, [], thres, count_num)  # equal to thres: not moving
    assert static_clip.is_static([2.0, 2.0, 0.0, 0.0], [], thres, count_num)  # count == count_num
    assert not static_clip.is_static([2.0, 2.0, 2.0, 0.0], [], thres, count_num)  # count_num + 1


def test_static_filter_end_pairs_allow_twice_count_num_thresholds():
    """static_filter.py L67-69: the two last scores (first→last, last→first) fail the clip when
    ``score > thres*count_num*2`` (strict); with count_num = 0 any motion at all fails it."""
    assert static_clip.is_static([], [6.0, 6.0], 1.5, 2)  # 1.5 * 2 * 2 = 6: equal passes
    assert not static_clip.is_static([], [6.0, 6.01], 1.5, 2)
    assert static_clip.is_static([], [0.0, 0.0], 1.5, 0)
    assert not static_clip.is_static([], [0.0, 1e-4], 1.5, 0)


def test_static_filter_reads_every_frame_and_adds_both_end_pairs():
    """static_filter.py L83 (pairs ``frames[:-1]+[first, last]`` with ``frames[1:]+[last, first]``) and
    L93-107 (every frame): N−1 consecutive pairs plus first→last and last→first."""
    assert static_clip.StaticClip.sampling == FrameSampling("all")
    # one moving pair among 16 consecutive ones; count_num = round(2*17/16) = 2 → still static
    frames = np.repeat(moving_square(num_frames=1), 17, axis=0)
    frames[9:] = moving_square(num_frames=2, step=4.0)[1]  # the square jumps once, between frames 8 and 9
    sample = sample_of(frames)
    result = create_scorer("static_clip").score(sample)
    motion = FeatureCache(sample.video.frames)
    assert result.details["pairs_above"] == 1 and result.details["pairs_allowed"] == 2
    assert result.details["first_last_motion_px"] == [round(motion.peak_motion(0, 16, 0.02), 3),
                                                      round(motion.peak_motion(16, 0, 0.02), 3)]
    # the end pairs carry the whole jump (~4 px) and 2·thres·count_num = 2·(3·64/256)·2 = 3 px: not static
    assert result.value == 0.0


# --------------------------------------------------------------------------- dynamic degree


def test_dynamic_degree_averages_the_top_five_percent():
    """dynamic_degree.py L50-54: ``cut_index = int(h*w*0.05)``; mean of the largest ``cut_index`` magnitudes."""
    assert dynamic_degree.TOP_FRACTION == 0.05
    assert top_fraction_mean(np.arange(100, dtype=np.float32), dynamic_degree.TOP_FRACTION) == pytest.approx(97.0)
    # int() truncates: 59 values → int(2.95) = 2 largest, 58 and 57
    assert top_fraction_mean(np.arange(59, dtype=np.float32), dynamic_degree.TOP_FRACTION) == pytest.approx(57.5)


@pytest.mark.parametrize("sampled,count_num", [(25, 6), (2, 0), (3, 1), (6, 2), (10, 2), (14, 4)])
def test_dynamic_degree_parameters(sampled, count_num):
    """dynamic_degree.py L59-61: ``thres = 6.0*(min(H, W)/256)``, ``count_num = round(4*(N/16))``, N the
    sampled frames, half-to-even ``round`` (2: round(0.5) = 0; 6: round(1.5) = 2; 10: round(2.5) = 2)."""
    thres, count = dynamic_degree.dynamic_params(128, sampled)
    assert thres == pytest.approx(3.0) and count == count_num


def test_dynamic_degree_check_move():
    """dynamic_degree.py L84-93: a pair counts when ``score > thres`` (strict); True as soon as
    ``count >= count_num`` (early return inside the loop); False when the pairs run out."""
    assert not dynamic_degree.is_dynamic([3.0] * 10, 3.0, 2)  # equal: not moving
    assert dynamic_degree.is_dynamic([3.1, 0.0, 3.1, 0.0], 3.0, 2)  # count == count_num
    assert not dynamic_degree.is_dynamic([3.1, 0.0, 0.0], 3.0, 2)
    # count_num = 0: the check runs after the first pair's increment, so any first pair returns True …
    assert dynamic_degree.is_dynamic([0.0], 3.0, 0)
    # … but with no pair at all the loop never runs: False
    assert not dynamic_degree.is_dynamic([], 3.0, 0)


@pytest.mark.parametrize("fps,stride", [(16, 2), (8, 1), (4, 1), (12, 2), (20, 2), (24, 3), (25, 3), (30, 4), (60, 8)])
def test_dynamic_degree_frame_stride(fps, stride):
    """dynamic_degree.py L99-100 (``interval = max(1, round(fps / 8))``, Python's half-to-even ``round``:
    12 fps → round(1.5) = 2, 20 fps → round(2.5) = 2) and L116-120 (``range(0, len, interval)``)."""
    sampling = dynamic_degree.DynamicDegree.sampling
    assert sampling.stride(fps) == stride
    assert list(sampling.indices(33, fps)) == list(range(0, 33, stride))


def test_dynamic_degree_scores_consecutive_sampled_pairs():
    """dynamic_degree.py L72-80: ``set_params`` with the sampled frames, then ``get_score`` on each
    consecutive pair of them: 33 frames at 16 fps → 17 sampled frames, 16 pairs, count_num = round(4.25) = 4."""
    result = create_scorer("dynamic_degree").score(sample_of(moving_square(num_frames=33, step=3.0)))
    assert len(result.details["pair_motion_px"]) == 16
    assert result.details["pairs_needed"] == 4 and result.details["threshold_px"] == pytest.approx(1.5)


def test_dynamic_degree_edge_cases_follow_check_move():
    """dynamic_degree.py L84-93 through the scorer: a 2-frame clip at 16 fps samples one frame (no pair):
    not dynamic; a 3-frame clip samples two (count_num = round(0.5) = 0): dynamic even when still."""
    still = np.repeat(moving_square(num_frames=1), 3, axis=0)
    assert create_scorer("dynamic_degree").score(sample_of(still[:2])).value == 0.0
    assert create_scorer("dynamic_degree").score(sample_of(still)).value == 1.0


def test_motion_thresholds_are_taken_at_the_working_size():
    """Deliberate difference: VBench takes ``min(H, W)`` of the full frame (dynamic_degree.py L60,
    static_filter.py L74) and computes RAFT flow there; anibench computes DIS flow at the working size
    (``flow_max_side`` = 512) and takes H and W there, so the rule is the same relative to the frame."""
    frames = np.repeat(moving_square(num_frames=1, height=384, width=1024), 3, axis=0)
    sample = sample_of(frames)
    assert FeatureCache(sample.video.frames).size == (192, 512)
    assert create_scorer("static_clip").score(sample).details["threshold_px"] == pytest.approx(3 * 192 / 256)
    assert create_scorer("dynamic_degree").score(sample).details["threshold_px"] == pytest.approx(6 * 192 / 256)


def test_top_fraction_keeps_at_least_one_value():
    """Deliberate difference: VBench's ``np.mean(...[:int(h*w*0.02)])`` is NaN below 50 pixels
    (static_filter.py L51-53); anibench averages at least the largest value."""
    assert top_fraction_mean(np.array([[1.0, 7.0], [3.0, 2.0]], np.float32), 0.02) == 7.0


# --------------------------------------------------------------------------- motion smoothness


@pytest.mark.parametrize("num_frames,expected", [(49, list(range(1, 48, 2))), (48, list(range(1, 46, 2))), (3, [1]),
                                                 (4, [1])])
def test_motion_smoothness_interpolates_the_odd_frames_between_even_ones(num_frames, expected):
    """motion_smoothness.py L63-67 and L120 (even frames are the inputs), L139-146 (one frame between each
    pair of consecutive inputs) and L156-162 (compared with the odd original frames over
    ``len(interpolate)``): with an even frame count the last odd frame is not scored."""
    assert motion_smoothness.interpolated_frames(num_frames) == expected


def test_motion_smoothness_truncates_the_interpolated_frame():
    """vbench/third_party/amt/utils/utils.py L86-89 (``tensor2img``): ``(x*255).clip(0, 255).astype(uint8)``
    truncates; VBench stores the interpolated frame so before ``get_diff``."""
    predicted = np.array([10.9, -3.0, 300.0, 127.5, 0.49], np.float32)
    assert motion_smoothness.as_uint8_image(predicted).tolist() == [10, 0, 255, 127, 0]


def test_motion_smoothness_value_from_hand_computed_frames():
    """motion_smoothness.py L152 (``(255 - vfi_score)/255``), L159-162 (mean over the interpolated frames)
    and L165-167 (``cv2.absdiff`` mean over pixels and channels). Flat frames make the flow irrelevant:
    the prediction of frame t is the mean of frames t−1 and t+1, truncated."""
    levels = [10, 13, 10, 20, 11]  # frames 1 and 3 are interpolated: (10+10)/2 = 10, (10+11)/2 = 10.5 → 10
    frames = np.stack([np.full((32, 48, 3), v, np.uint8) for v in levels])
    result = create_scorer("motion_smoothness").score(sample_of(frames))
    maes = [abs(13 - 10), abs(20 - 10)]
    assert result.details["frames_interpolated"] == 2
    assert result.details["interpolation_mae"] == pytest.approx(np.mean(maes))
    assert result.value == pytest.approx((255 - np.mean(maes)) / 255)
    # truncation, not rounding: 10.5 → 10 makes a frame of 10 a perfect prediction
    halves = np.stack([np.full((32, 48, 3), v, np.uint8) for v in [10, 10, 11]])
    assert create_scorer("motion_smoothness").score(sample_of(halves)).value == 1.0


# --------------------------------------------------------------------------- temporal flickering


def test_temporal_flickering_from_hand_computed_frames():
    """temporal_flickering.py L30-34 (every consecutive pair), L37-42 (``np.mean(cv2.absdiff(...))`` over
    pixels and channels, as float32) and L45-49 (``(255 - mean)/255``)."""
    frames = np.zeros((3, 2, 2, 3), np.uint8)
    frames[1, 0, 0] = [12, 0, 0]  # one channel of one pixel: MAE (0→1) = 12/12 = 1
    frames[2] = 6  # every value 6: MAE(1→2) = (11 * 6 + |6 - 12|) / 12 = 6
    (spec,) = create_scorer("temporal_flickering").features(sample_of(frames))
    maes = compute_features(ArrayFrames(frames, 16.0), [spec])[spec]
    assert maes.tolist() == pytest.approx([1.0, 6.0])
    value = create_scorer("temporal_flickering").score(sample_of(frames)).value
    assert value == pytest.approx((255 - 3.5) / 255)


def test_temporal_flickering_ignores_channel_order():
    """temporal_flickering.py L16-27 reads BGR (no conversion); the MAE over channels is the same in RGB."""
    frames = moving_square(num_frames=5)
    scorer = create_scorer("temporal_flickering")
    assert scorer.score(sample_of(frames)).value == scorer.score(sample_of(frames[..., ::-1].copy())).value


def test_flow_scorers_share_the_feature_cache_across_fractions():
    """Static filter (2 %) and dynamic degree (5 %) read the same flow with different statistics: the
    memo is keyed by the fraction, so one never returns the other's value."""
    cache = FeatureCache(moving_square(num_frames=3, step=3.0))
    assert cache.peak_motion(0, 2, 0.02) >= cache.peak_motion(0, 2, 0.05)
    assert cache.computed == 3  # two grey frames and one flow, shared
