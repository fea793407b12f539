"""VBench's subject/background consistency and I2V subject: preprocessing and formulas, by hand; parity below."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anibench.errors import InputError, NotApplicable
from anibench.images import load_image
from anibench.models import clip, dino
from anibench.models import vbench_consistency as vc
from anibench.video import Video

MEAN = torch.tensor(vc.IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(vc.IMAGENET_STD).view(3, 1, 1)


def raw_values(pixels: torch.Tensor, mean=vc.IMAGENET_MEAN, std=vc.IMAGENET_STD) -> torch.Tensor:
    """Undo the normalisation: the resized values on VBench's 0-255 scale."""
    return (pixels * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)) * 255


# --- sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "height, width, size, expected",
    [
        (480, 854, 224, (224, 398)),  # 398.53 truncated, not rounded
        (854, 480, 224, (398, 224)),
        (64, 96, 224, (224, 336)),
        (96, 64, 224, (336, 224)),
        (224, 300, 224, (224, 300)),
        (100, 100, 224, (224, 224)),
        (300, 400, 256, (256, 341)),
    ],
)
def test_short_side_resize_truncates_the_long_side(height, width, size, expected):
    assert vc.short_side_size(height, width, size) == expected


@pytest.mark.parametrize(
    "size, expected",
    [((224, 398), (0, 87)), ((224, 399), (0, 88)), ((224, 397), (0, 86)), ((225, 224), (0, 0)), ((227, 224), (2, 0))],
)
def test_center_crop_offsets_round_halves_to_even(size, expected):
    assert vc.center_crop_offsets(*size, 224) == expected


def test_subject_pixels_keep_the_aspect_and_normalise_with_imagenet_statistics():
    frames = np.full((2, 48, 64, 3), 128, np.uint8)
    pixels = vc.subject_consistency_pixels(frames)
    assert pixels.shape == (2, 3, 224, 298) and pixels.dtype == torch.float32
    assert torch.allclose(pixels, ((128 / 255 - MEAN) / STD).expand_as(pixels), atol=1e-6)


def test_subject_resize_is_bilinear_without_antialias():
    """A ramp of 2 per column upsampled 2x: output column j is 2 * (0.5 j - 0.25) = j - 0.5 (align_corners=False)."""
    ramp = np.broadcast_to((2 * np.arange(112)).astype(np.uint8)[None, None, :, None], (1, 112, 112, 3))
    raw = raw_values(vc.subject_consistency_pixels(np.ascontiguousarray(ramp)))
    assert torch.allclose(raw[0, :, 5, 1:223], torch.arange(1, 223).float() - 0.5, atol=1e-3)
    assert torch.allclose(raw[0, :, :, 0], torch.zeros(3, 224), atol=1e-3)  # clamped at the edge


def test_background_pixels_are_centre_cropped_with_clip_statistics():
    frames = np.zeros((3, 64, 96, 3), np.uint8)
    frames[:, :, 48:] = 200
    pixels = vc.background_consistency_pixels(frames)
    assert pixels.shape == (3, 3, 224, 224)
    raw = raw_values(pixels, vc.CLIP_MEAN, vc.CLIP_STD)
    # 64x96 -> 224x336, crop left 56: the edge at input column 48 (output 168) lands at crop column 112.
    assert torch.allclose(raw[0, :, 100, :100], torch.zeros(3, 100), atol=1e-3)
    assert torch.allclose(raw[0, :, 100, 125:], torch.full((3, 99), 200.0), atol=1e-3)


@pytest.mark.parametrize("transform", [vc.background_consistency_pixels, vc.i2v_subject_frame_pixels])
def test_bicubic_overshoot_is_kept_as_on_vbenchs_float_frames(transform):
    """VBench resizes float32 frames: torchvision clamps only uint8 bicubic output, so values leave 0-255."""
    frames = np.zeros((1, 64, 64, 3), np.uint8)
    frames[:, :, 32:] = 255
    is_clip = transform is vc.background_consistency_pixels
    mean, std = (vc.CLIP_MEAN, vc.CLIP_STD) if is_clip else (vc.IMAGENET_MEAN, vc.IMAGENET_STD)
    raw = raw_values(transform(frames), mean, std)
    assert raw.min() < -5 and raw.max() > 260


def test_i2v_frames_are_antialiased_by_default():
    """torchvision >= 0.17 antialiases tensor resizes by default; a noise downscale shows the low-pass."""
    noise = np.random.default_rng(0).integers(0, 256, (1, 512, 512, 3), dtype=np.uint8)
    smooth = vc.i2v_subject_frame_pixels(noise)
    aliased = vc.i2v_subject_frame_pixels(noise, antialias=False)
    assert smooth.shape == aliased.shape == (1, 3, 224, 224)
    assert smooth.std() < 0.7 * aliased.std()


