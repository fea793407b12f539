"""Trainable reward heads: ratings files, the frozen weight-free backbone, ridge heads, the weights store,
the ``anime_reward.trained`` scorer and the ``anibench reward train / eval`` commands.

Real mp4 clips (a textured square sliding at a known speed, written with PyAV) carry synthetic
ratings whose relation to the clip is known: the ``visual_motion`` rating grows with the speed (plus
rater noise); the ``visual_appeal`` ratings are the same values shuffled across videos (no relation).
A head must recover the first on held-out videos and must not beat chance on the second.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from anibench.errors import AnibenchError, InputError, MissingWeightsError
from anibench.reward import backbones, heads, ratings as ratings_mod
from anibench.reward.training import train_heads
from anibench.runtime.weights import WeightStore
from anibench.runtime.weights.files import WeightFileError
from anibench.session import ScoringSession
from anibench.video import Video

from conftest import moving_square, textured

N_VIDEOS = 40


def _write_clip(path: Path, step: float, seed: int) -> Path:
    return Video(moving_square(16, 40, 56, step=step, seed=seed), 16.0).write(path)


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    """(folder, ratings.csv, speeds): 40 clips, two raters each, plus one bad row of every kind."""
    folder = tmp_path_factory.mktemp("rated")
    rng = np.random.default_rng(7)
    speeds = rng.uniform(0.0, 4.0, N_VIDEOS)
    motion = {}
    for i, step in enumerate(speeds):
        _write_clip(folder / f"clip{i:02d}.mp4", float(step), seed=i)
        motion[i] = [float(np.clip(np.round(1 + step + rng.normal(0, 0.35)), 1, 5)) for _ in range(2)]
    shuffled = rng.permutation(N_VIDEOS)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    header = ["video", "prompt", "rater", "visual_motion", "visual_appeal", "colour_score"]
    rows = []
    for i in range(N_VIDEOS):
        for r, rater in enumerate(("ann", "bob")):
            rows.append([f"clip{i:02d}.mp4", f"a square, clip {i}", rater, motion[i][r], motion[shuffled[i]][r], "x"])
    bad = [
        ["clip00.mp4", "a square, clip 0", "ann", "3", "", ""],          # duplicate (video, rater)
        ["clip01.mp4", "a square, clip 1", "cat", "6", "", ""],          # out of range
        ["clip02.mp4", "a square, clip 2", "cat", "high", "", ""],       # not a number
        ["missing.mp4", "no such clip", "ann", "3", "", ""],             # missing video
        ["clip03.mp4", "", "cat", "3", "", ""],                          # missing prompt
        ["clip04.mp4", "a square, clip 4", "cat", "", "", ""],           # rates nothing
        ["clip05.mp4", "another prompt", "cat", "2", "", ""],            # conflicting prompt
        ["corrupt.mp4", "a broken file", "ann", "2", "", ""],            # undecodable
    ]
    path = folder / "ratings.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows + bad)
    return folder, path, speeds


@pytest.fixture(scope="module")
def trained(rated, tmp_path_factory):
    folder, path, _ = rated
    out = tmp_path_factory.mktemp("heads")
    report = train_heads(path, name="synth", holdout=0.35, seed=0, out_dir=out, n_boot=400,
                         cache=tmp_path_factory.mktemp("features"))
    return report


def test_bad_rows_are_reported_one_by_one_and_the_rest_is_used(trained):
    first_bad = 2 + 2 * N_VIDEOS  # header is line 1
    reasons = {p.row: p.reason for p in trained.ratings.problems}
    assert sorted(reasons) == list(range(first_bad, first_bad + 8))
    assert "duplicate of row 2 (same video and rater 'ann')" in reasons[first_bad]
    assert "field 'visual_motion': must be a rating in [1, 5], got 6" in reasons[first_bad + 1]
    assert "must be a rating in [1, 5], got 'high'" in reasons[first_bad + 2]
    assert "video file not found" in reasons[first_bad + 3] and "missing.mp4" in reasons[first_bad + 3]
    assert "field 'prompt': is required" in reasons[first_bad + 4]
    assert "rates no dimension" in reasons[first_bad + 5]
    assert "another prompt in row" in reasons[first_bad + 6]
    assert "video not usable" in reasons[first_bad + 7] and "corrupt.mp4" in reasons[first_bad + 7]
    assert trained.ratings.ignored_columns == ("colour_score",)
    assert len(trained.ratings.rows) == 2 * N_VIDEOS and trained.videos == N_VIDEOS


def test_known_relation_is_recovered_on_held_out_videos(trained):
    motion = {h.dimension: h for h in trained.heads}["visual_motion"]
    assert motion.entry == "synth.visual_motion"
    assert motion.heldout_videos == 14 and motion.train_videos == 26
    held = motion.heldout
    assert held["spearman"]["value"] > 0.8
    assert held["spearman"]["ci"]["low"] > 0.4
    assert held["pairwise_accuracy"]["value"] > 0.8


def test_shuffled_ratings_are_not_better_than_chance(trained):
    appeal = {h.dimension: h for h in trained.heads}["visual_appeal"]
    ci = appeal.heldout["spearman"]["ci"]
    assert ci["low"] <= 0.0 <= ci["high"]
    assert abs(appeal.heldout["spearman"]["value"]) < 0.6
    assert appeal.heldout["pairwise_accuracy"]["ci"]["low"] <= 0.5 <= appeal.heldout["pairwise_accuracy"]["ci"]["high"]


def test_head_file_config_split_and_weights_store(trained):
    store = WeightStore()
    assert {"synth.visual_motion", "synth.visual_appeal"} <= set(store.names())
    resolved = store.resolve("synth.visual_motion")
    head = heads.RidgeHead.load(resolved.path)
    config = head.config
    assert config["dimension"] == "visual_motion" and config["backbone"]["name"] == "handcrafted"
    assert config["target"]["mapping"] == "(rating - 1) / 4"
    training = config["training"]
    split = training["split"]
    assert not set(split["train_videos"]) & set(split["heldout_videos"])  # no leakage
    assert len(split["train_videos"]) == 26 and training["seed"] == 0
    assert training["rows_rejected"] == 8 and training["rows_used"] == 2 * N_VIDEOS
    motion = {h.dimension: h for h in trained.heads}["visual_motion"]
    side = json.loads(Path(str(motion.file) + ".json").read_text())  # the config beside the file, for people
    assert side["training"]["split"] == split and side["model"]["kind"] == "ridge"
    assert store.verify("synth.visual_motion").ok and resolved.sha256 == motion.sha256
    x = np.random.default_rng(0).normal(size=(3, len(backbones.HANDCRAFTED.feature_names)))
    assert np.array_equal(head.raw(x), heads.RidgeHead.load(motion.file).raw(x))  # the store's copy is the file


def test_not_a_head_is_refused_naming_the_file(tmp_path):
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"weight": np.zeros(3)}, str(other))
    with pytest.raises(WeightFileError, match="no 'anibench.head' config") as info:
        heads.RidgeHead.load(other, name="mine")
    assert str(other) in str(info.value) and "'mine'" in str(info.value)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"garbage")
    with pytest.raises(WeightFileError, match="cannot read it as safetensors"):
        heads.RidgeHead.load(broken)


def test_trained_scorer_scores_clips_in_unit_range(trained, rated):
    folder, _, speeds = rated
    slow, fast = int(np.argmin(speeds)), int(np.argmax(speeds))
    with ScoringSession(["anime_reward.trained:head=synth.visual_motion"]) as session:
        out = session.score([folder / f"clip{slow:02d}.mp4", folder / f"clip{fast:02d}.mp4"],
                            prompts=["p", "p"])
    values = [r["anime_reward.trained"] for r in out]
    for result in values:
        assert 0.0 <= result.value <= 1.0
        assert result.details["clamped"] == (result.value != result.details["raw"])
        assert result.details["head"] == "synth.visual_motion" and result.details["backbone"] == "handcrafted"
    assert values[1].details["raw"] > values[0].details["raw"]  # the fastest clip is rated above the slowest


def test_trained_scorer_without_its_head_names_the_entry(rated):
    folder, _, _ = rated
    with ScoringSession(["anime_reward.trained:head=nope.visual_motion"]) as session:
        (result,) = session.score([folder / "clip00.mp4"], prompts=["p"])
    error = result["anime_reward.trained"]
    assert isinstance(error, AnibenchError) and "no weights entry 'nope.visual_motion'" in str(error)
    with pytest.raises(InputError, match="needs head="):
        from anibench.scoring import create_scorer

        create_scorer("anime_reward.trained")


def test_model_backbone_without_weights_says_what_is_missing(rated, tmp_path):
    _, path, _ = rated
    with pytest.raises(MissingWeightsError, match="clip_vit_b32") as info:
        train_heads(path, name="clipped", backbone="clip_vit_b32", out_dir=tmp_path, cache=False)
    assert "anibench weights fetch clip_vit_b32" in str(info.value)


def test_clip_backbone_vector_from_its_features():
    """The CLIP backbone's vector from given feature values (the model itself is tested in test_models_clip)."""
    from anibench.conditions import Guidance, GuideFrame
    from anibench.features import FeatureSpec
    from anibench.frames import ClipInfo
    from anibench.scoring import ScoreInput

    rng = np.random.default_rng(0)
    frames = rng.normal(size=(5, backbones.CLIP_DIM)).astype(np.float32)
    image = textured(8, 8)
    guide = rng.normal(size=backbones.CLIP_DIM).astype(np.float32)
    guidance = Guidance("t", (GuideFrame(0.0, 0, image),), 5, 16.0, 8, 8)
    sample = ScoreInput("c", info=ClipInfo(5, 16.0, 8, 8), guidance=guidance)
    specs = backbones.CLIP_VIT_B32.specs(sample)
    assert specs[0] == FeatureSpec.of("vbench.clip_frames")  # shared with vbench.background_consistency
    sample.features = {specs[0]: frames, specs[1]: guide}
    vector = backbones.CLIP_VIT_B32.vector(sample)
    assert vector.shape == (len(backbones.CLIP_VIT_B32.feature_names),)
    unit = frames / np.linalg.norm(frames, axis=1, keepdims=True)
    mean = unit.mean(0) / np.linalg.norm(unit.mean(0))
    assert np.allclose(vector[: backbones.CLIP_DIM], mean)
    assert vector[-3] == 1.0 and np.isclose(vector[-2], guide @ mean / np.linalg.norm(guide))


