"""Run VBench's own aesthetic quality on the parity recipe and write its fixture.

    /work/parity-work/venv/bin/python scripts/parity/vbench_aesthetic_quality_reference.py

Builds the recipe's fixed random weights (tests/parity/weights_clip_l14.py: an OpenAI CLIP archive with
ViT-L/14's patch, input and output sizes on a narrow trunk, and the LAION ``Linear(768, 1)`` head) and
clips (tests/parity/clips.py), lays them out where VBench's local mode loads them, and calls VBench's
function, unmodified, on CPU in float32:

- ``vbench.aesthetic_quality.compute_aesthetic_quality(full_info_json, 'cpu',
  init_submodules(['aesthetic_quality'], local=True)['aesthetic_quality'])``
  (``clip.load`` of ``$VBENCH_CACHE_DIR/clip_model/ViT-L-14.pt`` and ``get_aesthetic_model`` of
  ``$VBENCH_CACHE_DIR/aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth``).

Writes tests/parity/fixtures/vbench_aesthetic_quality.json: VBench's aggregate and per-video values as
returned, the decoded frames' sha256 as VBench's reader (decord) saw them, debugging values (the CLIP
input of each batch, the first values of the L2-normalised embeddings and every frame's raw LAION score)
and the recipe. With sensitivity checks on (default), VBench's inner function re-runs with the transform
deliberately changed, to show the fixture detects it. Never imported by anibench.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import vbench_env
from vbench_reference import TOLERANCE, _decoded, _pyav_sha256, _Recorder, _sensitivity, _variants_clip

FIXTURE = vbench_env.REPO / "tests" / "parity" / "fixtures" / "vbench_aesthetic_quality.json"
CLIP_FILE = "ViT-L-14.pt"
HEAD_FILE = "sa_0_4_vit_l_14_linear.pth"


def prepare(work: Path, seed: int) -> dict:
    """The cache layout of VBench's local mode for aesthetic quality (vbench/utils.py:322-331)."""
    vbench_env.add_import_paths()
    from parity.weights_clip_l14 import (
        PARITY_VISION,
        aesthetic_head_state_dict,
        clip_l14_state_dict,
        state_dict_sha256,
        write_aesthetic_head_checkpoint,
        write_clip_l14_checkpoint,
    )

    cache = work / "vbench_cache"
    os.environ["VBENCH_CACHE_DIR"] = str(cache)  # read by vbench.utils at import
    write_clip_l14_checkpoint(cache / "clip_model" / CLIP_FILE, "parity", seed)
    write_aesthetic_head_checkpoint(cache / "aesthetic_model" / "emb_reader" / HEAD_FILE, seed)
    return {
        "clip": {
            "writer": "tests/parity/weights_clip_l14.py:write_clip_l14_checkpoint(config='parity')",
            "seed": seed,
            "vision": PARITY_VISION,
            "state_dict_sha256": state_dict_sha256(clip_l14_state_dict("parity", seed)),
            "format": "TorchScript archive, as published (clip.load reads its state_dict and runs build_model)",
            "placed_at": [f"$VBENCH_CACHE_DIR/clip_model/{CLIP_FILE} (vbench/utils.py:325, local mode)"],
        },
        "aesthetic_head": {
            "writer": "tests/parity/weights_clip_l14.py:write_aesthetic_head_checkpoint",
            "seed": seed,
            "state_dict_sha256": state_dict_sha256(aesthetic_head_state_dict(seed)),
            "format": "torch.save of nn.Linear(768, 1).state_dict(), as published",
            "placed_at": [f"$VBENCH_CACHE_DIR/aesthetic_model/emb_reader/{HEAD_FILE} (vbench/utils.py:323, "
                          "aesthetic_quality.py:25)"],
        },
    }


