"""VBench-I2V camera motion: the target from the prompt, the edge-midpoint rules by hand, the scorer on a small
CoTracker2, the perturbation battery, bad input, and parity with VBench's own run (tests/parity/fixtures)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from anibench.errors import AnibenchError, InputError, NotApplicable
from anibench.runtime.context import Runtime
from anibench.runtime.weights import WeightStore
from anibench.conditions import Guidance, GuideFrame
from anibench.sanity import PERTURBATIONS, run_battery, score_values
from anibench.scoring import ScoreInput, ScoreResult
from anibench.session import ScoringSession
from anibench.video import Video
from anibench.scorers.vbench_camera_motion import (
    CameraMotion, accuracy_by_target, camera_target, classify_motion, edge_direction, edge_points, predict_motion,
)

from conftest import moving_square
from parity.weights_cotracker import TINY_SIZES, write_cotracker2_checkpoint

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "vbench_camera_motion.json"
CONVERTER = "anibench.models.cotracker:convert_published"

@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small networks run faster on one thread, and on the shared 2-core machine two intra-op threads spin
    against other processes (a tiny tracker took 7 s on two threads, 0.1 s on one). Restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- the target motion ------------------------------------------------------------------------


@pytest.mark.parametrize("prompt, target", [
    ("a red fox in the snow, camera pans left", "pan_left"),
    ("camera tilts down over a city", "tilt_down"),
    ("clouds, camera static", "static"),
    ("camera zooms out, then camera pans right", "pan_right"),  # VBench's order decides, not the text's
    ("camera zooms in-1", "zoom_in"),
    ("Camera pans left", None),  # case-sensitive, as VBench's substring test on the file name
    ("a fox, camera moves left", None),
    ("", None),
])
def test_the_target_is_the_first_of_vbenchs_phrases_in_the_prompt(prompt, target):
    assert camera_target(prompt) == target


# --- the rules, by hand ---------------------------------------------------------------------------


def _grid(values) -> np.ndarray:
    """A 10x10 grid of (x, y) with given values at the four edge midpoints, zeros elsewhere."""
    grid = np.zeros((10, 10, 2))
    for (row, col), xy in zip(((0, 5), (9, 5), (5, 0), (5, 9)), values):
        grid[row, col] = xy
    return grid


def test_edge_points_are_the_middle_of_each_side():
    points = edge_points(_grid([(1, 2), (3, 4), (5, 6), (7, 8)]))
    assert {k: v.tolist() for k, v in points.items()} == {
        "top": [[1, 2]], "down": [[3, 4]], "left": [[5, 6]], "right": [[7, 8]]}


def test_directions_need_a_shift_strictly_beyond_the_threshold():
    assert edge_direction((2.4, -2.4), 2.4) == ["static"]
    assert edge_direction((3, 0), 2.4) == ["right"]
    assert edge_direction((-3, 5), 2.4) == ["left", "down"]
    assert edge_direction((0, -3), 2.4) == ["up"]


@pytest.mark.parametrize("top, down, left, right, expected", [
    (["left"], ["left"], ["left"], ["left"], ["pan_right"]),  # the scene moves left: the camera pans right
    (["right"], ["right"], ["static"], ["static"], ["pan_left"]),  # static pair dropped for the motion
    (["down"], ["down"], ["down"], ["down"], ["tilt_up"]),
    (["up"], ["up"], ["up"], ["up"], ["tilt_down"]),
    (["up"], ["down"], ["left"], ["right"], ["zoom_in"]),
    (["down"], ["up"], ["right"], ["left"], ["zoom_out"]),
    (["static"], ["static"], ["static"], ["static"], ["static"]),
    (["static"], ["left"], ["static"], ["static"], ["None"]),  # static goes first, so "None" stays
    (["static"], ["left"], ["left"], ["left"], ["pan_right"]),  # "None" dropped beside a motion
    (["static"], ["left"], ["up"], ["static"], ["None"]),
    (["right", "up"], ["right", "down"], ["static"], ["static"], ["pan_left", "zoom_in"]),  # both combinations count
    (["left", "up"], ["left", "up"], ["left"], ["left"], ["pan_right", "tilt_down"]),
])
def test_classification_rules(top, down, left, right, expected):
    assert classify_motion({"top": top, "down": down, "left": left, "right": right}) == expected


def test_prediction_truncates_tracks_toward_zero_before_the_shift():
    """A 480x848 clip: threshold 2.4 px. Top moves -2.9 → -0.1 = trunc 0 - trunc(-2.9) = -2 (not -3: static)."""
    first = _grid([(100.0, -2.9), (100.0, 400.0), (10.0, 240.0), (800.0, 240.0)])
    last = _grid([(100.0, -0.1), (100.0, 397.0), (6.0, 240.0), (805.0, 240.0)])
    tracks = np.stack([first, first, last]).reshape(3, 100, 2).astype(np.float32)
    prediction = predict_motion(tracks, 480, 848)
    assert prediction["threshold_px"] == pytest.approx(2.4)
    assert prediction["edge_shifts_px"]["top"] == [0.0, 2.0]
    assert prediction["edge_directions"] == {"top": ["static"], "down": ["up"], "left": ["left"], "right": ["right"]}
    assert prediction["predicted"] == ["zoom_in"]  # top/down: static_up matches nothing; left_right: zoom in


def test_accuracy_by_target_is_vbenchs_per_type_mean():
    details = [{"target": "pan_left", "predicted": ["pan_left"]}, {"target": "pan_left", "predicted": ["static"]},
               {"target": "static", "predicted": ["static"]}]
    accuracy = accuracy_by_target(details)
    assert accuracy["pan_left"] == 0.5 and accuracy["static"] == 1.0 and math.isnan(accuracy["zoom_in"])


# --- the scorer on a small CoTracker2 ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_runtime(tmp_path_factory):
    """A small CoTracker2 (same code and checkpoint format) imported through the weights store as a local
    entry standing in for ``cotracker2``."""
    scratch = tmp_path_factory.mktemp("tiny-cotracker")
    WeightStore().add_local("tiny_cotracker2", write_cotracker2_checkpoint(scratch / "cotracker2.pth", 0, **TINY_SIZES),
                            format="torch-state-dict", converter=CONVERTER, replace=True)
    return Runtime(device="cpu", dtype="fp32", weight_aliases={"cotracker2": "tiny_cotracker2"})


def _clip(frames: int = 9, seed: int = 0) -> Video:
    return Video(moving_square(frames, 48, 80, step=2.0, seed=seed), 16.0)


def test_scores_and_details(tiny_runtime):
    prompts = ["a square, camera pans left", "a square, camera static", "a square and no camera word"]
    with ScoringSession([CameraMotion()], tiny_runtime, workers=1) as session:
        results = session.score([_clip().frames] * 3, prompts=prompts)
    first, second, third = (r["vbench.camera_motion"] for r in results)
    assert isinstance(first, ScoreResult) and isinstance(second, ScoreResult)
    assert first.details["target"] == "pan_left" and second.details["target"] == "static"
    assert first.details["predicted"] == second.details["predicted"]  # same clip, same tracks
    for result in (first, second):
        assert result.value == (1.0 if result.details["target"] in result.details["predicted"] else 0.0)
        assert result.details["frames"] == 9 and result.details["clip_size"] == [48, 80]
        assert result.details["threshold_px"] == pytest.approx(0.24)
    assert isinstance(third, NotApplicable) and "camera pans left" in str(third) and "clip2" in str(third)


def test_odd_sized_frames_are_tracked_at_their_own_scale(tiny_runtime):
    """47x81 frames: tracks scale back by (81-1)/(96-1), (47-1)/(64-1); threshold 0.005·47 px."""
    frames = moving_square(9, 47, 81, step=2.0)
    with ScoringSession([CameraMotion()], tiny_runtime, workers=1) as session:
        (result,) = session.score([frames], prompts=["x, camera zooms out"])
    result = result["vbench.camera_motion"]
    assert isinstance(result, ScoreResult), result
    assert result.details["clip_size"] == [47, 81] and result.details["threshold_px"] == pytest.approx(0.235)
    # frame 0 holds the 10x10 grid (margin 96/64 model px), scaled to the clip and truncated
    assert result.details["edge_start_px"]["left"] == [[int(1.5 * 80 / 95), int((1.5 + 5 * 61 / 9) * 46 / 63)]]


def test_a_clip_too_short_for_the_tracker_window_is_an_input_error(tiny_runtime):
    with ScoringSession([CameraMotion()], tiny_runtime, workers=1) as session:
        (result,) = session.score([_clip(4).frames], prompts=["x, camera static"])
    error = result["vbench.camera_motion"]
    assert isinstance(error, InputError) and "needs at least 5" in str(error) and "vbench.camera_motion" in str(error)


def test_without_weights_the_error_names_the_file_and_the_commands(tmp_path):
    with ScoringSession([CameraMotion()], Runtime(device="cpu", weights_root=str(tmp_path)), workers=1) as session:
        (result,) = session.score([_clip().frames], prompts=["x, camera static"], case_ids=["case7"])
    error = result["vbench.camera_motion"]
    assert isinstance(error, AnibenchError)
    for fragment in ("cotracker2.pth", "'cotracker2'", "anibench weights import cotracker2",
                     "anibench weights fetch cotracker2", "case7"):
        assert fragment in str(error), str(error)


def _guided(index: int, frames: int = 12) -> ScoreInput:
    video = _clip(frames, seed=index)
    guide = GuideFrame(0.0, 0, video.frames[0].copy(), "first frame")
    region = np.zeros((frames, video.height, video.width), bool)
    region[:, :, : video.width // 2] = True
    guidance = Guidance("sanity", (guide,), frames, video.fps, video.height, video.width, region)
    return ScoreInput(f"c{index}", video, f"clip {index}, camera pans left", guidance)


def test_the_battery_checks_the_plumbing(tiny_runtime):
    """With random weights nothing directional can be claimed (nor with real ones: see the expectations).
    The battery checks that the guides and the mask, which the scorer does not read, do not move it; every
    other perturbation must still score without error, with a value in {0, 1} (none where the perturbed clip
    is shorter than the tracker's 5 frames: low_fps keeps 3 of 12)."""
    samples = [_guided(i) for i in range(3)]
    report = run_battery([CameraMotion()], samples, runtime=tiny_runtime, workers=1)
    assert report.passed and not report.failures()
    checks = {c.perturbation: c for c in report.checks}
    assert set(checks) == {"swap_guide", "invert_mask"}
    assert all(c.errors == 0 and c.informative == 3 and c.moved_as_declared == 3 for c in checks.values())
    perturbed = [PERTURBATIONS[name](samples[0], samples[1]) for name in CameraMotion.expectations]
    with ScoringSession([CameraMotion()], tiny_runtime, workers=1) as session:
        values = score_values(session, [(p, [CameraMotion()]) for p in perturbed if p is not None])
    assert len(values) == len(CameraMotion.expectations)
    scored = [p.num_frames >= 5 for p in perturbed]
    assert [v["vbench.camera_motion"] in (0.0, 1.0) for v in values] == scored, values


# --- parity with VBench's own code ------------------------------------------------------------------
# tests/parity/fixtures/vbench_camera_motion.json holds VBench's output (45e79ec, co-tracker 82e02e8 through
# torch.hub, run by scripts/parity/vbench_camera_motion_reference.py in its own venv) on the recipe's
# full-size random CoTracker2 and the parity clips, named "<clip>, <camera phrase>.mp4".


@pytest.fixture(scope="module")
def fixture():
    if not FIXTURE.is_file():
        raise FileNotFoundError(f"{FIXTURE} is missing: run scripts/parity/vbench_camera_motion_reference.py")
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def full_size_model(fixture):
    from anibench.models.cotracker import CoTracker2, config_from_state

    from parity.weights_cotracker import cotracker2_state_dict, state_dict_sha256

    weights = fixture["recipe"]["weights"]["cotracker2"]
    state = cotracker2_state_dict(weights["seed"])
    assert state_dict_sha256(state) == weights["state_dict_sha256"]
    model = CoTracker2(config_from_state(state))
    model.load_state_dict(state)
    return model.eval()


def _assert_video_matches(video: dict, tracks: np.ndarray, result: ScoreResult, tolerance: float) -> None:
    for edge, index in (("top", 5), ("down", 95), ("left", 50), ("right", 59)):
        np.testing.assert_allclose(tracks[:, index], np.array(video["edge_tracks"][edge]), atol=tolerance, rtol=0)
    np.testing.assert_allclose(tracks[-1], np.array(video["last_frame_tracks"]), atol=tolerance, rtol=0)
    assert result.details["target"] == video["prompt_type"]
    assert result.details["predicted"] == video["predict_type"]
    assert result.value == video["video_results"]


def _spec(fixture: dict, name: str):
    from parity.clips import ClipSpec

    (spec,) = [s for s in fixture["recipe"]["clips"]["specs"] if s["name"] == name]
    return ClipSpec(**spec)


def test_parity_with_vbench_on_one_clip(fixture, full_size_model, tmp_path):
    """The 6-frame 96x64 clip (one tracker window; the resize upsamples) at full size; the other clips
    (two to four windows) are checked by the slow test below."""
    from anibench.features.cotracker import VBENCH_GRID_SIZE
    from anibench.models.cotracker import resize_frames, track_grid

    from parity.clips import frames_sha256, write_clip

    (video,) = [v for v in fixture["videos"] if v["name"] == "short_96x64"]
    spec = _spec(fixture, video["name"])
    written = write_clip(spec, tmp_path)
    assert written["video_file_sha256"] == fixture["recipe"]["clips"]["video_file_sha256"][spec.name]
    frames = Video.read(written["video"]).frames
    assert frames_sha256(frames) == video["decoded_sha256"]
    resized = resize_frames(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), (384, 512))
    tracks = track_grid(full_size_model, resized, VBENCH_GRID_SIZE, *frames.shape[1:3]).numpy()
    prediction = predict_motion(tracks, *frames.shape[1:3])
    value = 1.0 if video["prompt_type"] in prediction["predicted"] else 0.0
    result = ScoreResult("vbench.camera_motion", value, 0, 1, True, {"target": camera_target(video["prompt"]),
                                                                    **prediction})
    _assert_video_matches(video, tracks, result, fixture["recipe"]["track_tolerance_px"])


