"""Benchmark of VBench-I2V through anibench against VBench's own code: per dimension, all ten together,
decodes and model loads per run, peak memory against clip length.

    .venv/bin/python benchmarks/bench_vbench_i2v.py [--section dimensions together rss] [--rss-size 320x240]

* ``dimensions``: seconds per clip for each dimension on the parity recipe's 848x480, 49-frame clip
  (CPU, fp32, full-size architectures, seeded random weights), VBench's own code against anibench,
  read from the timing fixtures each dimension's script wrote (``tests/parity/fixtures/vbench_*timing*.json``,
  ``scripts/parity/vbench_<dimension>_timing.py``: VBench in its own venv, anibench through a
  ``ScoringSession``; best of the runs recorded there).
* ``together``: the ten dimensions in one ``ScoringSession`` on the same clip: wall time (model
  loads included), decoding passes, and each model family's loads, batches and inputs; compared with
  the sum of VBench's ten end-to-end times (VBench decodes the clip and loads a model per dimension).
* ``rss``: peak resident memory of a child process scoring a 49-frame and a 481-frame clip with all
  ten dimensions (``--rss-size``, default 320x240: 481 frames at 480p take most of an hour on 2 cores).

Weights are seeded random checkpoints in the published formats (``tests/parity/weights*.py``),
imported through the real weights store and converters as substitutes of the published entries
(``$ANIBENCH_WEIGHT_ALIASES``): timings are real, values are not scores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # parity.*: the seeded weight and clip recipes
sys.path.insert(0, str(REPO / "benchmarks"))
FIXTURES = REPO / "tests" / "parity" / "fixtures"
DIMENSIONS = ["subject_consistency", "background_consistency", "i2v_subject", "i2v_background", "camera_motion",
              "motion_smoothness", "dynamic_degree", "aesthetic_quality", "imaging_quality", "overall_consistency"]
# Timing fixtures not named vbench_<dimension>_timing.json.
TIMING_FILES = {
    "subject_consistency": "vbench_reference_timing.json",
    "background_consistency": "vbench_reference_timing.json",
    "i2v_subject": "vbench_reference_timing.json",
}


def _weights() -> dict[str, tuple[str, Callable[[Path], Path], str, str]]:
    """Manifest entry → (substitute name, writer of the published-format file, format, converter)."""
    from parity.weights import write_clip_vitb32_checkpoint, write_dino_vitb16_checkpoint
    from parity.weights_amt import write_amt_s_checkpoint
    from parity.weights_clip_l14 import write_aesthetic_head_checkpoint, write_clip_l14_checkpoint
    from parity.weights_cotracker import write_cotracker2_checkpoint
    from parity.weights_dreamsim import FULL as DREAMSIM_FULL
    from parity.weights_dreamsim import write_dreamsim_archive
    from parity.weights_musiq import write_musiq_checkpoint
    from parity.weights_raft import write_raft_things_checkpoint
    from parity.weights_viclip import FULL as VICLIP_FULL
    from parity.weights_viclip import write_viclip_checkpoint

    state = "torch-state-dict"
    return {
        "dino_vitb16": ("seeded_dino_vitb16", lambda d: write_dino_vitb16_checkpoint(d / "dino_vitbase16_pretrain.pth"),
                        state, "anibench.models.dino:convert_published"),
        "clip_vit_b32": ("seeded_clip_vit_b32", lambda d: write_clip_vitb32_checkpoint(d / "ViT-B-32.pt", torchscript=True),
                         "torchscript", "anibench.models.clip:convert_openai"),
        "clip_vit_l14": ("seeded_clip_vit_l14", lambda d: write_clip_l14_checkpoint(d / "ViT-L-14.pt", "full"),
                         "torchscript", "anibench.models.clip:convert_openai_vit_l14"),
        "laion_aesthetic_vit_l14": ("seeded_laion_aesthetic",
                                    lambda d: write_aesthetic_head_checkpoint(d / "sa_0_4_vit_l_14_linear.pth"),
                                    state, "anibench.models.aesthetic:convert_laion_head"),
        "raft_things": ("seeded_raft_things", lambda d: write_raft_things_checkpoint(d / "raft-things.pth"),
                        state, "anibench.models.raft:convert_published"),
        "amt_s": ("seeded_amt_s", lambda d: write_amt_s_checkpoint(d / "amt-s.pth"), state,
                  "anibench.models.amt:convert_published"),
        "musiq_spaq": ("seeded_musiq_spaq", lambda d: write_musiq_checkpoint(d / "musiq_spaq_ckpt.pth"), state,
                       "anibench.models.musiq:convert_published"),
        "dreamsim_ensemble": ("seeded_dreamsim_ensemble", lambda d: _dreamsim(d, write_dreamsim_archive, DREAMSIM_FULL),
                              "zip", "anibench.models.dreamsim:convert_published"),
        "cotracker2": ("seeded_cotracker2", lambda d: write_cotracker2_checkpoint(d / "cotracker2.pth"), state,
                       "anibench.models.cotracker:convert_published"),
        "viclip_internvid_10m_flt": ("seeded_viclip", lambda d: write_viclip_checkpoint(d / "ViClip.pth", VICLIP_FULL),
                                     state, "anibench.models.viclip:convert_published"),
    }


def _dreamsim(folder: Path, write: Callable, size) -> Path:
    path = folder / "dreamsim_ensemble_checkpoint.zip"
    write(path, size)  # returns its recipe, not the path
    return path


def install_random_weights(root: Path) -> str:
    """Every VBench-I2V weight as a seeded full-size checkpoint, imported for real; returns the aliases."""
    from anibench.runtime.weights import WeightStore

    store = WeightStore(root)
    aliases = []
    for entry, (substitute, write, fmt, converter) in _weights().items():
        with tempfile.TemporaryDirectory() as scratch:
            store.add_local(substitute, write(Path(scratch)), format=fmt, converter=converter)
        aliases.append(f"{entry}={substitute}")
    return ",".join(aliases)


def timing_clip(workdir: Path, frames: int | None = None, size: tuple[int, int] | None = None):
    """The parity recipe's 848x480 timing clip (with its conditioning image), or a resized/lengthened variant."""
    from dataclasses import replace

    from parity.clips import TIMING_CLIP, write_clip

    spec = TIMING_CLIP
    if frames or size:
        spec = replace(spec, name=f"timing_{frames}", frames=frames or spec.frames,
                       **({"width": size[0], "height": size[1]} if size else {}))
    return write_clip(spec, workdir / spec.name)


