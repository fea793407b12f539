"""vbench.dynamic_degree (RAFT): VBench's rule by hand, parity with VBench's own code, bad input, the battery.

Parity: tests/parity/fixtures/vbench_dynamic_degree.json holds VBench's outputs (45e79ec,
``compute_dynamic_degree`` run by scripts/parity/vbench_dynamic_degree_reference.py in the parity venv)
on the seeded full-size raft-things.pth of tests/parity/weights_raft.py and the clips of
tests/parity/clips_raft.py. Here the same file is imported through the real weights store and
converter, the clips are decoded by anibench (PyAV) and scored by a ScoringSession; every pair value
must match within the fixture's tolerance and every per-video boolean exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anibench.errors import InputError
from anibench.features import FeatureSpec
from anibench.frames import ClipInfo
from anibench.runtime.context import Runtime
from anibench.runtime.weights import WeightStore
from anibench.sanity import run_battery
from anibench.scorers.vbench_dynamic_degree import DynamicDegree
from anibench.scoring import ScoreInput, ScoreResult
from anibench.session import ScoringSession
from anibench.video import Video

from conftest import moving_square
from parity.clips import frames_sha256
from parity.clips_raft import TOO_SMALL_CLIP, write_raft_clips
from parity.weights_raft import write_raft_things_checkpoint

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "vbench_dynamic_degree.json"
PEAKS = FeatureSpec.of("vbench.raft_peaks", target_fps=8)


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads(FIXTURE.read_text())


# --- VBench's rule on given pair values (no network) -----------------------------------------


def scored(motions, *, frames: int, fps: float, height: int, width: int) -> ScoreResult:
    sample = ScoreInput("case", info=ClipInfo(frames, fps, height, width),
                        features={PEAKS: np.asarray(motions, dtype=np.float64)})
    return DynamicDegree().compute(sample)


def test_rule_at_480p_49_frames_16fps():
    """Stride round(16/8) = 2: 25 sampled frames, 24 pairs; thres 6*480/256 = 11.25; count_num round(6.25) = 6."""
    still = scored([11.25] * 24, frames=49, fps=16, height=480, width=848)  # equal to thres is not above
    assert still.value == 0.0
    details = still.details
    assert (details["stride"], len(details["sampled_frames"]), details["threshold_px"], details["pairs_needed"]) == \
        (2, 25, 11.25, 6)
    assert details["sampled_frames"][:3] == [0, 2, 4] and details["padded_size"] == [480, 848]
    five = scored([12.0] * 5 + [0.0] * 19, frames=49, fps=16, height=480, width=848)
    six = scored([0.0] * 18 + [12.0] * 6, frames=49, fps=16, height=480, width=848)
    assert (five.value, six.value, six.details["pairs_above"]) == (0.0, 1.0, 6)


@pytest.mark.parametrize(
    "frames, fps, stride, sampled, count_num",
    [(81, 16, 2, 41, 10), (49, 24, 3, 17, 4), (49, 12, 2, 25, 6), (20, 20, 2, 10, 2), (10, 8, 1, 10, 2),
     (6, 8, 1, 6, 2), (2, 30, 4, 1, 0)],
)
def test_sampling_and_count_num(frames, fps, stride, sampled, count_num):
    """round() is Python's half-to-even: 12 fps -> round(1.5) = 2, 20 fps -> round(2.5) = 2; 4*10/16 = 2.5 -> 2."""
    pairs = max(0, sampled - 1)
    result = scored([100.0] * pairs, frames=frames, fps=fps, height=256, width=256)
    assert (result.details["stride"], len(result.details["sampled_frames"]), result.details["pairs_needed"]) == \
        (stride, sampled, count_num)
    # One sampled frame: no pair, never dynamic (VBench's check_move loop never runs).
    assert result.value == (1.0 if pairs else 0.0)


def test_threshold_uses_the_unpadded_short_side():
    """130x150 pads to 136x152; thres = 6*130/256 = 3.047 (3.1875 with the padded side); count_num round(0.75) = 1."""
    result = scored([3.0, 3.1], frames=3, fps=8, height=130, width=150)
    assert result.details["threshold_px"] == 6 * 130 / 256 and result.details["padded_size"] == [136, 152]
    assert result.value == 1.0 and result.details["pairs_above"] == 1
    assert scored([3.0, 3.04], frames=3, fps=8, height=130, width=150).value == 0.0


# --- with the seeded weights: parity with VBench, bad input ---------------------------------


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, fixture) -> Runtime:
    """raft_things aliased to the recipe's seeded raft-things.pth, imported through the converter."""
    seed = fixture["recipe"]["weights"]["raft_things"]["seed"]
    source = write_raft_things_checkpoint(tmp_path_factory.mktemp("seeded") / "raft-things.pth", seed)
    WeightStore().add_local("seeded_raft_things", source, format="torch-state-dict",
                            converter="anibench.models.raft:convert_published")
    return Runtime(device="cpu", dtype="fp32", weight_aliases={"raft_things": "seeded_raft_things"})


