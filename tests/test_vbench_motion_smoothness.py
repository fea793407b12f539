"""VBench's motion smoothness on AMT-S: geometry, conversions and formula by hand; parity with VBench below.

The parity fixture (tests/parity/fixtures/vbench_motion_smoothness.json) holds VBench 45e79ec's own outputs on
the recipe's seeded full-size AMT-S weights (tests/parity/weights_amt.py) and clips, written by
scripts/parity/vbench_motion_smoothness_reference.py in the parity venv. Here the same weights are written in
the published format, imported through the real weights store and converter, and the scorer runs through a
scoring session (PyAV decoding, streaming feature, batched family); every value must match within 1e-4.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anibench.errors import InputError, MissingWeightsError
from anibench.features.amt import interpolated_frames
from anibench.models import amt

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "vbench_motion_smoothness.json"
ALIASES = {"amt_s": "seeded_amt_s"}
MIB = 1024**2
# Mean absolute interpolation error per frame, grey levels (0-255): anibench vs VBench differ by up to 3e-5.
ERROR_TOLERANCE = 1e-3


# --- geometry: VBench's scale and padding -------------------------------------------------------


@pytest.mark.parametrize("size", [(128, 128), (480, 848), (1080, 1920), (2160, 3840)])
def test_cpu_rule_never_downscales(size):
    geometry = amt.vbench_geometry(*size)
    assert geometry.scale == 1.0 and geometry.divisor == 16


def test_cuda_rule_by_hand_for_4k_on_an_80gb_gpu():
    """s = 524288/8294400 · sqrt((81559 − 2500)/1500) = 0.4589; 16/sqrt(s) = 23.62 → scale 16/23, divisor 23;
    2160 = 23·93 + 21 → pad 2 (top 1, bottom 1); 3840 = 23·166 + 22 → pad 1 (left 0, right 1)."""
    geometry = amt.vbench_geometry(2160, 3840, vram_bytes=81559 * MIB)
    assert geometry.scale == pytest.approx(16 / 23, abs=1e-12)
    assert geometry.divisor == 23 and geometry.pad == (0, 1, 1, 1)
    assert amt.vbench_geometry(1080, 1920, vram_bytes=81559 * MIB).scale == 1.0  # 1080p is not scaled there


def test_scale_steps_to_below_one_only_under_16_17_squared():
    """scale = 16/floor(16/sqrt(s)): still 1 at s = 0.9 (16/0.949 = 16.87), 16/17 at s = 0.88."""
    area_for = lambda s: 1024 * 512 / s  # noqa: E731 - with vram such that the sqrt term is 1
    vram = 4000 * MIB
    assert amt.vbench_scale(1, int(area_for(0.9)), vram) == 1.0
    assert amt.vbench_scale(1, int(area_for(0.88)) + 1, vram) == pytest.approx(16 / 17)


@pytest.mark.parametrize(
    "height, width, pad",
    [(128, 192, (0, 0, 0, 0)), (136, 200, (4, 4, 4, 4)), (129, 137, (3, 4, 7, 8)), (240, 320, (0, 0, 0, 0))],
)
def test_replicate_padding_to_multiples_of_16(height, width, pad):
    """InputPadder: pad = ((h//16)+1)·16 − h mod 16, split floor/ceil as (left, right, top, bottom)."""
    assert amt.vbench_geometry(height, width).pad == pad


def test_input_is_uint8_over_255_replicate_padded_and_output_truncated():
    frames = np.zeros((1, 129, 137, 3), np.uint8)
    frames[0, :, -1] = 255
    geometry = amt.vbench_geometry(129, 137)
    images = amt.frames_to_input(frames, geometry)
    assert images.shape == (1, 3, 144, 144) and images.dtype == torch.float32
    # 137 = 3 (replicated column 0) + 137 + 4 (replicated column 136, white): white from padded column 139 on.
    assert torch.all(images[0, :, :, 139:] == 1.0) and torch.all(images[0, :, :, :139] == 0.0)
    values = torch.full((1, 3, 144, 144), 0.999)  # 254.745 → 254 (truncated, not rounded)
    values[0, 0] = 1.5  # clipped to 255
    out = amt.output_to_uint8(values, geometry)
    assert out.shape == (1, 129, 137, 3) and out.dtype == torch.uint8
    assert int(out[0, 0, 0, 1]) == 254 and int(out[0, 0, 0, 0]) == 255


def test_frames_too_small_for_the_coarsest_correlation_level_are_refused():
    amt.vbench_geometry(128, 128).check()
    with pytest.raises(InputError, match="too small for AMT-S"):
        amt.vbench_geometry(112, 200).check()  # 112 → 14 → 7 → 3 → 1 px at the last level


# --- the formula --------------------------------------------------------------------------------


@pytest.mark.parametrize("count, odd", [(2, []), (3, [1]), (9, [1, 3, 5, 7]), (10, [1, 3, 5, 7])])
def test_the_odd_frames_vbench_compares(count, odd):
    assert interpolated_frames(count) == odd


def test_mean_absolute_error_and_value_by_hand():
    originals = torch.tensor([[[[0, 255, 10]]], [[[7, 7, 7]]]], dtype=torch.uint8)
    predicted = torch.tensor([[[[255, 0, 13]]], [[[7, 7, 7]]]], dtype=torch.uint8)
    errors = amt.mean_abs_diff(originals, predicted)
    assert errors == [pytest.approx((255 + 255 + 3) / 3), 0.0]
    assert amt.motion_smoothness_value([10.0, 20.0]) == pytest.approx((255 - 15) / 255)
    with pytest.raises(ValueError):
        amt.motion_smoothness_value([])


# --- the network and the published checkpoint -------------------------------------------------


@pytest.fixture(scope="module")
def fixture() -> dict:
    if not FIXTURE.is_file():
        raise FileNotFoundError(f"{FIXTURE} is missing: run scripts/parity/vbench_motion_smoothness_reference.py")
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def published(tmp_path_factory, fixture) -> Path:
    """The recipe's AMT-S weights as amt-s.pth (``{"state_dict": ...}``), as VBench read them for the fixture."""
    from parity.weights_amt import amt_s_state_dict, state_dict_sha256, write_amt_s_checkpoint

    seed = fixture["recipe"]["weights"]["amt_s"]["seed"]
    assert state_dict_sha256(amt_s_state_dict(seed)) == fixture["recipe"]["weights"]["amt_s"]["state_dict_sha256"]
    return write_amt_s_checkpoint(tmp_path_factory.mktemp("amt") / "amt-s.pth", seed=seed)


def test_the_architecture_is_amt_s(published):
    from parity.weights_amt import amt_s_recipe

    layout = amt.expected_layout()
    assert layout == {name: shape for name, shape, _, _ in amt_s_recipe()}
    assert len(layout) == 213 and sum(int(np.prod(shape)) for shape in layout.values()) == 2_990_543


def test_converted_weights_load_back_to_the_same_network(published, tmp_path):
    amt.convert_published(published, tmp_path / "converted")
    from_folder = amt.load_amt(tmp_path / "converted")
    from_file = amt.load_amt(published)
    for (name, a), (_, b) in zip(from_folder.state_dict().items(), from_file.state_dict().items()):
        assert torch.equal(a, b), name
    assert amt.parameter_count(from_folder) == 2_990_543


def test_the_training_checkpoint_layout_with_epoch_loads_with_weights_only(tmp_path):
    """AMT's trainer saves {'epoch', 'state_dict', 'optim'}: plain containers, no allow-listing needed."""
    from parity.weights_amt import amt_s_state_dict

    path = tmp_path / "amt-s.pth"
    torch.save({"epoch": 299, "state_dict": amt_s_state_dict(1),
                "optim": {"state": {}, "param_groups": [{"lr": 2e-4, "betas": (0.9, 0.999), "params": [0, 1]}]}}, path)
    assert set(amt.read_published(path)) == set(amt.expected_layout())


@pytest.mark.parametrize("mangle, words", [
    (lambda state: state, ["no 'state_dict'"]),
    (lambda state: {"state_dict": {**state, "comb_block.2.weight": torch.zeros(3, 18, 5, 5)}}, ["wrong shapes"]),
    (lambda state: {"state_dict": {k: v for k, v in state.items() if not k.startswith("update2.")}}, ["missing"]),
])
def test_checkpoints_of_another_layout_are_refused_naming_the_file(tmp_path, mangle, words):
    from parity.weights_amt import amt_s_state_dict

    path = tmp_path / "other.pth"
    torch.save(mangle(amt_s_state_dict(2)), path)
    with pytest.raises(InputError) as err:
        amt.convert_published(path, tmp_path / "out")
    assert all(word in str(err.value) for word in words) and str(path) in str(err.value)


def test_pickled_objects_and_truncated_files_are_refused(published, tmp_path):
    pickled = tmp_path / "namespace.pth"
    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=1)}, pickled)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(published.read_bytes()[:100_000])
    for path in (pickled, truncated):
        with pytest.raises(InputError, match="cannot read the AMT-S checkpoint") as err:
            amt.read_published(path)
        assert str(path) in str(err.value)


