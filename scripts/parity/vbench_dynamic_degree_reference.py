"""Run VBench's own dynamic degree (RAFT) on the RAFT parity recipe and write the fixture.

    OMP_NUM_THREADS=1 /work/parity-work/venv/bin/python scripts/parity/vbench_dynamic_degree_reference.py

(about 30 s and 18 s of CPU on the 2-core machine: 22 RAFT pairs at 128-200 px, one thread.)

Needs the parity venv of setup_vbench_env.sh plus the pins in scripts/parity/requirements-dynamic_degree.txt
(``easydict``, imported by vbench/dynamic_degree.py; ``scipy``, imported by RAFT's utils_core/utils.py).

Builds the recipe's fixed random ``raft-things.pth`` (tests/parity/weights_raft.py: published layout,
``module.`` prefix) at ``$VBENCH_CACHE_DIR/raft_model/models/raft-things.pth`` — where
``init_submodules(['dynamic_degree'], local=True)`` points — writes the clips of
tests/parity/clips_raft.py and calls ``vbench.dynamic_degree.compute_dynamic_degree`` unmodified on CPU in
float32. VBench's per-pair values are observed by wrapping ``DynamicDegree.get_score`` and
``set_params`` (the wrappers call the originals and record their inputs and outputs; nothing VBench
computes is changed). The clip that is too small for RAFT is run through VBench's ``infer`` separately,
to record what VBench returns there (anibench refuses it).

Writes tests/parity/fixtures/vbench_dynamic_degree.json. Never imported by anibench.
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

FIXTURES = vbench_env.REPO / "tests" / "parity" / "fixtures"
TOLERANCE = 1e-4
FLOW_GRID = 16  # the fixture keeps the flow at every 16th pixel of each pair, for a direct flow comparison


def _decoded_cv2(video_path: str) -> tuple[float, str, int]:
    """fps, sha256 of all RGB frames and their count, read exactly as VBench's get_frames does."""
    import cv2
    import numpy as np

    from parity.clips import frames_sha256

    video = cv2.VideoCapture(video_path)
    fps = video.get(cv2.CAP_PROP_FPS)
    frames = []
    while video.isOpened():
        success, frame = video.read()
        if not success:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    video.release()
    stacked = np.stack(frames).astype(np.uint8)
    return float(fps), frames_sha256(stacked), len(frames)


def _pyav_sha256(video_path: str) -> str:
    import av
    import numpy as np

    from parity.clips import frames_sha256

    with av.open(video_path) as container:
        return frames_sha256(np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]))


