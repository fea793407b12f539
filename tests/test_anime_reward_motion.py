"""AnimeReward visual motion (ActionCLIP): parity with the published code (tests/parity/fixtures/anime_reward_motion*.json,
made by scripts/parity/anime_reward_motion_reference.py), the scorer through a scoring session on seeded weights,
bad input, and the perturbation battery as a plumbing check (random weights: never scores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import InputError
from anibench.features.actionclip import motion_frame_indices
from anibench.models import actionclip as ac
from anibench.features.anime_reward_inputs import SAMPLING, motion_positions, squash_to_clip_tensor
from anibench.runtime.context import Runtime
from anibench.runtime.weights import WeightStore
from anibench.sanity import PERTURBATIONS, run_battery, score_values
from anibench.scoring import SCORERS, Expect, ScoreInput, ScoreResult
from anibench.session import ScoringSession
from anibench.video import Video

from conftest import moving_square
from parity.weights_actionclip import FULL, MICRO, SMALL, actionclip_state_sha256, write_actionclip_checkpoint

FIXTURES = Path(__file__).parent / "parity" / "fixtures"
ENTRY = "anime_reward_actionclip"
SCORER = "anime_reward.visual_motion"


def _fixture(name: str) -> dict:
    path = FIXTURES / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run scripts/parity/anime_reward_motion_reference.py")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def fixture() -> dict:
    return _fixture("anime_reward_motion.json")


@pytest.fixture(scope="module")
def clips(tmp_path_factory, fixture) -> dict[str, dict]:
    from parity.clips import frames_sha256, write_parity_clips
    from parity.clips_anime_reward_motion import MOTION_CLIPS

    written = write_parity_clips(tmp_path_factory.mktemp("motion-clips"), MOTION_CLIPS)
    for video in fixture["videos"]:
        clip = written[video["name"]]
        assert clip["video_file_sha256"] == fixture["recipe"]["clips"]["video_file_sha256"][video["name"]]
        decoded = Video.read(clip["video"])
        clip["frames"], clip["fps"] = decoded.frames, decoded.fps
        indices = SAMPLING.indices(len(decoded.frames), decoded.fps)
        assert frames_sha256(decoded.frames[indices]) == video["decoded_sha256"], video["name"]
    return written


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory, fixture) -> Path:
    """A weights folder with the fixture's SMALL and the MICRO seeded files as local entries."""
    root = tmp_path_factory.mktemp("actionclip-weights")
    scratch = tmp_path_factory.mktemp("actionclip-files")
    seed = fixture["recipe"]["weights"]["seed"]
    assert fixture["recipe"]["weights"]["state_dict_sha256"] == actionclip_state_sha256(SMALL, seed)
    store = WeightStore(root)
    for name, size in (("small", SMALL), ("micro", MICRO)):
        store.add_local(f"seeded_actionclip_{name}", write_actionclip_checkpoint(scratch / f"{name}.pth", size, seed),
                        format="torch-state-dict", converter="anibench.models.actionclip:convert_any_size")
    return root


def _runtime(root: Path, substitute: str, batch_size: int = 4) -> Runtime:
    return Runtime(device="cpu", dtype="fp32", batch_size=batch_size, weights_root=str(root),
                   weight_aliases={ENTRY: substitute})


# --- sampling ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frames, sampled_head, motion", [
    (160, [0, 6, 12], [0, 18, 36, 54, 78, 96, 114, 138]),  # first 144 only: arange(0, 144, 6)
    (40, [0, 1, 3], [0, 5, 10, 15, 21, 26, 31, 38]),
    (12, [0, 1, 2], [0, 1, 3, 4, 6, 7, 9, 11]),  # <= 24: every frame; linspace(0, 11, 8).long()
    (8, [0, 1, 2], [0, 1, 2, 3, 4, 5, 6, 7]),
])  # fmt: skip
def test_the_8_motion_frames_by_hand(frames, sampled_head, motion):
    sampled, chosen = motion_frame_indices(frames, 16.0)
    assert sampled[:3] == sampled_head and len(sampled) == min(frames, 24)
    assert chosen == motion and max(chosen) < 144


