"""Benchmark of AnimeReward's six heads on CPU: clips per second with the heads together in one scoring session
(frames decoded once, the 224-px squash and model features shared) against each head in a session of its own.

    .venv/bin/python benchmarks/bench_anime_reward.py [--sizes tiny full] [--clips 6] [--frames 49]
        [--height 192] [--width 256] [--json OUT]

* ``tiny``: every head on its smallest seeded test network (tests/parity/weights_*.py), installed in the
  published formats through the real weights store: what the plumbing costs (decode, resize, crops, tracking,
  batching), not the networks.
* ``full``: ActionCLIP ViT-B/16, the BLIP ViT-B/16 + BERT-base heads and the BLIP ViT-L/16 recogniser at their
  published sizes; Mantis-8B, GroundingDINO-base and SAM2.1 base+ stay tiny (an 8B forward takes ~10 min and a
  full SAM2 ~6 s per frame and object on 2 cores — they do not fit a CPU benchmark).

Per setting: one warm-up clip (model loads, gallery embedding), then ``--clips`` clips timed; ``together`` is
one session with the six heads and ``anime_reward.combined`` (and the five heads other than character consistency,
whose per-object tracking dominates), ``alone`` the sum over six sessions of one head each. Random weights:
timings only, values are not scores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # parity.*: the seeded weight recipes

HEADS = ("visual_smoothness", "visual_motion", "visual_appeal", "text_video_consistency",
         "image_video_consistency", "character_consistency")
PROMPT = ("A girl with short silver hair turns towards the camera and waves, the wind moving her coat; "
          "a quiet street at dusk, soft orange light, cel-shaded anime style.")


def _clips(count: int, frames: int, height: int, width: int) -> list[np.ndarray]:
    from conftest import moving_square

    return [moving_square(num_frames=frames, height=height, width=width, step=1.0 + i, seed=i) for i in range(count)]


def _guidance(clips: list[np.ndarray], fps: float):
    from anibench.conditions import Guidance, GuideFrame

    return [Guidance("i2v", (GuideFrame(0.0, 0, c[0].copy()),), len(c), fps, c.shape[1], c.shape[2]) for c in clips]


def _time_session(scorers: list[str], aliases: dict[str, str], root: str, clips: list[np.ndarray],
                  fps: float) -> dict:
    from anibench.runtime.context import Runtime
    from anibench.session import ScoringSession

    runtime = Runtime(device="cpu", dtype="fp32", weights_root=root, weight_aliases=aliases)
    guidance = _guidance(clips, fps)
    started = time.perf_counter()
    with ScoringSession(scorers, runtime, workers=2) as session:
        warm = session.score(clips[:1], prompts=[PROMPT], guidance=guidance[:1], fps=fps)
        warm_s = time.perf_counter() - started
        failed = {k: str(v) for k, v in warm[0].items() if isinstance(v, BaseException)}
        if failed:
            raise SystemExit(f"warm-up failed: {failed}")
        decodes = session.stats["decodes"]
        t0 = time.perf_counter()
        session.score(clips, prompts=[PROMPT] * len(clips), guidance=guidance, fps=fps)
        timed_s = time.perf_counter() - t0
        decodes = session.stats["decodes"] - decodes
    return {"warmup_s": round(warm_s, 2), "seconds": round(timed_s, 3), "clips": len(clips),
            "s_per_clip": round(timed_s / len(clips), 4), "clips_per_s": round(len(clips) / timed_s, 3),
            "decodes": decodes}


def bench(size: str, clips: list[np.ndarray], fps: float) -> dict:
    from parity.weights_anime_reward import install_all

    with tempfile.TemporaryDirectory(prefix=f"anime-reward-bench-{size}-") as root:
        aliases = install_all(root, size)
        together = _time_session([f"anime_reward.{h}" for h in HEADS] + ["anime_reward.combined"], aliases, root,
                                 clips, fps)
        five = [f"anime_reward.{h}" for h in HEADS if h != "character_consistency"]
        together_five = _time_session(five, aliases, root, clips, fps)
        alone = {h: _time_session([f"anime_reward.{h}"], aliases, root, clips, fps) for h in HEADS}
    alone_s = sum(a["seconds"] for a in alone.values())
    alone_five_s = alone_s - alone["character_consistency"]["seconds"]
    return {"size": size, "together": together, "together_without_character": together_five, "alone": alone,
            "alone_total": {"seconds": round(alone_s, 3), "clips_per_s": round(len(clips) / alone_s, 3),
                            "decodes": sum(a["decodes"] for a in alone.values())},
            "speedup": round(alone_s / together["seconds"], 2),
            "speedup_without_character": round(alone_five_s / together_five["seconds"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "full"], choices=["tiny", "full"])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--fps", type=float, default=16.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from anibench.runtime.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    clips = _clips(args.clips, args.frames, args.height, args.width)
    report = {"clip": f"{args.frames}x{args.height}x{args.width} @ {args.fps:g} fps", "threads": torch.get_num_threads(),
              "results": [bench(size, clips, args.fps) for size in args.sizes]}
    print(f"AnimeReward, {args.clips} clips of {report['clip']}, CPU fp32, {report['threads']} threads")
    print("| weights | head(s) | s/clip | clips/s | decodes | warm-up s |")
    print("|---|---|---:|---:|---:|---:|")
    for result in report["results"]:
        t = result["together"]
        print(f"| {result['size']} | six + combined, one session | {t['s_per_clip']:.3f} | {t['clips_per_s']:.2f} | "
              f"{t['decodes']} | {t['warmup_s']:.1f} |")
        for head, a in result["alone"].items():
            print(f"| {result['size']} | {head} alone | {a['s_per_clip']:.3f} | {a['clips_per_s']:.2f} | "
                  f"{a['decodes']} | {a['warmup_s']:.1f} |")
        total = result["alone_total"]
        print(f"| {result['size']} | sum of the six alone | {total['seconds'] / args.clips:.3f} | "
              f"{total['clips_per_s']:.2f} | {total['decodes']} | – |")
        print(f"| {result['size']} | **shared / alone** | {result['speedup']:.2f}× faster together | | | |")
        five = result["together_without_character"]
        print(f"| {result['size']} | the five without character, one session | {five['s_per_clip']:.3f} | "
              f"{five['clips_per_s']:.2f} | {five['decodes']} | {five['warmup_s']:.1f} |")
        print(f"| {result['size']} | **five: shared / alone** | {result['speedup_without_character']:.2f}× faster "
              "together | | | |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