def test_handcrafted_backbone_reads_the_anime_reward_frames_without_torch():
    import subprocess
    import sys

    code = ("import sys; import anibench.reward.backbones, anibench.reward.heads, anibench.reward.metaeval, "
            "anibench.reward.ratings, anibench.reward.training, anibench.scorers.anime_reward_trained; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_split_is_by_video_and_seeded():
    keys = [f"{i:03d}" for i in range(20)]
    train, held = heads.split_videos(keys + keys[:5], 0.25, seed=3)  # repeated keys: one video each
    assert len(held) == 5 and len(train) == 15 and not set(train) & set(held)
    assert heads.split_videos(keys, 0.25, seed=3) == (train, held)
    assert heads.split_videos(keys, 0.25, seed=4) != (train, held)
    with pytest.raises(InputError, match="holdout"):
        heads.split_videos(keys, 1.0, seed=0)


def test_ridge_recovers_coefficients_and_leave_one_out_is_exact():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 4)) * [1.0, 10.0, 0.1, 1.0]
    y = 0.5 + 0.02 * x[:, 0] - 0.01 * x[:, 1] + rng.normal(0, 0.001, 60)
    head = heads.fit_ridge(x, y, alphas=(1e-6,))
    assert np.allclose(head.raw(x), y, atol=0.005)
    z = (x - x.mean(0)) / x.std(0)
    alpha = 3.0
    brute = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        zi, yi = z[keep], y[keep]
        centre = zi.mean(0)  # a refit without row i, with its own (unpenalised) intercept
        coef = np.linalg.solve((zi - centre).T @ (zi - centre) + alpha * np.eye(4), (zi - centre).T @ (yi - yi.mean()))
        brute.append((y[i] - (yi.mean() + (z[i] - centre) @ coef)) ** 2)
    assert np.isclose(heads.loo_errors(z, y, [alpha])[0], np.mean(brute), rtol=1e-6)