class _Observer:
    """Wraps ``DynamicDegree.get_score`` and ``set_params``: records per-pair values and each video's params."""

    def __init__(self, cls):
        self.cls = cls
        self.pairs: list[dict] = []
        self.params: list[dict] = []

    def __enter__(self) -> "_Observer":
        self._get_score, self._set_params = self.cls.get_score, self.cls.set_params
        observer, get_score, set_params = self, self.cls.get_score, self.cls.set_params

        def recording_get_score(instance, img, flo):
            value = get_score(instance, img, flo)
            grid = flo[0, :, ::FLOW_GRID, ::FLOW_GRID].detach().cpu().double()
            observer.pairs.append({
                "motion": float(value),
                "padded_shape": list(img.shape[-2:]),
                "flow_sum_abs": float(flo.detach().double().abs().sum()),
                "flow_grid": [[round(float(v), 6) for v in row] for row in grid.reshape(2, -1).tolist()],
            })
            return value

        def recording_set_params(instance, frame, count):
            set_params(instance, frame, count)
            observer.params.append({"frame_shape": list(frame.shape), "count": int(count), **instance.params})

        self.cls.get_score, self.cls.set_params = recording_get_score, recording_set_params
        return self

    def __exit__(self, *exc) -> None:
        self.cls.get_score, self.cls.set_params = self._get_score, self._set_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--out", type=Path, default=FIXTURES / "vbench_dynamic_degree.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="vbench-dd-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["VBENCH_CACHE_DIR"] = str(work / "vbench_cache")  # read by vbench.utils at import
    vbench_env.add_import_paths()
    import torch

    from parity.clips_raft import TOO_SMALL_CLIP, write_raft_clips
    from parity.weights_raft import raft_things_state_dict, state_dict_sha256, write_raft_things_checkpoint

    weights = write_raft_things_checkpoint(work / "vbench_cache" / "raft_model" / "models" / "raft-things.pth",
                                           seed=args.seed)
    import vbench.dynamic_degree as module
    from vbench.utils import init_submodules

    submodules = init_submodules(["dynamic_degree"], local=True)["dynamic_degree"]
    assert Path(submodules["model"]) == weights, submodules
    clips = write_raft_clips(work / "videos")
    entries = [{"prompt_en": name, "dimension": ["dynamic_degree"], "video_list": [clip["video"]]}
               for name, clip in clips.items()]
    info = work / "full_info.json"
    info.write_text(json.dumps(entries, indent=2))

    torch.manual_seed(0)
    with _Observer(module.DynamicDegree) as observer:
        start = time.perf_counter()
        aggregate, results = module.compute_dynamic_degree(str(info), "cpu", submodules)
        seconds = time.perf_counter() - start
    pairs, params = list(observer.pairs), list(observer.params)

    videos = []
    for item, video_params in zip(results, params):
        name = Path(item["video_path"]).stem
        fps, sha, count = _decoded_cv2(item["video_path"])
        stride = max(1, round(fps / 8))
        sampled = len(range(0, count, stride))
        mine, pairs = pairs[: sampled - 1], pairs[sampled - 1:]
        assert video_params["count"] == sampled, (name, video_params, sampled)
        videos.append({
            "name": name, "video_results": bool(item["video_results"]), "fps_cv2": fps, "num_frames": count,
            "stride": stride, "sampled_frames": sampled, "thres": video_params["thres"],
            "count_num": video_params["count_num"], "frame_shape": video_params["frame_shape"],
            "decoded_sha256": sha, "decoded_sha256_pyav_equal": sha == _pyav_sha256(item["video_path"]),
            "pairs": mine,
        })
    assert not pairs, "pair values left over: video order differs from VBench's"

    # The clip RAFT cannot take: what VBench's own infer returns for it (anibench refuses the clip).
    small = write_raft_clips(work / "videos", (TOO_SMALL_CLIP,))[TOO_SMALL_CLIP.name]
    model_args = __import__("easydict").EasyDict({"model": submodules["model"], "small": False,
                                                 "mixed_precision": False, "alternate_corr": False})
    dynamic = module.DynamicDegree(model_args, "cpu")
    with _Observer(module.DynamicDegree) as observer:
        small_result = dynamic.infer(small["video"])
    too_small = {"name": TOO_SMALL_CLIP.name, "video_results": bool(small_result),
                 "pair_motions": [p["motion"] if p["motion"] == p["motion"] else "NaN" for p in observer.pairs],
                 "params": observer.params,
                 "note": "padded 96x64: RAFT's coarsest correlation level is 1 cell high and bilinear_sampler divides "
                         "by H-1 = 0; VBench returns a value anyway, anibench refuses frames under 128 px padded"}

    command = "OMP_NUM_THREADS=1 $PARITY_HOME/venv/bin/python scripts/parity/vbench_dynamic_degree_reference.py"
    if argv is None and sys.argv[1:]:
        command += " " + shlex.join(sys.argv[1:])
    environment = vbench_env.environment()
    environment.pop("dino", None)
    environment.pop("clip_source", None)
    environment["packages"].update({name: vbench_env._version(name) for name in
                                    ("easydict", "scipy", "opencv-python-headless")})
    fixture = {
        "dimension": "dynamic_degree",
        "vbench_call": "vbench.dynamic_degree.compute_dynamic_degree(full_info_json, 'cpu', "
                       "init_submodules(['dynamic_degree'], local=True)['dynamic_degree'])",
        "aggregate": float(aggregate),
        "aggregate_rule": "np.mean over videos of the per-video boolean (fraction of dynamic videos)",
        "videos": videos,
        "too_small": too_small,
        "seconds_compute_call": seconds,
        "recipe": {
            **environment,
            "weights": {"raft_things": {
                "writer": "tests/parity/weights_raft.py:write_raft_things_checkpoint", "seed": args.seed,
                "format": "plain state dict (torch.save), princeton-vl key names with the 'module.' prefix, as published",
                "state_dict_sha256": state_dict_sha256(raft_things_state_dict(args.seed)),
                "placed_at": "$VBENCH_CACHE_DIR/raft_model/models/raft-things.pth (init_submodules, local mode)"}},
            "clips": {"writer": "tests/parity/clips_raft.py:write_raft_clips",
                      "specs": [clip["spec"] for clip in clips.values()],
                      "video_file_sha256": {name: clip["video_file_sha256"] for name, clip in clips.items()},
                      "too_small": small["spec"]},
            "flow_grid_step": FLOW_GRID,
            "command": command,
            "tolerance": TOLERANCE,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"dynamic_degree: aggregate {aggregate} ({[v['video_results'] for v in videos]}) -> {args.out}")
    print("pair motions:", {v["name"]: [round(p["motion"], 3) for p in v["pairs"]] for v in videos})
    return 0


if __name__ == "__main__":
    sys.exit(main())
