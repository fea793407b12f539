"""Wall time of camera motion on one 49-frame 848x480 clip: VBench's own code vs anibench (CPU, float32).

    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python \
        scripts/parity/vbench_camera_motion_timing.py --side vbench
    flock /tmp/anibench-heavy.lock .venv/bin/python scripts/parity/vbench_camera_motion_timing.py --side anibench

Full-size CoTracker2 with the recipe's random weights (tests/parity/weights_cotracker.py), the timing clip
of tests/parity/clips.py (``TIMING_CLIP``), named ``"<clip>, camera pans left.mp4"``.

- ``--side vbench`` (parity venv): ``compute_camera_motion`` on a one-clip full-info JSON, as a user runs
  it (torch.hub model build + weight load from the offline cache + decord decode + tracking + rules), laid
  out as in scripts/parity/vbench_camera_motion_reference.py; ``model_load_s`` is ``CameraPredict(...)``
  alone.
- ``--side anibench`` (anibench venv): the weights imported into a fresh weights folder as a local entry
  standing in for ``cotracker2`` (not timed), then a ``ScoringSession`` scoring the file: family load +
  decode + resize + tracking + rules (``end_to_end_s``); ``model_load_s`` is the family load alone.

Each side merges its figures into tests/parity/fixtures/vbench_camera_motion_timing.json with the load
average at start and end (the 2-core machine is shared: figures vary with other work).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "parity" / "fixtures" / "vbench_camera_motion_timing.json"
PROMPT_SUFFIX = "camera pans left"


def _timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _clip(work: Path) -> Path:
    from parity.clips import TIMING_CLIP, write_clip

    written = write_clip(TIMING_CLIP, work / "written")
    path = work / "videos" / f"{TIMING_CLIP.name}, {PROMPT_SUFFIX}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(written["video"], path)
    return path


def run_vbench(work: Path, seed: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import vbench_env
    from vbench_camera_motion_reference import prepare_hub

    vbench_env.add_import_paths()
    prepare_hub(work, seed)
    video = _clip(work)
    info = work / "full_info.json"
    info.write_text(json.dumps([{"prompt_en": video.stem, "dimension": ["camera_motion"], "video_list": [str(video)]}]))
    import vbench2_beta_i2v.camera_motion as camera_motion
    from vbench2_beta_i2v.utils import init_submodules

    submodules = init_submodules(["camera_motion"])["camera_motion"]
    end_to_end, (aggregate, _, results) = _timed(
        lambda: camera_motion.compute_camera_motion(str(info), "cpu", submodules))
    load, _ = _timed(lambda: camera_motion.CameraPredict("cpu", submodules))
    return {"end_to_end_s": end_to_end, "model_load_s": load, "value": float(aggregate),
            "predicted": sorted(results[0]["predict_type"]), "code": "VBench 45e79ec + co-tracker 82e02e8 (torch.hub)"}


def run_anibench(work: Path, seed: int) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    os.environ["ANIBENCH_WEIGHTS"] = str(work / "weights")
    from anibench.runtime.context import Runtime
    from anibench.runtime.weights import WeightStore
    from anibench.scorers.vbench_camera_motion import CameraMotion
    from anibench.session import ScoringSession
    from parity.weights_cotracker import write_cotracker2_checkpoint

    WeightStore().add_local("seeded_cotracker2", write_cotracker2_checkpoint(work / "cotracker2.pth", seed),
                            format="torch-state-dict", converter="anibench.models.cotracker:convert_published")
    video = _clip(work)
    runtime = Runtime(device="cpu", dtype="fp32", weight_aliases={"cotracker2": "seeded_cotracker2"})
    load, _ = _timed(lambda: runtime.family("cotracker2"))
    runtime.release()

    def score():
        with ScoringSession([CameraMotion()], runtime, workers=1) as session:
            return session.score([str(video)], prompts=[video.stem])[0]["vbench.camera_motion"]

    end_to_end, result = _timed(score)
    if isinstance(result, BaseException):
        raise result
    return {"end_to_end_s": end_to_end, "model_load_s": load, "value": result.value,
            "predicted": result.details["predicted"], "code": "anibench ScoringSession (anibench.models.cotracker)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("vbench", "anibench"), required=True)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="camera-motion-timing-"))
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "tests"))
    load_start = os.getloadavg()
    figures = run_vbench(work, args.seed) if args.side == "vbench" else run_anibench(work, args.seed)
    import torch

    from parity.clips import TIMING_CLIP

    figures.update({
        "load_average_start": list(load_start), "load_average_end": list(os.getloadavg()),
        "torch": torch.__version__, "torch_num_threads": torch.get_num_threads(), "python": platform.python_version(),
        "command": f"{sys.executable} scripts/parity/vbench_camera_motion_timing.py "
                   + shlex.join(argv if argv is not None else sys.argv[1:]),
    })
    data = json.loads(OUT.read_text()) if OUT.is_file() else {}
    data.update({
        "dimension": "camera_motion",
        "clip": {"name": TIMING_CLIP.name, "width": TIMING_CLIP.width, "height": TIMING_CLIP.height,
                 "frames": TIMING_CLIP.frames, "fps": TIMING_CLIP.fps},
        "weights": "tests/parity/weights_cotracker.py seed %d, full-size CoTracker2 (45.5 M)" % args.seed,
        "device": "cpu", "dtype": "float32",
    })
    data[args.side] = figures
    if "vbench" in data and "anibench" in data:
        data["speedup_end_to_end"] = data["vbench"]["end_to_end_s"] / data["anibench"]["end_to_end_s"]
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