def run(work: Path, sensitivity: bool, seed: int, command: str) -> dict:
    weights = prepare(work, seed)
    from parity.clips import PARITY_CLIPS, write_parity_clips

    clips = write_parity_clips(work / "clips")
    entries = [{"prompt_en": name, "dimension": ["aesthetic_quality"], "video_list": [clip["video"]]}
               for name, clip in clips.items()]
    info = work / "full_info.json"
    info.write_text(json.dumps(entries, indent=2))

    import clip
    import vbench.aesthetic_quality as module
    from vbench.utils import init_submodules, load_video

    submodules = init_submodules(["aesthetic_quality"], local=True)["aesthetic_quality"]
    with _Recorder(clip, "load", module_of=lambda loaded: loaded[0].visual) as clip_recorder, \
            _Recorder(module, "get_aesthetic_model") as head_recorder:
        start = time.perf_counter()
        aggregate, results = module.compute_aesthetic_quality(str(info), "cpu", submodules)
        seconds = time.perf_counter() - start
    (clip_model, _), clip_calls = clip_recorder.model, clip_recorder.calls
    head_model, head_calls = head_recorder.model, head_recorder.calls
    assert len(clip_calls) == len(head_calls) == len(clips), "one batch per video expected (< 32 frames each)"
    videos = []
    for item, (clip_input, _), (head_input, head_output) in zip(results, clip_calls, head_calls, strict=True):
        name = Path(item["video_path"]).stem
        frames, sha = _decoded(load_video, clips[name]["video"])
        raw_scores = head_output.squeeze(-1)
        videos.append({
            "name": name, "video_results": float(item["video_results"]), "num_frames": int(frames.shape[0]),
            "decoded_sha256": sha, "decoded_sha256_pyav_equal": sha == _pyav_sha256(clips[name]["video"]),
            "debug": {
                "model_input": clip_input,
                "feature_dim": int(head_input["shape"][-1]),
                "normalized_embedding": head_input,
                "laion_scores": [float(v) for v in raw_scores],
            },
        })
    fixture = {
        "dimension": "aesthetic_quality",
        "vbench_call": "vbench.aesthetic_quality.compute_aesthetic_quality(full_info_json, 'cpu', "
                       "init_submodules(['aesthetic_quality'], local=True)['aesthetic_quality']) -> "
                       "laion_aesthetic(aesthetic_model, clip_model, video_list, 'cpu')",
        "aggregate": float(aggregate),
        "aggregate_rule": "video-weighted: sum of the per-video values / number of videos "
                          "(aesthetic_quality.py:68-72); per video: mean over every frame of "
                          "Linear(768,1)(F.normalize(encode_image(clip_transform(224)(frame)))) / 10, "
                          "frames in batches of 32",
        "videos": videos,
        "seconds_compute_call": seconds,
        "recipe": {
            **vbench_env.environment(),
            "weights": weights,
            "clips": {
                "writer": "tests/parity/clips.py:write_parity_clips",
                "specs": [c["spec"] for c in clips.values()],
                "video_file_sha256": {name: c["video_file_sha256"] for name, c in clips.items()},
            },
            "command": command,
            "tolerance": TOLERANCE,
        },
    }
    fixture["recipe"].pop("dino", None)  # not used by this dimension
    assert [c.name for c in PARITY_CLIPS] == list(clips)
    if sensitivity:
        video_list = [clips[name]["video"] for name in clips]
        reference = (float(aggregate), {v["name"]: v["video_results"] for v in videos})
        fixture["sensitivity"] = _sensitivity(
            lambda: module.laion_aesthetic(head_model, clip_model, video_list, "cpu"),
            module, "clip_transform", _variants_clip(), reference, clip_model.visual,
            [output for _, output in clip_calls])
        fixture["sensitivity_clips"] = list(clips)
    return fixture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-sensitivity", action="store_true")
    parser.add_argument("--work", type=Path, help="keep the work folder here (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args()
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        fixture = run(args.work, not args.no_sensitivity, args.seed, command)
    else:
        with tempfile.TemporaryDirectory(prefix="vbench-aesthetic-") as tmp:
            fixture = run(Path(tmp), not args.no_sensitivity, args.seed, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, indent=2) + "\n")
    print(f"aggregate {fixture['aggregate']:.6f} -> {args.out}")


if __name__ == "__main__":
    main()
