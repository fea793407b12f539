"""Guides are checked where they belong, for every clip length (issue 7 §1-2).

Clips are real H.264 files (written and decoded with PyAV). A given clip (scored as is)
uses the nearest frame to (F - 1)·p; a clip anibench generated uses the frames its
generator placed the guides at (AniSora V3 snapping for an AniSora-compatible generator).
"""

from __future__ import annotations

import numpy as np
import pytest

from anibench.conditions import fit_guidance, get_condition, place_guides, resolve
from anibench.generation import GenerationRequest
from anibench.generators.crossfade import CrossfadeGenerator
from anibench.scoring import ScoreInput, create_scorer
from anibench.suite import Case
from anibench.video import Video

from conftest import textured

LENGTHS = [49, 60, 61, 81, 97]
HEIGHT, WIDTH, STEP = 96, 144, 3


def panning(num_frames: int) -> np.ndarray:
    """A camera panning right over a textured scene, ``STEP`` px per frame: every frame differs."""
    canvas = textured(HEIGHT, WIDTH + STEP * num_frames, seed=3)
    rng = np.random.default_rng(4)
    for _ in range(40):  # sharp-edged "cels" so a frame two steps off is clearly another frame
        x, y = int(rng.integers(0, canvas.shape[1] - 12)), int(rng.integers(0, HEIGHT - 12))
        canvas[y : y + 12, x : x + 12] = rng.integers(0, 256, 3)
    return np.stack([canvas[:, STEP * t : STEP * t + WIDTH] for t in range(num_frames)])


def encoded(frames: np.ndarray, path, crf: int = 12) -> Video:
    return Video.read(Video(frames, 16).write(path, crf=crf))


def score(clip: Video, guidance, name: str = "guide_psnr"):
    guidance = fit_guidance(guidance, clip.num_frames, clip.height, clip.width)
    return create_scorer(name).score(ScoreInput("c", clip, guidance=guidance))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Per length: (ground truth as decoded, the same footage encoded at crf 18: a given clip, the raw frames)."""
    folder = tmp_path_factory.mktemp("lengths")
    out = {}
    for length in LENGTHS:
        frames = panning(length)
        gt, clip = encoded(frames, folder / f"gt{length}.mp4"), encoded(frames, folder / f"clip{length}.mp4", 18)
        out[length] = (gt, clip, frames)
    return out


@pytest.mark.parametrize("length", LENGTHS)
def test_a_given_clip_is_checked_at_the_nearest_frame(clips, length):
    ground_truth, clip, _ = clips[length]
    guidance = resolve(Case("c"), get_condition("keyframes@0,0.33,0.5,1"), ground_truth=ground_truth)
    expected = place_guides((0.0, 0.33, 0.5, 1.0), length)
    assert expected[-1] == length - 1
    for name in ("guide_psnr", "guide_ssim"):
        per_guide = score(clip, guidance, name).details["per_guide"]
        assert tuple(g["frame_index"] for g in per_guide) == expected
        assert all(g["best_offset"] == 0 and g["best_value"] == g["value"] for g in per_guide), per_guide
    psnr = score(clip, guidance).details["per_guide"]
    assert min(g["value"] for g in psnr) > 38


@pytest.mark.parametrize("length", LENGTHS)
def test_a_generated_clip_is_checked_where_its_generator_placed_the_guides(clips, length, tmp_path):
    ground_truth, _, _ = clips[length]
    positions = (0.0, 0.33, 0.5, 1.0)
    for rule in ("anisora-v3", "nearest"):
        request = resolve(Case("c"), get_condition("keyframes@0,0.33,0.5,1"), ground_truth=ground_truth, placement=rule)
        assert tuple(g.frame_index for g in request.guides) == place_guides(positions, length, rule)
        generated = CrossfadeGenerator().generate(GenerationRequest("c", "", request))
        clip = encoded(generated.frames, tmp_path / f"{rule}.mp4")
        per_guide = score(clip, request).details["per_guide"]
        assert [g["frame_index"] for g in per_guide] == [g.frame_index for g in request.guides]
        assert all(g["best_offset"] == 0 and g["value"] > 38 for g in per_guide), (rule, per_guide)


def test_middle_guide_of_a_61_frame_clip_is_frame_30(clips):
    """The issue's case: AniSora snapping checked frame 32 although the clip matches the guide at frame 30."""
    ground_truth, clip, _ = clips[61]
    guidance = resolve(Case("c"), get_condition("first-mid-last"), ground_truth=ground_truth)
    middle = score(clip, guidance).details["per_guide"][1]
    assert middle["frame_index"] == 30 and middle["best_offset"] == 0
    snapped = score(clip, fit_guidance(guidance, 61, HEIGHT, WIDTH, "anisora-v3")).details["per_guide"][1]
    assert snapped["frame_index"] == 32 and snapped["best_offset"] == -2  # the diagnostic points back to 30
    assert middle["value"] > snapped["value"] + 10


def test_replacing_the_last_three_frames_of_a_60_frame_clip_changes_the_last_guide(clips, tmp_path):
    ground_truth, clip, frames = clips[60]
    guidance = resolve(Case("c"), get_condition("first-last"), ground_truth=ground_truth)
    frames = frames.copy()
    frames[57:] = frames[20]
    spoiled = encoded(frames, tmp_path / "spoiled.mp4", 18)
    for name in ("guide_psnr", "guide_ssim"):
        before = score(clip, guidance, name).details["per_guide"]
        after = score(spoiled, guidance, name).details["per_guide"]
        assert before[1]["frame_index"] == after[1]["frame_index"] == 59
        assert after[0]["value"] == pytest.approx(before[0]["value"], abs=0.05 if name == "guide_psnr" else 1e-3)
        assert after[1]["value"] < before[1]["value"] - (10 if name == "guide_psnr" else 0.2)
        # the diagnostic finds the last frame still showing the guide, 3 frames earlier
        assert after[1]["best_frame"] == 56 and after[1]["best_offset"] == -3
    # AniSora's snapping (frame 56) would not have noticed
    snapped = fit_guidance(guidance, 60, HEIGHT, WIDTH, "anisora-v3")
    assert [g.frame_index for g in snapped.guides] == [0, 56]
    assert score(spoiled, snapped).value == pytest.approx(score(clip, snapped).value, abs=0.5)


def test_diagnostic_reports_a_keyframe_shown_late_without_changing_the_score(clips, tmp_path):
    ground_truth, _, _ = clips[49]
    guidance = resolve(Case("c"), get_condition("first-mid-last"), ground_truth=ground_truth)
    late = ground_truth.frames.copy()
    late[2:] = ground_truth.frames[:-2]  # everything two frames late: frame 26 shows the middle guide
    clip = encoded(late, tmp_path / "late.mp4", 18)
    result = score(clip, guidance)
    middle = result.details["per_guide"][1]
    assert middle["frame_index"] == 24 and middle["best_frame"] == 26 and middle["best_offset"] == 2
    assert middle["best_value"] > middle["value"] + 10
    assert result.value == pytest.approx(np.mean([g["value"] for g in result.details["per_guide"]]), abs=1e-3)
    narrow = create_scorer("guide_psnr", search_window=1).score(ScoreInput("c", clip, guidance=guidance))
    assert narrow.details["per_guide"][1]["best_offset"] in (-1, 0, 1)
    assert narrow.value == result.value  # the window is a diagnostic, never the score