@pytest.mark.parametrize("width, left", [(301, 38), (303, 40)])
def test_i2v_image_crop_without_resize_is_exact(width, left):
    """Short side already 256: no resize; crop top (256-224)/2 = 16, left round((W-224)/2) with halves to even."""
    image = np.random.default_rng(1).integers(0, 256, (256, width, 3), dtype=np.uint8)
    pixels = vc.i2v_subject_image_pixels(image)
    crop = torch.from_numpy(image[16:240, left : left + 224]).permute(2, 0, 1).float()
    assert pixels.shape == (1, 3, 224, 224)
    assert torch.allclose(pixels[0], (crop / 255 - MEAN) / STD, atol=1e-6)


def test_i2v_image_is_resized_by_pillow_bicubic():
    image = np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    resized = np.asarray(Image.fromarray(image).resize((341, 256), Image.Resampling.BICUBIC))
    expected = torch.from_numpy(resized[16:240, 58:282].copy()).permute(2, 0, 1).float()  # left round(58.5) = 58
    assert torch.allclose(vc.i2v_subject_image_pixels(image)[0], (expected / 255 - MEAN) / STD, atol=1e-6)


@pytest.mark.parametrize(
    "bad", [np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8)]
)
def test_i2v_image_must_be_rgb_uint8(bad):
    with pytest.raises(InputError, match="uint8 RGB"):
        vc.i2v_subject_image_pixels(bad)


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 8, 8), np.uint8), np.zeros((2, 8, 8, 3), np.float32), np.zeros((0, 8, 8, 3), np.uint8)]
)
def test_frames_must_be_decoded_uint8_rgb(bad):
    with pytest.raises(InputError):
        vc.subject_consistency_pixels(bad)


# --- formulas ------------------------------------------------------------------------------

# Directions 0°, 45°, 90°, 180° with different lengths (normalisation must not matter).
FEATURES = torch.tensor([[2.0, 0.0], [3.0, 3.0], [0.0, 0.5], [-4.0, 0.0]])
C45 = math.sqrt(0.5)


def test_consistency_terms_by_hand():
    """i=1: (cos45 + cos45)/2; i=2: (cos45 + cos90)/2; i=3: (max(0, cos90) + max(0, cos180))/2 = 0."""
    terms = vc.consistency_terms(FEATURES)
    assert terms.dtype == torch.float64
    assert torch.allclose(terms, torch.tensor([C45, C45 / 2, 0.0], dtype=torch.float64), atol=1e-7)
    score = vc.consistency_score(FEATURES)
    assert score.frame_count == 3
    assert score.frame_sum == pytest.approx(1.5 * C45, abs=1e-7)
    assert score.value == pytest.approx(0.5 * C45, abs=1e-7)


def test_aggregate_is_frame_weighted_not_a_mean_of_videos():
    long = vc.consistency_score(FEATURES)  # 3 terms, value 0.5 * C45
    short = vc.consistency_score(FEATURES[:2])  # 1 term, value C45
    assert short.value == pytest.approx(C45, abs=1e-7)
    assert vc.frame_weighted_mean([long, short]) == pytest.approx((1.5 * C45 + C45) / 4, abs=1e-7)
    assert vc.frame_weighted_mean([long, short]) != pytest.approx((long.value + short.value) / 2, abs=1e-3)


def test_i2v_subject_by_hand():
    """Image along 0°: conformity [1, cos45, 0, max(0, -1)] (max 1); consecutive [cos45, cos45, 0] (mean, min 0)."""
    score = vc.i2v_subject_score(torch.tensor([5.0, 0.0]), FEATURES)
    assert score == pytest.approx(0.4 * 1 + 0.3 * (2 * C45 / 3) + 0.3 * 0, abs=1e-7)
    turned = vc.i2v_subject_score(torch.tensor([[0.0, -1.0]]), FEATURES)  # every conformity clamps to 0
    assert turned == pytest.approx(0.4 * 0 + 0.3 * (2 * C45 / 3), abs=1e-7)
    assert vc.mean_over_videos([score, turned]) == pytest.approx((score + turned) / 2)


def test_a_single_frame_is_not_applicable():
    with pytest.raises(NotApplicable):
        vc.consistency_score(FEATURES[:1], "subject_consistency")
    with pytest.raises(NotApplicable):
        vc.i2v_subject_score(FEATURES[0], FEATURES[:1])


# --- parity with VBench's own code (tests/parity: recipe and fixtures) ---------------------
# The fixtures hold VBench's outputs (45e79ec, run by scripts/parity/vbench_reference.py in its own
# venv) on the recipe's seeded full-size random weights and clips. Here the same weights and clips are
# regenerated, converted by anibench's converters, loaded with from_pretrained, decoded by anibench
# (PyAV) and scored with the functions above; every value must match within the fixture's tolerance.

FIXTURES = Path(__file__).parent / "parity" / "fixtures"
DIMENSIONS = ("subject_consistency", "i2v_subject", "background_consistency")


