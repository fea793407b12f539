"""AnimeReward text-video and image-video consistency (BLIP heads): the scorers through a scoring session
against the published code's values (tests/parity/fixtures/anime_reward_blip.json, SMALL seeded networks),
the prompt-cut parameter, bad input, and the perturbation battery as a plumbing check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import InputError, NotApplicable
from anibench.images import load_image
from anibench.runtime.context import Runtime
from anibench.runtime.weights import WeightStore
from anibench.sanity import PERTURBATIONS, run_battery, score_values
from anibench.scoring import SCORERS, Expect, ScoreInput, ScoreResult
from anibench.session import ScoringSession
from anibench.video import Video

from conftest import moving_square
from parity import weights_blip_reward as W

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "anime_reward_blip.json"
TEXT, IMAGE = "anime_reward.text_video_consistency", "anime_reward.image_video_consistency"
ALIASES = {"anime_reward_text_video_blip": "seeded_blip_text_video",
           "anime_reward_image_video_blip": "seeded_blip_image_video",
           "anime_reward_bert_base_uncased_tokenizer": "seeded_bert_vocab"}  # fmt: skip


@pytest.fixture(scope="module")
def fixture() -> dict:
    if not FIXTURE.is_file():
        raise FileNotFoundError(f"{FIXTURE} is missing: run scripts/parity/anime_reward_blip_reference.py")
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory) -> Path:
    """A weights folder with the SMALL seeded files and the vocabulary as local entries."""
    root = tmp_path_factory.mktemp("blip-weights")
    written = W.write_weights_folder(tmp_path_factory.mktemp("blip-files"), W.SMALL, kinds=("text_video", "image_video"))
    store = WeightStore(root)
    for kind in ("text_video", "image_video"):
        store.add_local(f"seeded_blip_{kind}", written[W.ENTRIES[kind]], format="torch-state-dict",
                        converter=f"anibench.models.blip_reward:convert_{kind}_any_size")  # fmt: skip
    store.add_local("seeded_bert_vocab", written[W.ENTRIES["tokenizer"]], format="hf-folder")
    return root


def _runtime(root: Path) -> Runtime:
    return Runtime(device="cpu", dtype="fp32", batch_size=4, weights_root=str(root), weight_aliases=ALIASES)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, fixture) -> dict[str, dict]:
    from parity.clips import write_parity_clips
    from parity.clips_anime_reward_blip import BLIP_CLIPS

    written = write_parity_clips(tmp_path_factory.mktemp("blip-clips"), BLIP_CLIPS)
    for name, clip in written.items():
        assert clip["video_file_sha256"] == fixture["recipe"]["clips"]["video_file_sha256"][name], name
    return written


def _guidance(clip: dict) -> Guidance:
    info = Video.read(clip["video"])
    image = load_image(Path(clip["image"]))
    return Guidance("i2v", (GuideFrame(0.0, 0, image, source=clip["image"]),), info.num_frames, info.fps,
                    info.height, info.width)  # fmt: skip


# --- sampling ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frames, expected", [
    (12, list(range(12))),  # <= 24: every frame
    (30, [int(i * 1.25) for i in range(24)]),  # arange(0, 30, 1.25)
    (150, list(range(0, 144, 6))),  # only the first 144
])  # fmt: skip
def test_the_24_frames_by_hand(frames, expected):
    from anibench.features.anime_reward_inputs import SAMPLING

    assert SAMPLING.indices(frames, 16.0).tolist() == expected


# --- the scorers through a session: the published values ---------------------------------------------------


def test_scorers_reproduce_the_published_heads(fixture, clips, weights_root):
    """Decoded from the files, sampled, squashed and scored by anibench: the published inference's values."""
    small = fixture["sizes"]["small"]
    tolerance = fixture["recipe"]["tolerance"]
    videos = small["videos"]
    with ScoringSession([TEXT, IMAGE], _runtime(weights_root)) as session:
        results = session.score([clips[v["name"]]["video"] for v in videos], prompts=[v["prompt"] for v in videos],
                                guidance=[_guidance(clips[v["name"]]) for v in videos])  # fmt: skip
    for video, result in zip(videos, results):
        for name, kind in ((TEXT, "text_video"), (IMAGE, "image_video")):
            score = result[name]
            assert isinstance(score, ScoreResult), score
            assert abs(score.value - video[kind]) <= tolerance, (video["name"], kind, score.value, video[kind])
            assert 0.0 < score.value < 1.0 and score.details["frame_indices"] == video["frame_indices"]
            assert score.value == pytest.approx(1 / (1 + np.exp(-score.details["logit"])), abs=1e-12)
        text = result[TEXT].details
        assert text["prompt_tokens"] == len([m for m in video["prompt_mask"] if m]) or text["prompt_truncated"]
        assert result[IMAGE].details["image"] == clips[video["name"]]["image"]
    by_name = {v["name"]: r for v, r in zip(videos, results)}
    assert by_name["portrait_64x96_12f_cut"][TEXT].details["prompt_truncated"] is True
    assert by_name["wide_96x64_30f"][TEXT].details["prompt_truncated"] is False
    assert by_name["wide_96x64_30f"][IMAGE].details["aspect_matches"] is False  # 112x112 image, 96x64 clip
    aggregate = np.mean([r[TEXT].value for r in results])
    assert abs(aggregate - small["aggregate"]["text_video"]) <= tolerance