def test_without_weights_the_message_names_the_entry_and_the_file():
    from anibench.runtime.context import Runtime
    from anibench.session import ScoringSession

    frames = np.zeros((5, 128, 128, 3), np.uint8)
    runtime = Runtime(device="cpu", dtype="fp32", weight_aliases={})
    with ScoringSession(["vbench.motion_smoothness"], runtime) as session:
        result = session.score([frames], case_ids=["clip"])[0]["vbench.motion_smoothness"]
    assert isinstance(result, MissingWeightsError)
    assert "amt_s" in str(result) and "amt-s.pth" in str(result)


# --- parity with VBench's own code --------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_store(published) -> dict[str, str]:
    from anibench.runtime.weights import WeightStore

    WeightStore().add_local(ALIASES["amt_s"], published, format="torch-state-dict",
                            converter="anibench.models.amt:convert_published")
    return ALIASES


@pytest.fixture(scope="module")
def clips(tmp_path_factory, fixture) -> dict[str, dict]:
    from parity.clips import frames_sha256, write_clip
    from parity.weights_amt import MOTION_CLIPS

    from anibench.video import Video

    folder = tmp_path_factory.mktemp("motion-clips")
    written = {spec.name: write_clip(spec, folder) for spec in MOTION_CLIPS}
    recorded = fixture["recipe"]["clips"]["video_file_sha256"]
    for video in fixture["videos"]:
        name = video["name"]
        assert written[name]["video_file_sha256"] == recorded[name], f"{name}: the encoder wrote other bytes"
        assert frames_sha256(Video.read(written[name]["video"]).frames) == video["decoded_sha256"], (
            f"{name}: anibench decodes other frames than VBench's cv2 reader")
    return written