def _fixture(dimension: str) -> dict:
    path = FIXTURES / f"vbench_{dimension}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run scripts/parity/vbench_reference.py")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def parity():
    return {dimension: _fixture(dimension) for dimension in DIMENSIONS}


@pytest.fixture(scope="module")
def parity_clips(tmp_path_factory, parity):
    """{name: (decoded frames, conditioning image)} for the recipe's clips, written and decoded by anibench."""
    from parity.clips import frames_sha256, write_parity_clips

    written = write_parity_clips(tmp_path_factory.mktemp("parity-clips"))
    recorded = parity["subject_consistency"]["recipe"]["clips"]["video_file_sha256"]
    clips = {}
    for name, clip in written.items():
        assert clip["video_file_sha256"] == recorded[name], f"{name}: the encoder wrote other bytes than VBench read"
        frames = Video.read(clip["video"]).frames
        clips[name] = (frames, load_image(clip["image"]))
    for dimension in DIMENSIONS:
        for video in parity[dimension]["videos"]:
            assert frames_sha256(clips[video["name"]][0]) == video["decoded_sha256"], (
                f"{video['name']}: anibench decodes other frames than VBench's reader"
            )
    return clips


def _seed(parity: dict, model: str) -> int:
    return int(parity["subject_consistency"]["recipe"]["weights"][model]["seed"])


@pytest.fixture(scope="module")
def parity_dino(tmp_path_factory, parity):
    from parity.weights import write_dino_vitb16_checkpoint

    folder = tmp_path_factory.mktemp("parity-dino")
    source = write_dino_vitb16_checkpoint(folder / "dino_vitbase16_pretrain.pth", seed=_seed(parity, "dino"))
    dino.convert_published(source, folder / "hf")
    source.unlink()
    yield dino.load_dino(folder / "hf")
    shutil.rmtree(folder)  # full-size converted weights: ~0.3 GB per module


@pytest.fixture(scope="module")
def parity_clip(tmp_path_factory, parity):
    from parity.weights import write_clip_vitb32_checkpoint

    folder = tmp_path_factory.mktemp("parity-clip")
    # A TorchScript archive, as OpenAI publishes ViT-B-32.pt and as VBench's clip.load read it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script/save: deprecated, still OpenAI's format
        source = write_clip_vitb32_checkpoint(folder / "ViT-B-32.pt", seed=_seed(parity, "clip"), torchscript=True)
    clip.convert_openai(source, folder / "hf")
    source.unlink()
    yield clip.load_clip(folder / "hf")
    shutil.rmtree(folder)  # full-size converted weights: ~0.3 GB per module


def _assert_matches(fixture: dict, per_video: dict[str, float], aggregate: float) -> None:
    tolerance = fixture["recipe"]["tolerance"]
    expected = {video["name"]: video["video_results"] for video in fixture["videos"]}
    assert set(per_video) == set(expected)
    differences = {name: abs(per_video[name] - expected[name]) for name in expected}
    assert max(differences.values()) <= tolerance, differences
    assert abs(aggregate - fixture["aggregate"]) <= tolerance, (aggregate, fixture["aggregate"])


def test_parity_subject_consistency(parity, parity_clips, parity_dino):
    scores = {}
    for name, (frames, _) in parity_clips.items():
        features = dino.cls_features(parity_dino, vc.subject_consistency_pixels(frames), batch_size=16)
        scores[name] = vc.consistency_score(features, "subject_consistency")
    fixture = parity["subject_consistency"]
    _assert_matches(fixture, {n: s.value for n, s in scores.items()}, vc.frame_weighted_mean(scores.values()))


def test_parity_i2v_subject(parity, parity_clips, parity_dino):
    values = {}
    for name, (frames, image) in parity_clips.items():
        image_features = dino.cls_features(parity_dino, vc.i2v_subject_image_pixels(image))
        frame_features = dino.cls_features(parity_dino, vc.i2v_subject_frame_pixels(frames), batch_size=16)
        values[name] = vc.i2v_subject_score(image_features, frame_features)
    _assert_matches(parity["i2v_subject"], values, vc.mean_over_videos(values.values()))


def test_parity_background_consistency(parity, parity_clips, parity_clip):
    scores = {}
    for name, (frames, _) in parity_clips.items():
        embeds = clip.image_embeds(parity_clip, vc.background_consistency_pixels(frames), batch_size=32)
        scores[name] = vc.consistency_score(embeds, "background_consistency")
    fixture = parity["background_consistency"]
    _assert_matches(fixture, {n: s.value for n, s in scores.items()}, vc.frame_weighted_mean(scores.values()))
    for video in fixture["videos"]:  # VBench's own frame-weighted bookkeeping, term by term
        assert scores[video["name"]].frame_count == video["cnt_per_video"]
        assert scores[video["name"]].frame_sum == pytest.approx(video["video_sim"], abs=fixture["recipe"]["tolerance"])
