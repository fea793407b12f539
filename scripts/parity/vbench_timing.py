"""Per-clip wall time of VBench's own code for the three parity dimensions (CPU, float32).

    /work/parity-work/venv/bin/python scripts/parity/vbench_timing.py [--repeat N]

Full-size architectures with the recipe's random weights (tests/parity/weights.py), on a 49-frame
848x480 clip and the small parity clips (tests/parity/clips.py). For each dimension and clip:

- ``end_to_end_s``: VBench's ``compute_<dimension>`` on a one-clip full-info JSON, as a user runs it
  (model load from the local cache + decode + compute);
- ``model_load_s``: ``torch.hub.load(**submodules)`` (DINO) or ``clip.load`` (CLIP) alone;
- ``decode_s``: VBench's ``load_video`` alone (decord);
- ``decode_compute_s``: VBench's inner function with the model already loaded (decode + preprocessing +
  forward passes + similarities); ``compute_s`` = ``decode_compute_s`` - ``decode_s``.

Each figure is the minimum over ``--repeat`` runs (all runs are kept under ``runs``): on the shared
2-core machine other processes slow single runs by up to 3x. Writes
tests/parity/fixtures/vbench_reference_timing.json and prints a table; the load average at start and
end is recorded next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import vbench_env

OUT = vbench_env.REPO / "tests" / "parity" / "fixtures" / "vbench_reference_timing.json"


def _timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _runs(repeat: int, function) -> list[float]:
    return [_timed(function)[0] for _ in range(repeat)]


def _info(work: Path, name: str, clip: dict, dimension: str) -> str:
    path = work / f"info_{dimension}_{name}.json"
    entry = {"prompt_en": name, "dimension": [dimension], "video_list": [clip["video"]],
             "custom_image_path": clip["image"]}
    path.write_text(json.dumps([entry]))
    return str(path)


def time_dimension(dimension: str, work: Path, clips: dict, repeat: int) -> list[dict]:
    import clip as openai_clip
    import torch
    import vbench.background_consistency as background
    import vbench.subject_consistency as subject
    import vbench2_beta_i2v.i2v_subject as i2v
    import vbench2_beta_i2v.utils as i2v_utils
    from vbench.utils import init_submodules, load_video

    if dimension == "i2v_subject":
        submodules = i2v_utils.init_submodules([dimension], local=True)[dimension]
        load = lambda: torch.hub.load(**submodules).to("cpu")  # noqa: E731
        compute = i2v.compute_i2v_subject
        inner = lambda model, c: i2v.i2v_subject(model, [(c["image"], c["video"])], "cpu")  # noqa: E731
    elif dimension == "subject_consistency":
        submodules = init_submodules([dimension], local=True)[dimension]
        load = lambda: torch.hub.load(**submodules).to("cpu")  # noqa: E731
        compute = subject.compute_subject_consistency
        inner = lambda model, c: subject.subject_consistency(model, [c["video"]], "cpu", False)  # noqa: E731
    else:
        submodules = init_submodules([dimension], local=True)[dimension]
        load = lambda: openai_clip.load(submodules[0], device="cpu")  # noqa: E731
        compute = background.compute_background_consistency
        inner = lambda model, c: background.background_consistency(  # noqa: E731
            model[0], model[1], [c["video"]], "cpu", False)

    rows = []
    load_seconds, model = _timed(load)
    for name, clip in clips.items():
        info = _info(work, name, clip, dimension)
        spec = clip["spec"]
        runs = {
            "end_to_end_s": _runs(repeat, lambda: compute(info, "cpu", submodules)),
            "model_load_s": [load_seconds] + _runs(repeat - 1, load),
            "decode_s": _runs(repeat, lambda: load_video(clip["video"])),
            "decode_compute_s": _runs(repeat, lambda: inner(model, clip)),
        }
        row = {"dimension": dimension, "clip": name, "width": spec["width"], "height": spec["height"],
               "frames": spec["frames"], **{key: min(values) for key, values in runs.items()}, "runs": runs}
        row["compute_s"] = row["decode_compute_s"] - row["decode_s"]
        row["compute_per_frame_s"] = row["compute_s"] / spec["frames"]
        rows.append(row)
        print(f"  {dimension:24s} {name:20s} end-to-end {row['end_to_end_s']:7.2f} s  "
              f"compute {row['compute_s']:7.2f} s", flush=True)
    return rows


def _table(rows: list[dict]) -> str:
    header = (f"{'dimension':24s} {'clip':20s} {'frames':>6s} {'end-to-end s':>12s} {'load s':>7s} "
              f"{'decode s':>8s} {'compute s':>9s} {'s/frame':>8s}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['dimension']:24s} {r['clip']:20s} {r['frames']:6d} {r['end_to_end_s']:12.2f} "
                     f"{r['model_load_s']:7.2f} {r['decode_s']:8.3f} {r['compute_s']:9.2f} "
                     f"{r['compute_per_frame_s']:8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="also time the small parity clips")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="vbench-timing-"))
    work.mkdir(parents=True, exist_ok=True)
    weights = vbench_env.prepare(work, args.seed)
    from parity.clips import PARITY_CLIPS, TIMING_CLIP, write_parity_clips

    specs = (TIMING_CLIP,) + (PARITY_CLIPS if args.small else ())
    clips = write_parity_clips(work / "videos", specs)
    load_before = os.getloadavg()
    rows = []
    for dimension in ("subject_consistency", "i2v_subject", "background_consistency"):
        rows += time_dimension(dimension, work, clips, args.repeat)
    report = {
        "what": "wall time of VBench's own code per clip (see scripts/parity/vbench_timing.py docstring)",
        "rows": rows,
        "repeat": args.repeat,
        "load_average_start_end": [load_before[0], os.getloadavg()[0]],
        "cpu_count": os.cpu_count(),
        "environment": vbench_env.environment(),
        "weights": weights,
        "clips": {name: clip["spec"] for name, clip in clips.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(_table(rows))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
