"""AnimeReward BLIP networks (anibench.models.blip_reward): key-by-key conversion of the published layout,
refusals of bad checkpoints, the tokenizer rule, the recogniser embedding, and parity of the three networks
with the published classes (tests/parity/fixtures/anime_reward_blip.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anibench.errors import InputError, MissingWeightsError
from anibench.models import blip_reward as B

from parity import weights_blip_reward as W
from parity.clips_anime_reward_blip import recogniser_crops

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "anime_reward_blip.json"
KINDS = ("text_video", "image_video", "recognizer")
CONVERT_ANY = {"text_video": B.convert_text_video_any_size, "image_video": B.convert_image_video_any_size,
               "recognizer": B.convert_recognizer_any_size}  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """SMALL published-format files, the vocabulary folder, and their converted folders."""
    root = tmp_path_factory.mktemp("blip-files")
    written = W.write_weights_folder(root, W.SMALL)
    out = {kind: written[W.ENTRIES[kind]] for kind in KINDS}
    out["tokenizer"] = written[W.ENTRIES["tokenizer"]]
    for kind in KINDS:
        CONVERT_ANY[kind](out[kind], root / f"converted-{kind}")
        out[f"converted-{kind}"] = root / f"converted-{kind}"
    return out


@pytest.fixture(scope="module")
def models(files) -> dict[str, B.BlipReward]:
    return {kind: B.load_blip(files[f"converted-{kind}"], kind) for kind in KINDS}


@pytest.fixture(scope="module")
def tokenizer(files):
    return B.load_tokenizer(files["tokenizer"])


# --- conversion ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_published_tensor_lands_in_its_place(kind, files, models):
    """Key by key: each tensor the inference reads equals the converted module's tensor under the mapped name."""
    published = torch.load(files[kind], map_location="cpu", weights_only=True)["model"]
    arch = models[kind].arch
    mapping = B.key_map(arch)
    ours = models[kind].state_dict()
    assert set(mapping.values()) | ({"text.embeddings.token_type_embeddings.weight"} if kind == "text_video" else set()) \
        == {k for k in ours if not k.endswith("position_ids") and not k.endswith("token_type_ids")}
    for theirs, mine in mapping.items():
        assert torch.equal(ours[mine], published[theirs]), theirs
    if kind == "text_video":
        assert not ours["text.embeddings.token_type_embeddings.weight"].any()  # med.py has no token types
    config = json.loads((files[f"converted-{kind}"] / B.CONFIG_FILE).read_text())
    ignored = set(published) - set(mapping)
    assert config["ignored_tensors"] == len(ignored)
    if kind == "recognizer":
        assert {"temp", "text_proj", "vision_proj_m", "visual_encoder_m"} <= set(config["ignored_prefixes"])
    if kind == "text_video":
        assert "text_encoder.*.crossattention" in config["ignored_prefixes"]


def test_architecture_is_read_from_the_tensors(models):
    tv = models["text_video"].arch
    assert tv.vit == B.ViTArchitecture(width=128, layers=2, patch=16, image_size=224, mlp=512)
    assert tv.bert == B.BertArchitecture(hidden=128, layers=2, intermediate=512, vocab_size=30524, max_positions=512)
    assert tv.proj == 64 and models["recognizer"].arch.proj == 32 and models["image_video"].arch.bert is None
    assert B.PUBLISHED["recognizer"].vit.heads == 16 and B.PUBLISHED["text_video"].vit.heads == 12


def test_published_converters_refuse_other_sizes(files, tmp_path):
    with pytest.raises(InputError, match="another architecture.*vit.width 128 \\(expected 768\\)"):
        B.convert_image_video(files["image_video"], tmp_path / "x")
    with pytest.raises(InputError, match="vit.width 128 \\(expected 1024\\)"):
        B.convert_recognizer(files["recognizer"], tmp_path / "y")


def test_the_wrong_checkpoint_is_named(files, tmp_path):
    with pytest.raises(InputError, match="no text encoder") as error:
        B.convert_text_video_any_size(files["image_video"], tmp_path / "a")
    assert str(files["image_video"]) in str(error.value)
    with pytest.raises(InputError, match="character recogniser"):
        B.convert_image_video_any_size(files["recognizer"], tmp_path / "b")
    with pytest.raises(InputError, match="consistency head"):
        B.convert_recognizer_any_size(files["text_video"], tmp_path / "c")


def test_missing_corrupt_and_foreign_files_are_input_errors(files, tmp_path):
    with pytest.raises(InputError, match="not found"):
        B.convert_image_video_any_size(tmp_path / "absent.pth", tmp_path / "a")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(files["image_video"].read_bytes()[:5000])
    with pytest.raises(InputError, match="cannot read"):
        B.convert_image_video_any_size(truncated, tmp_path / "b")
    bare = tmp_path / "bare.pth"
    torch.save(torch.load(files["image_video"], weights_only=True)["model"], bare)  # no {'model': ...} wrapper
    with pytest.raises(InputError, match=r"\['model'\]"):
        B.convert_image_video_any_size(bare, tmp_path / "c")


