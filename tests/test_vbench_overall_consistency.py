"""VBench overall consistency (ViCLIP): sampling, preprocessing and formula by hand; parity with VBench's own
code (tests/parity/fixtures/vbench_overall_consistency.json); the scorer through a scoring session on seeded
weights; bad input; the perturbation battery as a plumbing check."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import InputError
from anibench.models import viclip
from anibench.models import vbench_consistency as vc
from anibench.runtime.context import Runtime
from anibench.runtime.weights import WeightStore
from anibench.sanity import PERTURBATIONS, run_battery
from anibench.scoring import SCORERS, Expect, ScoreInput, ScoreResult
from anibench.session import ScoringSession
from anibench.video import Video

from conftest import moving_square
from parity.weights_viclip import MICRO, SMALL, write_viclip_checkpoint

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "vbench_overall_consistency.json"
ENTRY = "viclip_internvid_10m_flt"
SCORER = "vbench.overall_consistency"


def raw_values(pixels: torch.Tensor) -> torch.Tensor:
    """Undo the CLIP normalisation: the resized values on the 0-255 scale."""
    return (pixels * torch.tensor(vc.CLIP_STD).view(3, 1, 1) + torch.tensor(vc.CLIP_MEAN).view(3, 1, 1)) * 255


# --- sampling, preprocessing, formula ------------------------------------------------------------


@pytest.mark.parametrize(
    "length, expected",
    [
        (49, [2, 8, 14, 20, 26, 32, 38, 45]),  # edges 0,6,12,18,24,30,36,42,49 -> (a + b - 1) // 2
        (17, [0, 2, 4, 6, 8, 10, 12, 15]),
        (8, [0, 1, 2, 3, 4, 5, 6, 7]),
        (9, [0, 1, 2, 3, 4, 5, 6, 7]),  # segments [7, 8] -> 7
        (5, [0, 1, 2, 3, 4, 4, 4, 4]),  # fewer frames than 8: every frame, the last repeated
        (1, [0] * 8),
    ],
)
def test_segment_middles_by_hand(length, expected):
    assert viclip.segment_middle_indices(length) == expected


def test_an_empty_clip_has_no_frames_to_sample():
    with pytest.raises(InputError, match="no frames"):
        viclip.segment_middle_indices(0)


def test_resize_is_rounded_and_clamped_to_uint8_before_scaling():
    """VBench resizes the uint8 frames of decord's torch bridge: bicubic overshoot is clamped, values rounded."""
    frames = np.zeros((1, 64, 64, 3), np.uint8)
    frames[:, :, 32:] = 255
    raw = raw_values(viclip.overall_consistency_pixels(frames))
    assert raw.shape == (1, 3, 224, 224)
    assert raw.min() > -1e-3 and raw.max() < 255 + 1e-3
    assert torch.allclose(raw, raw.round(), atol=2e-3)  # whole grey levels
    float_resized = raw_values(vc.background_consistency_pixels(frames))  # same transform on float frames
    assert float_resized.min() < -5 and float_resized.max() > 260


def test_short_side_224_is_cropped_without_resizing():
    frames = np.random.default_rng(0).integers(0, 256, (2, 304, 224, 3), dtype=np.uint8)
    pixels = viclip.overall_consistency_pixels(frames)
    expected = torch.from_numpy(frames[:, 40:264]).permute(0, 3, 1, 2).float()  # top round(80 / 2) = 40
    assert torch.allclose(raw_values(pixels), expected, atol=1e-3)
    geometry = viclip.overall_consistency_geometry(304, 224)
    assert geometry.resized == (304, 224) and geometry.crop_offset == (40, 0)
    assert viclip.overall_consistency_geometry(480, 848).resized == (224, 395)


@pytest.mark.parametrize("bad", [np.zeros((2, 8, 8), np.uint8), np.zeros((2, 8, 8, 3), np.float32),
                                 np.zeros((0, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 4), np.uint8)])
def test_frames_must_be_decoded_uint8_rgb(bad):
    with pytest.raises(InputError):
        viclip.overall_consistency_pixels(bad)


def test_score_is_the_cosine_and_can_be_negative():
    assert viclip.overall_consistency_score(torch.tensor([2.0, 0.0]), torch.tensor([3.0, 3.0])) == pytest.approx(
        math.sqrt(0.5), abs=1e-7)
    assert viclip.overall_consistency_score(torch.tensor([1.0, 0.0]), torch.tensor([-4.0, 0.0])) == pytest.approx(-1.0)
    assert viclip.overall_consistency_score(torch.tensor([[0.0, 5.0]]), torch.tensor([1.0, 0.0])) == pytest.approx(0.0)


