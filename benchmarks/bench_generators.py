"""Benchmark of the AniSora generators on CPU: seconds per clip and peak memory with tiny random pipelines.

    .venv/bin/python benchmarks/bench_generators.py [--clips 3] [--json OUT]

Each generator runs in a subprocess of its own (so its peak resident memory is its own): tiny random
networks in the published layouts (tests/parity/weights_anisora.py), imported and converted through the weights
store, at the published step counts (V1 50 with dynamic CFG 6, V2 the 16-step OSS schedule with CFG 5, V3/V3.2 and
anymask 8 without CFG) and tiny clips (Wan 17×48×64, V1 9×32×32). One warm-up clip, then ``--clips`` timed. The
figures are what the plumbing costs (text encoder, VAE, conditioning, the sampler loop, the decode), not the
14B networks; random weights: timings only. Full-size bf16 figures need a GPU (README, "AniSora generators").
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WAN = "num_frames=17,max_area=4096"
SETTINGS = {
    "anisora-v1": "num_frames=9,height=32,width=32",
    "anisora-v2": WAN,
    "anisora-v3": WAN,
    "anisora-v3.2": WAN,
    "anisora-anymask": WAN,
}


def _child(name: str, root: str, clips: int) -> dict:
    """Runs in the subprocess: load, one warm-up clip, ``clips`` timed clips; peak RSS of this process."""
    sys.path.insert(0, str(REPO / "tests"))
    import numpy as np

    from anibench.conditions import Guidance, GuideFrame
    from anibench.generation import GenerationRequest
    from anibench.runspec import PluginSpec
    from anibench.generation import create_generator
    from anibench.runtime.context import Runtime
    from parity.weights_anisora import STAND_INS

    spec = PluginSpec.parse(f"{name}:{SETTINGS[name]}")
    generator = create_generator(spec.name, **spec.params)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    generator.load(Runtime(device="cpu", dtype="fp32", weights_root=root, weight_aliases=dict(STAND_INS)))
    load_seconds = time.perf_counter() - started
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (128, 192, 3), dtype=np.uint8)
    mask = np.zeros((49, 128, 192), bool)
    mask[:, 32:96, 48:144] = True
    guidance = Guidance("bench", (GuideFrame(0.0, 0, image, "bench"),), 49, 16.0, 128, 192,
                        mask if name == "anisora-anymask" else None)
    requests = [GenerationRequest(f"c{i}", "a girl waves", generator.place(guidance), rng_seed=i)
                for i in range(clips + 1)]
    generator.generate_batch(requests[:1])
    started = time.perf_counter()
    outputs = generator.generate_batch(requests[1:])
    seconds = (time.perf_counter() - started) / clips
    errors = [str(o) for o in outputs if isinstance(o, Exception)]
    return {"generator": name, "settings": generator.settings, "load_seconds": round(load_seconds, 2),
            "seconds_per_clip": round(seconds, 3), "clip": list(outputs[0].frames.shape) if not errors else None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1),
            "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("NAME", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], args.clips)))
        return
    sys.path.insert(0, str(REPO / "tests"))
    import anibench.models  # noqa: F401 - the torchvision shim before diffusers
    from parity.weights_anisora import install_tiny

    rows = []
    with tempfile.TemporaryDirectory(prefix="anibench-bench-generators-") as root:
        install_tiny(root)
        for name in SETTINGS:
            done = subprocess.run([sys.executable, __file__, "--clips", str(args.clips), "--child", name, root],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{'generator':<16} {'steps':>5} {'clip':>14} {'load s':>7} {'s/clip':>7} {'peak RSS MB':>11} {'growth MB':>9}")
    for row in rows:
        clip = "x".join(map(str, row["clip"][:3])) if row["clip"] else "error"
        print(f"{row['generator']:<16} {row['settings']['steps']:>5} {clip:>14} {row['load_seconds']:>7} "
              f"{row['seconds_per_clip']:>7} {row['peak_rss_mb']:>11} {row['rss_growth_mb']:>9}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