def test_a_missing_or_misshapen_tensor_is_refused(files, tmp_path):
    state = torch.load(files["image_video"], weights_only=True)["model"]
    del state["visual_encoder.blocks.1.mlp.fc2.bias"]
    torch.save({"model": state}, tmp_path / "missing.pth")
    with pytest.raises(InputError, match="missing visual_encoder.blocks.1.mlp.fc2.bias"):
        B.convert_image_video_any_size(tmp_path / "missing.pth", tmp_path / "a")
    state = torch.load(files["image_video"], weights_only=True)["model"]
    state["img_key_proj.weight"] = torch.zeros(64, 100)
    torch.save({"model": state}, tmp_path / "shape.pth")
    with pytest.raises(InputError, match="wrong shapes: img_key_proj.weight"):
        B.convert_image_video_any_size(tmp_path / "shape.pth", tmp_path / "b")


def test_unconverted_or_foreign_folders_name_the_entry(files, tmp_path):
    with pytest.raises(MissingWeightsError, match="anibench weights import anime_reward_image_video_blip"):
        B.load_blip(tmp_path, "image_video")
    with pytest.raises(MissingWeightsError, match="holds the AnimeReward text-video .*anime_reward_image_video_blip"):
        B.load_blip(files["converted-text_video"], "image_video")
    with pytest.raises(MissingWeightsError, match=B.TOKENIZER_ENTRY):
        B.load_tokenizer(tmp_path / "no-tokenizer")


# --- tokenizer -----------------------------------------------------------------------------------------------


def test_tokenizer_adds_dec_and_enc_and_cuts_at_30(tokenizer):
    assert len(tokenizer) == 30524
    assert tokenizer.convert_tokens_to_ids(["[DEC]", "[ENC]"]) == [30522, 30523]
    short = B.tokenize(tokenizer, "a girl runs")
    assert short.ids[:5] == (101, *tokenizer.convert_tokens_to_ids(["a", "girl", "runs"]), 102)
    assert len(short.ids) == 30 and short.ids[5:] == (0,) * 25 and sum(short.mask) == 5
    assert (short.length, short.truncated) == (5, False)
    long = B.tokenize(tokenizer, "the cat " * 20)
    assert (long.length, long.truncated, len(long.ids)) == (42, True, 30)
    assert long.ids[-1] == 102 and sum(long.mask) == 30  # [SEP] kept last, as truncation=True does
    whole = B.tokenize(tokenizer, "the cat " * 20, truncate=False)
    assert len(whole.ids) == 42 and not whole.truncated
    with pytest.raises(InputError, match="600 BERT tokens, over the text encoder's limit of 512"):
        B.tokenize(tokenizer, "cat " * 598, truncate=False)


# --- inference -----------------------------------------------------------------------------------------------


def test_recogniser_embeddings_are_the_projected_cls_unnormalised(models):
    model = models["recognizer"]
    crops = recogniser_crops()[:3]
    embeddings = B.embed_crops(model, crops)
    with torch.inference_mode():
        hidden = model.vision(pixel_values=torch.from_numpy(crops)).last_hidden_state
        expected = model.vision_proj(hidden[:, 0])
    assert embeddings.shape == (3, 32) and torch.allclose(embeddings, expected, atol=1e-6)
    assert not torch.allclose(embeddings.norm(dim=-1), torch.ones(3), atol=1e-2)
    assert torch.allclose(B.embed_crops(model, crops, batch=1), embeddings, atol=1e-5)  # batching changes nothing
    with pytest.raises(ValueError, match="recogniser"):
        B.embed_crops(models["image_video"], crops)


def test_head_halves_add_up_to_the_published_head(models):
    model = models["image_video"]
    video, key = torch.randn(128), torch.randn(128)
    with torch.inference_mode():
        logit = model.head(torch.cat([model.video_proj(video), model.key_proj(key)]))[0]
        published = torch.sigmoid(logit)
    value, raw = B.head_value(model, video, key)
    assert raw == pytest.approx(float(logit), abs=1e-6) and value == pytest.approx(float(published), abs=1e-7)
    assert B.video_half(model, video) + B.key_half(model, key) == pytest.approx(float(logit), abs=1e-5)
    assert B.sigmoid(0.0) == 0.5 and B.sigmoid(-800.0) == 0.0 and B.sigmoid(800.0) == 1.0


