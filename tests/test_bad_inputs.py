"""Bad input: each case fails with a clear error naming the case and the file, recorded in the run,
and every other case is still scored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anibench.generation import GENERATORS
from anibench.generators.static import StaticGenerator
from anibench.results import load_samples
from anibench.runner import run, score_videos
from anibench.runspec import RunSpec
from anibench.store import RunStore
from anibench.suite import case_key
from anibench.suites import load_suite

import badfiles as bad
from conftest import moving_square

ESCAPE = "escape@prompts.json#10"  # the identity of the refused record 10 of prompts.json
FRAME_SCORERS = ["temporal_flickering", "dynamic_degree", "motion_smoothness", "static_clip", "scene_cuts"]
GUIDE_SCORERS = ["guide_psnr", "guide_ssim"]


class PromptedStatic(StaticGenerator):
    """The static baseline, but it insists on a prompt, as every real model does."""

    name = "prompted_static"
    requires_prompt = True


@pytest.fixture(scope="module", autouse=True)
def prompted_generator():
    GENERATORS.register("prompted_static", PromptedStatic, replace=True)


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-suite")
    frames = moving_square(num_frames=17)
    for name in ("good", "size", "gray", "rgba", "deep", "escape", "empty"):
        bad.write_clip(root / f"{name}.mp4", frames)
    bad.image(root / "good.png", frames[0])
    bad.image(root / "empty.png", frames[0])
    bad.image(root / "size.png", np.zeros((50, 50, 3), np.uint8))
    bad.grayscale_png(root / "gray.png", size=(64, 96))
    bad.rgba_png(root / "rgba.png", size=(64, 96))
    bad.png16(root / "deep.png", size=(64, 96))
    big = bad.write_clip(root.parent / "big.mp4", moving_square(num_frames=40, height=128, width=192))
    bad.truncated_mp4(root / "truncated.mp4", big)
    bad.corrupt_mp4(root / "corrupt.mp4")
    bad.zero_frame_mp4(root / "zero.mp4")
    bad.write_clip(root / "one.mp4", frames[:1])
    bad.image(root / "one.png", frames[0])
    bad.wrong_fps_mp4(root / "wrongfps.mp4")
    bad.image(root.parent / "outside.png", frames[0])
    records = [{"id": n, "prompt": f"clip {n}"} for n in ("good", "size", "gray", "rgba", "deep", "one", "truncated")]
    records += [
        {"id": "empty", "prompt": ""},
        {"id": "ghost", "video": "ghost.mp4", "prompt": "a missing clip"},
        {"id": "escape", "image": "../outside.png", "prompt": "sneaky"},
    ]
    (root / "prompts.json").write_text(json.dumps(records))
    return root


def _by_case(records):
    out = {}
    for r in records:
        out.setdefault(r["case_id"], {})[r["scorer"]] = r
    return out


def _assert_names(record, case_id, file_fragment):
    assert case_id in record["message"] and file_fragment in record["message"], record["message"]


def test_score_records_each_bad_file_and_scores_the_rest(bad_folder, tmp_path):
    suite = load_suite(f"folder:{bad_folder}")
    # the refused record keeps an identity of its own, naming where it was defined
    assert [(c.id, c.case_id) for c in suite.invalid] == [(ESCAPE, "escape")]
    results = score_videos([bad_folder], tmp_path / "run", model="m", suite=suite)
    cases = _by_case(load_samples(tmp_path / "run"))

    assert {s: r["status"] for s, r in cases["good"].items() if r["status"] != "ok"} == {"mask_precision": "not_applicable",
                                                                                          "mask_motion": "not_applicable"}
    assert cases["good"]["guide_psnr"]["value"] > 35
    for case_id, fragment in [("truncated", "truncated.mp4"), ("corrupt", "corrupt.mp4"), ("zero", "zero.mp4"),
                              ("wrongfps", "wrongfps.mp4")]:
        for scorer in FRAME_SCORERS:
            assert cases[case_id][scorer]["status"] == "failed"
            _assert_names(cases[case_id][scorer], case_id, fragment)
    assert "frame timestamps" in cases["wrongfps"]["dynamic_degree"]["message"]
    for case_id, problem in [("size", "50x50"), ("gray", "grayscale"), ("rgba", "transparent"), ("deep", "16-bit")]:
        for scorer in GUIDE_SCORERS:
            record = cases[case_id][scorer]
            assert record["status"] == "failed" and problem in record["message"]
            _assert_names(record, case_id, f"{case_id}.png")
        assert all(cases[case_id][s]["status"] == "ok" for s in FRAME_SCORERS)
    for scorer in ("temporal_flickering", "motion_smoothness"):
        assert cases["one"][scorer]["status"] == "failed" and "1 frame" in cases["one"][scorer]["message"]
    assert cases["one"]["guide_psnr"]["status"] == "ok"
    escape = cases[ESCAPE]["temporal_flickering"]
    assert escape["status"] == "failed" and "outside the suite root" in escape["message"]
    _assert_names(escape, "escape", "prompts.json")

    store = RunStore.in_dir(tmp_path / "run", readonly=True)
    stages = {(f["stage"], f["case_id"]) for f in store.failures()}
    assert ("score", "corrupt") in stages and ("load", ESCAPE) in stages
    assert results["counts"]["scores_by_status"]["failed"] >= 4 * len(FRAME_SCORERS)


def test_run_records_generation_failures_and_goes_on(bad_folder, tmp_path):
    spec = RunSpec(suite={"name": "folder", "path": str(bad_folder)}, generators=["static", "prompted_static"],
                   conditions=["i2v"], scorers=["temporal_flickering", "guide_psnr"])
    results = run(spec, tmp_path / "run")
    items = {r["item_id"]: r for r in RunStore.in_dir(tmp_path / "run", readonly=True).items()}

    assert items["static/i2v/seed0/good"]["status"] == "generated"
    assert items["prompted_static/i2v/seed0/good"]["status"] == "generated"
    assert items["static/i2v/seed0/empty"]["status"] == "generated"
    empty = items["prompted_static/i2v/seed0/empty"]
    assert empty["status"] == "failed" and "empty prompt" in empty["message"] and "empty" in empty["message"]
    ghost = items["static/i2v/seed0/ghost"]
    assert ghost["status"] == "failed" and "ghost.mp4" in ghost["message"] and "not found" in ghost["message"]
    for case_id, problem in [("size", "50x50"), ("gray", "grayscale"), ("rgba", "transparent"), ("deep", "16-bit")]:
        item = items[f"static/i2v/seed0/{case_id}"]
        assert item["status"] == "failed" and problem in item["message"] and f"{case_id}.png" in item["message"]
    assert items[f"static/i2v/seed0/{case_key(ESCAPE)}"]["status"] == "failed"
    assert items["static/i2v/seed0/corrupt"]["status"] == "failed"  # its ground truth cannot be decoded

    good = results["results"]["static"]["i2v"]["temporal_flickering"]
    # identical frames; what differs is H.264 noise (crf 12): under 0.26 grey levels
    assert good["value"] == pytest.approx(1.0, abs=1e-3) and good["n_ok"] == 2 and good["n_failed"] >= 8
    reasons = " ".join(f["message"] or "" for f in results["failures"])
    assert "ghost.mp4" in reasons and "empty prompt" in reasons


def test_gbk_prompt_file_runs_end_to_end(tmp_path):
    root = tmp_path / "bench"
    frames = moving_square(num_frames=17)
    bad.write_clip(root / "video" / "cartoon_films_ku_qi_1.mp4", frames)
    (root / "image").mkdir()
    bad.image(root / "image" / "cartoon_films_ku_qi_1.png", frames[0])
    (root / "prompts.txt").write_bytes("男孩哭了。@@image/cartoon_films_ku_qi_1.png\n".encode("gbk"))
    spec = RunSpec(suite={"name": "anisora", "path": str(root), "prompts": "prompts.txt", "guide_fit": "exact"},
                   generators=["prompted_static"], conditions=["i2v"], scorers=["guide_psnr"])
    results = run(spec, tmp_path / "run")
    assert results["results"]["prompted_static"]["i2v"]["guide_psnr"]["n_ok"] == 1
