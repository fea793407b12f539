"""The command line, run as a user runs it (subprocesses, real files)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

ANIBENCH = [sys.executable, "-m", "anibench"]


def cli(*args, check=True, timeout=300):
    done = subprocess.run([*ANIBENCH, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"anibench {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_plugin_listings():
    assert {"anisora", "folder", "smoke"} <= set(cli("suite", "list").stdout.split())
    out = cli("scorers", "list").stdout
    for name in ("temporal_flickering", "dynamic_degree", "motion_smoothness", "guide_psnr", "mask_precision", "scene_cuts"):
        assert name in out
    assert "group vbench-i2v" in out and "vbench.camera_motion" in out  # groups are listed with their members
    assert {"reference", "static", "crossfade"} <= set(cli("generators", "list").stdout.split())


def test_suite_show_and_build(samples_dir, tmp_path):
    out = cli("suite", "show", f"anisora:{samples_dir}", "--json").stdout
    shown = json.loads(out)
    assert shown["suite"]["cases"] == 6 and any(c["id"] == "cartoon_films_da_dou_1" for c in shown["cases"])
    cli("suite", "build", "smoke", "--out", tmp_path / "smoke", "--per-action", "1")
    manifest = json.loads((tmp_path / "smoke" / "manifest.json").read_text())
    assert len(manifest["cases"]) == 18 and (tmp_path / "smoke" / "video").is_dir()
    table = cli("suite", "show", f"smoke:{tmp_path / 'smoke'}").stdout
    assert "2d_waving" in table


def test_score_and_report_on_the_real_anisora_samples(samples_dir, tmp_path):
    run_dir = tmp_path / "scores"
    done = cli("score", samples_dir / "reward" / "video", "--suite", f"anisora:{samples_dir}", "--out", run_dir,
               "--model", "published")
    assert "| published | own |" in done.stdout and "guide_psnr" in done.stdout
    # Every available scorer was asked for: those without weights are named on one line, not explained one by one.
    unavailable = next(line for line in done.stdout.splitlines() if line.startswith("not available here ("))
    assert "vbench.subject_consistency" in unavailable and "anime_reward.visual_motion" in unavailable
    assert "skipped " not in done.stdout and "anibench weights import" not in done.stdout
    results = json.loads((run_dir / "results.json").read_text())
    cells = results["results"]["published"]["own"]
    assert cells["guide_psnr"]["n_ok"] == 3 and cells["temporal_flickering"]["n_ok"] == 3
    assert cells["dynamic_degree"]["value"] == 1.0  # all three clips move
    report = cli("report", run_dir, "--csv", tmp_path / "table.csv").stdout
    assert "## Scores by model and condition" in report and "Keyframe adherence" in report
    rows = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert rows[0]["model"] == "published" and float(rows[0]["guide_psnr"]) > 30


def test_run_generate_and_flags(tmp_path):
    run_dir = tmp_path / "run"
    cli("generate", "--opt", "per_action=1", "--generator", "static", "--condition", "last", "--limit", "3",
        "--out", run_dir)
    assert len(list((run_dir / "videos" / "static" / "last" / "seed0").glob("*.mp4"))) == 3
    done = cli("run", "--opt", "per_action=1", "--generator", "static", "--condition", "last", "--limit", "3",
               "--scorer", "temporal_flickering", "--out", run_dir)
    assert "generated 0" in done.stdout and "| static | last |" in done.stdout


def test_user_errors_exit_2_with_a_message(tmp_path):
    done = cli("run", "--generator", "statc", "--out", tmp_path / "x", check=False)
    assert done.returncode == 2 and "did you mean static" in done.stderr
    done = cli("suite", "show", f"anisora:{tmp_path / 'missing'}", check=False)
    assert done.returncode == 2 and "suite folder not found" in done.stderr


@pytest.mark.parametrize("suite_args", [["--suite", "smoke"]])
def test_scorers_check_reports_per_perturbation(suite_args):
    done = cli("scorers", "check", "temporal_flickering", *suite_args, "--limit", "6")
    assert "freeze" in done.stdout and "pass" in done.stdout and "FAIL" not in done.stdout


def test_report_formats_and_html(smoke_run, tmp_path):
    _, out = smoke_run
    latex = cli("report", out, "--format", "latex", "--by", "condition", "--resamples", "100").stdout
    assert r"\begin{tabular}" in latex and r"\toprule" in latex
    payload = json.loads(cli("report", out, "--format", "json", "--by", "style", "--resamples", "100").stdout)
    assert {t["id"] for t in payload["tables"]} >= {"by-style", "anisora", "vbench"}
    cli("report", out, "--html", tmp_path / "page" / "index.html", "--csv", tmp_path / "t.csv", "--resamples", "100")
    assert (tmp_path / "page" / "index.html").stat().st_size > 10_000
    assert (tmp_path / "t-by-label.csv").is_file() and (tmp_path / "t-by-style.csv").is_file()
    assert not (tmp_path / "t-vbench.csv").exists()  # no vbench.* scorer in a weight-free run: an empty table, not written
    done = cli("report", out, "--format", "yaml", check=False)
    assert done.returncode == 2 and "--format: must be one of markdown, csv, latex, json" in done.stderr