@pytest.mark.slow
def test_parity_with_vbench_through_the_cli(fixture, tmp_path):
    """Every parity clip through ``anibench score`` with the full-size recipe weights as a local entry."""
    from anibench.results import load_samples

    from parity.clips import write_clip

    clips = tmp_path / "clips"
    clips.mkdir()
    for video in fixture["videos"]:
        spec = _spec(fixture, video["name"])
        os.replace(write_clip(spec, tmp_path / "written")["video"], clips / f"{spec.name}.mp4")
    # VBench read the target from the file name "<clip>, <phrase>.mp4"; here it is the case's prompt.
    (clips / "prompts.json").write_text(json.dumps({v["name"]: v["prompt"] for v in fixture["videos"]}))
    seed = fixture["recipe"]["weights"]["cotracker2"]["seed"]
    WeightStore().add_local("seeded_cotracker2", write_cotracker2_checkpoint(tmp_path / "cotracker2.pth", seed),
                            format="torch-state-dict", converter=CONVERTER, replace=True)
    done = subprocess.run(
        [sys.executable, "-m", "anibench", "score", str(clips), "--out", str(tmp_path / "run"), "--suite",
         f"folder:{clips}", "--scorers", "vbench.camera_motion", "--device", "cpu", "--dtype", "fp32", "--no-report"],
        capture_output=True, text=True, timeout=1800,
        env={**os.environ, "ANIBENCH_WEIGHT_ALIASES": "cotracker2=seeded_cotracker2"})
    assert done.returncode == 0, done.stdout + done.stderr
    records = {r["case_id"]: r for r in load_samples(tmp_path / "run") if r["scorer"] == "vbench.camera_motion"}
    values = []
    for video in fixture["videos"]:
        record = records[video["name"]]
        assert record["status"] == "ok", record["message"]
        assert record["value"] == video["video_results"], video["name"]
        assert record["details"]["predicted"] == video["predict_type"], video["name"]
        values.append(record["value"])
    assert abs(float(np.mean(values)) - fixture["aggregate"]) <= fixture["recipe"]["tolerance"]
