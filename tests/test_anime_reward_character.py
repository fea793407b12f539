"""AnimeReward character consistency: the gallery and open-set formulas by hand; parity of the reference fit,
boxes, crops and gallery maths with the published code (tests/parity/fixtures/anime_reward_character.json);
the scorer through a scoring session on tiny random weights; bad input; the perturbation battery (slow)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import AnibenchError, InputError, NotApplicable
from anibench.models import character_gallery as cg
from anibench.models import character_tracking as ct
from anibench.runtime.context import Runtime
from anibench.scoring import SCORERS, Expect, ScoreInput, ScoreResult
from anibench.session import ScoringSession
from anibench.video import Video

from conftest import moving_square
from parity import weights_character as W

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "anime_reward_character.json"
SCORER = "anime_reward.character_consistency"


# --- formulas by hand ----------------------------------------------------------------------------


def test_gallery_score_by_hand():
    """Dot products averaged per lower-cased caption, softmax per frame, mean over frames, top-1, mean over objects."""
    gallery = cg.Gallery(np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0]], np.float32), ["Ann", "ann", "Bo"])
    assert gallery.names == ["ann", "bo"] and gallery.groups == [[0, 1], [2]]
    query = np.array([[[1.0, 0.0], [0.0, 2.0]],  # object 0: frame 0 likes ann, frame 1 likes bo
                      [[0.5, 0.5], [0.5, 0.5]]], np.float32)
    result = cg.gallery_scores(query, gallery)

    def softmax(a, b):
        return math.exp(a) / (math.exp(a) + math.exp(b))

    # object 0: frame 0 sims ann = mean(1, 3) = 2, bo = 0; frame 1: ann = 0, bo = 2
    p_ann_0 = (softmax(2, 0) + softmax(0, 2)) / 2  # = 0.5
    # object 1: ann = mean(0.5, 1.5) = 1, bo = 0.5 in both frames
    p_ann_1 = softmax(1.0, 0.5)
    assert result.per_object[0]["top1_probability"] == pytest.approx(max(p_ann_0, 1 - p_ann_0), abs=1e-6)
    assert result.per_object[1]["top1_probability"] == pytest.approx(p_ann_1, abs=1e-6)
    assert result.per_object[1]["top1_identity"] == "ann"
    assert result.value == pytest.approx((0.5 + p_ann_1) / 2, abs=1e-6)


def test_gallery_is_not_normalised_scaling_the_query_sharpens():
    gallery = cg.Gallery(np.eye(3, dtype=np.float32), ["a", "b", "c"])
    small = cg.gallery_scores(np.array([[[1.0, 0.0, 0.0]] * 8]), gallery).value
    large = cg.gallery_scores(np.array([[[10.0, 0.0, 0.0]] * 8]), gallery).value
    assert small == pytest.approx(math.e / (math.e + 2)) and large > 0.99


def test_open_set_same_character_scores_higher_than_another():
    rng = np.random.default_rng(0)
    guide = rng.normal(size=(2, 16)).astype(np.float32)  # two reference characters
    same = guide[0] + 0.1 * rng.normal(size=(8, 16))  # tracked frames of character 0
    other = guide[1] + 0.1 * rng.normal(size=(8, 16))
    kept = cg.open_set_scores(np.stack([same]), guide, tracked_from=[0])
    swapped = cg.open_set_scores(np.stack([other]), guide, tracked_from=[0])  # tracked from 0, looks like 1
    assert kept.value > 0.95 and kept.value > swapped.value
    assert kept.matching[0]["identity_kept"] is True
    assert swapped.matching[0]["identity_kept"] is False and swapped.matching[0]["best_guide"] == 1
    assert 0.0 <= swapped.value <= 1.0


def test_open_set_value_is_half_plus_half_cosine():
    guide = np.array([[1.0, 0.0]], np.float32)
    frames = np.array([[[0.0, 5.0], [3.0, 0.0]]], np.float32)  # cos 0 and 1 → mean 0.5 → 0.75
    result = cg.open_set_scores(frames, guide)
    assert result.per_object[0]["cosine"] == pytest.approx(0.5) and result.value == pytest.approx(0.75)
    opposite = cg.open_set_scores(-np.ones((1, 2, 2), np.float32), np.ones((1, 2), np.float32))
    assert opposite.value == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="tracked_from"):
        cg.open_set_scores(frames, guide, tracked_from=[3])


@pytest.mark.parametrize("visible, expected", [
    (list(range(20)), [0, 2, 4, 6, 8, 10, 12, 14]),  # step 20 // 8 = 2: strided from the first, not a linspace
    (list(range(3, 11)), list(range(3, 11))),
    (list(range(15)), list(range(8))),  # step 1: the first 8 only
    (list(range(7)), None),  # fewer than 8 visible frames: the object is dropped
])
def test_crop_frame_choice_by_hand(visible, expected):
    assert ct.crop_frame_positions(visible) == expected


def test_masked_square_crop_by_hand():
    frame = np.full((10, 12, 3), 200, np.uint8)
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True  # 3 × 6 box
    mask[2, 3] = False  # inside the box, outside the mask: zeroed
    crop = ct.square_masked_crop(frame, mask, jpeg_roundtrip=False)
    assert crop.shape == (6, 6, 3)
    assert (crop[:1] == 0).all() and (crop[4:] == 0).all()  # pad top (6-3)//2 = 1, bottom 2
    assert crop[1, 0].tolist() == [0, 0, 0] and crop[1, 1].tolist() == [200] * 3 and (crop[2:4] == 200).all()


@pytest.mark.parametrize("box, expected", [([10.5, 2.5, 20.5, 13.5], [10, 2, 20, 13]),
                                           ([-0.4, 0.4, 4.4, 3.6], [0, 0, 5, 3])])  # w = round(4.8)
def test_prompt_box_round_trip(box, expected):
    assert ct.prompt_box(box) == expected


def test_keep_largest_only_when_more_than_five():
    boxes = [{"box": [0, 0, w, 1]} for w in (1, 5, 3, 2, 4)]
    assert ct.keep_largest(boxes) == boxes  # five: detector order kept
    six = boxes + [{"box": [0, 0, 6, 1]}]
    assert [b["box"][2] for b in ct.keep_largest(six)] == [6, 5, 4, 3, 2]


# --- parity with the published code --------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture() -> dict:
    if not FIXTURE.is_file():
        raise FileNotFoundError(f"{FIXTURE} is missing: run scripts/parity/anime_reward_character_reference.py")
    return json.loads(FIXTURE.read_text())


def _sha(array: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _samples(tensor: torch.Tensor) -> list[float]:
    flat = tensor.double().reshape(-1)
    positions = np.random.default_rng(W.PARITY_SEED + 3).integers(0, flat.numel(), len(flat) and 64)
    return [float(flat[i]) for i in positions]


def test_parity_reference_fit_is_bit_exact(fixture):
    images = W.parity_reference_images()
    for row in fixture["reference_fit"]:
        fitted, record = ct.fit_reference(images[row["name"]], W.PARITY_H, W.PARITY_W)
        assert list(fitted.shape) == row["shape"] and _sha(fitted) == row["sha256"], row["name"]
        assert record["frame_size"] == [W.PARITY_W, W.PARITY_H]


def test_parity_boxes(fixture):
    boxes = fixture["boxes"]
    kept = ct.keep_largest([{"box": b} for b in boxes["detected"]])
    assert [k["box"] for k in kept] == boxes["kept"]
    assert [ct.prompt_box(k["box"]) for k in kept] == boxes["prompt_boxes"]


def test_parity_crops_embeddings_and_gallery_score(fixture, tmp_path):
    tolerance = fixture["recipe"]["tolerance"]
    retrieval = fixture["retrieval"]
    frames, id_map = W.parity_frames(), W.parity_id_map()
    assert _sha(frames) == retrieval["frames_sha256"] and _sha(id_map) == retrieval["id_map_sha256"]
    model = W.StubRecognizer().eval()
    # gallery: the same synthetic crops, read and squashed as the published gallery dataset does
    json_path, _ = W.write_gallery(tmp_path)
    entries = cg.read_gallery_json(json_path)
    from PIL import Image

    pixels = []
    for entry in entries:
        with Image.open(cg.gallery_image_path(tmp_path, entry.image)) as image:
            pixels.append(cg.gallery_pixels(np.asarray(image.convert("RGB"))))
    pixels = torch.from_numpy(np.stack(pixels))
    theirs = retrieval["gallery"]["pixels"]
    assert pixels.double().sum().item() == pytest.approx(theirs["sum"], rel=1e-6)
    assert np.allclose(_samples(pixels), theirs["samples"], atol=tolerance)
    with torch.no_grad():
        gallery_embeddings = model.embed_crops(pixels).numpy()
    assert np.allclose(gallery_embeddings, retrieval["gallery"]["embeddings"], atol=tolerance)
    gallery = cg.Gallery(gallery_embeddings, [e.caption for e in entries])
    assert gallery.names == retrieval["gallery"]["identities"]
    # query: crops of every tracked object (object 3 is visible in 5 frames: dropped, as published)
    query = []
    kept_ids = [o["object_id"] for o in retrieval["objects"]]
    for object_id in (1, 2, 3, 4):
        crops, record = ct.object_crops(frames, id_map, object_id)
        if object_id not in kept_ids:
            assert crops is None and "visible in 5 frame(s)" in record["dropped"]
            continue
        row = next(o for o in retrieval["objects"] if o["object_id"] == object_id)
        crops = torch.from_numpy(crops)
        assert list(crops.shape) == row["crops"]["shape"]
        assert crops.double().sum().item() == pytest.approx(row["crops"]["sum"], rel=1e-6)
        assert crops.double().abs().sum().item() == pytest.approx(row["crops"]["sum_abs"], rel=1e-6)
        assert np.allclose(_samples(crops), row["crops"]["samples"], atol=tolerance), object_id
        with torch.no_grad():
            embedding = model.embed_crops(crops).numpy()
        assert np.allclose(embedding, row["embeddings"], atol=tolerance), object_id
        query.append(embedding)
    result = cg.gallery_scores(np.stack(query), gallery)
    assert np.allclose([p["top1_probability"] for p in result.per_object], retrieval["per_object_top1"],
                       atol=tolerance)
    assert abs(result.value - retrieval["value"]) <= tolerance


def test_without_jpeg_round_trips_the_crops_differ(fixture):
    """The published JPEG round trips matter beyond the tolerance: the switch is real."""
    frames, id_map = W.parity_frames(), W.parity_id_map()
    with_jpeg, _ = ct.object_crops(frames, id_map, 1)
    without, _ = ct.object_crops(frames, id_map, 1, jpeg_roundtrip=False)
    assert np.abs(with_jpeg - without).max() > 100 * fixture["recipe"]["tolerance"]


# --- the scorer on tiny random weights -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """Weights folders: tiny models that detect and track whole frames, and a detector that finds nothing."""
    root = tmp_path_factory.mktemp("character-weights")
    files = W.write_weights_folder(root / "files")
    aliases = W.install(root / "store", files)
    blind = W.write_grounding_dino(root / "blind-gdino", detects=False)
    from anibench.runtime.weights import WeightStore

    WeightStore(root / "store").add_local("gdino_blind", blind, format="hf-folder")
    return {"root": root / "store", "aliases": aliases}


def _runtime(tiny: dict, **swap: str) -> Runtime:
    return Runtime(device="cpu", dtype="fp32", batch_size=4, weights_root=str(tiny["root"]),
                   weight_aliases={**tiny["aliases"], **swap})


def _case(frames: np.ndarray, guide: np.ndarray | None = None) -> Guidance:
    guide = frames[0].copy() if guide is None else guide
    t, h, w = frames.shape[:3]
    return Guidance("i2v", (GuideFrame(0.0, 0, guide),), t, 16.0, h, w)


def test_scorer_gallery_and_open_set_through_a_session(tiny):
    frames = moving_square(12, 64, 96, step=2.0, seed=0)
    runtime = _runtime(tiny)
    scorers = [SCORERS.get(SCORER)(), SCORERS.get(SCORER)(mode="open_set")]
    with ScoringSession([scorers[0]], runtime) as session:
        (gallery,) = session.score([frames], guidance=[_case(frames)], case_ids=["case-a"])
    with ScoringSession([scorers[1]], runtime) as session:
        (open_set,) = session.score([frames], guidance=[_case(frames)], case_ids=["case-a"])
    g, o = gallery[SCORER], open_set[SCORER]
    assert isinstance(g, ScoreResult) and isinstance(o, ScoreResult), (g, o)
    assert 0.0 <= g.value <= 1.0 and 0.0 <= o.value <= 1.0
    assert g.details["mode"] == "gallery" and g.details["identities"] == 4
    assert 1.0 / 4 <= g.value  # a top-1 probability over 4 identities
    assert g.details["detections"] and all(len(d["prompt_box"]) == 4 for d in g.details["detections"])
    # full-frame tracks: every later object overwrites the earlier ones, only the last survives
    kept = [obj for obj in g.details["objects"] if "dropped" not in obj]
    assert len(kept) == 1 and kept[0]["visible_frames"] == 12
    assert o.details["mode"] == "open_set" and len(o.details["matching"]) == 1
    assert o.details["guide_characters"][0]["mask_from"] == "tracker mask"


def test_no_character_detected_is_a_recorded_not_applicable(tiny):
    frames = moving_square(9, 64, 96, seed=1)
    with ScoringSession([SCORER], _runtime(tiny, anime_reward_character_gdino="gdino_blind")) as session:
        (result,) = session.score([frames], guidance=[_case(frames)], case_ids=["case-blind"])
    error = result[SCORER]
    assert isinstance(error, NotApplicable) and "no character detected in the reference image" in str(error)
    assert "case-blind" in str(error)


def test_missing_reference_image_is_a_clear_per_case_outcome():
    frames = moving_square(9, 64, 96, seed=2)
    sample = ScoreInput("case-noref", Video(frames, 16.0))
    with pytest.raises(NotApplicable, match="needs the case's reference image") as error:
        SCORERS.get(SCORER)().score(sample)
    assert "case-noref" in str(error.value)
    later_guide = Guidance("mid", (GuideFrame(0.5, 4, frames[4].copy()),), 9, 16.0, 64, 96)
    with pytest.raises(NotApplicable, match="first-frame guide"):
        SCORERS.get(SCORER)().score(ScoreInput("case-mid", Video(frames, 16.0), guidance=later_guide))


def test_short_clip_is_an_input_error():
    frames = moving_square(7, 64, 96, seed=3)
    with pytest.raises(InputError, match="needs at least 8"):
        SCORERS.get(SCORER)().score(ScoreInput("case-short", Video(frames, 16.0), guidance=_case(frames)))


def test_bad_mode_is_refused():
    with pytest.raises(InputError, match="mode must be one of gallery, open_set"):
        SCORERS.get(SCORER)(mode="closed")


def test_missing_weights_name_the_entry(tmp_path):
    frames = moving_square(9, 64, 96, seed=4)
    with ScoringSession([SCORER], Runtime(device="cpu", dtype="fp32", weights_root=str(tmp_path))) as session:
        (result,) = session.score([frames], guidance=[_case(frames)], case_ids=["case-w"])
    error = result[SCORER]
    assert isinstance(error, AnibenchError) and "anime_reward_character_" in str(error), error


def test_open_set_identity_does_not_depend_on_the_gallery():
    gallery_mode, open_mode = SCORERS.get(SCORER)(), SCORERS.get(SCORER)(mode="open_set")
    assert "anime_reward_character_gallery" in gallery_mode.families
    assert open_mode.families == ("anime_reward_character",)
    assert gallery_mode.identity() != open_mode.identity()


def test_battery_plumbing_with_random_weights(tiny):
    """Every perturbation scores or is a recorded not-applicable; unread inputs (prompt, mask) change nothing."""
    from anibench.sanity import run_battery

    scorer = SCORERS.get(SCORER)(mode="open_set")
    assert scorer.expectations["swap_prompt"] is Expect.NONE
    samples = []
    for seed in range(2):
        frames = moving_square(9, 64, 96, step=1.0 + seed, seed=seed)
        region = np.zeros(frames.shape[:3], bool)
        region[:, 10:50, 20:80] = True
        guidance = Guidance("sanity", (GuideFrame(0.0, 0, frames[0].copy()),), 9, 16.0, 64, 96,
                            motion_region=region)
        samples.append(ScoreInput(f"case-{seed}", Video(frames, 16.0), f"prompt {seed}", guidance))
    report = run_battery([scorer], samples, runtime=_runtime(tiny), workers=1)
    checks = {check.perturbation: check for check in report.checks}
    for name in ("swap_prompt", "invert_mask"):
        assert checks[name].errors == 0 and checks[name].moved_as_declared == checks[name].cases, name


def test_gallery_archive_converter_unpacks_safely(tmp_path):
    import io
    import tarfile

    _, archive = W.write_gallery(tmp_path / "ok")
    cg.convert_gallery_archive(archive, tmp_path / "out")
    entries = cg.read_gallery_json(tmp_path / "ok" / "gallerys.json")
    assert all(cg.gallery_image_path(tmp_path / "out", e.image) is not None for e in entries)  # under videos/
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(InputError, match="cannot unpack the character gallery archive"):
        cg.convert_gallery_archive(evil, tmp_path / "evil-out")
    assert not (tmp_path / "escaped.txt").exists()
    assert cg.gallery_image_path(tmp_path / "out", "../ok/gallerys.json") is None  # never outside the root


@pytest.mark.parametrize("content, message", [("{}", "non-empty JSON list"), ("[{\"image\": 3}]", "entry 0"),
                                              ("not json", "cannot read")])
def test_bad_gallery_lists_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "gallerys.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        cg.read_gallery_json(path)