def test_ratings_jsonl_rows_and_guides(tmp_path):
    _write_clip(tmp_path / "a.mp4", 1.0, 0)
    from PIL import Image

    Image.fromarray(textured(40, 56)).save(tmp_path / "a.png")
    lines = [
        json.dumps({"video": "a.mp4", "prompt": "p", "guide_image": "a.png", "rater": 7, "visual_appeal": 4}),
        json.dumps({"video": "a.mp4", "prompt": "p", "guide_image": "a.png", "rater": 8, "visual_appeal": 2.5}),
        "{not json",
        json.dumps({"video": "a.mp4", "prompt": "p", "guide_image": "b.png", "rater": 9, "visual_appeal": 3}),
        json.dumps({"video": "a.mp4", "prompt": "p", "rater": 10, "visual_appeal": True}),
        json.dumps(["a list"]),
    ]
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    parsed = ratings_mod.read_ratings(tmp_path / "r.jsonl")
    assert [r.rater for r in parsed.rows] == ["7", "8"]
    assert [(p.row, p.reason.split(" (")[0].split(":")[0]) for p in parsed.problems] == [
        (3, "invalid JSON"), (4, "guide image not found"), (5, "field 'visual_appeal'"), (6, "expected an object with video, prompt and ratings, got list")]
    (video,) = parsed.videos()
    assert video.mean_rating("visual_appeal") == 3.25 and video.target("visual_appeal") == pytest.approx(0.5625)
    assert video.ratings["visual_appeal"] == {"7": 4.0, "8": 2.5}
    extraction = backbones.extract([backbones.ClipRequest("a", video.video, "p", video.guide_image)], "handcrafted",
                                   cache=False)
    vector = extraction.vectors["a"]
    names = backbones.HANDCRAFTED.feature_names
    assert vector[names.index("has_guide")] == 1.0
    assert 0.0 <= vector[names.index("guide_diff_first")] < 0.2  # the guide is the clip's background texture
    with pytest.raises(InputError, match="ratings files are"):
        ratings_mod.read_ratings(tmp_path / "a.png")


