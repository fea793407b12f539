"""Benchmark: report generation at benchmark scale, page size, and time to first paint.

A synthetic finished run — 948 cases (30 action labels, 2d/3d) × 8 models × 20 scorers,
one condition, values drawn per model — is written in anibench's run layout; then the
full report (every table with bootstrap intervals and ranks, and the HTML page) is
built and timed, and the page is opened in headless Chromium to read its paint timings.

    .venv/bin/python benchmarks/bench_report.py [--cases 948 --models 8 --scorers 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from anibench.results import RESULTS_FILE, write_json_atomic, write_samples
from anibench.store import RunStore


def synthetic_run(root: Path, cases: int, models: int, scorers: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    run_dir = root / "synthetic"
    RunStore.in_dir(run_dir).close()
    scorer_names = [f"score_{i:02d}" for i in range(scorers)]
    model_names = [f"model_{m}" for m in range(models)]
    labels = [f"action_{i:02d}" for i in range(30)]
    case_ids = [f"case_{i:04d}" for i in range(cases)]
    skill = rng.normal(0, 0.05, (models, scorers))
    records = []
    for c, case_id in enumerate(case_ids):
        difficulty = rng.normal(0.6, 0.1, scorers)
        for m, model in enumerate(model_names):
            values = np.clip(difficulty + skill[m] + rng.normal(0, 0.05, scorers), 0, 1)
            for s, scorer in enumerate(scorer_names):
                records.append({
                    "item_id": f"{model}/i2v/seed0/{case_id}", "case_id": case_id, "model": model, "condition": "i2v",
                    "seed": 0, "label": labels[c % len(labels)], "style": "2d" if c % 2 else "3d",
                    "video": f"videos/{model}/i2v/seed0/{case_id}.mp4", "video_sha256": "0" * 64, "scorer": scorer,
                    "status": "ok", "value": float(values[s]), "message": None, "details": {},
                })
    write_samples(run_dir, records)
    write_json_atomic(run_dir / RESULTS_FILE, {
        "config": {"kind": "synthetic"},
        "suite": {"name": "synthetic", "cases": cases},
        "conditions": {"i2v": {"positions": [0.0], "mask": False}},
        "scorers": {s: {"name": s, "higher_is_better": True, "unit": "", "aggregate": "mean"} for s in scorer_names},
        "cases": {c: {"id": c, "prompt": f"a synthetic case {c}", "label": None, "video": None} for c in case_ids},
        "results": {},
    })
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=948)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--scorers", type=int, default=20)
    args = parser.parse_args()
    from anibench.leaderboard.report import write_report

    root = Path(tempfile.mkdtemp(prefix="anibench-bench-report-"))
    try:
        start = time.perf_counter()
        run_dir = synthetic_run(root, args.cases, args.models, args.scorers)
        built = time.perf_counter() - start
        page = root / "report" / "index.html"
        start = time.perf_counter()
        write_report([run_dir], html=page)
        generation = time.perf_counter() - start
        size = page.stat().st_size
        paint = first_paint(page)
        rows = args.cases * args.models * args.scorers
        print(f"synthetic run: {args.cases} cases x {args.models} models x {args.scorers} scorers = {rows} scores "
              f"(written in {built:.1f} s)")
        print(f"report generation (load, every table with 1000-resample intervals and ranks, HTML): {generation:.1f} s")
        print(f"HTML page: {size / 1e6:.2f} MB")
        print("browser: " + ", ".join(f"{k} {v:.0f} ms" for k, v in paint.items()))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def first_paint(page: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("ANIBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=args)
        tab = browser.new_page()
        tab.goto(page.as_uri(), wait_until="load")
        timings = tab.evaluate("""() => {
            const out = {};
            performance.getEntriesByType('paint').forEach(e => { out[e.name] = e.startTime; });
            const nav = performance.getEntriesByType('navigation')[0];
            out['DOMContentLoaded'] = nav.domContentLoadedEventEnd;
            out['load'] = nav.loadEventEnd;
            return out;
        }""")
        browser.close()
    return json.loads(json.dumps(timings))


if __name__ == "__main__":
    main()
