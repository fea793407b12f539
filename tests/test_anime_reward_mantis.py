"""AnimeReward visual smoothness / visual appeal (Mantis-Idefics2 regression heads).

A tiny random checkpoint folder in the published layout (tests/parity/weights_mantis.py) is loaded through
anibench's loader and scored; parity with the vendored Mantis class under transformers 4.45.1
(tests/parity/fixtures/anime_reward_mantis.json, scripts/parity/anime_reward_mantis_reference.py); the
published rounding and anibench's clamp by hand; bad input; the perturbation battery as a plumbing check.
Random weights: the values check the plumbing, they are not scores.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import InputError
from anibench.features import FeatureSpec
from anibench.models import mantis_idefics2 as mi
from anibench.features.anime_reward_inputs import SAMPLING
from anibench.runtime.context import Runtime
from anibench.runtime.weights import WeightStore
from anibench.sanity import run_battery
from anibench.scoring import SCORERS, Expect, ScoreInput, ScoreResult
from anibench.session import ScoringSession
from anibench.video import Video

from conftest import moving_square
from parity.weights_mantis import MANTIS_CLIPS, MANTIS_PROMPTS, folder_state_sha256, install_tiny_weights, \
    state_dict_recipe, write_tiny_checkpoint

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "anime_reward_mantis.json"
SMOOTH, APPEAL = "anime_reward.visual_smoothness", "anime_reward.visual_appeal"


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("mantis") / "checkpoint-final")


@pytest.fixture(scope="module")
def head(checkpoint):
    return mi.load_head(checkpoint)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, fixture) -> dict[str, dict]:
    from parity.clips import frames_sha256, write_clip

    folder = tmp_path_factory.mktemp("mantis-clips")
    out = {}
    for spec in MANTIS_CLIPS:
        clip = write_clip(spec, folder)
        recorded = fixture["recipe"]["clips"][spec.name]
        assert clip["video_file_sha256"] == recorded["video_file_sha256"], spec.name
        frames = Video.read(clip["video"]).frames
        indices = SAMPLING.indices(len(frames), spec.fps)
        assert frames_sha256(frames[indices]) == recorded["decoded_sha256"], spec.name
        out[spec.name] = {**clip, "frames": frames, "indices": [int(i) for i in indices]}
    return out


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory) -> Path:
    """A weights folder holding the tiny checkpoint folder as a local hf-folder entry (imported as a tree)."""
    root = tmp_path_factory.mktemp("mantis-weights")
    install_tiny_weights(root)
    resolved = WeightStore(root).resolve("seeded_mantis_tiny")
    assert resolved.path.is_dir() and resolved.entry.format == "hf-folder"
    return root


def _runtime(root: Path, batch_size: int = 4) -> Runtime:
    return Runtime(device="cpu", dtype="fp32", batch_size=batch_size, weights_root=str(root),
                   weight_aliases=install_tiny_weights(root))


# --- the published rule by hand -------------------------------------------------------------------------


@pytest.mark.parametrize("logit, published, value", [
    (72.93931, 0.72939, 0.72939),      # round(72.93931, 3) = 72.939
    (55.55549, 0.55555, 0.55555),
    (123.4567, 1.23457, 1.0),          # the published number leaves [0, 1]; anibench clamps the value
    (-5.0, -0.05, 0.0),
])
def test_round_then_divide_then_clamp(logit, published, value):
    from anibench.features.anime_reward_inputs import clamp_unit

    assert mi.published_value(logit) == pytest.approx(published, abs=1e-12)
    assert clamp_unit(mi.published_value(logit)) == pytest.approx((value, published), abs=1e-12)


def test_the_scorer_reports_the_clamped_value_and_keeps_the_published_number():
    sample = ScoreInput("case-hi", Video(moving_square(30), 16.0), prompt="a square")
    spec = FeatureSpec.of("anime_reward.mantis_appeal_logit", prompt="a square")
    sample.features[spec] = np.array([123.4567, 700, 3, 699], dtype=np.float64)
    result = SCORERS.get(APPEAL)().score(sample)
    assert result.value == 1.0 and result.details["clamped"] is True
    assert result.details["published"] == pytest.approx(1.23457)
    assert result.details["published_key"] == "visual_quality" and result.details["prompt_truncated"] is False
    assert result.details["frame_indices"] == [int(i) for i in np.arange(0, 30, 30 / 24).astype(int)]


def test_pooled_position_follows_the_published_rule():
    assert mi.pooled_position([1, 5, 6, 7], None) == 3
    assert mi.pooled_position([1, 5, 6, 7], 9) == 3  # no pad token: argmax 0, -1 mod 4
    assert mi.pooled_position([1, 5, 9, 7, 9], 9) == 1  # before the first pad token


def test_both_heads_get_the_quality_prompt():
    text = mi.eval_prompt("a cat", 3)
    assert text.startswith("\nSuppose you are an expert") and 'the text prompt is "a cat",\n' in text
    assert "in that sub-score, \n" in text and "clearness, resolution, brightness, and color" in text
    assert text.endswith("all the frames of video are as follows:\n<image> <image> <image> ")


def test_perceiver_norm_follows_the_text_model_even_at_full_size():
    """transformers 5.x keeps its perceiver default eps 1e-6 when the hidden sizes match (8B: 4096 = 4096)."""
    config = mi.build_config({"model_type": "idefics2", "text_config": {"model_type": "mistral", "hidden_size": 4096,
                              "rms_norm_eps": 1e-5}, "perceiver_config": {"model_type": "idefics2"}})
    assert config.perceiver_config.rms_norm_eps == 1e-5 and config.perceiver_config.hidden_size == 4096


# --- the checkpoint: published layout, key by key --------------------------------------------------------


def test_recipe_keys_are_the_mantis_class_keys_and_load_into_transformers_5(fixture, checkpoint, head):
    mantis = {name: tuple(shape) for name, shape in fixture["mantis_state_dict"].items()}
    config = json.loads((checkpoint / "config.json").read_text())
    recipe = {name: tuple(shape) for name, shape, *_ in state_dict_recipe(config)}
    ours = {name: tuple(t.shape) for name, t in head.model.state_dict().items()}
    assert recipe == mantis  # the Mantis class (4.45.1) loaded these with no missing or unexpected key
    assert ours == mantis  # transformers 5.x Idefics2Model + score: the same names and shapes
    assert folder_state_sha256(checkpoint) == fixture["recipe"]["weights"]["state_sha256"]
    index = json.loads((checkpoint / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 2 and config["architectures"] == [mi.ARCHITECTURE]


# --- parity with the vendored Mantis class (transformers 4.45.1) -----------------------------------------


def test_parity_with_the_published_code(fixture, clips, head):
    tolerance = fixture["recipe"]["tolerance"]
    for name, expected in fixture["results"].items():
        clip = clips[name]
        assert clip["indices"] == expected["frame_indices"]
        encoded = head.prompts.encode(expected["prompt"], len(clip["indices"]))
        assert encoded.ids.tolist() == expected["input_ids"], name  # tokenizer.json + 4.45 processor expansion
        pixels = np.stack([head.images.pixels(f) for f in clip["frames"][clip["indices"]]])
        assert [1, *pixels.shape] == expected["pixel_values_shape"]
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == expected["pixel_values_sha256"], name
        (logit,) = head.logits([encoded.ids], [encoded.pooled], [pixels])
        assert abs(logit - expected["logit"]) <= tolerance * 100, (name, logit, expected["logit"])
        assert abs(mi.published_value(logit) - expected["published"]) <= tolerance


def test_scorers_through_a_session_match_the_reference_and_batch_rows(fixture, clips, weights_root):
    """Both registered scorers, 24 frames decoded from the files; one batch holds two rows of different
    lengths (same clip, another prompt), which must equal the row scored alone."""
    names = [spec.name for spec in MANTIS_CLIPS]
    videos = [clips[n]["video"] for n in names] + [clips[names[0]]["video"]]
    prompts = [MANTIS_PROMPTS[n] for n in names] + ["Another, much longer prompt " * 6]
    with ScoringSession([SMOOTH, APPEAL], _runtime(weights_root)) as session:
        results = session.score(videos, prompts=prompts, case_ids=["a", "b", "c"])
    tolerance = fixture["recipe"]["tolerance"]
    for name, result in zip(names, results):
        for scorer in (SMOOTH, APPEAL):
            score = result[scorer]
            assert isinstance(score, ScoreResult), score
            expected = fixture["results"][name]
            assert score.details["published"] == pytest.approx(expected["published"], abs=tolerance)
            assert score.value == pytest.approx(min(1.0, max(0.0, expected["published"])), abs=tolerance)
            assert score.details["frame_indices"] == expected["frame_indices"]
            assert score.details["sequence_tokens"] == len(expected["input_ids"])
    assert results[0][SMOOTH].value == results[0][APPEAL].value  # one checkpoint behind both entries here
    alone = ScoringSession([SMOOTH], _runtime(weights_root, batch_size=1))
    with alone:
        (single,) = alone.score([videos[2]], prompts=[prompts[2]])
    assert single[SMOOTH].details["logit"] == pytest.approx(results[2][SMOOTH].details["logit"], abs=1e-4)


def test_the_tolerance_catches_transformers_5_tokenisation(fixture, clips, head):
    """transformers 5.x rebuilds a LlamaTokenizer with a Metaspace pre-tokeniser (prepend on the first segment only)
    instead of tokenizer.json's legacy normaliser: the space between two frames becomes ``▁`` instead of ``▁▁``.
    That is why anibench tokenises from tokenizer.json itself; done the 5.x way, the logit moves far beyond 1e-4."""
    from tokenizers import Tokenizer, pre_tokenizers

    rebuilt = Tokenizer.from_str(head.prompts.tokenizer.to_str())
    rebuilt.normalizer = None
    rebuilt.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    name = MANTIS_CLIPS[1].name
    expected, clip = fixture["results"][name], clips[name]
    text = head.prompts.expand_images(mi.eval_prompt(expected["prompt"], len(clip["indices"])))
    ids = np.asarray([head.prompts.bos_id] + rebuilt.encode(text, add_special_tokens=False).ids)
    assert len(ids) == len(expected["input_ids"]) and ids.tolist() != expected["input_ids"]
    pixels = np.stack([head.images.pixels(f) for f in clip["frames"][clip["indices"]]])
    (logit,) = head.logits([ids], [len(ids) - 1], [pixels])
    assert abs(logit - expected["logit"]) > 1000 * fixture["recipe"]["tolerance"]


# --- bad input --------------------------------------------------------------------------------------------


def test_wrong_architecture_folder_is_refused(checkpoint, tmp_path):
    other = shutil.copytree(checkpoint, tmp_path / "checkpoint-final")
    config = json.loads((other / "config.json").read_text())
    config["architectures"] = ["Idefics2ForConditionalGeneration"]
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="not a .*checkpoint: config.json names architectures") as error:
        mi.load_head(other)
    assert "config.json" in str(error.value)


def test_missing_shard_is_named(checkpoint, tmp_path):
    other = shutil.copytree(checkpoint, tmp_path / "checkpoint-final")
    (other / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InputError, match="weight shard model-00002-of-00002.safetensors .* is missing"):
        mi.load_head(other)


def test_a_shape_mismatch_is_refused(checkpoint, tmp_path):
    other = shutil.copytree(checkpoint, tmp_path / "checkpoint-final")
    config = json.loads((other / "config.json").read_text())
    config["text_config"]["intermediate_size"] = 56
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="does not match|cannot load"):
        mi.load_head(other)


def test_missing_weights_name_the_entry_and_the_command(tmp_path):
    with ScoringSession([SMOOTH], Runtime(device="cpu", dtype="fp32", weights_root=str(tmp_path))) as session:
        (result,) = session.score([moving_square(9)], prompts=["a square"], case_ids=["case-a"])
    error = result[SMOOTH]
    assert isinstance(error, Exception)
    for fragment in ("checkpoint-final", "anime_reward_mantis_smoothness",
                     "anibench weights import anime_reward_mantis_smoothness"):
        assert fragment in str(error), str(error)


def test_short_clip_long_prompt_and_special_tokens_are_input_errors(weights_root):
    clip = moving_square(30, 40, 72)
    cases = [(moving_square(7, 40, 72), "a square", "short", "needs at least 8"),
             (clip, "word " * 4000, "long", "over the head's limit of 4096"),
             (clip, "a <image> inside", "special", "special token text '<image>'")]
    with ScoringSession([APPEAL], _runtime(weights_root)) as session:
        results = session.score([c[0] for c in cases], prompts=[c[1] for c in cases], case_ids=[c[2] for c in cases])
    for (_, _, case, fragment), result in zip(cases, results):
        error = result[APPEAL]
        assert isinstance(error, InputError), (case, error)
        assert fragment in str(error) and case in str(error), str(error)


# --- the perturbation battery (random weights: plumbing) --------------------------------------------------


def test_battery_plumbing_with_random_weights(weights_root):
    """Unread inputs (guides, mask) change nothing; the frame perturbations and the prompt make no claim."""
    samples = []
    for seed, prompt in enumerate(["a square slides", "a ball", "waves", "a cat sleeps"]):
        frames = moving_square(12, 40, 72, step=1.0 + seed, seed=seed)
        region = np.zeros(frames.shape[:3], bool)
        region[:, 5:30, 10:60] = True
        guidance = Guidance("sanity", (GuideFrame(0.0, 0, frames[0].copy()),), 12, 16.0, 40, 72, motion_region=region)
        samples.append(ScoreInput(f"case-{seed}", Video(frames, 16.0), prompt, guidance))
    scorer = SCORERS.get(SMOOTH)()
    assert scorer.expectations["swap_guide"] is Expect.NONE
    report = run_battery([scorer], samples, runtime=_runtime(weights_root), workers=1)
    checks = {check.perturbation: check for check in report.checks}
    assert set(checks) == {"swap_guide", "invert_mask"}
    for check in checks.values():
        assert check.errors == 0 and check.cases == 4 and check.moved_as_declared == 4, check
