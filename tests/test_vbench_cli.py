"""The first neural VBench dimensions as a user runs them: ``anibench score --scorers vbench.…`` gives
VBench's own numbers with the weights present, and a precise message without them while the rest runs.

Weights are the seeded full-size checkpoints of the parity recipe (tests/parity/weights.py) in their
published formats — DINO's ``.pth`` state dict, OpenAI's TorchScript archive — imported through the
real weights store as local entries that stand in for the published ones
(``$ANIBENCH_WEIGHT_ALIASES``): the published CLIP file's sha256 is in the manifest, and a random
file must not pass for it. VBench's values on the same weights and clips are the parity fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from anibench.models.vbench_consistency import ConsistencyScore, frame_weighted_mean
from anibench.results import load_samples
from anibench.runtime.weights import WeightStore

from parity.clips import write_parity_clips
from parity.weights import write_clip_vitb32_checkpoint, write_dino_vitb16_checkpoint

FIXTURES = Path(__file__).parent / "parity" / "fixtures"
DIMENSIONS = ("subject_consistency", "i2v_subject", "background_consistency")
ALIASES = "dino_vitb16=seeded_dino_vitb16,clip_vit_b32=seeded_clip_vit_b32"


def cli(*args, env=None, check=True):
    done = subprocess.run([sys.executable, "-m", "anibench", *map(str, args)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})})
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parity-clips")
    write_parity_clips(folder)
    return folder


@pytest.fixture(scope="module")
def seeded_weights(tmp_path_factory) -> str:
    scratch = tmp_path_factory.mktemp("seeded")
    store = WeightStore()  # $ANIBENCH_WEIGHTS: the session's own folder (conftest)
    store.add_local("seeded_dino_vitb16", write_dino_vitb16_checkpoint(scratch / "dino_vitbase16_pretrain.pth"),
                    format="torch-state-dict", converter="anibench.models.dino:convert_published")
    store.add_local("seeded_clip_vit_b32", write_clip_vitb32_checkpoint(scratch / "ViT-B-32.pt", torchscript=True),
                    format="torchscript", converter="anibench.models.clip:convert_openai")
    shutil.rmtree(scratch)  # imported into the store: the 0.9 GB of sources are not needed again
    return ALIASES


def test_without_weights_the_message_is_precise_and_the_rest_runs(clips, tmp_path):
    done = cli("score", clips, "--out", tmp_path / "run", "--suite", f"folder:{clips}", "--opt", "guide_fit=center-crop",
               "--scorers", "vbench.subject_consistency,temporal_flickering", "--device", "cpu", "--no-report")
    by_scorer: dict[str, list[dict]] = {}
    for record in load_samples(tmp_path / "run"):
        by_scorer.setdefault(record["scorer"], []).append(record)
    assert all(r["status"] == "ok" for r in by_scorer["temporal_flickering"])
    missing = by_scorer["vbench.subject_consistency"]
    assert missing and all(r["status"] == "failed" for r in missing)
    message = missing[0]["message"]
    for fragment in ("dino_vitbase16_pretrain.pth", "dino_vitb16", "anibench weights import dino_vitb16",
                     "anibench weights fetch dino_vitb16"):
        assert fragment in message, message
    assert "dino_vitb16" in done.stdout  # the failures are printed too


def test_vbench_numbers_through_the_cli(clips, seeded_weights, tmp_path):
    listed = cli("weights", "list", env={"ANIBENCH_WEIGHT_ALIASES": seeded_weights}).stdout
    assert "seeded_dino_vitb16" in listed and "seeded_clip_vit_b32" in listed
    cli("score", clips, "--out", tmp_path / "run", "--suite", f"folder:{clips}", "--opt", "guide_fit=center-crop",
        "--scorers", ",".join(f"vbench.{d}" for d in DIMENSIONS), "--device", "cpu", "--dtype", "fp32", "--no-report",
        env={"ANIBENCH_WEIGHT_ALIASES": seeded_weights})
    samples = {(r["case_id"], r["scorer"]): r for r in load_samples(tmp_path / "run")}
    for dimension in DIMENSIONS:
        fixture = json.loads((FIXTURES / f"vbench_{dimension}.json").read_text())
        ours = []
        for video in fixture["videos"]:
            record = samples[(video["name"], f"vbench.{dimension}")]
            assert record["status"] == "ok", record["message"]
            assert record["value"] == pytest.approx(video["video_results"], abs=1e-4), (dimension, video["name"])
            ours.append(record)
        if dimension == "i2v_subject":
            aggregate = sum(r["value"] for r in ours) / len(ours)
        else:
            aggregate = frame_weighted_mean(ConsistencyScore(r["value"], r["details"]["frame_sum"],
                                                            r["details"]["frame_count"]) for r in ours)
        assert aggregate == pytest.approx(fixture["aggregate"], abs=1e-4), dimension
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    weights = {w["name"] for s in DIMENSIONS for w in results["scorers"][f"vbench.{s}"]["weights"]}
    assert weights == {"seeded_dino_vitb16", "seeded_clip_vit_b32"}  # provenance names what really ran
    assert results["provenance"]["runtime"]["dtype"] == "fp32"


def test_a_device_asked_for_by_name_must_exist(clips, tmp_path):
    """``--device cuda`` on a machine without CUDA is refused before anything runs, saying what there is."""
    import torch

    done = cli("score", clips, "--out", tmp_path / "run", "--scorers", "temporal_flickering", "--device", "cuda",
               "--no-report", check=False)
    if torch.cuda.is_available():
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 2 and "CUDA is not available" in done.stderr and "available: cpu" in done.stderr
        assert not (tmp_path / "run").exists()
    malformed = cli("score", clips, "--out", tmp_path / "run2", "--device", "gpu0", check=False)
    assert malformed.returncode == 2 and "--device 'gpu0'" in malformed.stderr


def test_the_group_runs_what_has_weights_and_names_what_is_missing(clips, seeded_weights, tmp_path):
    """``--scorers vbench-i2v``: members whose weights are installed run, the others are skipped with the
    file they need and the commands that provide it; a scorer named beside the group runs too."""
    done = cli("score", clips, "--out", tmp_path / "run", "--suite", f"folder:{clips}", "--opt", "guide_fit=center-crop",
               "--scorers", "vbench-i2v,temporal_flickering,vbench.i2v_subject", "--device", "cpu", "--no-report",
               env={"ANIBENCH_WEIGHT_ALIASES": seeded_weights})
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    ran = set(results["scorers"])
    assert {"temporal_flickering", *(f"vbench.{d}" for d in DIMENSIONS)} <= ran
    skipped = results["skipped_scorers"]
    assert set(skipped) | ran >= {f"vbench.{d}" for d in ("motion_smoothness", "dynamic_degree", "aesthetic_quality",
                                                          "imaging_quality", "i2v_background", "camera_motion",
                                                          "overall_consistency")}
    assert not set(skipped) & ran
    for name, reason in skipped.items():
        assert f"skipped {name}:" in done.stdout
        if "missing" in reason:  # an installed member without its weights says which file and how to get it
            assert "anibench weights import" in reason and "needs:" in reason, reason
    samples = load_samples(tmp_path / "run")
    assert all(r["status"] == "ok" for r in samples)
    for record in (r for r in samples if r["scorer"] == "vbench.i2v_subject"):
        image = record["details"]  # what the I2V score compared the clip with
        assert image["crop"].startswith("none") and isinstance(image["aspect_matches"], bool)
        width, height = map(int, image["image_ratio"].split("-"))  # the reduced ratio of the image's size
        assert image["image_size"][0] * height == image["image_size"][1] * width


@pytest.mark.slow
def test_all_ten_dimensions_and_the_totals_through_the_cli(tmp_path):
    """``anibench score clips/ --scorers vbench-i2v`` with every weight present (seeded random models in their
    published formats, small where the converters accept other sizes): all ten dimensions score every clip in
    one decoding pass each, and the VBench-I2V table carries VBench's totals from the suite aggregates."""
    from anibench.leaderboard.data import load_board
    from anibench.leaderboard.tables import named_table
    from anibench.resources import load_yaml

    from parity.clips import ClipSpec, write_clip
    from parity.weights_amt import write_amt_s_checkpoint
    from parity.weights_clip_l14 import write_aesthetic_head_checkpoint, write_clip_l14_checkpoint
    from parity.weights_cotracker import TINY_SIZES, write_cotracker2_checkpoint
    from parity.weights_dreamsim import TINY, write_dreamsim_archive, write_tiny_dino_checkpoint
    from parity.weights_musiq import TINY_SIZE, write_musiq_checkpoint
    from parity.weights_raft import write_raft_things_checkpoint
    from parity.weights_viclip import MICRO, write_viclip_checkpoint

    scratch = tmp_path / "published"
    scratch.mkdir()
    state = "torch-state-dict"
    weights = {  # entry: (file in its published format, format, converter accepting the size written)
        "dino_vitb16": (write_tiny_dino_checkpoint(scratch / "dino.pth", TINY), state, "anibench.models.dino:convert_checkpoint"),
        "clip_vit_b32": (write_clip_vitb32_checkpoint(scratch / "ViT-B-32.pt", torchscript=True), "torchscript",
                         "anibench.models.clip:convert_openai"),
        "clip_vit_l14": (write_clip_l14_checkpoint(scratch / "ViT-L-14.pt", "parity"), "torchscript",
                         "anibench.models.clip:convert_openai_checkpoint"),
        "laion_aesthetic_vit_l14": (write_aesthetic_head_checkpoint(scratch / "head.pth"), state,
                                    "anibench.models.aesthetic:convert_laion_head"),
        "raft_things": (write_raft_things_checkpoint(scratch / "raft-things.pth"), state, "anibench.models.raft:convert_published"),
        "amt_s": (write_amt_s_checkpoint(scratch / "amt-s.pth"), state, "anibench.models.amt:convert_published"),
        "musiq_spaq": (write_musiq_checkpoint(scratch / "musiq.pth", size=TINY_SIZE), state,
                       "anibench.models.musiq:convert_checkpoint"),
        "cotracker2": (write_cotracker2_checkpoint(scratch / "cotracker2.pth", 0, **TINY_SIZES), state,
                       "anibench.models.cotracker:convert_published"),
        "viclip_internvid_10m_flt": (write_viclip_checkpoint(scratch / "viclip.pth", MICRO), state,
                                     "anibench.models.viclip:convert_any_size"),
    }
    write_dreamsim_archive(scratch / "dreamsim.zip", TINY)
    weights["dreamsim_ensemble"] = (scratch / "dreamsim.zip", "zip", "anibench.models.dreamsim:convert_archive")
    store = WeightStore()
    for entry, (path, fmt, converter) in weights.items():
        store.add_local(f"e2e_{entry}", path, format=fmt, converter=converter, replace=True)
    aliases = ",".join(f"{entry}=e2e_{entry}" for entry in weights)

    clips = tmp_path / "clips"
    prompts = {"pan": "a street at dusk, camera pans right", "zoom": "a quiet room, camera zooms in"}
    for seed, name in enumerate(prompts):
        written = write_clip(ClipSpec(name, 176, 144, 9, seed=seed + 3, image_width=176, image_height=144), clips)
        assert Path(written["image"]).name == f"{name}.png"  # the folder suite's first-frame guide
    (clips / "prompts.json").write_text(json.dumps(prompts))
    done = cli("score", clips, "--out", tmp_path / "run", "--suite", f"folder:{clips}", "--scorers", "vbench-i2v",
               "--device", "cpu", "--dtype", "fp32", env={"ANIBENCH_WEIGHT_ALIASES": aliases})

    results = json.loads((tmp_path / "run" / "results.json").read_text())
    members = load_yaml("scorer_groups.yaml")["vbench-i2v"]["members"]
    assert sorted(results["scorers"]) == sorted(members) and results["skipped_scorers"] == {}
    samples = load_samples(tmp_path / "run")
    assert len(samples) == 20 and all(r["status"] == "ok" for r in samples), [r["message"] for r in samples]
    assert "VBench-I2V" in done.stdout and "i2v_total" in done.stdout  # the table and totals are printed

    (model,) = results["results"]
    aggregates = {name: cell["value"] for name, cell in next(iter(results["results"][model].values())).items()}
    constants = load_yaml("vbench_constants.yaml")
    dims = constants["dimensions"]

    def total(parts):
        weighted = sum((aggregates[p] - dims[p]["min"]) / (dims[p]["max"] - dims[p]["min"]) * dims[p]["weight"] for p in parts)
        return weighted / sum(dims[p]["weight"] for p in parts)

    quality, i2v = total(constants["totals"]["i2v_quality"]), total(constants["totals"]["i2v_score"])
    (row,) = [cells for _, cells in named_table(load_board([tmp_path / "run"]), "vbench", resamples=50).rows]
    assert row["i2v_quality"].value == pytest.approx(quality) and row["i2v_score"].value == pytest.approx(i2v)
    assert row["i2v_total"].value == pytest.approx((quality + i2v) / 2)
    assert row["vbench.imaging_quality"].value == pytest.approx(aggregates["vbench.imaging_quality"])  # VBench's / 100
    assert aggregates["vbench.imaging_quality"] <= 1.0 < max(r["value"] for r in samples if r["scorer"] == "vbench.imaging_quality")
