"""Wall time of VBench's aesthetic quality and of anibench's on one 49-frame 848x480 clip (CPU, float32).

    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python \
        scripts/parity/vbench_aesthetic_quality_timing.py --side vbench --work /tmp/aesthetic-timing
    flock /tmp/anibench-heavy.lock .venv/bin/python \
        scripts/parity/vbench_aesthetic_quality_timing.py --side anibench --work /tmp/aesthetic-timing

Full-size architecture: the published ViT-L/14 image tower (width 1024, 24 layers, 16 heads, patch 14,
768-d output; tests/parity/weights_clip_l14.py ``config='full'``, seeded random values) in a TorchScript
archive, and the LAION head. The text tower is the recipe's minimal one (VBench's aesthetic quality
never runs it; a full text tower would only add ~0.5 s of archive reading to VBench's model load).
The clip is tests/parity/clips.py ``TIMING_CLIP``.

- ``--side vbench`` (parity venv): ``compute_aesthetic_quality`` on a one-clip full-info JSON, as a user
  runs it (``end_to_end_s``: ``clip.load`` + head load + decode + 2 batches of ViT-L/14); also
  ``model_load_s`` (``clip.load`` + ``get_aesthetic_model``), ``decode_s`` (``load_video``) and
  ``decode_compute_s`` (``laion_aesthetic`` with the models loaded).
- ``--side anibench`` (anibench venv): the archive imported through the weights store and converted once
  (``import_convert_s``, a one-time cost per machine, not per run), then a fresh ``ScoringSession`` per
  run scoring the clip file (``end_to_end_s``: model load + decode + compute), and the same session
  scoring it again with the model loaded (``decode_compute_s``, feature store off).

Each figure is the minimum over ``--repeat`` runs (all runs kept). Both sides merge their rows into
tests/parity/fixtures/vbench_aesthetic_quality_timing.json with the command and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "parity" / "fixtures" / "vbench_aesthetic_quality_timing.json"
CLIP_FILE = "ViT-L-14.pt"
HEAD_FILE = "sa_0_4_vit_l_14_linear.pth"


def _timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _best(runs: dict[str, list[float]]) -> dict[str, float]:
    return {key: min(values) for key, values in runs.items()}


def _inputs(work: Path, seed: int) -> dict:
    """The full-size archive, the head and the 480p clip in ``work`` (written once, reused by both sides)."""
    sys.path.insert(0, str(REPO / "tests"))
    from parity.clips import TIMING_CLIP, write_clip
    from parity.weights_clip_l14 import write_aesthetic_head_checkpoint, write_clip_l14_checkpoint

    archive = work / "vbench_cache" / "clip_model" / CLIP_FILE
    head = work / "vbench_cache" / "aesthetic_model" / "emb_reader" / HEAD_FILE
    if not archive.is_file():
        write_clip_l14_checkpoint(archive, "full", seed)
    if not head.is_file():
        write_aesthetic_head_checkpoint(head, seed)
    clip = write_clip(TIMING_CLIP, work / "clips")
    return {"archive": archive, "head": head, "video": Path(clip["video"]), "spec": TIMING_CLIP}


def time_vbench(work: Path, seed: int, repeat: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import vbench_env

    vbench_env.add_import_paths()
    os.environ["VBENCH_CACHE_DIR"] = str(work / "vbench_cache")
    inputs = _inputs(work, seed)
    import clip
    import torch
    import vbench.aesthetic_quality as module
    from vbench.utils import init_submodules, load_video

    info = work / "info.json"
    info.write_text(json.dumps([{"prompt_en": "timing", "dimension": ["aesthetic_quality"],
                                 "video_list": [str(inputs["video"])]}]))
    submodules = init_submodules(["aesthetic_quality"], local=True)["aesthetic_quality"]
    runs: dict[str, list[float]] = {"end_to_end_s": [], "model_load_s": [], "decode_s": [], "decode_compute_s": []}
    value = None
    for _ in range(repeat):
        seconds, (_, results) = _timed(lambda: module.compute_aesthetic_quality(str(info), "cpu", submodules))
        runs["end_to_end_s"].append(seconds)
        value = results[0]["video_results"]
        seconds, loaded = _timed(lambda: (module.get_aesthetic_model(submodules[1]),
                                          clip.load(submodules[0], device="cpu")[0]))
        runs["model_load_s"].append(seconds)
        runs["decode_s"].append(_timed(lambda: load_video(str(inputs["video"])))[0])
        head, model = loaded
        runs["decode_compute_s"].append(_timed(lambda: module.laion_aesthetic(head, model, [str(inputs["video"])],
                                                                              "cpu"))[0])
    return {"side": "vbench", "torch_num_threads": torch.get_num_threads(), "video_results": value,
            **_best(runs), "runs": runs}


def time_anibench(work: Path, seed: int, repeat: int) -> dict:
    import torch

    from anibench.runtime.context import Runtime
    from anibench.runtime.weights import WeightStore
    from anibench.session import ScoringSession

    inputs = _inputs(work, seed)
    os.environ["ANIBENCH_WEIGHTS"] = str(work / "anibench_weights")
    store = WeightStore()
    aliases = {"clip_vit_l14": "timing_clip_vit_l14", "laion_aesthetic_vit_l14": "timing_laion_aesthetic"}
    import_convert_s, _ = _timed(lambda: (
        store.add_local(aliases["clip_vit_l14"], inputs["archive"], format="torchscript", replace=True,
                        converter="anibench.models.clip:convert_openai_vit_l14"),
        store.add_local(aliases["laion_aesthetic_vit_l14"], inputs["head"], format="torch-state-dict", replace=True,
                        converter="anibench.models.aesthetic:convert_laion_head")))
    runs: dict[str, list[float]] = {"end_to_end_s": [], "decode_compute_s": []}
    value = None
    for _ in range(repeat):
        runtime = Runtime(device="cpu", dtype="fp32", weight_aliases=aliases)
        with ScoringSession(["vbench.aesthetic_quality"], runtime) as session:
            seconds, results = _timed(lambda: session.score([inputs["video"]]))
            runs["end_to_end_s"].append(seconds)
            runs["decode_compute_s"].append(_timed(lambda: session.score([inputs["video"]]))[0])
        value = results[0]["vbench.aesthetic_quality"].value
    return {"side": "anibench", "torch_num_threads": torch.get_num_threads(), "video_results": value,
            "import_convert_s": import_convert_s, **_best(runs), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("vbench", "anibench"), required=True)
    parser.add_argument("--work", type=Path, required=True, help="shared work folder (archive, clip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    timer = time_vbench if args.side == "vbench" else time_anibench
    row = timer(args.work, args.seed, args.repeat)
    from parity.clips import TIMING_CLIP

    row.update({"clip": TIMING_CLIP.name, "width": TIMING_CLIP.width, "height": TIMING_CLIP.height,
                "frames": TIMING_CLIP.frames, "load_average_start_end": [load_before[0], os.getloadavg()[0]],
                "command": shlex.join([Path(sys.executable).name, *sys.argv])})
    data = json.loads(OUT.read_text()) if OUT.is_file() else {}
    data["what"] = ("wall seconds of VBench's aesthetic quality and of anibench's on one clip, full-size "
                    "ViT-L/14 with random weights, CPU float32 (scripts/parity/vbench_aesthetic_quality_timing.py)")
    data.setdefault("rows", {})[args.side] = row
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