def test_truncate_prompt_false_reads_the_whole_prompt(fixture, clips, weights_root):
    video = next(v for v in fixture["sizes"]["small"]["videos"] if v["name"] == "portrait_64x96_12f_cut")
    clip = clips[video["name"]]
    scorer = SCORERS.get(TEXT)(truncate_prompt=False)
    too_long = "cat " * 600
    with ScoringSession([scorer], _runtime(weights_root)) as session:
        whole, over = session.score([clip["video"], clip["video"]], prompts=[video["prompt"], too_long],
                                    case_ids=["whole", "over"])  # fmt: skip
    whole = whole[TEXT]
    assert isinstance(whole, ScoreResult)
    assert whole.details["truncate_prompt"] is False and whole.details["prompt_truncated"] is False
    assert whole.details["prompt_tokens"] > 30
    assert abs(whole.value - video["text_video"]) > 1e-4  # the rest of the prompt reaches the text tower
    error = over[TEXT]
    assert isinstance(error, InputError) and "over" in str(error) and "limit of 512" in str(error), error
    assert SCORERS.get(TEXT)().params == {"truncate_prompt": True}


# --- bad input -------------------------------------------------------------------------------------------------


def test_missing_weights_name_the_entry_file_and_command(tmp_path):
    frames = moving_square(12)
    guidance = Guidance("i2v", (GuideFrame(0.0, 0, frames[0].copy()),), 12, 16.0, 64, 96)
    with ScoringSession([TEXT, IMAGE], Runtime(device="cpu", dtype="fp32", weights_root=str(tmp_path))) as session:
        (result,) = session.score([frames], prompts=["a square"], guidance=[guidance], case_ids=["case-w"])
    for name, fragments in ((TEXT, ("checkpoint_05.pth", "anime_reward_text_video_blip")),
                            (IMAGE, ("checkpoint_06.pth", "anime_reward_image_video_blip"))):  # fmt: skip
        assert isinstance(result[name], Exception)
        for fragment in (*fragments, "anibench weights"):
            assert fragment in str(result[name]), str(result[name])


def test_a_tokenizer_of_another_vocabulary_is_refused(weights_root, tmp_path):
    """A vocabulary that does not give the checkpoint's 30524 ids (with [DEC], [ENC]) names the tokenizer entry."""
    folder = tmp_path / "small-vocab"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(W.vocab_tokens()[:500]) + "\n")
    WeightStore(weights_root).add_local("seeded_bert_vocab_500", folder, format="hf-folder")
    runtime = Runtime(device="cpu", dtype="fp32", weights_root=str(weights_root),
                      weight_aliases={**ALIASES, "anime_reward_bert_base_uncased_tokenizer": "seeded_bert_vocab_500"})
    with ScoringSession([TEXT], runtime) as session:
        (result,) = session.score([moving_square(12)], prompts=["a square"], case_ids=["vocab"])
    assert isinstance(result[TEXT], Exception)
    assert "502 tokens" in str(result[TEXT]) and "anime_reward_bert_base_uncased_tokenizer" in str(result[TEXT])


