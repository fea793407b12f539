"""The run engine end to end on the smoke suite: expected orderings, resume after kill -9, content keys."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from anibench.fsutil import is_temporary
from anibench.results import load_samples
from anibench.runner import run
from anibench.runspec import RunSpec
from anibench.store import RunStore
from anibench.suites import load_suite

from conftest import SMALL_SMOKE

ANIBENCH = [sys.executable, "-m", "anibench"]
SMALL = SMALL_SMOKE


def cell(results, model, condition, scorer):
    return results["results"][model][condition][scorer]["value"]


def test_every_clip_is_generated_and_scored(smoke_run):
    results, _ = smoke_run
    assert results["counts"]["items"] == 18 * 3 * 2
    assert results["counts"]["items_by_status"] == {"generated": 108}
    assert results["failures"] == []
    assert set(results["scorers"]) >= {"dynamic_degree", "temporal_flickering", "guide_psnr", "motion_smoothness"}


def test_baselines_order_as_a_person_expects(smoke_run):
    results, out = smoke_run
    for condition in ("i2v", "first-last"):
        assert cell(results, "reference", condition, "dynamic_degree") > 0.4
        assert cell(results, "static", condition, "dynamic_degree") == 0.0
        assert cell(results, "static", condition, "static_clip") == 1.0
        # identical frames; what differs is H.264 noise (crf 12), under 0.26 grey levels per pixel
        assert cell(results, "static", condition, "temporal_flickering") == pytest.approx(1.0, abs=1e-3)
        assert cell(results, "reference", condition, "temporal_flickering") < 0.995
    assert cell(results, "crossfade", "first-last", "dynamic_degree") >= cell(results, "static", "first-last", "dynamic_degree")
    assert cell(results, "reference", "all", "dynamic_degree") > cell(results, "crossfade", "all", "dynamic_degree")
    # keyframe adherence under first-last: reference and crossfade hit both guides, static misses the last
    per_position = {}
    for record in load_samples(out):
        if record["scorer"] == "guide_psnr" and record["condition"] == "first-last":
            for guide in record["details"]["per_guide"]:
                per_position.setdefault((record["model"], guide["position"]), []).append(guide["value"])
    mean = {k: sum(v) / len(v) for k, v in per_position.items()}
    assert mean[("reference", 0.0)] == mean[("reference", 1.0)] == 60.0
    assert mean[("crossfade", 0.0)] > 38 and mean[("crossfade", 1.0)] > 38
    assert mean[("static", 0.0)] > 38 and mean[("static", 1.0)] < mean[("crossfade", 1.0)] - 8


def test_dynamic_degree_agrees_with_the_renderers_ground_truth(smoke_run):
    """Character clips whose rendered motion is well above VBench's threshold are dynamic, well below are not."""
    _, out = smoke_run
    suite = load_suite(SMALL)
    checked = {"dynamic": 0, "still": 0}
    for record in load_samples(out):
        if record["model"] != "reference" or record["scorer"] != "dynamic_degree" or record["condition"] != "i2v":
            continue
        facts = suite.case(record["case_id"]).metadata
        if facts["camera_motion"] != "static":
            continue  # keypoint amplitude says little about a zoom's motion at the frame edges
        stride = round(facts["fps"] / 8)
        threshold_per_frame = 6 * min(facts["width"], facts["height"]) / 256 / stride
        if facts["motion_amplitude"] > 1.5 * threshold_per_frame:
            assert record["value"] == 1.0, (record["case_id"], facts["motion_amplitude"])
            checked["dynamic"] += 1
        elif facts["motion_amplitude"] < 0.1 * threshold_per_frame:  # idle, talking (turning swaps whole views)
            assert record["value"] == 0.0, (record["case_id"], facts["motion_amplitude"])
            checked["still"] += 1
    assert checked["dynamic"] >= 4 and checked["still"] >= 4


def test_results_carry_provenance(smoke_run):
    results, out = smoke_run
    assert results["provenance"]["versions"]["anibench"] and results["provenance"]["versions"]["av"]
    assert "commit" in results["provenance"]["git"]
    assert results["suite"]["fingerprint"] and results["config"]["suite"]["per_action"] == 1
    dd = results["scorers"]["dynamic_degree"]
    assert dd["sampling"].startswith("fps_stride") and dd["params"]["flow_max_side"] == 512
    assert set(results["generators"]) == {"reference", "static", "crossfade"}
    assert (out / "samples.jsonl").is_file() and (out / "anibench.sqlite").is_file()
    first = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    assert {"case_id", "model", "condition", "scorer", "value", "video_sha256", "scorer_version"} <= set(first)


def test_rerun_computes_nothing_and_gives_identical_results(smoke_run):
    results, out = smoke_run
    again = run(RunSpec(suite=SMALL), out)
    assert again["counts"]["this_invocation"] == {"generated": 0, "computed": 0, "reused": again["counts"]["this_invocation"]["reused"]}
    assert again["results"] == results["results"]


def test_identical_content_is_scored_once(smoke_run):
    _, out = smoke_run
    store = RunStore.in_dir(out, readonly=True)
    with sqlite3.connect(store.path) as db:
        items_by_sha = db.execute("SELECT COUNT(DISTINCT video_sha256), COUNT(*) FROM items").fetchone()
    assert items_by_sha[0] < items_by_sha[1]  # static and crossfade i2v clips are the same file
    # frame-only scorers: one score per distinct clip, however many items share it
    with sqlite3.connect(store.path) as db:
        (flicker,) = db.execute("SELECT COUNT(*) FROM scores WHERE scorer='temporal_flickering'").fetchone()
    assert flicker == items_by_sha[0]


def _write_spec(path: Path) -> Path:
    spec = {"suite": SMALL, "generators": ["reference", "static", "crossfade"], "conditions": ["i2v", "first-last"]}
    path.write_text(yaml.safe_dump(spec))
    return path


def _score_rows(db_path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_midway_then_rerun_gives_identical_results_with_nothing_scored_twice(smoke_run, tmp_path):
    reference_results, _ = smoke_run
    spec_file = _write_spec(tmp_path / "run.yaml")
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([*ANIBENCH, "run", str(spec_file), "--out", str(out), "--no-report"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _score_rows(out / RunStore.FILENAME) < 150 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = _score_rows(out / RunStore.FILENAME)
    generated_before = sum(1 for r in RunStore.in_dir(out, readonly=True).items() if r["status"] == "generated")
    assert 0 < killed_at < 900
    assert not (out / "results.json").exists()

    done = subprocess.run([*ANIBENCH, "run", str(spec_file), "--out", str(out), "--no-report"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["results"] == reference_results["results"]
    store = RunStore.in_dir(out, readonly=True)
    invocations = store.invocations()
    assert len(invocations) == 2
    assert sum(i["computed"] for i in invocations) == store.score_count()  # nothing scored twice
    assert invocations[1]["computed"] == store.score_count() - killed_at
    assert invocations[1]["generated"] == 108 - generated_before  # finished clips were kept, not redone
    # the killed process's temporaries (half-written clips, results) are gone after the resume
    leftovers = [p for p in out.rglob("*") if is_temporary(p.name)]
    assert leftovers == []