def test_long_prompts_are_cut_to_32_tokens_ending_with_end_of_text():
    tokens = viclip.tokenize("word " * 40)
    assert tokens.truncated and tokens.length == 42 and len(tokens.ids) == 32
    assert tokens.ids[0] == viclip.SOT_TOKEN and tokens.ids[-1] == viclip.EOT_TOKEN
    short = viclip.tokenize("a cat")
    assert not short.truncated and short.ids[: short.length][-1] == viclip.EOT_TOKEN and short.ids[-1] == 0


# --- parity with VBench's own code ----------------------------------------------------------------
# VBench at 45e79ec ran compute_overall_consistency (scripts/parity/vbench_overall_consistency_reference.py)
# on the SMALL seeded ViCLIP built from its own classes, on the clips and prompts of
# tests/parity/clips_overall_consistency.py. Here the same weights are converted by anibench's converter,
# the clips decoded by anibench (PyAV) and every step run by anibench's code.


@pytest.fixture(scope="module")
def fixture() -> dict:
    if not FIXTURE.is_file():
        raise FileNotFoundError(f"{FIXTURE} is missing: run scripts/parity/vbench_overall_consistency_reference.py")
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def clips(tmp_path_factory, fixture) -> dict[str, dict]:
    from parity.clips import frames_sha256, write_parity_clips
    from parity.clips_overall_consistency import OVERALL_CLIPS

    written = write_parity_clips(tmp_path_factory.mktemp("overall-clips"), OVERALL_CLIPS)
    recorded = fixture["recipe"]["clips"]["video_file_sha256"]
    for name, clip in written.items():
        assert clip["video_file_sha256"] == recorded[name], f"{name}: the encoder wrote other bytes than VBench read"
    for video in fixture["videos"]:
        frames = Video.read(written[video["name"]]["video"]).frames
        assert frames_sha256(frames) == video["decoded_sha256"], f"{video['name']}: other frames than decord's"
        written[video["name"]]["frames"] = frames
    return written


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory, fixture) -> Path:
    """A weights folder holding the fixture's SMALL and the MICRO seeded files as local entries."""
    root = tmp_path_factory.mktemp("viclip-weights")
    scratch = tmp_path_factory.mktemp("viclip-files")
    store = WeightStore(root)
    seed = fixture["recipe"]["weights"]["small"]["seed"]
    store.add_local("seeded_viclip_small", write_viclip_checkpoint(scratch / "ViClip-small.pth", SMALL, seed),
                    format="torch-state-dict", converter="anibench.models.viclip:convert_any_size")
    store.add_local("seeded_viclip_micro", write_viclip_checkpoint(scratch / "ViClip-micro.pth", MICRO, seed),
                    format="torch-state-dict", converter="anibench.models.viclip:convert_any_size")
    return root


@pytest.fixture(scope="module")
def small_model(weights_root):
    return viclip.load_viclip(WeightStore(weights_root).resolve("seeded_viclip_small").path)


def test_tokens_equal_vbenchs_tokenizer(fixture):
    assert len(fixture["tokenizer"]) >= 10
    for row in fixture["tokenizer"]:
        assert list(viclip.tokenize(row["prompt"]).ids) == row["ids"], row["prompt"]


def test_parity_with_vbench_per_video_and_aggregate(fixture, clips, small_model):
    tolerance = fixture["recipe"]["tolerance"]
    values = []
    for video in fixture["videos"]:
        frames = clips[video["name"]]["frames"]
        indices = viclip.segment_middle_indices(len(frames))
        assert indices == video["frame_indices"]
        pixels = viclip.overall_consistency_pixels(frames[indices])
        summary = video["debug"]["model_input"]
        assert summary["shape"] == [1, *pixels.shape]
        assert pixels.double().abs().sum().item() == pytest.approx(summary["sum_abs"], rel=1e-5)
        embedding = viclip.video_embeddings(small_model, pixels[None])[0]
        text = viclip.text_embeddings(small_model, [viclip.tokenize(video["prompt"]).ids])[0]
        for ours, theirs in ((embedding, video["debug"]["video_feature"]), (text, video["debug"]["text_feature"])):
            unit = ours / ours.norm()
            assert torch.allclose(unit, torch.tensor(theirs), atol=tolerance), video["name"]
        value = viclip.overall_consistency_score(embedding, text)
        assert abs(value - video["video_results"]) <= tolerance, (video["name"], value, video["video_results"])
        values.append(value)
    assert abs(float(np.mean(values)) - fixture["aggregate"]) <= tolerance


def test_the_tolerance_catches_wrong_preprocessing(fixture):
    """VBench's values with one step changed (float resize, antialias, segment start) move beyond 1e-4."""
    for name, variant in fixture["sensitivity"].items():
        assert variant["max_abs_video_delta"] > 10 * fixture["recipe"]["tolerance"], name
        assert variant["feature_max_abs_delta"] > 10 * fixture["recipe"]["tolerance"], name


# --- the scorer through a scoring session -------------------------------------------------------


