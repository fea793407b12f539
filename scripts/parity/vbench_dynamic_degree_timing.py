"""Wall time of dynamic degree (RAFT) on one 848x480, 49-frame clip: VBench's own code vs anibench.

    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python scripts/parity/vbench_dynamic_degree_timing.py --side vbench
    flock /tmp/anibench-heavy.lock .venv/bin/python scripts/parity/vbench_dynamic_degree_timing.py --side anibench

Full-size RAFT-large with the recipe's seeded raft-things.pth (tests/parity/weights_raft.py), the clip
``TIMING_CLIP`` of tests/parity/clips.py (16 fps: stride 2, 25 sampled frames, 24 RAFT pairs), CPU,
float32. Each side merges its figures into tests/parity/fixtures/vbench_dynamic_degree_timing.json.

- vbench (parity venv): ``DynamicDegree(args, 'cpu')`` (model load) and ``get_frames`` (decode) timed
  alone, then ``compute_dynamic_degree`` end to end (load + decode + 24 pairs one at a time).
- anibench (project venv): ``anibench weights import``-equivalent conversion (once per machine, not per
  run), then a ``ScoringSession`` scoring the file: family load + decode + batched pairs + rule.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "parity" / "fixtures" / "vbench_dynamic_degree_timing.json"


def _clip(work: Path) -> Path:
    from parity.clips import TIMING_CLIP, write_clip

    return Path(write_clip(TIMING_CLIP, work / "videos")["video"])


def vbench_side(work: Path, repeat: int) -> dict:
    os.environ["VBENCH_CACHE_DIR"] = str(work / "vbench_cache")
    sys.path[:0] = [str(Path(__file__).resolve().parent)]
    import vbench_env

    vbench_env.add_import_paths()
    from easydict import EasyDict

    from parity.weights_raft import write_raft_things_checkpoint

    weights = write_raft_things_checkpoint(work / "vbench_cache" / "raft_model" / "models" / "raft-things.pth")
    import vbench.dynamic_degree as module
    from vbench.utils import init_submodules

    video = _clip(work)
    info = work / "full_info.json"
    info.write_text(json.dumps([{"prompt_en": "timing", "dimension": ["dynamic_degree"], "video_list": [str(video)]}]))
    submodules = init_submodules(["dynamic_degree"], local=True)["dynamic_degree"]
    assert Path(submodules["model"]) == weights
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        dynamic = module.DynamicDegree(EasyDict({"model": str(weights), "small": False, "mixed_precision": False,
                                                 "alternate_corr": False}), "cpu")
        load = time.perf_counter() - start
        start = time.perf_counter()
        frames = dynamic.get_frames(str(video))
        decode = time.perf_counter() - start
        del dynamic
        start = time.perf_counter()
        aggregate, results = module.compute_dynamic_degree(str(info), "cpu", submodules)
        end_to_end = time.perf_counter() - start
        runs.append({"end_to_end_s": end_to_end, "model_load_s": load, "decode_s": decode,
                     "pairs_s (end to end - load - decode)": end_to_end - load - decode, "pairs": len(frames) - 1,
                     "video_results": bool(results[0]["video_results"]), "aggregate": float(aggregate)})
    return {"code": "VBench 45e79ec vbench/dynamic_degree.py, unmodified", "runs": runs}


def anibench_side(work: Path, repeat: int) -> dict:
    os.environ["ANIBENCH_WEIGHTS"] = str(work / "weights")
    sys.path[:0] = [str(REPO / "tests")]
    from anibench.runtime.context import Runtime
    from anibench.runtime.weights import WeightStore
    from anibench.session import ScoringSession
    from parity.weights_raft import write_raft_things_checkpoint

    video = _clip(work)
    source = write_raft_things_checkpoint(work / "raft-things.pth")
    start = time.perf_counter()
    WeightStore().add_local("seeded_raft_things", source, format="torch-state-dict",
                            converter="anibench.models.raft:convert_published", replace=True)
    convert = time.perf_counter() - start
    runs = []
    for _ in range(repeat):
        runtime = Runtime(device="cpu", dtype="fp32", weight_aliases={"raft_things": "seeded_raft_things"})
        start = time.perf_counter()
        with ScoringSession(["vbench.dynamic_degree"], runtime, workers=1) as session:
            (result,) = session.score([video])
            end_to_end = time.perf_counter() - start
            family = runtime.loaded_families()["raft_things"]
            batches, items = family.batches_run, family.items_run
        outcome = result["vbench.dynamic_degree"]
        if isinstance(outcome, BaseException):
            raise outcome
        runs.append({"end_to_end_s": end_to_end, "pairs": items, "batches": batches, "value": outcome.value})
    return {"code": "anibench ScoringSession(['vbench.dynamic_degree']), torchvision raft_large, pairs batched",
            "conversion_once_s": convert, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("vbench", "anibench"), required=True)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix=f"dd-timing-{args.side}-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.side == "anibench":
        sys.path[:0] = [str(REPO / "tests")]
    figures = (vbench_side if args.side == "vbench" else anibench_side)(work, args.repeat)
    import torch

    figures.update({"python": platform.python_version(), "torch": torch.__version__,
                    "torch_num_threads": torch.get_num_threads(), "load_average": os.getloadavg(),
                    "command": f"flock /tmp/anibench-heavy.lock {sys.executable} "
                               f"scripts/parity/vbench_dynamic_degree_timing.py --side {args.side} --repeat {args.repeat}"})
    data = json.loads(OUT.read_text()) if OUT.is_file() else {
        "clip": "tests/parity/clips.py TIMING_CLIP: 848x480, 49 frames, 16 fps (stride 2, 25 sampled, 24 pairs)",
        "weights": "tests/parity/weights_raft.py seed 0, full-size RAFT-large, CPU float32"}
    data[args.side] = figures
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
