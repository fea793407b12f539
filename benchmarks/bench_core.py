"""Benchmark of the model-ready core: decodes per clip, peak memory against clip length, batched
backbone extraction, the VBench consistency dimensions against VBench's own code, the smoke demo.

    .venv/bin/python benchmarks/bench_core.py [--section decode rss extraction vbench smoke] [--quick]

* ``decode``: one scoring session with every weight-free scorer (and the three VBench
  consistency dimensions with seeded random full-size weights): decodes per clip.
* ``rss``: peak resident memory of a child process scoring a 49-frame and a 481-frame
  1280x720 clip with every weight-free scorer plus the DINO/CLIP dimensions.
* ``extraction``: DINO ViT-B/16 (full size, random weights) frames per second at batch
  sizes 1, 8 and 32 through the model family, on frames of three clips.
* ``vbench``: ms per clip for ``vbench.subject_consistency``, ``vbench.i2v_subject``,
  ``vbench.background_consistency`` through anibench (model load + decode + compute, and
  steady state), next to VBench's own code on the same clips and weights when
  ``tests/parity/fixtures/vbench_timing.json`` exists (written by
  ``scripts/parity/vbench_reference.py`` in its venv), and the ratio.
* ``smoke``: wall time of the README's ``make demo`` run (``anibench run`` on the smoke
  suite) in a fresh folder.

Weights are seeded random checkpoints in the published formats (``tests/parity/weights.py``),
imported through the real ``anibench weights import`` path into a temporary weights folder:
timings are real, values are not scores.
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.parity: the seeded weight recipe
WEIGHT_FREE = ["temporal_flickering", "dynamic_degree", "motion_smoothness", "static_clip", "scene_cuts"]
NEURAL = ["vbench.subject_consistency", "vbench.i2v_subject", "vbench.background_consistency"]


def moving_clip(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured background with a textured square sliding across (trackable, compressible)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(110, 40, (height // 4, width // 4, 3)).astype(np.float32), (0, 0), 1.5)
    base = cv2.resize(np.clip(base, 0, 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    frames = np.repeat(base[None], num_frames, axis=0)
    side = height // 4
    patch = np.clip(rng.normal(200, 30, (side, side, 3)), 0, 255).astype(np.uint8)
    for t in range(num_frames):
        x = int((t * 7) % (width - side))
        frames[t, height // 3 : height // 3 + side, x : x + side] = patch
    return frames


def install_random_weights(root: Path) -> None:
    """Seeded full-size DINO ViT-B/16 and CLIP ViT-B/32 in their published formats, imported for real
    as local entries that stand in for the published ones (``$ANIBENCH_WEIGHT_ALIASES``)."""
    from anibench.runtime.weights import WeightStore
    from tests.parity.weights import write_clip_vitb32_checkpoint, write_dino_vitb16_checkpoint

    store = WeightStore(root)
    with tempfile.TemporaryDirectory() as scratch:
        store.add_local("seeded_dino_vitb16", write_dino_vitb16_checkpoint(Path(scratch) / "dino_vitbase16_pretrain.pth"),
                        format="torch-state-dict", converter="anibench.models.dino:convert_published")
        store.add_local("seeded_clip_vit_b32", write_clip_vitb32_checkpoint(Path(scratch) / "ViT-B-32.pt"),
                        format="torch-state-dict", converter="anibench.models.clip:convert_openai")
    os.environ["ANIBENCH_WEIGHT_ALIASES"] = "dino_vitb16=seeded_dino_vitb16,clip_vit_b32=seeded_clip_vit_b32"


def guidance_for(path: Path):
    """Guides at the first frame (for I2V subject) taken from the clip itself."""
    from anibench.conditions import Condition, resolve
    from anibench.suite import Case
    from anibench.video import Video

    return resolve(Case("bench"), Condition("bench", (0.0,)), ground_truth=Video.read(path, max_frames=1))


def session_scores(paths: list[Path], scorers: list[str], batch_size: int = 16, repeat: int = 1) -> dict:
    """Score ``paths`` in one session: ``seconds`` includes loading models; ``steady`` is the last of
    ``repeat`` passes with everything loaded (each pass decodes and computes again)."""
    from anibench.runtime.context import Runtime
    from anibench.scoring import ScoreInput
    from anibench.session import ScoringJob, ScoringSession

    runtime = Runtime(device="cpu", dtype="fp32", batch_size=batch_size)
    started = time.perf_counter()
    with ScoringSession(scorers, runtime) as session:
        for _ in range(repeat):
            pass_started = time.perf_counter()
            jobs = [ScoringJob(p, ScoreInput(p.stem, guidance=guidance_for(p))) for p in paths]
            results = session.score_jobs(jobs)
            steady = time.perf_counter() - pass_started
            if _ == 0:
                seconds = time.perf_counter() - started
        families = {name: {"batches": f.batches_run, "inputs": f.items_run}
                    for name, f in runtime.loaded_families().items()}
        stats = dict(session.stats)
    errors = {name: str(r) for res in results for name, r in res.scores.items() if isinstance(r, BaseException)}
    return {"seconds": seconds, "steady": steady, "stats": stats, "families": families, "errors": errors}


def section_decode(workdir: Path, quick: bool) -> None:
    from anibench.video import Video

    paths = [Video(moving_clip(49, 320, 480, seed=i), 16).write(workdir / f"decode{i}.mp4") for i in range(3)]
    out = session_scores(paths, WEIGHT_FREE + NEURAL)
    print("\n## Decodes per clip (weight-free scorers + 3 VBench consistency dimensions)\n")
    print(f"clips: {len(paths)}, decoding passes: {int(out['stats']['decodes'])}, model families: {out['families']}")
    if out["errors"]:
        print("errors:", out["errors"])


def section_rss(workdir: Path, quick: bool) -> None:
    print("\n## Peak RSS while scoring one 1280x720 clip (weight-free scorers + DINO/CLIP dimensions)\n")
    print("| frames | peak RSS (MiB) | seconds |\n|---|---|---|")
    from anibench.video import Video

    for frames in (49, 481):
        path = Video(moving_clip(frames, 720, 1280), 16).write(workdir / f"rss{frames}.mp4")
        child = subprocess.run(
            [sys.executable, __file__, "--child-rss", str(path)], capture_output=True, text=True,
            env={**os.environ, "ANIBENCH_WEIGHTS": os.environ["ANIBENCH_WEIGHTS"]},
        )
        if child.returncode:
            print(child.stderr[-2000:])
            continue
        peak, seconds = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"| {frames} | {peak:.0f} | {seconds:.1f} |")


def child_rss(path: str) -> None:
    out = session_scores([Path(path)], WEIGHT_FREE + NEURAL)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps([peak, out["seconds"]]))


def section_extraction(workdir: Path, quick: bool) -> None:
    from anibench.video import Video

    paths = [Video(moving_clip(49, 224, 224, seed=i), 16).write(workdir / f"ext{i}.mp4") for i in range(3)]
    print("\n## DINO ViT-B/16 extraction throughput (CPU, fp32, full size, 3 clips x 49 frames)\n")
    print("| batch size | frames/s | batches |\n|---|---|---|")
    for batch in (1, 8, 32):
        out = session_scores(paths, ["vbench.subject_consistency"], batch_size=batch)
        family = out["families"].get("dino_vitb16", {})
        print(f"| {batch} | {family.get('inputs', 0) / out['seconds']:.1f} | {family.get('batches', 0)} |")


def section_vbench(workdir: Path, quick: bool) -> None:
    """The 49-frame 848x480 timing clip of the parity recipe, against VBench's own code on it
    (tests/parity/fixtures/vbench_reference_timing.json, from scripts/parity/vbench_timing.py)."""
    from tests.parity.clips import TIMING_CLIP, write_clip

    video = Path(write_clip(TIMING_CLIP, workdir / "timing")["video"])
    reference = json.loads((REPO / "tests/parity/fixtures/vbench_reference_timing.json").read_text())
    theirs = {r["dimension"]: r for r in reference["rows"] if r["clip"] == TIMING_CLIP.name}
    print(f"\n## VBench consistency dimensions on one {TIMING_CLIP.width}x{TIMING_CLIP.height} clip of "
          f"{TIMING_CLIP.frames} frames (CPU, fp32, full-size random weights), seconds\n")
    print("| dimension | VBench end to end | anibench end to end | ratio | VBench compute | anibench compute | ratio |")
    print("|---|---|---|---|---|---|---|")
    total_theirs = 0.0
    for name in NEURAL:
        ours = session_scores([video], [name], repeat=2)
        row = theirs[name.split(".", 1)[1]]
        total_theirs += row["end_to_end_s"]
        print(f"| {name} | {row['end_to_end_s']:.1f} | {ours['seconds']:.1f} | {row['end_to_end_s'] / ours['seconds']:.1f}x "
              f"| {row['compute_s']:.1f} | {ours['steady']:.1f} | {row['compute_s'] / ours['steady']:.1f}x |")
    together = session_scores([video], NEURAL, repeat=2)
    print(f"| all three together | {total_theirs:.1f} | {together['seconds']:.1f} | "
          f"{total_theirs / together['seconds']:.1f}x | | {together['steady']:.1f} | |")
    print(f"\nVBench figures: best of {reference.get('repeat')} runs, load average "
          f"{reference.get('load_average_start_end')}; anibench: one run, models loaded once per session.")


def section_smoke(workdir: Path, quick: bool) -> None:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "anibench", "run", "--out", str(workdir / "smoke"), "--no-report"],
                   check=True, capture_output=True, env={**os.environ, "ANIBENCH_CACHE": str(workdir / "cache")})
    print(f"\n## Smoke demo\n\n`anibench run` (smoke suite, fresh run folder, suite build included): "
          f"{time.perf_counter() - started:.1f} s")


SECTIONS = {"decode": section_decode, "rss": section_rss, "extraction": section_extraction,
            "vbench": section_vbench, "smoke": section_smoke}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", nargs="*", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child-rss", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        child_rss(args.child_rss)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="anibench-bench-") as scratch:
        workdir = Path(scratch)
        os.environ["ANIBENCH_WEIGHTS"] = str(workdir / "weights")
        if set(args.section) & {"decode", "rss", "extraction", "vbench"}:
            install_random_weights(workdir / "weights")
        for name in args.section:
            SECTIONS[name](workdir, args.quick)


if __name__ == "__main__":
    main()