def score_together(clip: dict, repeat: int = 1) -> dict[str, Any]:
    """All ten dimensions in one session on ``clip``: seconds (model loads included), decodes, family loads."""
    from anibench.conditions import Condition, resolve
    from anibench.runtime.context import Runtime
    from anibench.scoring import ScoreInput
    from anibench.session import ScoringJob, ScoringSession
    from anibench.suite import Case, Guide

    video = Path(clip["video"])
    # camera motion reads its target from the prompt, as VBench reads it from the file name
    case = Case(video.stem, prompt="a city street at dusk, camera pans right", guides=(Guide(0.0, Path(clip["image"])),))
    guidance = resolve(case, Condition("i2v", (0.0,)))
    runtime = Runtime(device="cpu", dtype="fp32")
    started = time.perf_counter()
    with ScoringSession([f"vbench.{d}" for d in DIMENSIONS], runtime) as session:
        for _ in range(repeat):
            results = session.score_jobs([ScoringJob(video, ScoreInput(case.id, prompt=case.prompt, guidance=guidance))])
        seconds = time.perf_counter() - started
        families = {name: {"batches": f.batches_run, "inputs": f.items_run}
                    for name, f in runtime.loaded_families().items()}
        stats = dict(session.stats)
    scores = {name: (str(r) if isinstance(r, BaseException) else r.value) for name, r in results[0].scores.items()}
    return {"seconds": seconds, "stats": stats, "families": families, "scores": scores}