def test_short_clips_empty_prompts_and_missing_references(weights_root):
    frames = moving_square(12)
    first = Guidance("i2v", (GuideFrame(0.0, 0, frames[0].copy()),), 12, 16.0, 64, 96)
    last_only = Guidance("flf", (GuideFrame(1.0, 11, frames[-1].copy()),), 12, 16.0, 64, 96)
    with ScoringSession([TEXT, IMAGE], _runtime(weights_root)) as session:
        short, empty, no_guide, no_first = session.score(
            [frames[:7], frames, frames, frames], prompts=["a square", "  ", "a square", "a square"],
            guidance=[first, first, None, last_only], case_ids=["short", "empty", "no-guide", "no-first"])
    for name in (TEXT, IMAGE):
        assert isinstance(short[name], InputError) and "7 frame(s)" in str(short[name]) and "at least 8" in str(short[name])
    assert isinstance(empty[TEXT], InputError) and "empty prompt" in str(empty[TEXT])
    assert isinstance(empty[IMAGE], ScoreResult)  # the image head does not read the prompt
    assert isinstance(no_guide[IMAGE], NotApplicable) and "no-guide" in str(no_guide[IMAGE])
    assert isinstance(no_first[IMAGE], NotApplicable) and "first-frame guide" in str(no_first[IMAGE])
    assert isinstance(no_guide[TEXT], ScoreResult)


def test_describe_records_range_sampling_and_weights():
    text, image = SCORERS.get(TEXT)(), SCORERS.get(IMAGE)()
    assert text.describe()["range"] == [0.0, 1.0] and text.describe()["higher_is_better"] is True
    assert "count=24, first 144" in text.describe()["sampling"]
    assert text.min_frames == image.min_frames == 8
    assert [w["name"] for w in image.weights()] == ["anime_reward_image_video_blip"]
    assert {w["name"] for w in text.weights()} == {"anime_reward_text_video_blip", "anime_reward_bert_base_uncased_tokenizer"}


# --- the perturbation battery (random weights: plumbing) ------------------------------------------------------------


def _battery_samples() -> list[ScoreInput]:
    prompts = ["a square slides right", "a red ball bounces", "waves on a beach at dusk", "a cat sleeps"]
    samples = []
    for seed, prompt in enumerate(prompts):
        frames = moving_square(12, 48, 64, step=1.0 + seed, seed=seed)
        guide = GuideFrame(0.0, 0, moving_square(1, 48, 64, seed=seed + 10)[0])
        region = np.zeros(frames.shape[:3], bool)
        region[:, 10:40, 10:50] = True
        guidance = Guidance("sanity", (guide,), 12, 16.0, 48, 64, motion_region=region)
        samples.append(ScoreInput(f"case-{seed}", Video(frames, 16.0), prompt, guidance))
    return samples


def test_battery_plumbing_with_random_weights(weights_root):
    """Unread inputs change nothing; the read one (prompt / reference image) reaches the network; every frame
    perturbation scores in (0, 1). Directions are not judged: with random weights they are chance."""
    text, image = SCORERS.get(TEXT)(), SCORERS.get(IMAGE)()
    assert text.expectations["swap_prompt"] is Expect.DOWN and image.expectations["swap_guide"] is Expect.DOWN
    report = run_battery([text, image], _battery_samples(), runtime=_runtime(weights_root), workers=1,
                         perturbations=["swap_prompt", "swap_guide", "invert_mask"])  # fmt: skip
    checks = {(c.scorer, c.perturbation): c for c in report.checks}
    assert all(c.errors == 0 for c in checks.values())
    for key in ((TEXT, "swap_guide"), (TEXT, "invert_mask"), (IMAGE, "swap_prompt"), (IMAGE, "invert_mask")):
        assert checks[key].cases == 4 and checks[key].moved_as_declared == 4, key
    for key in ((TEXT, "swap_prompt"), (IMAGE, "swap_guide")):
        assert checks[key].cases == 4 and checks[key].informative == 4
        assert all(miss["after"] != miss["before"] for miss in checks[key].misses)
    samples = _battery_samples()
    jobs = [(PERTURBATIONS[name](samples[0], samples[1]), [text, image]) for name in PERTURBATIONS]
    jobs = [(perturbed, scorers) for perturbed, scorers in jobs if perturbed is not None]
    with ScoringSession([text, image], _runtime(weights_root), workers=1) as session:
        rows = score_values(session, jobs)
    for (perturbed, _), row in zip(jobs, rows):
        for name in (TEXT, IMAGE):
            value = row[name]
            if perturbed.num_frames < 8:  # low_fps / speed_up of a 12-frame clip: refused by check()
                assert value is None, (name, value)
            else:
                assert isinstance(value, float) and 0.0 < value < 1.0, (name, value)
    assert sum(row[TEXT] is not None for row in rows) >= 14
