"""Wall time of motion smoothness on one 848x480, 49-frame clip: VBench's own code and anibench (CPU, float32).

    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python scripts/parity/vbench_motion_smoothness_timing.py --side vbench
    flock /tmp/anibench-heavy.lock .venv/bin/python scripts/parity/vbench_motion_smoothness_timing.py --side anibench

Full-size AMT-S with the recipe's random weights (tests/parity/weights_amt.py), the clip ``TIMING_CLIP`` of
tests/parity/clips.py (24 interpolated frames). Each side merges its figures into
tests/parity/fixtures/vbench_motion_smoothness_timing.json:

- vbench: ``end_to_end_s`` = ``compute_motion_smoothness`` on a one-clip full-info JSON (model build + checkpoint
  load + cv2 decode of all frames + 24 AMT-S calls of batch 1 + errors); ``model_load_s`` = ``MotionSmoothness(...)``
  alone; ``decode_s`` = its ``FrameProcess.get_frames`` alone;
- anibench: ``end_to_end_s`` = a ``ScoringSession`` (family load from the converted weights, PyAV decode streamed
  with a look-back of two frames, pairs batched by the family) on the same file; ``import_s`` = the one-off
  conversion of ``amt-s.pth`` through the weights store (not part of scoring);
- both: the value, so the two runs can be checked against each other.

The minimum over ``--repeat`` runs is reported (the 2-core machine is shared; all runs are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "parity" / "fixtures" / "vbench_motion_smoothness_timing.json"


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _vbench(work: Path, repeat: int) -> dict:
    import vbench_env

    os.environ["VBENCH_CACHE_DIR"] = str(work / "vbench_cache")
    vbench_env.add_import_paths()
    import torch

    from parity.clips import TIMING_CLIP, write_clip
    from parity.weights_amt import write_amt_s_checkpoint

    import vbench.motion_smoothness as module

    config = str(vbench_env.VBENCH_TREE / "vbench" / "third_party" / "amt" / "cfgs" / "AMT-S.yaml")
    ckpt = str(write_amt_s_checkpoint(work / "vbench_cache" / "amt_model" / "amt-s.pth"))
    clip = write_clip(TIMING_CLIP, work / "videos")
    info = work / "full_info.json"
    info.write_text(json.dumps([{"prompt_en": TIMING_CLIP.name, "dimension": ["motion_smoothness"],
                                 "video_list": [clip["video"]]}]))
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        aggregate, _ = module.compute_motion_smoothness(str(info), "cpu", {"config": config, "ckpt": ckpt})
        end_to_end = time.perf_counter() - start
        start = time.perf_counter()
        module.MotionSmoothness(config, ckpt, "cpu")
        load = time.perf_counter() - start
        start = time.perf_counter()
        module.FrameProcess().get_frames(clip["video"])
        decode = time.perf_counter() - start
        runs.append({"end_to_end_s": end_to_end, "model_load_s": load, "decode_s": decode, "value": float(aggregate)})
    return {"runs": runs, "torch_threads": torch.get_num_threads(),
            "command": "flock /tmp/anibench-heavy.lock $PARITY_HOME/venv/bin/python "
                       "scripts/parity/vbench_motion_smoothness_timing.py --side vbench"}


def _anibench(work: Path, repeat: int) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    os.environ["ANIBENCH_WEIGHTS"] = str(work / "weights")
    from anibench.runtime.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    import torch

    from anibench.runtime.context import Runtime
    from anibench.runtime.weights import WeightStore
    from anibench.session import ScoringSession
    from parity.clips import TIMING_CLIP, write_clip
    from parity.weights_amt import write_amt_s_checkpoint

    clip = write_clip(TIMING_CLIP, work / "videos")
    start = time.perf_counter()
    WeightStore().add_local("seeded_amt_s", write_amt_s_checkpoint(work / "amt-s.pth"), format="torch-state-dict",
                            converter="anibench.models.amt:convert_published")
    imported = time.perf_counter() - start
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        runtime = Runtime(device="cpu", dtype="fp32", weight_aliases={"amt_s": "seeded_amt_s"})
        with ScoringSession(["vbench.motion_smoothness"], runtime) as session:
            result = session.score([clip["video"]])[0]["vbench.motion_smoothness"]
        if isinstance(result, BaseException):
            raise result
        runs.append({"end_to_end_s": time.perf_counter() - start, "value": result.value})
    return {"runs": runs, "import_s": imported, "torch_threads": torch.get_num_threads(),
            "command": "flock /tmp/anibench-heavy.lock .venv/bin/python "
                       "scripts/parity/vbench_motion_smoothness_timing.py --side anibench"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("vbench", "anibench"), required=True)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix=f"motion-timing-{args.side}-"))
    before = _load_average()
    side = (_vbench if args.side == "vbench" else _anibench)(work, args.repeat)
    side["end_to_end_s_min"] = min(run["end_to_end_s"] for run in side["runs"])
    side["load_average_start_end"] = [before, _load_average()]
    data = json.loads(args.out.read_text()) if args.out.is_file() else {}
    data.update({"dimension": "motion_smoothness", "clip": "tests/parity/clips.py:TIMING_CLIP (848x480, 49 frames, "
                 "24 interpolated)", "weights": "tests/parity/weights_amt.py seed 0 (full-size AMT-S, 2,990,543 "
                 "parameters)", "device": "cpu", "dtype": "float32", args.side: side})
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{args.side}: {side['end_to_end_s_min']:.1f} s end to end -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
