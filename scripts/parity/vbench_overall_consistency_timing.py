"""Wall time of overall consistency on one 848x480, 49-frame clip: VBench's own code vs anibench (CPU, fp32).

    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python \
        scripts/parity/vbench_overall_consistency_timing.py --side vbench --work DIR
    flock /tmp/anibench-heavy.lock .venv/bin/python \
        scripts/parity/vbench_overall_consistency_timing.py --side anibench --work DIR

Full-size ViCLIP ViT-L/14 with the recipe's seeded weights (tests/parity/weights_viclip.py:FULL, written once
into ``DIR`` as ``ViClip-InternVid-10M-FLT.pth``, 1.7 GB), on tests/parity/clips.py:TIMING_CLIP. Each side
adds its section to tests/parity/fixtures/vbench_overall_consistency_timing.json; the anibench side also
records the difference between the two per-video values (a full-size parity check on a 480p clip).

VBench side (parity venv): ``end_to_end_s`` = ``compute_overall_consistency`` on a one-clip JSON (ViCLIP
construction + ``torch.load`` + decode + compute), ``model_load_s`` = ``ViCLIP(pretrain=...)`` alone,
``decode_s`` = ``read_frames_decord_by_fps(num_frames=8, sample='middle')`` alone, ``decode_compute_s`` =
the inner ``overall_consistency`` with the model loaded (text cache cleared, so the prompt is encoded).
anibench side: ``import_s`` = ``anibench weights import`` of the published-format file (hash, convert to
safetensors; once per machine), ``end_to_end_s`` = a new ``ScoringSession`` scoring the clip file (model
load + decode of the 8 frames + compute), ``warm_s`` = a second clip scored by the same session.
Figures are minima over ``--repeat`` runs (the 2-core machine is shared).
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
OUT = REPO / "tests" / "parity" / "fixtures" / "vbench_overall_consistency_timing.json"
PROMPT = "an anime girl waves at the camera in a sunny park, cherry blossoms drifting in the wind"
WEIGHTS_NAME = "ViClip-InternVid-10M-FLT.pth"


def _timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def _prepare(work: Path) -> tuple[dict, Path]:
    sys.path.insert(0, str(REPO / "tests"))
    from parity.clips import TIMING_CLIP, write_clip
    from parity.weights_viclip import FULL, write_viclip_checkpoint

    clip = write_clip(TIMING_CLIP, work / "clips")
    weights = work / WEIGHTS_NAME
    if not weights.is_file():
        write_viclip_checkpoint(weights, FULL, seed=0)
    return clip, weights


def vbench_side(work: Path, repeat: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import vbench_env

    vbench_env.add_import_paths()
    cache = work / "vbench_cache"
    os.environ["VBENCH_CACHE_DIR"] = str(cache)
    from vbench_overall_consistency_reference import _place_vocabulary

    _place_vocabulary(cache)
    clip, weights = _prepare(work)
    import torch
    import vbench.overall_consistency as module
    from vbench.third_party.ViCLIP.simple_tokenizer import SimpleTokenizer
    from vbench.third_party.ViCLIP.viclip import ViCLIP
    from vbench.utils import read_frames_decord_by_fps

    info = work / "timing_info.json"
    info.write_text(json.dumps([{"prompt_en": PROMPT, "dimension": ["overall_consistency"],
                                 "video_list": [clip["video"]]}]))
    video_dict = [{"prompt": PROMPT, "video_list": [clip["video"]]}]
    runs: dict[str, list[float]] = {"end_to_end_s": [], "model_load_s": [], "decode_s": [], "decode_compute_s": []}
    value = None
    for _ in range(repeat):
        module.get_text_features.__defaults__[0].clear()
        seconds, (aggregate, _) = _timed(lambda: module.compute_overall_consistency(str(info), "cpu",
                                                                                     {"pretrain": str(weights)}))
        runs["end_to_end_s"].append(seconds)
        value = float(aggregate)
    tokenizer = SimpleTokenizer(str(cache / "ViCLIP" / "bpe_simple_vocab_16e6.txt.gz"))
    for _ in range(repeat):
        seconds, model = _timed(lambda: ViCLIP(tokenizer=tokenizer, pretrain=str(weights)).to("cpu"))
        runs["model_load_s"].append(seconds)
        runs["decode_s"].append(_timed(lambda: read_frames_decord_by_fps(clip["video"], num_frames=8,
                                                                         sample="middle"))[0])
        module.get_text_features.__defaults__[0].clear()
        runs["decode_compute_s"].append(_timed(lambda: module.overall_consistency(model, video_dict, tokenizer,
                                                                                  "cpu"))[0])
        model = None  # freed before the next load
    best = {key: min(values) for key, values in runs.items()}
    best["compute_s"] = best["decode_compute_s"] - best["decode_s"]
    return {"value": value, **best, "runs": runs, "torch_num_threads": torch.get_num_threads(),
            "packages": vbench_env.environment()["packages"], "vbench": vbench_env.environment()["vbench"]}


def anibench_side(work: Path, repeat: int) -> dict:
    clip, weights = _prepare(work)
    import torch

    from anibench.runtime.context import Runtime
    from anibench.runtime.weights import WeightStore
    from anibench.session import ScoringSession

    root = work / "anibench_weights"
    store = WeightStore(root)
    import_s = None
    if "seeded_viclip_full" not in store.entries():
        import_s, _ = _timed(lambda: store.add_local("seeded_viclip_full", weights, format="torch-state-dict",
                                                     converter="anibench.models.viclip:convert_published"))
    runtime_args = {"device": "cpu", "dtype": "fp32", "weights_root": str(root),
                    "weight_aliases": {"viclip_internvid_10m_flt": "seeded_viclip_full"}}
    runs: dict[str, list[float]] = {"end_to_end_s": [], "warm_s": []}
    value = None
    for _ in range(repeat):
        start = time.perf_counter()
        session = ScoringSession(["vbench.overall_consistency"], Runtime(**runtime_args), workers=1)
        (first,) = session.score([clip["video"]], prompts=[PROMPT])
        runs["end_to_end_s"].append(time.perf_counter() - start)
        runs["warm_s"].append(_timed(lambda: session.score([clip["video"]], prompts=[PROMPT + " again"]))[0])
        session.close()
        result = first["vbench.overall_consistency"]
        if isinstance(result, BaseException):
            raise result
        value = result.value
    return {"value": value, "import_s": import_s, **{key: min(values) for key, values in runs.items()},
            "runs": runs, "torch_num_threads": torch.get_num_threads(),
            "full_size_parity": _full_size_parity(work, Runtime(**runtime_args))}


def _full_size_parity(work: Path, runtime) -> dict:
    """The reference fixture's full-size clip (VBench's value at L/14) scored by anibench with the same weights."""
    from anibench.session import ScoringSession
    from parity.clips import write_parity_clips
    from parity.clips_overall_consistency import OVERALL_CLIPS, PROMPTS

    fixture = json.loads((OUT.parent / "vbench_overall_consistency.json").read_text())["full_size"]
    (video,) = fixture["videos"]
    clip = write_parity_clips(work / "parity_clips", tuple(s for s in OVERALL_CLIPS if s.name == video["name"]))
    with ScoringSession(["vbench.overall_consistency"], runtime, workers=1) as session:
        (result,) = session.score([clip[video["name"]]["video"]], prompts=[PROMPTS[video["name"]]])
    value = result["vbench.overall_consistency"].value
    return {"clip": video["name"], "vbench": video["video_results"], "anibench": value,
            "difference": abs(value - video["video_results"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("vbench", "anibench"), required=True)
    parser.add_argument("--work", type=Path, required=True, help="work folder (the 1.7 GB weights are kept there)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    section = (vbench_side if args.side == "vbench" else anibench_side)(args.work, args.repeat)
    section["load_average_start_end"] = [load_before[0], os.getloadavg()[0]]
    section["command"] = shlex.join([Path(sys.executable).name, *map(str, sys.argv)]) if argv is None else ""
    data = json.loads(args.out.read_text()) if args.out.is_file() else {}
    data.update({"clip": "tests/parity/clips.py:TIMING_CLIP (848x480, 49 frames, 16 fps)", "prompt": PROMPT,
                 "weights": "tests/parity/weights_viclip.py:FULL, seed 0 (ViCLIP ViT-L/14, float32)",
                 "device": "cpu", "dtype": "float32", args.side: section})
    if "vbench" in data and "anibench" in data:
        data["value_difference"] = abs(data["vbench"]["value"] - data["anibench"]["value"])
        data["speedup_end_to_end"] = data["vbench"]["end_to_end_s"] / data["anibench"]["end_to_end_s"]
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps({k: v for k, v in section.items() if k != "runs"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