# --- parity with the published code ---------------------------------------------------------------------


def test_tokens_equal_clip_tokenize(fixture):
    assert [ac.tokenize(p) for p in ac.MOTION_PROMPTS] == fixture["tokens"]["motion_prompts"]
    for row in fixture["tokens"]["extra"]:
        assert ac.tokenize(row["text"]) == row["ids"], row["text"]


def _check_parity(fixture: dict, clips: dict, model: ac.ActionClip) -> None:
    tolerance = fixture["recipe"]["tolerance"]
    text = ac.text_embeddings(model)
    unit_text = text / text.norm(dim=-1, keepdim=True)
    for video in fixture["videos"]:
        clip = clips[video["name"]]
        frames = clip["frames"]
        assert len(frames) == video["total_frames_metadata"]
        sampled = [int(i) for i in SAMPLING.indices(len(frames), clip["fps"])]
        assert sampled == video["indices"]
        positions = motion_positions(len(sampled))
        assert positions == video["motion_positions"]
        pixels = torch.from_numpy(squash_to_clip_tensor(frames[sampled][positions]))
        assert [1, *pixels.shape] == video["model_input"]["shape"]
        assert pixels.double().abs().sum().item() == pytest.approx(video["model_input"]["sum_abs"], rel=1e-6)
        embedding = ac.video_embeddings(model, pixels[None])[0]
        assert torch.allclose(embedding / embedding.norm(), torch.tensor(video["video_feature"]), atol=tolerance)
        assert torch.allclose(unit_text, torch.tensor(video["text_features"]), atol=tolerance)
        score = ac.motion_score(embedding, text)
        assert np.allclose(score.cosines, video["cosines"], atol=tolerance / 100)  # 1e-4 on the 100x logits
        assert np.allclose(score.probabilities, video["probs"], atol=tolerance)
        assert abs(score.value - video["motion_score"]) <= tolerance, (video["name"], score.value)


def test_parity_with_the_published_code(fixture, clips, weights_root):
    model = ac.load_actionclip(WeightStore(weights_root).resolve("seeded_actionclip_small").path)
    _check_parity(fixture, clips, model)


def test_the_tolerance_catches_wrong_preprocessing(fixture):
    """The published model's value with one step changed (crop, bilinear, whole clip, first 8) moves beyond 1e-4."""
    assert set(fixture["sensitivity"]) == {"center_crop_not_squash", "bilinear_not_bicubic",
                                           "whole_clip_not_first_144", "first_8_not_linspace"}
    for name, variant in fixture["sensitivity"].items():
        assert variant["feature_max_abs_delta"] > 10 * fixture["recipe"]["tolerance"], name
        assert variant["max_abs_score_delta"] > 10 * fixture["recipe"]["tolerance"], name


def test_construction_time_clip_weights_are_all_overwritten(fixture):
    weights = fixture["recipe"]["weights"]
    assert weights["construction_weights_overwritten"] is True and weights["construction_seed"] != weights["seed"]


@pytest.mark.slow
def test_full_size_parity_with_the_published_code(tmp_path, clips):
    """The full-size ViT-B/16 network (6 adapter layers) through the published converter (convert_published)."""
    full = _fixture("anime_reward_motion_full.json")
    seed = full["recipe"]["weights"]["seed"]
    source = write_actionclip_checkpoint(tmp_path / "testvl-pre76-top187-rec69.pth", FULL, seed)
    ac.convert_published(source, tmp_path / "converted")
    source.unlink()
    model = ac.load_actionclip(tmp_path / "converted")
    assert model.arch.adapter_layers == full["recipe"]["weights"]["adapter_layers_counted_by_load_py"] == 6
    _check_parity(full, clips, model)


# --- the scorer through a scoring session -----------------------------------------------------------------