def test_cli_train_list_eval_and_score(rated, tmp_path):
    from anibench.cli.app import app

    folder, path, _ = rated
    runner = CliRunner()
    done = runner.invoke(app, ["reward", "train", str(path), "--name", "cli", "--dimensions", "visual_motion",
                               "--holdout", "0.3", "--n-boot", "200", "--out", str(tmp_path / "heads")])
    assert done.exit_code == 0, done.output
    assert "cli.visual_motion" in done.output and "row 82" in done.output
    again = runner.invoke(app, ["reward", "train", str(path), "--name", "cli"])
    assert again.exit_code == 2 and "--replace" in again.output
    listed = runner.invoke(app, ["weights", "list", "--json"])
    entries = {e["name"]: e for e in json.loads(listed.output)["weights"]}
    assert entries["cli.visual_motion"]["status"] == "present"
    assert entries["cli.visual_motion"]["used_by"] == ["anime_reward.trained"]
    report_path = tmp_path / "eval.json"
    done = runner.invoke(app, ["reward", "eval", str(path), "--head", "cli", "--n-boot", "200", "--out",
                               str(report_path)])
    assert done.exit_code == 0, done.output
    report = json.loads(report_path.read_text())
    block = report["dimensions"]["visual_motion"]
    assert block["excluded_training_videos"] == 28 and block["metrics"]["n_videos"] == 12
    assert block["metrics"]["spearman"]["value"] > 0.5
    assert block["agreement"]["raters"] == 2 and block["agreement"]["mean_pairwise_spearman"] > 0.5
    alpha = block["agreement"]["krippendorff_alpha_ordinal"]
    assert alpha > 0.5 or (alpha is None and "not installed" in block["agreement"]["krippendorff_note"])
    scored = runner.invoke(app, ["reward", "eval", str(path), "--scorer", "dynamic_degree", "--dimension",
                                 "visual_motion", "--n-boot", "100", "--out", str(tmp_path / "dd.json")])
    assert scored.exit_code == 0, scored.output
    block = json.loads((tmp_path / "dd.json").read_text())["dimensions"]["visual_motion"]
    assert block["metrics"]["n_videos"] == N_VIDEOS and block["metrics"]["spearman"]["value"] > 0.3
    bad = runner.invoke(app, ["reward", "eval", str(path), "--head", "nothing"])
    assert bad.exit_code == 2 and "no trained head named 'nothing'" in bad.output
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("clip00.mp4", "clip01.mp4"):
        (clips / name).write_bytes((folder / name).read_bytes())
    done = runner.invoke(app, ["score", str(clips), "--out", str(tmp_path / "run"), "-s",
                               "anime_reward.trained:head=cli.visual_motion", "--no-report"])
    assert done.exit_code == 0, done.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    summary = results["results"]["clips"]["all"]["anime_reward.trained"]
    assert summary["n_ok"] == 2 and 0.0 <= summary["value"] <= 1.0