def test_video_feature_is_the_mean_of_the_frames_cls(models):
    model = models["text_video"]
    frames = torch.from_numpy(np.random.default_rng(1).standard_normal((5, 3, 224, 224)).astype(np.float32))
    each = torch.stack([B.image_cls(model, frames[i:i + 1])[0] for i in range(5)])
    assert torch.allclose(B.video_cls(model, frames), each.mean(0), atol=1e-5)


# --- parity with the published classes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture() -> dict:
    if not FIXTURE.is_file():
        raise FileNotFoundError(f"{FIXTURE} is missing: run scripts/parity/anime_reward_blip_reference.py")
    return json.loads(FIXTURE.read_text())


def test_fixture_recipe_matches_the_weights_here(fixture):
    small = fixture["sizes"]["small"]
    for kind in KINDS:
        assert small["weights"][kind]["state_dict_sha256"] == W.state_sha256(kind, W.SMALL), kind
    assert fixture["recipe"]["commit"] == "171fe63"


def test_tokenizer_ids_equal_the_published_init_tokenizer(fixture, tokenizer):
    small = fixture["sizes"]["small"]
    assert small["tokenizer_length"] == len(tokenizer)
    for row in small["tokenizer"]:
        tokens = B.tokenize(tokenizer, row["prompt"])
        assert list(tokens.ids) == row["ids"] and tokens.length == row["full_length"], row["prompt"]


def _check_networks(size: dict, models: dict, tokenizer, tolerance: float) -> float:
    """The published per-clip CLS rows and values, recomputed from the published model inputs' CLS rows."""
    worst = 0.0
    for video in size["videos"]:
        for kind in ("text_video", "image_video"):
            model, debug = models[kind], video["debug"][kind]
            video_cls, key_cls = torch.tensor(debug["video_cls"]), torch.tensor(debug["key_cls"])
            if kind == "text_video":
                tokens = B.tokenize(tokenizer, video["prompt"])
                assert list(tokens.ids) == video["prompt_ids"]
                ours = B.text_cls(model, tokens)
                worst = max(worst, float((ours - key_cls).abs().max()))
            value = B.sigmoid(B.video_half(model, video_cls) + B.key_half(model, key_cls))
            worst = max(worst, abs(value - video[kind]))
    embeddings = B.embed_crops(models["recognizer"], recogniser_crops())
    worst = max(worst, float((embeddings - torch.tensor(size["recognizer"]["embeddings"])).abs().max()))
    assert worst <= tolerance, worst
    return worst


def test_parity_of_the_small_networks(fixture, models, tokenizer):
    """Text tower, head and recogniser against the published classes (the ViT on real clips: the scorer tests)."""
    _check_networks(fixture["sizes"]["small"], models, tokenizer, fixture["recipe"]["tolerance"])


@pytest.mark.slow
def test_parity_of_the_full_size_networks(fixture, tmp_path):
    """ViT-B/16 + BERT-base heads and the ViT-L/16 recogniser at full size, through the published converters."""
    from anibench.features.anime_reward_inputs import SAMPLING, squash_to_clip_tensor
    from anibench.images import load_image
    from anibench.video import Video
    from parity.clips import write_parity_clips
    from parity.clips_anime_reward_blip import BLIP_CLIPS

    full = fixture["sizes"].get("full")
    assert full is not None, "the committed fixture must hold the full-size section (anime_reward_blip_reference.py)"
    written = W.write_weights_folder(tmp_path / "w", W.FULL)
    tokenizer = B.load_tokenizer(written[W.ENTRIES["tokenizer"]])
    converters = {"text_video": B.convert_text_video, "image_video": B.convert_image_video,
                  "recognizer": B.convert_recognizer}  # fmt: skip
    models = {}
    for kind in KINDS:
        converters[kind](written[W.ENTRIES[kind]], tmp_path / kind)
        models[kind] = B.load_blip(tmp_path / kind, kind)
    tolerance = fixture["recipe"]["tolerance"]
    _check_networks(full, models, tokenizer, tolerance)
    clips = write_parity_clips(tmp_path / "clips", BLIP_CLIPS)
    for video in full["videos"]:
        decoded = Video.read(clips[video["name"]]["video"])
        pixels = squash_to_clip_tensor(decoded.frames[SAMPLING.indices(decoded.num_frames, decoded.fps)])
        image = squash_to_clip_tensor(load_image(Path(clips[video["name"]]["image"])))
        for kind in ("text_video", "image_video"):
            model = models[kind]
            video_cls = B.video_cls(model, pixels)
            assert float((video_cls - torch.tensor(video["debug"][kind]["video_cls"])).abs().max()) <= tolerance
            key = B.text_cls(model, B.tokenize(tokenizer, video["prompt"])) if kind == "text_video" else \
                B.image_cls(model, image)[0]
            value = B.sigmoid(B.video_half(model, video_cls) + B.key_half(model, key))
            assert abs(value - video[kind]) <= tolerance, (video["name"], kind, value, video[kind])
