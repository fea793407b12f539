"""VBench imaging quality (MUSIQ-SPAQ): preprocessing and patch layout by hand, the checkpoint converter key
by key, bad checkpoints, the missing-weights message, the battery's plumbing, and parity with VBench's own
code (vbench/imaging_quality.py at 45e79ec with pyiqa 0.1.10's MUSIQ, tests/parity/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anibench.errors import InputError
from anibench.models import musiq
from anibench.runtime.context import Runtime
from anibench.runtime.weights import WeightStore
from anibench.scoring import AGGREGATIONS, ScoreInput
from anibench.session import ScoringSession
from anibench.video import Video

from conftest import moving_square
from parity.clips import frames_sha256, write_parity_clips
from parity.clips_musiq import IMAGING_QUALITY_CLIPS
from parity.weights_musiq import SPAQ_SIZE, TINY_SIZE, musiq_recipe, musiq_state_dict, write_musiq_checkpoint
from anibench.scorers.vbench_imaging_quality import ImagingQuality, video_score

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "vbench_imaging_quality.json"
TINY = musiq.MusiqConfig(hidden_size=TINY_SIZE.hidden, mlp_dim=TINY_SIZE.mlp, num_heads=1, num_layers=TINY_SIZE.layers)


# --- VBench's 'longer' preprocessing --------------------------------------------------------


@pytest.mark.parametrize(
    "height, width, expected",
    [
        (480, 848, (289, 512)),  # 289.81 truncated, not rounded
        (480, 854, (287, 512)),
        (320, 576, (284, 512)),
        (530, 240, (512, 231)),  # portrait: 231.85 -> 231
        (257, 515, (255, 512)),  # odd sizes: 255.50 truncated
        (512, 300, (512, 300)),  # a long side of exactly 512 is left alone
        (64, 96, (64, 96)),  # small frames are not upscaled by VBench (MUSIQ's own scales do that)
    ],
)
def test_longer_side_resize_truncates(height, width, expected):
    assert musiq.vbench_longer_side_size(height, width) == expected


def test_frames_are_halved_bilinearly_without_antialias_and_not_rounded():
    """1024 -> 512 samples input x = 2j + 0.5: the mean of columns 2j, 2j+1; columns 0,1,0,1,... give
    0.5 (not rounded to uint8), columns 0,0,255,255 stay 0 and 255 (an antialiased resize would blur them)."""
    frame = np.zeros((4, 1024, 3), np.uint8)
    frame[:, 1::2, 0] = 1
    frame[:, 2::4, 1] = frame[:, 3::4, 1] = 255
    image = musiq.vbench_frame(frame)
    assert image.shape == (1, 3, 2, 512) and image.dtype == torch.float32
    assert torch.allclose(image[0, 0], torch.full((2, 512), 0.5 / 255))
    expected_green = torch.tensor([0.0, 1.0]).repeat(256).expand(2, 512)
    assert torch.equal(image[0, 1], expected_green)


def test_small_frames_are_only_scaled_to_unit_range():
    frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    image = musiq.vbench_frame(frame)
    assert torch.equal(image[0], torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)])
def test_frames_must_be_uint8_rgb(bad):
    with pytest.raises(InputError, match="uint8 RGB"):
        musiq.vbench_frame(bad)


# --- MUSIQ's multi-scale patches -------------------------------------------------------------


def test_hashed_positions_by_hand():
    """Nearest-neighbour hashing of n patch indices onto a 10-grid: floor(i * 10 / n)."""
    assert musiq.hashed_positions(2, 3).tolist() == [0, 3, 6, 50, 53, 56]
    columns = musiq.hashed_positions(1, 16).tolist()
    assert columns == [0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 9]


@pytest.mark.parametrize("size, expected", [(149, (5, 6)), (224, (0, 0)), (284, (2, 2)), (7, (12, 13))])
def test_same_padding_puts_the_odd_pixel_after(size, expected):
    assert musiq.same_padding(size, 32, 32) == expected


def test_multiscale_patch_rows_by_hand():
    """64x96: scale 224 -> 149x224 (5x7 patches + 14 padding rows), 384 -> 256x384 (8x12 + 48), original 2x3."""
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    rows = musiq.multiscale_patches(image)
    assert rows.shape == (49 + 144 + 6, 3 * 32 * 32 + 3) == (musiq.sequence_length(64, 96), 3075)
    positions, scales, mask = rows[:, -3], rows[:, -2], rows[:, -1]
    assert mask.tolist() == [1.0] * 35 + [0.0] * 14 + [1.0] * 96 + [0.0] * 48 + [1.0] * 6
    assert scales.tolist() == [0.0] * 49 + [1.0] * 96 + [0.0] * 48 + [2.0] * 6
    assert positions[-6:].tolist() == [0, 3, 6, 50, 53, 56]
    assert torch.equal(rows[35:49], torch.zeros(14, 3075))
    # original resolution, patch (row 1, column 2): pixels in [-1, 1], channel-major
    expected = (image[0, :, 32:64, 64:96] - 0.5) * 2
    assert torch.equal(rows[-1, :-3], expected.reshape(-1))


def test_mean_opinion_score_of_a_distribution():
    """pyiqa dist_to_mos: AVA's 10-class distribution -> sum (k + 1) p_k; a single output is itself."""
    distribution = torch.tensor([[0.0, 0.5, 0.5] + [0.0] * 7])
    assert musiq.mean_opinion_score(distribution).item() == pytest.approx(2.5)
    assert musiq.mean_opinion_score(torch.tensor([[42.0]])).item() == 42.0