def _best(node: Any, key: str = "end_to_end_s") -> float | None:
    """The smallest ``key`` anywhere under ``node`` (the fixtures record runs in slightly different shapes)."""
    found: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == key and isinstance(v, (int, float)):
                    found.append(float(v))
                elif k == key and isinstance(v, list):
                    found.extend(float(x) for x in v if isinstance(x, (int, float)))
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(node)
    return min(found) if found else None


def measured(dimension: str) -> tuple[float | None, float | None]:
    """(VBench end to end, anibench end to end) in seconds from the dimension's timing fixture."""
    name = TIMING_FILES.get(dimension, f"vbench_{dimension}_timing.json")
    data = json.loads((FIXTURES / name).read_text())
    if name == "vbench_reference_timing.json":  # the first three: VBench rows; anibench from bench_core
        rows = [r for r in data["rows"] if r["dimension"] == dimension and r["clip"].startswith("timing")]
        return (rows[0]["end_to_end_s"] if rows else None), None
    if dimension == "i2v_background":  # VBench side kept in its own file
        vbench = json.loads((FIXTURES / "vbench_i2v_background_vbench_timing.json").read_text())
        return _best(vbench), _best(data.get("anibench"))
    return _best(data.get("vbench", data.get("rows", {}).get("vbench"))), _best(
        data.get("anibench", data.get("rows", {}).get("anibench")))


def section_dimensions(workdir: Path, args) -> None:
    print("\n## Per dimension: 848x480, 49 frames, CPU fp32, full-size random weights (seconds per clip)\n")
    print("| dimension | VBench end to end | anibench end to end | VBench / anibench |\n|---|---|---|---|")
    for dimension in DIMENSIONS:
        theirs, ours = measured(dimension)
        ratio = f"{theirs / ours:.1f}x" if theirs and ours else "–"
        print(f"| {dimension} | {theirs or float('nan'):.1f} | {ours or float('nan'):.1f} | {ratio} |")


def section_together(workdir: Path, args) -> None:
    clip = timing_clip(workdir)
    out = score_together(clip)
    theirs = [measured(d)[0] for d in DIMENSIONS]
    total = sum(t for t in theirs if t)
    print("\n## All ten dimensions in one session (848x480, 49 frames, CPU fp32)\n")
    print(f"anibench: {out['seconds']:.1f} s for the clip, {int(out['stats'].get('decodes', 0))} decoding pass(es); "
          f"VBench, ten dimensions one after another: {total:.1f} s "
          f"({sum(1 for t in theirs if t)} measured) -> {total / out['seconds']:.1f}x")
    print("model families (one load each):", json.dumps(out["families"]))
    errors = {k: v for k, v in out["scores"].items() if isinstance(v, str)}
    if errors:
        print("errors:", errors)


def section_rss(workdir: Path, args) -> None:
    width, height = map(int, args.rss_size.split("x"))
    print(f"\n## Peak RSS scoring one {width}x{height} clip with all ten dimensions (child process)\n")
    print("| frames | peak RSS (MiB) | seconds |\n|---|---|---|")
    for frames in (49, 481):
        clip = timing_clip(workdir, frames=frames, size=(width, height))
        child = subprocess.run([sys.executable, __file__, "--child-rss", json.dumps({k: str(v) for k, v in clip.items()})],
                               capture_output=True, text=True, env=dict(os.environ))
        if child.returncode:
            print(child.stderr[-3000:])
            continue
        peak, seconds = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"| {frames} | {peak:.0f} | {seconds:.1f} |")


def child_rss(clip_json: str) -> None:
    out = score_together(json.loads(clip_json))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps([peak, out["seconds"]]))


SECTIONS = {"dimensions": section_dimensions, "together": section_together, "rss": section_rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", nargs="*", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--rss-size", default="320x240")
    parser.add_argument("--child-rss", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        child_rss(args.child_rss)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="anibench-bench-i2v-") as scratch:
        workdir = Path(scratch)
        if set(args.section) - {"dimensions"}:
            os.environ["ANIBENCH_WEIGHTS"] = str(workdir / "weights")
            os.environ["ANIBENCH_WEIGHT_ALIASES"] = install_random_weights(workdir / "weights")
        for name in args.section:
            SECTIONS[name](workdir, args)


if __name__ == "__main__":
    main()