def _score(aliases, paths, names, **params):
    from anibench.runtime.context import Runtime
    from anibench.session import ScoringSession

    from anibench.scoring import SCORERS

    scorers = [SCORERS.get("vbench.motion_smoothness")(**params)]
    runtime = Runtime(device="cpu", dtype="fp32", batch_size=4, weight_aliases=aliases)
    with ScoringSession(scorers, runtime) as session:
        return [row["vbench.motion_smoothness"] for row in session.score(paths, case_ids=names)]


def test_scorer_reproduces_vbench_through_a_scoring_session(fixture, seeded_store, clips):
    from anibench.scoring import AGGREGATIONS, SCORERS

    names = [video["name"] for video in fixture["videos"]]
    results = _score(seeded_store, [clips[name]["video"] for name in names], names)
    tolerance = fixture["recipe"]["tolerance"]
    for video, result in zip(fixture["videos"], results):
        assert not isinstance(result, BaseException), result
        assert result.value == pytest.approx(video["video_results"], abs=tolerance), video["name"]
        assert result.details["interpolated_frames"] == video["interpolated_frames"]
        # Per frame, in grey levels: observed within 3e-5 (a pixel value or two flipped by float noise).
        assert result.details["errors"] == pytest.approx(video["errors"], abs=ERROR_TOLERANCE)
        assert result.details["scale"] == 1.0
    rule = AGGREGATIONS[SCORERS.get("vbench.motion_smoothness").aggregate]
    aggregate = rule([r.value for r in results], [r.details for r in results])
    assert aggregate == pytest.approx(fixture["aggregate"], abs=tolerance)