# --- formula and aggregate -------------------------------------------------------------------


def test_per_video_mean_and_suite_value_over_100():
    assert video_score(np.array([50.0, 60.0, 71.5], np.float32)) == pytest.approx(60.5)
    assert AGGREGATIONS[ImagingQuality.aggregate]([60.5, 40.5], [{}, {}]) == pytest.approx(0.505)
    assert (ImagingQuality.lower, ImagingQuality.upper, ImagingQuality.min_frames) == (0.0, 100.0, 1)


# --- checkpoints -----------------------------------------------------------------------------


def test_recipe_layout_is_the_module_layout_key_by_key():
    """The parity recipe's keys (which pyiqa loads strictly in VBench's run) are the module's, in order."""
    recipe = [(name, shape) for name, shape, _, _ in musiq_recipe(SPAQ_SIZE)]
    assert recipe == list(musiq.expected_layout(musiq.SPAQ).items())
    module = {name: tuple(t.shape) for name, t in musiq.Musiq(TINY).state_dict().items()}
    assert module == musiq.expected_layout(TINY)


def test_published_checkpoint_converts_key_by_key(tmp_path):
    """A checkpoint saved with DataParallel's ``module.`` prefix loads into every parameter unchanged."""
    state = musiq_state_dict(seed=3, size=TINY_SIZE)
    source = tmp_path / "musiq_tiny.pth"
    torch.save({f"module.{key}": value for key, value in state.items()}, source)
    config = musiq.convert_checkpoint(source, tmp_path / "converted")
    assert config == TINY
    model = musiq.load_musiq(tmp_path / "converted")
    loaded = model.state_dict()
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    assert not model.training


def test_published_converter_requires_the_spaq_architecture(tmp_path):
    source = write_musiq_checkpoint(tmp_path / "tiny.pth", size=TINY_SIZE)
    with pytest.raises(InputError, match=r"hidden_size 64 \(expected 384\)") as caught:
        musiq.convert_published(source, tmp_path / "out")
    assert "tiny.pth" in str(caught.value) and not (tmp_path / "out").exists()


def test_the_ten_class_ava_checkpoint_is_refused(tmp_path):
    """pyiqa also publishes MUSIQ-AVA (a 10-way distribution head, ``head.0``): not VBench's model."""
    state = musiq_state_dict(size=TINY_SIZE)
    del state["head.weight"], state["head.bias"]
    state["head.0.weight"], state["head.0.bias"] = torch.zeros(10, TINY_SIZE.hidden), torch.zeros(10)
    torch.save(state, tmp_path / "musiq_ava_ckpt.pth")
    config = musiq.convert_checkpoint(tmp_path / "musiq_ava_ckpt.pth", tmp_path / "any")
    assert config.num_class == 10
    with pytest.raises(InputError, match=r"num_class 10 \(expected 1\)"):
        musiq.convert_checkpoint(tmp_path / "musiq_ava_ckpt.pth", tmp_path / "out", expect=TINY)


@pytest.mark.parametrize("case", ["truncated", "other_model", "missing_tensor"])
def test_bad_checkpoints_name_the_file(tmp_path, case):
    path = tmp_path / f"{case}.pth"
    state = musiq_state_dict(size=TINY_SIZE)
    if case == "truncated":
        torch.save(state, path)
        path.write_bytes(path.read_bytes()[:5000])
        match = "cannot read the MUSIQ checkpoint"
    elif case == "other_model":
        torch.save({"cls_token": torch.zeros(1, 1, 768), "pos_embed": torch.zeros(1, 197, 768)}, path)
        match = "not a MUSIQ checkpoint"
    else:
        del state["transformer_encoder.transformer.encoderblock_1.mlp.fc2.bias"]
        torch.save(state, path)
        match = "missing transformer_encoder.transformer.encoderblock_1.mlp.fc2.bias"
    with pytest.raises(InputError, match=match) as caught:
        musiq.convert_checkpoint(path, tmp_path / "out")
    assert path.name in str(caught.value)