def _runtime(weights_root: Path, substitute: str) -> Runtime:
    return Runtime(device="cpu", dtype="fp32", batch_size=4, weights_root=str(weights_root),
                   weight_aliases={ENTRY: substitute})


def test_scorer_reproduces_vbench_through_a_session(fixture, clips, weights_root):
    """The registered scorer, its features (8 frames decoded from the file) and family give VBench's values."""
    chosen = [video for video in fixture["videos"] if video["name"] in ("portrait_64x96_cut", "short_5f_112x80",
                                                                       "tall_224x304")]
    with ScoringSession([SCORER], _runtime(weights_root, "seeded_viclip_small")) as session:
        results = session.score([clips[v["name"]]["video"] for v in chosen], prompts=[v["prompt"] for v in chosen])
    for video, result in zip(chosen, results):
        score = result[SCORER]
        assert isinstance(score, ScoreResult), score
        assert score.value == pytest.approx(video["video_results"], abs=fixture["recipe"]["tolerance"])
        assert score.details["frame_indices"] == video["frame_indices"]
    details = {v["name"]: r[SCORER].details for v, r in zip(chosen, results)}
    assert details["portrait_64x96_cut"]["prompt_truncated"] is True
    assert details["portrait_64x96_cut"]["resized_to"] == [336, 224]
    assert details["tall_224x304"]["crop_offset"] == [40, 0]
    assert SCORERS.get(SCORER)().describe()["sampling"] == "segment_middles count=8"


def test_missing_weights_name_the_file_and_the_commands(tmp_path):
    with ScoringSession([SCORER], Runtime(device="cpu", dtype="fp32", weights_root=str(tmp_path))) as session:
        (result,) = session.score([moving_square(9)], prompts=["a square slides"], case_ids=["case-a"])
    error = result[SCORER]
    assert isinstance(error, Exception)
    for fragment in ("ViClip-InternVid-10M-FLT.pth", ENTRY, f"anibench weights import {ENTRY}"):
        assert fragment in str(error), str(error)


def test_an_empty_prompt_is_an_input_error_naming_scorer_and_case():
    sample = ScoreInput("case-empty", Video(moving_square(9), 16.0), prompt="   ")
    with pytest.raises(InputError, match=f"empty prompt; {SCORER}") as error:
        SCORERS.get(SCORER)().score(sample)
    assert "case-empty" in str(error.value)


# --- the perturbation battery (random weights: plumbing) --------------------------------------------


def _battery_samples() -> list[ScoreInput]:
    prompts = ["a square slides right", "a red ball bounces", "waves on a beach at dusk", "a cat sleeps"]
    samples = []
    for seed, prompt in enumerate(prompts):
        frames = moving_square(17, 64, 96, step=1.0 + seed, seed=seed)
        guide = GuideFrame(0.0, 0, frames[0].copy())
        region = np.zeros(frames.shape[:3], bool)
        region[:, 10:50, 20:80] = True
        guidance = Guidance("sanity", (guide,), 17, 16.0, 64, 96, motion_region=region)
        samples.append(ScoreInput(f"case-{seed}", Video(frames, 16.0), prompt, guidance))
    return samples


def test_battery_plumbing_with_random_weights(weights_root):
    """Every perturbation scores without error; unread inputs (guides, mask) change nothing; another prompt
    changes the value (it reaches the text tower). Directions are not judged: with random weights they are chance."""
    scorer = SCORERS.get(SCORER)()
    assert scorer.expectations["swap_prompt"] is Expect.DOWN  # declared for the published weights
    report = run_battery([scorer], _battery_samples(), runtime=_runtime(weights_root, "seeded_viclip_micro"),
                         workers=1)
    checks = {check.perturbation: check for check in report.checks}
    assert set(checks) == {"swap_prompt", "swap_guide", "invert_mask"}  # the frame perturbations make no claim
    assert all(check.errors == 0 for check in checks.values())
    for name in ("swap_guide", "invert_mask"):
        assert checks[name].cases == 4 and checks[name].moved_as_declared == 4, name
    swapped = checks["swap_prompt"]
    assert swapped.cases == 4 and swapped.informative == 4
    assert all(miss["after"] != miss["before"] for miss in swapped.misses)
    # The frame perturbations, scored with the same session machinery: no errors, finite values in range.
    from anibench.sanity import score_values

    samples = _battery_samples()
    jobs = [(PERTURBATIONS[name](samples[0], samples[1]), [scorer]) for name in PERTURBATIONS]
    with ScoringSession([scorer], _runtime(weights_root, "seeded_viclip_micro"), workers=1) as session:
        values = score_values(session, [(perturbed, scorers) for perturbed, scorers in jobs if perturbed is not None])
    for row in values:
        assert isinstance(row[SCORER], float) and -1.0 <= row[SCORER] <= 1.0, row