def test_example_ratings_on_the_smoke_suite(tmp_path):
    """The README's example: synthetic visual_motion ratings from the smoke renderer's true motion amplitude."""
    from anibench.reward.example import example_ratings
    from anibench.reward.metaeval import spearman
    from anibench.suites import load_suite

    path, videos, count = example_ratings(tmp_path / "ratings.csv", per_action=1)
    parsed = ratings_mod.read_ratings(path)
    assert not parsed.problems and len(parsed.rows) == 3 * count and count == 18
    assert all(r.guide_image is not None and r.guide_image.is_file() for r in parsed.rows)
    amplitude = {c.video: c.metadata["motion_amplitude"] for c in load_suite("smoke", per_action=1).cases}
    rated = parsed.videos()
    assert spearman([amplitude[v.video] for v in rated], [v.mean_rating("visual_motion") for v in rated]) > 0.9


def test_a_model_family_plugs_in_as_a_backbone_and_its_features_persist(rated, tmp_path):
    """A backbone on a (test) model family: features go through the family's batches, are persisted in the
    feature store (a second pass runs no model), and a head trained on them scores through anime_reward.trained.
    The family is a deterministic stand-in (mean colour of a frame), registered for this test only."""
    from anibench.features.base import FEATURES, MODEL_FAMILIES, Deferred, FeatureSpec, FrameFeature, ModelFamily

    calls = []

    class MeanColourFamily(ModelFamily):
        name = "test_mean_colour"

        def load(self):
            pass

        def forward(self, batch):
            calls.append(len(batch))
            return [np.asarray(item, dtype=np.float32).reshape(-1, 3).mean(0) for item in batch]

    class MeanColourFrames(FrameFeature):
        name = "test.mean_colour_frames"
        family = "test_mean_colour"
        persist = True

        def __init__(self, spec, clip):
            super().__init__(spec, clip)
            self.wanted = np.arange(0, clip.info.num_frames, 4)
            self.deferred = Deferred(lambda rows: np.stack(rows))

        def step(self, t):
            frame = self.clip.working(t, 32)
            self.clip.family(self.family).submit(frame, self.deferred, frame.shape)

        def finish(self):
            return self.deferred.seal()

    spec = FeatureSpec.of("test.mean_colour_frames")
    backbone = backbones.Backbone(  # the few lines another family needs
        name="test_mean_colour", version="1", description="test stand-in", feature_names=("r", "g", "b", "spread"),
        specs=lambda sample: [spec], families=("test_mean_colour",),
        vector=lambda sample: np.concatenate([sample.feature(spec).mean(0) / 255, [sample.feature(spec).std() / 255]]))
    MODEL_FAMILIES.register("test_mean_colour", MeanColourFamily)
    FEATURES.register("test.mean_colour_frames", MeanColourFrames)
    backbones.register(backbone)
    try:
        folder, path, _ = rated
        requests = [backbones.ClipRequest(f"c{i}", folder / f"clip{i:02d}.mp4", "p", None, f"sha{i}") for i in range(6)]
        first = backbones.extract(requests, "test_mean_colour", cache=tmp_path / "features")
        assert len(first.vectors) == 6 and sum(calls) == 6 * 4 and max(calls) > 1  # batched across clips
        calls.clear()
        again = backbones.extract(requests, "test_mean_colour", cache=tmp_path / "features")
        assert calls == [] and all(np.array_equal(first.vectors[k], again.vectors[k]) for k in first.vectors)
        report = train_heads(path, name="colour", backbone="test_mean_colour", dimensions=["visual_motion"],
                             out_dir=tmp_path / "heads", n_boot=50, cache=tmp_path / "features")
        assert report.trained[0].entry == "colour.visual_motion"
        with ScoringSession(["anime_reward.trained:head=colour.visual_motion"]) as session:
            (result,) = session.score([folder / "clip00.mp4"], prompts=["p"])
        value = result["anime_reward.trained"]
        assert value.details["backbone"] == "test_mean_colour" and 0.0 <= value.value <= 1.0
    finally:
        backbones.BACKBONES.pop("test_mean_colour", None)
        FEATURES.unregister("test.mean_colour_frames")
        MODEL_FAMILIES.unregister("test_mean_colour")
