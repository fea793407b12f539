"""VBench-I2V background: preprocessing and formula by hand, the ratio record, bad inputs, the perturbation
battery (tiny DreamSim weights: plumbing, not quality), and parity with VBench's own code (full size).

Weights are seeded recipes in DreamSim's published formats (tests/parity/weights_dreamsim.py, DINO's
backbone from tests/parity/weights.py) imported through the real weights store as local entries
standing in for ``dino_vitb16`` and ``dreamsim_ensemble`` (runtime weight aliases).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import InputError, NotApplicable
from anibench.images import load_image
from anibench.models import vbench_i2v_background as vb
from anibench.runtime.context import Runtime
from anibench.runtime.weights import WeightStore
from anibench.scoring import ScoreResult, create_scorer
from anibench.session import ScoringSession

from parity.weights_dreamsim import TINY, write_dreamsim_archive, write_tiny_dino_checkpoint

SCORER = "vbench.i2v_background"
FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "vbench_i2v_background.json"


# --- preprocessing ---------------------------------------------------------------------------


def test_frames_are_squashed_to_224_bicubic_antialiased_on_float():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    pixels = vb.frame_pixels(frames)
    assert pixels.shape == (2, 3, 224, 224) and pixels.dtype == torch.float32
    expected = F.interpolate(torch.from_numpy(frames).float().permute(0, 3, 1, 2), size=(224, 224), mode="bicubic",
                             align_corners=False, antialias=True) / 255
    assert torch.equal(pixels, expected)
    # the aspect is not kept: a 4:3 clip and its 224x224 squash, no crop (every column of the source is used)
    assert pixels.min() < 0 or pixels.max() > 1  # bicubic overshoot on random pixels is kept, not clamped
    without = F.interpolate(torch.from_numpy(frames).float().permute(0, 3, 1, 2), size=(224, 224), mode="bicubic",
                            align_corners=False, antialias=False) / 255
    assert (pixels - without).abs().max() > 1e-2  # downsampling: antialiasing matters


def test_a_224_square_frame_is_only_scaled():
    frames = np.arange(224 * 224 * 3, dtype=np.int64).reshape(1, 224, 224, 3).astype(np.uint8)
    assert torch.equal(vb.frame_pixels(frames)[0], torch.from_numpy(frames[0]).permute(2, 0, 1).float() / 255)


def test_the_image_is_resized_by_pillow_bicubic():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    pixels = vb.image_pixels(image)
    expected = np.asarray(Image.fromarray(image).resize((224, 224), Image.Resampling.BICUBIC), np.float32) / 255
    assert pixels.shape == (1, 3, 224, 224)
    assert torch.equal(pixels[0], torch.from_numpy(expected).permute(2, 0, 1))
    assert 0 <= pixels.min() and pixels.max() <= 1  # Pillow returns uint8: no overshoot on the image


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3))])
def test_the_image_must_be_rgb_uint8(bad):
    with pytest.raises(InputError, match="conditioning image must be"):
        vb.image_pixels(bad)


# --- formula ------------------------------------------------------------------------------------


def test_formula_by_hand():
    image = torch.tensor([1.0, 0.0])
    frames = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    # s(img, f) = [1, 0, max(0, -0.707)] -> max 1; consecutive: s(f0, f1) = 0, s(f1, f2) = 0.7071
    expected = 0.4 * 1 + 0.3 * (0 + 2 ** -0.5) / 2 + 0.3 * 0
    assert vb.i2v_background_score(image, frames) == pytest.approx(expected, abs=1e-7)
    assert vb.i2v_background_score(image, frames * 5) == pytest.approx(expected, abs=1e-7)  # normalised first
    assert vb.mean_over_videos([0.5, 0.7, 0.9]) == pytest.approx(0.7)


def test_a_single_frame_has_no_pair():
    with pytest.raises(NotApplicable, match="i2v_background needs at least 2 frames"):
        vb.i2v_background_score(torch.ones(4), torch.ones(1, 4))


@pytest.mark.parametrize(
    "image, frame, expected",
    [
        ((848, 480), (848, 480), {"image_ratio": "53-30", "vbench_crop": "16-9", "croppable": True, "aspect_matches": True}),
        ((512, 512), (832, 480), {"image_ratio": "1-1", "vbench_crop": "1-1", "croppable": True, "aspect_matches": False}),
        ((90, 120), (64, 96), {"image_ratio": "3-4", "vbench_crop": None, "croppable": False, "aspect_matches": False}),
        ((1280, 800), (1280, 800), {"image_ratio": "8-5", "vbench_crop": "8-5", "croppable": True, "aspect_matches": True}),
        ((1250, 1000), (640, 512), {"image_ratio": "5-4", "vbench_crop": None, "croppable": True, "aspect_matches": True}),
    ],
)
def test_the_ratio_record(image, frame, expected):
    details = vb.ratio_details(image, frame)
    assert {key: details[key] for key in expected} == expected
    assert details["image_size"] == list(image) and details["frame_size"] == list(frame)


# --- the scorer on tiny weights: bad inputs and the battery ------------------------------------------


def _store_entries(store: WeightStore, folder: Path, size, *, dreamsim: bool = True) -> dict[str, str]:
    """Import the tiny recipe as local entries; returns the runtime aliases standing in for the published ones."""
    if size is TINY:
        dino_file = write_tiny_dino_checkpoint(folder / "dino_vitbase16_pretrain.pth", size)
        dino_converter, ensemble_converter = "anibench.models.dino:convert_checkpoint", "anibench.models.dreamsim:convert_archive"
    else:
        from parity.weights import write_dino_vitb16_checkpoint

        dino_file = write_dino_vitb16_checkpoint(folder / "dino_vitbase16_pretrain.pth")
        dino_converter, ensemble_converter = "anibench.models.dino:convert_published", "anibench.models.dreamsim:convert_published"
    tag = "tiny" if size is TINY else "seeded"
    aliases = {"dino_vitb16": f"{tag}_dino_vitb16"}
    store.add_local(aliases["dino_vitb16"], dino_file, format="torch-state-dict", converter=dino_converter)
    if dreamsim:
        write_dreamsim_archive(folder / "dreamsim_ensemble_checkpoint.zip", size)
        aliases["dreamsim_ensemble"] = f"{tag}_dreamsim_ensemble"
        store.add_local(aliases["dreamsim_ensemble"], folder / "dreamsim_ensemble_checkpoint.zip", format="zip",
                        converter=ensemble_converter)
    for file in folder.iterdir():
        file.unlink()
    return aliases


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def tiny_runtime(tmp_path_factory) -> Runtime:
    root = tmp_path_factory.mktemp("tiny-weights")
    aliases = _store_entries(WeightStore(root), tmp_path_factory.mktemp("tiny-files"), TINY)
    return Runtime(device="cpu", dtype="fp32", weights_root=str(root), weight_aliases=aliases)


def _guidance(frames: np.ndarray, image: np.ndarray, source: str = "") -> Guidance:
    return Guidance("i2v", (GuideFrame(0.0, 0, image, source),), len(frames), 16.0, frames.shape[1], frames.shape[2])


def _moving(num_frames: int = 6, height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    from conftest import moving_square

    return moving_square(num_frames, height, width, step=3.0, seed=seed)


def test_the_scorer_records_ratio_and_frames(tiny_runtime, tmp_path):
    frames = _moving()
    image_file = tmp_path / "first.png"
    Image.fromarray(np.ascontiguousarray(frames[0][:, 8:72])).save(image_file)  # a 64x48 crop: another aspect
    with ScoringSession([SCORER], tiny_runtime, workers=1) as session:
        (result,) = session.score([frames], guidance=[_guidance(frames, frames[0], str(image_file))])
    outcome = result[SCORER]
    assert isinstance(outcome, ScoreResult), outcome
    assert 0 <= outcome.value <= 1
    details = outcome.details
    assert details["frames"] == 6 and details["image_size"] == [64, 48] and details["frame_size"] == [80, 48]
    assert details["image_ratio"] == "4-3" and details["frame_ratio"] == "5-3" and details["aspect_matches"] is False


def test_odd_sized_frames_are_squashed_like_any_other(tiny_runtime):
    frames = _moving(num_frames=5, height=45, width=63)
    with ScoringSession([SCORER], tiny_runtime, workers=1) as session:
        (result,) = session.score([frames], guidance=[_guidance(frames, frames[0])])
    outcome = result[SCORER]
    assert isinstance(outcome, ScoreResult), outcome
    assert outcome.details["frame_size"] == [63, 45] and outcome.details["image_size"] == [63, 45]
    assert outcome.details["aspect_matches"] is True and 0 <= outcome.value <= 1


def test_a_grayscale_image_file_is_refused_naming_case_and_file(tiny_runtime, tmp_path):
    """VBench would feed ToTensor's single channel to DreamSim; anibench's image reader refuses it clearly."""
    frames = _moving(num_frames=5)
    gray = tmp_path / "gray.png"
    Image.fromarray(frames[0].mean(axis=-1).astype(np.uint8), mode="L").save(gray)
    with ScoringSession([SCORER], tiny_runtime, workers=1) as session:
        (result,) = session.score([frames], guidance=[_guidance(frames, frames[0], str(gray))], case_ids=["gray_case"])
    message = str(result[SCORER])
    assert "grayscale" in message and "gray_case" in message and str(gray) in message


def test_a_copied_image_and_a_frozen_clip_score_one(tiny_runtime):
    """224x224 frames skip both resizes, so the image and every frame give the same pixels: all similarities 1.

    (At another size they differ slightly: frames are resized as float tensors, the image by Pillow.)"""
    frames = np.repeat(_moving(height=224, width=224)[:1], 4, axis=0)
    with ScoringSession([SCORER], tiny_runtime, workers=1) as session:
        (result,) = session.score([frames], guidance=[_guidance(frames, frames[0])])
    assert result[SCORER].value == pytest.approx(1.0, abs=1e-6)


def test_without_a_first_frame_guide_it_does_not_apply(tiny_runtime):
    frames = _moving()
    late = Guidance("i2v", (GuideFrame(1.0, 5, frames[-1]),), 6, 16.0, 48, 80)
    with ScoringSession([SCORER], tiny_runtime, workers=1) as session:
        (result,) = session.score([frames], guidance=[late])
    assert isinstance(result[SCORER], NotApplicable) and "first-frame guide" in str(result[SCORER])


def test_a_single_frame_clip_is_refused_naming_the_scorer(tiny_runtime):
    frames = _moving(num_frames=1)
    with ScoringSession([SCORER], tiny_runtime, workers=1) as session:
        (result,) = session.score([frames], guidance=[_guidance(frames, frames[0])], case_ids=["one_frame"])
    error = result[SCORER]
    assert isinstance(error, InputError)
    assert "needs at least 2" in str(error) and SCORER in str(error) and "one_frame" in str(error)


def test_missing_dreamsim_weights_are_named_with_the_command(tmp_path):
    root = tmp_path / "only-dino"
    aliases = _store_entries(WeightStore(root), _folder(tmp_path / "only-dino-files"), TINY, dreamsim=False)
    runtime = Runtime(device="cpu", dtype="fp32", weights_root=str(root), weight_aliases=aliases)
    frames = _moving()
    with ScoringSession([SCORER], runtime, workers=1) as session:
        (result,) = session.score([frames], guidance=[_guidance(frames, frames[0])], case_ids=["case_a"])
    message = str(result[SCORER])
    for fragment in ("dreamsim_ensemble_checkpoint.zip", "anibench weights import dreamsim_ensemble",
                     "anibench weights fetch dreamsim_ensemble"):
        assert fragment in message, message


def test_the_battery_with_tiny_random_weights(tiny_runtime):
    """Plumbing, not quality: random weights, but reordered or spliced frames and another image lower the value.

    Six smoke clips cut to their first 12 frames (the directions do not need more; the cost does)."""
    from anibench.conditions import fit_guidance
    from anibench.sanity import battery_inputs, run_battery
    from anibench.suites import load_suite
    from anibench.video import Video

    shortened = []
    for sample in battery_inputs(load_suite({"name": "smoke", "per_action": 1}), limit=6):
        video = Video(sample.video.frames[:12], sample.video.fps)
        guidance = fit_guidance(sample.guidance, video.num_frames, video.height, video.width)
        shortened.append(sample.with_changes(video=video, guidance=guidance))
    report = run_battery([create_scorer(SCORER)], shortened, runtime=tiny_runtime, workers=1)
    failures = [(c.perturbation, c.moved_as_declared, c.informative, c.errors, c.misses[:2]) for c in report.failures()]
    assert report.passed, failures
    assert report.scorer_status(SCORER) == "pass"
    checked = {c.perturbation for c in report.checks}
    assert {"shuffle", "splice", "swap_guide"} <= checked


# --- parity with VBench's own code -----------------------------------------------------------------
# The fixture holds VBench's outputs (45e79ec, DreamSim 0.2.1, run by
# scripts/parity/vbench_i2v_background_reference.py in the parity venv) on the recipe's full-size random
# weights and two clips. Here the same weights are imported through the real store and converters
# (the published-architecture converters), the clips decoded by anibench and scored by the scorer.


@pytest.fixture(scope="module")
def fixture() -> dict:
    if not FIXTURE.is_file():
        raise FileNotFoundError(f"{FIXTURE} is missing: run scripts/parity/vbench_i2v_background_reference.py")
    return json.loads(FIXTURE.read_text())


@pytest.mark.slow
def test_parity_with_vbench(fixture, tmp_path):
    from parity.clips import PARITY_CLIPS, frames_sha256, write_parity_clips
    from parity.weights_dreamsim import FULL

    from anibench.video import Video

    names = [video["name"] for video in fixture["videos"]]
    clips = write_parity_clips(_folder(tmp_path / "clips"), tuple(s for s in PARITY_CLIPS if s.name in names))
    root = _folder(tmp_path / "seeded-weights")
    aliases = _store_entries(WeightStore(root), _folder(tmp_path / "seeded-files"), FULL)
    runtime = Runtime(device="cpu", dtype="fp32", weights_root=str(root), weight_aliases=aliases, batch_size=8)
    decoded, guidance = [], []
    for video in fixture["videos"]:
        clip = clips[video["name"]]
        assert clip["video_file_sha256"] == fixture["recipe"]["clips"]["video_file_sha256"][video["name"]]
        frames = Video.read(clip["video"]).frames
        assert frames_sha256(frames) == video["decoded_sha256"], "anibench decodes other frames than VBench's reader"
        decoded.append(frames)
        guidance.append(_guidance(frames, load_image(clip["image"]), clip["image"]))
    from anibench.models.dreamsim import embed

    with ScoringSession([SCORER], runtime, workers=1) as session:
        results = session.score(decoded, guidance=guidance, case_ids=names)
        # The embeddings themselves (first values recorded by the reference): catches what the scores barely
        # feel, e.g. DreamSim's centring left out moves the scores by only ~5e-5 (fixture "sensitivity").
        model = runtime.family("dreamsim_ensemble").model
        firsts = [(embed(model, vb.image_pixels(g.guides[0].image))[0], embed(model, vb.frame_pixels(f[:1]))[0])
                  for g, f in zip(guidance, decoded)]
    tolerance = fixture["recipe"]["tolerance"]
    values = {}
    for video, result in zip(fixture["videos"], results):
        outcome = result[SCORER]
        assert isinstance(outcome, ScoreResult), outcome
        values[video["name"]] = outcome.value
        assert abs(outcome.value - video["video_results"]) <= tolerance, (video["name"], outcome.value)
        debug = video["debug"]
        assert outcome.details["image_size"] == debug["conditioning_image"]["size_wh"]
        image_embedding, frame_embedding = firsts[len(values) - 1]
        count = len(debug["embedding_frame0_first_values"])
        assert torch.allclose(image_embedding[:count].double(), torch.tensor(
            debug["conditioning_image"]["embedding_first_values"], dtype=torch.float64), atol=1e-5)
        assert torch.allclose(frame_embedding[:count].double(), torch.tensor(
            debug["embedding_frame0_first_values"], dtype=torch.float64), atol=1e-5)
    assert abs(vb.mean_over_videos(list(values.values())) - fixture["aggregate"]) <= tolerance