def test_scorer_reproduces_the_published_values_through_a_session(fixture, clips, weights_root):
    """The registered scorer, its features (8 frames decoded from each file) and family, batched across clips."""
    videos = fixture["videos"]
    with ScoringSession([SCORER], _runtime(weights_root, "seeded_actionclip_small")) as session:
        results = session.score([clips[v["name"]]["video"] for v in videos])
    for video, result in zip(videos, results):
        score = result[SCORER]
        assert isinstance(score, ScoreResult), score
        assert score.value == pytest.approx(video["motion_score"], abs=fixture["recipe"]["tolerance"])
        assert 0.0 <= score.value <= 1.0
        assert score.details["frame_indices"] == video["indices"]
        assert score.details["motion_frames"] == [video["indices"][p] for p in video["motion_positions"]]
        assert score.details["probabilities"]["large_movement"] == pytest.approx(score.value)
        assert score.details["cosines"]["stationary"] == pytest.approx(video["cosines"][1], abs=1e-6)
    assert SCORERS.get(SCORER)().describe()["sampling"] == "uniform count=24, first 144"


def test_missing_weights_name_the_file_and_the_commands(tmp_path):
    with ScoringSession([SCORER], Runtime(device="cpu", dtype="fp32", weights_root=str(tmp_path))) as session:
        (result,) = session.score([moving_square(9)], case_ids=["case-a"])
    error = result[SCORER]
    assert isinstance(error, Exception)
    for fragment in ("testvl-pre76-top187-rec69.pth", ENTRY, f"anibench weights import {ENTRY}"):
        assert fragment in str(error), str(error)


def test_a_clip_shorter_than_8_frames_is_an_input_error_naming_scorer_and_case():
    sample = ScoreInput("case-short", Video(moving_square(7), 16.0))
    with pytest.raises(InputError, match=f"7 frame\\(s\\); {SCORER} needs at least 8") as error:
        SCORERS.get(SCORER)().score(sample)
    assert "case-short" in str(error.value)


# --- the perturbation battery (random weights: plumbing) ------------------------------------------------------


def _battery_samples() -> list[ScoreInput]:
    prompts = ["a square slides right", "a red ball bounces", "waves on a beach at dusk", "a cat sleeps"]
    samples = []
    for seed, prompt in enumerate(prompts):
        frames = moving_square(40, 64, 96, step=1.0 + seed, seed=seed)  # low_fps keeps >= 8 of 40 frames
        guide = GuideFrame(0.0, 0, frames[0].copy())
        region = np.zeros(frames.shape[:3], bool)
        region[:, 10:50, 20:80] = True
        guidance = Guidance("sanity", (guide,), 40, 16.0, 64, 96, motion_region=region)
        samples.append(ScoreInput(f"case-{seed}", Video(frames, 16.0), prompt, guidance))
    return samples


def test_battery_plumbing_with_random_weights(weights_root):
    """Every perturbation scores without error; the unread inputs (prompt, guides, mask) change nothing. Frame
    directions (freeze is declared DOWN for the published weights) are not judged: with random weights they are chance."""
    scorer = SCORERS.get(SCORER)()
    assert scorer.expectations["freeze"] is Expect.DOWN
    runtime = _runtime(weights_root, "seeded_actionclip_micro")
    samples = _battery_samples()
    report = run_battery([scorer], samples, runtime=runtime, workers=1,
                         perturbations=["swap_prompt", "swap_guide", "invert_mask"])
    checks = {check.perturbation: check for check in report.checks}
    assert set(checks) == {"swap_prompt", "swap_guide", "invert_mask"}
    for name, check in checks.items():
        assert check.errors == 0 and check.cases == 4 and check.moved_as_declared == 4, name
    jobs = [(PERTURBATIONS[name](samples[0], samples[1]), [scorer]) for name in PERTURBATIONS]
    with ScoringSession([scorer], runtime, workers=1) as session:
        values = score_values(session, [(perturbed, scorers) for perturbed, scorers in jobs if perturbed is not None])
    for row in values:
        assert isinstance(row[SCORER], float) and 0.0 <= row[SCORER] <= 1.0, row