@pytest.fixture(scope="module")
def session(runtime):
    with ScoringSession([DynamicDegree()], runtime, workers=1) as scoring:
        yield scoring


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    return write_raft_clips(tmp_path_factory.mktemp("raft-clips"))


def test_parity_with_vbench(fixture, session, clips):
    assert {n: c["video_file_sha256"] for n, c in clips.items()} == fixture["recipe"]["clips"]["video_file_sha256"]
    names = [video["name"] for video in fixture["videos"]]
    for video in fixture["videos"]:
        decoded = Video.read(clips[video["name"]]["video"])
        assert frames_sha256(decoded.frames) == video["decoded_sha256"], "anibench decodes other frames than cv2"
        assert decoded.fps == video["fps_cv2"]
    results = session.score([clips[name]["video"] for name in names], case_ids=names)
    tolerance = fixture["recipe"]["tolerance"]
    values = []
    for video, result in zip(fixture["videos"], results):
        outcome = result["vbench.dynamic_degree"]
        assert isinstance(outcome, ScoreResult), outcome
        details = outcome.details
        assert outcome.value == float(video["video_results"]), video["name"]
        assert (details["stride"], len(details["sampled_frames"])) == (video["stride"], video["sampled_frames"])
        assert (details["threshold_px"], details["pairs_needed"]) == (video["thres"], video["count_num"])
        assert details["padded_size"] == video["pairs"][0]["padded_shape"]
        expected = [pair["motion"] for pair in video["pairs"]]
        assert np.abs(np.subtract(details["pair_motion_px"], expected)).max() <= tolerance, video["name"]
        values.append(outcome.value)
    assert np.mean(values) == fixture["aggregate"]
    # The fixture decides: per-video booleans of both kinds, and no pair within the tolerance of its threshold.
    assert {v["video_results"] for v in fixture["videos"]} == {True, False}
    margins = [abs(p["motion"] - v["thres"]) for v in fixture["videos"] for p in v["pairs"]]
    assert min(margins) > 10 * tolerance


def test_too_small_frames_name_the_scorer_case_and_file(session, tmp_path):
    path = write_raft_clips(tmp_path, (TOO_SMALL_CLIP,))[TOO_SMALL_CLIP.name]["video"]
    (result,) = session.score([path], case_ids=["tiny"])
    error = result["vbench.dynamic_degree"]
    assert isinstance(error, InputError)
    text = str(error)
    assert "vbench.dynamic_degree" in text and "'tiny'" in text and "128 px" in text and "96x64" in text


def test_missing_weights_say_which_file_and_how_to_provide_it():
    reason = DynamicDegree.unavailable_reason()  # the session's empty weights folder (conftest)
    assert reason is not None
    for fragment in ("raft_things", "raft-things.pth", "anibench weights import raft_things"):
        assert fragment in reason, reason


def test_grayscale_looking_and_odd_sized_frames_are_scored(session, tmp_path):
    """Decoded frames are always RGB; odd sizes are padded (131x149 -> 136x152) as VBench pads them."""
    frames = np.repeat(moving_square(5, 131, 149, step=3.0)[..., :1], 3, axis=-1)  # grey content
    (result,) = session.score([frames], fps=16.0)
    outcome = result["vbench.dynamic_degree"]
    assert isinstance(outcome, ScoreResult), outcome
    assert outcome.details["padded_size"] == [136, 152] and len(outcome.details["pair_motion_px"]) == 2


def test_battery_plumbing_with_random_weights(runtime, tmp_path):
    """With random weights RAFT does not see motion, so "freeze makes it static" cannot be shown here (the
    published weights are needed): this checks that every perturbation runs through decoding, sampling,
    batching and the rule without error, and that inputs the scorer does not read leave it unchanged."""
    samples = []
    for seed in range(3):
        video = Video(moving_square(5, 128, 128, step=4.0, seed=seed), 16.0)  # 3 sampled frames, 2 pairs
        samples.append(ScoreInput(f"square{seed}", video, prompt=f"a square {seed}"))
    report = run_battery([DynamicDegree()], samples, runtime=runtime, workers=1)
    checks = {c.perturbation: c for c in report.checks}
    assert set(checks) >= {"freeze", "swap_prompt", "swap_guide", "invert_mask"}
    assert all(c.errors == 0 for c in report.checks), [(c.perturbation, c.errors) for c in report.checks]
    assert checks["freeze"].cases == 3
    assert report.status(checks["swap_prompt"]) == "pass"