def test_without_weights_the_scorer_says_which_file_and_how():
    reason = ImagingQuality.unavailable_reason()
    for fragment in ("musiq_spaq_ckpt-358bb6af.pth", "anibench weights import musiq_spaq"):
        assert fragment in reason, reason


# --- through the runtime: seeded weights imported into the weights store ----------------------


@pytest.fixture(scope="module")
def tiny_runtime(tmp_path_factory) -> Runtime:
    """Tiny random MUSIQ (hidden 64, 2 layers; the ResNet root at full size) standing in for musiq_spaq."""
    scratch = tmp_path_factory.mktemp("tiny-musiq")
    WeightStore().add_local("seeded_tiny_musiq", write_musiq_checkpoint(scratch / "tiny.pth", seed=5, size=TINY_SIZE),
                            format="torch-state-dict", converter="anibench.models.musiq:convert_checkpoint", replace=True)
    return Runtime(device="cpu", dtype="fp32", weight_aliases={"musiq_spaq": "seeded_tiny_musiq"})


def test_session_scores_every_frame_and_records_the_resize(tiny_runtime):
    wide = moving_square(num_frames=3, height=300, width=560, seed=1)
    with ScoringSession([ImagingQuality()], tiny_runtime) as session:
        (result,) = session.score([wide], fps=16)
    outcome = result["vbench.imaging_quality"]
    assert not isinstance(outcome, BaseException), outcome
    details = outcome.details
    assert details["frames_scored"] == 3 and details["resized"]
    assert details["model_input_hw"] == [274, 512] and details["patches_per_frame"] == 49 + 144 + 9 * 16
    assert details["min_frame_score"] <= outcome.value <= details["max_frame_score"]


def test_battery_plumbing_with_random_weights(tiny_runtime):
    """With random weights only the order-free and input checks hold by construction (they must pass);
    blur's direction is the published model's claim, so here it must only run without errors."""
    from anibench.sanity import run_battery

    samples = [ScoreInput(f"case{i}", video=Video(moving_square(num_frames=3, height=48, width=64, seed=i), 16))
               for i in range(3)]
    report = run_battery([ImagingQuality()], samples, runtime=tiny_runtime,
                         perturbations=["shuffle", "reverse", "blur"], workers=1)
    checks = {check.perturbation: check for check in report.checks}
    for name in ("shuffle", "reverse"):
        assert report.status(checks[name]) == "pass", checks[name]
    assert checks["blur"].errors == 0 and checks["blur"].informative == 3


# --- parity with VBench's own code -----------------------------------------------------------


def test_parity_with_vbench(tmp_path):
    """VBench's values (fixture) on the recipe's full-size random MUSIQ and clips, through anibench's real
    path: weights store import + converter, PyAV decode, scoring session (one frame per pass on CPU)."""
    fixture = json.loads(FIXTURE.read_text())
    recipe = fixture["recipe"]
    source = write_musiq_checkpoint(tmp_path / "seeded_musiq_spaq.pth", seed=recipe["weights"]["seed"])
    WeightStore().add_local("seeded_musiq_spaq", source, format="torch-state-dict",
                            converter="anibench.models.musiq:convert_published", replace=True)
    source.unlink()
    clips = write_parity_clips(tmp_path / "clips", IMAGING_QUALITY_CLIPS)
    names = [video["name"] for video in fixture["videos"]]
    for video in fixture["videos"]:
        assert clips[video["name"]]["video_file_sha256"] == recipe["clips"]["video_file_sha256"][video["name"]]
        assert frames_sha256(Video.read(clips[video["name"]]["video"]).frames) == video["decoded_sha256"]
    runtime = Runtime(device="cpu", dtype="fp32", weight_aliases={"musiq_spaq": "seeded_musiq_spaq"})
    with ScoringSession([ImagingQuality()], runtime) as session:
        results = session.score([clips[name]["video"] for name in names], case_ids=names)
    tolerance = recipe["tolerance"]
    values = []
    for name, video, result in zip(names, fixture["videos"], results):
        outcome = result["vbench.imaging_quality"]
        assert not isinstance(outcome, BaseException), outcome
        assert outcome.value == pytest.approx(video["video_results"], abs=tolerance), name
        assert outcome.details["model_input_hw"] == video["model_input_size_hw"], name
        values.append(outcome.value)
    aggregate = AGGREGATIONS[ImagingQuality.aggregate](values, [{}] * len(values))
    assert aggregate == pytest.approx(fixture["aggregate"], abs=tolerance)