def test_vbench_cuda_downscaling_rule_is_reproduced(fixture, seeded_store, clips):
    """VBench's own motion_score with its CUDA anchors and a given total memory: scale 16/21 on 320x240."""
    rule = fixture["cuda_rule"]
    names = list(rule["videos"])
    results = _score(seeded_store, [clips[name]["video"] for name in names], names, vram_bytes=rule["vram_bytes"])
    for name, result in zip(names, results):
        assert not isinstance(result, BaseException), result
        assert result.details["scale"] == pytest.approx(16 / 21) and result.details["padded_size_hw"] == [252, 336]
        assert result.value == pytest.approx(rule["videos"][name]["video_results"], abs=fixture["recipe"]["tolerance"])


def test_the_fixture_tolerance_catches_deliberate_mistakes(fixture):
    """VBench's own code with the two input frames swapped moves per-video values by 1.1e-3 to 8.6e-3; rounding
    instead of truncating the interpolated frame only by 4e-5 to 1.4e-4 (around the 1e-4 tolerance), but every
    frame's error by 2.9e-3 to 0.15 grey levels: beyond the parity test's per-frame tolerance (1e-3; anibench and
    VBench differ by at most 2.7e-5)."""
    tolerance = fixture["recipe"]["tolerance"]
    assert fixture["sensitivity"]["inputs_swapped"]["min_abs_video_delta"] > 10 * tolerance
    rounding = fixture["sensitivity"]["round_instead_of_truncate"]
    assert rounding["max_abs_video_delta"] > tolerance
    assert rounding["min_abs_error_delta"] > 2 * ERROR_TOLERANCE


def test_a_two_frame_clip_is_refused_and_the_battery_plumbing_holds(seeded_store):
    """Two frames leave nothing to interpolate: an input error naming the scorer. With random weights the
    battery checks plumbing only: the prompt, guides and mask the scorer ignores leave values unchanged."""
    from anibench.runtime.context import Runtime
    from anibench.sanity import battery_inputs, run_battery
    from anibench.scoring import SCORERS, Expect
    from anibench.suites import load_suite
    from anibench.video import Video

    too_short = _score(seeded_store, [np.zeros((2, 128, 128, 3), np.uint8)], ["short"])[0]
    assert isinstance(too_short, InputError) and "vbench.motion_smoothness needs at least 3" in str(too_short)

    scorer = SCORERS.get("vbench.motion_smoothness")()
    checkable = [name for name, expect in scorer.expectations.items() if expect is Expect.NONE]
    assert set(checkable) == {"swap_prompt", "swap_guide", "invert_mask"}
    samples = battery_inputs(load_suite({"name": "smoke", "per_action": 1}), max_side=None, limit=2)
    samples = [sample.with_changes(video=Video(sample.video.frames[:9], sample.video.fps)) for sample in samples]
    report = run_battery([scorer], samples, perturbations=checkable, workers=1,
                         runtime=Runtime(device="cpu", dtype="fp32", weight_aliases=seeded_store))
    misses = [(c.perturbation, c.errors, c.misses) for c in report.checks if c.errors or c.misses]
    assert not misses, misses
    assert not report.failures()
