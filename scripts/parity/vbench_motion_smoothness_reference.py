"""Run VBench's own motion smoothness (AMT-S) on the parity recipe and write its fixture.

    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python scripts/parity/vbench_motion_smoothness_reference.py

Needs, in the parity venv, besides scripts/parity/constraints.txt: ``omegaconf`` and ``imageio`` (imported by
``vbench/motion_smoothness.py`` and ``vbench/third_party/amt/utils/utils.py``; pins in
scripts/parity/requirements-motion_smoothness.txt).

Builds the recipe's fixed random AMT-S weights (tests/parity/weights_amt.py) as ``amt-s.pth`` (the published
layout, ``{"state_dict": ...}``) and the clips (``MOTION_CLIPS``, written by tests/parity/clips.py's writer),
then calls VBench 45e79ec's ``vbench.motion_smoothness.compute_motion_smoothness`` unmodified, on CPU in float32,
with the submodules VBench's local mode passes (``config``: ``vbench/third_party/amt/cfgs/AMT-S.yaml``,
``ckpt``: the weights file). Debug values (each interpolated frame's mean absolute error) come from an
observer wrapped around ``MotionSmoothness.motion_score`` and ``get_diff`` (it returns what VBench computed).

Then two more runs of VBench's code on one instance:

- ``cuda_rule``: VBench's CUDA downscaling formula (motion_smoothness.py L94-98) with a given total GPU memory,
  set on the instance after construction (``anchor_resolution``, ``anchor_memory``, ``anchor_memory_bias``,
  ``vram_avail``), so that ``motion_score`` runs its own scale/padding code with a scale below 1;
- ``sensitivity``: VBench's inner function with one step deliberately changed (rounding instead of
  truncation when the interpolated frame becomes uint8; the two input frames swapped), to show that the
  fixture's tolerance catches such changes.

Writes tests/parity/fixtures/vbench_motion_smoothness.json. Never imported by anibench.
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
from importlib import metadata
from pathlib import Path

import vbench_env

FIXTURES = vbench_env.REPO / "tests" / "parity" / "fixtures"
TOLERANCE = 1e-4
# A total GPU memory for which VBench's CUDA rule scales downscale_320x240 (76,800 px) below 1:
# s = 1024·512/76800 · sqrt(10 MiB / 1500 MiB) = 0.557 → scale 16/21, padding divisor 21.
CUDA_RULE_VRAM = 2510 * 1024**2
CUDA_RULE_CLIPS = ("downscale_320x240",)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def _environment() -> dict:
    import torch

    return {
        "vbench": {"repo": vbench_env.VBENCH_REPO_URL, "commit": vbench_env._commit(vbench_env.VBENCH_TREE)},
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in
                     ("torch", "numpy", "opencv-python-headless", "omegaconf", "imageio", "av", "pillow")},
        "torch_num_threads": torch.get_num_threads(),
        "device": "cpu",
        "dtype": "float32",
    }


def _full_info(work: Path, clips: dict) -> Path:
    entries = [{"prompt_en": name, "dimension": ["motion_smoothness"], "video_list": [clip["video"]]}
               for name, clip in clips.items()]
    path = work / "full_info.json"
    path.write_text(json.dumps(entries, indent=2))
    return path


class _DiffObserver:
    """Wraps ``MotionSmoothness.motion_score`` and ``get_diff`` to record every per-frame value ``get_diff``
    returns, per video path (read-only: each wrapper returns what VBench's method returned)."""

    def __init__(self, cls):
        self.cls, self.values = cls, {}

    def __enter__(self):
        self.originals = score_original, diff_original = self.cls.motion_score, self.cls.get_diff
        values, current = self.values, []

        def motion_score(instance, video_path):
            current.clear()
            result = score_original(instance, video_path)
            values[Path(video_path).stem] = list(current)
            return result

        def get_diff(instance, img1, img2):
            value = diff_original(instance, img1, img2)
            current.append(float(value))
            return value

        self.cls.motion_score, self.cls.get_diff = motion_score, get_diff
        return self

    def __exit__(self, *exc):
        self.cls.motion_score, self.cls.get_diff = self.originals


def _decoded_sha256(module, video_path: str) -> tuple[int, str]:
    import numpy as np

    from parity.clips import frames_sha256

    frames = np.stack(module.FrameProcess().get_frames(video_path))
    return int(frames.shape[0]), frames_sha256(frames)


def _score_videos(motion, module, clips: dict, names) -> dict[str, dict]:
    out = {}
    for name in names:
        with _DiffObserver(module.MotionSmoothness) as observer:
            value = motion.motion_score(clips[name]["video"])
        out[name] = {"video_results": float(value), "errors": observer.values[name]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="vbench-motion-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["VBENCH_CACHE_DIR"] = str(work / "vbench_cache")  # read by vbench.utils at import
    vbench_env.add_import_paths()
    import torch

    torch.manual_seed(0)
    from parity.clips import write_clip
    from parity.weights_amt import (MOTION_CLIPS, amt_s_recipe, amt_s_state_dict, state_dict_sha256,
                                    write_amt_s_checkpoint)

    import vbench.motion_smoothness as module

    config = vbench_env.VBENCH_TREE / "vbench" / "third_party" / "amt" / "cfgs" / "AMT-S.yaml"
    ckpt = write_amt_s_checkpoint(work / "vbench_cache" / "amt_model" / "amt-s.pth", seed=args.seed)
    clips = {spec.name: write_clip(spec, work / "videos") for spec in MOTION_CLIPS}
    info = _full_info(work, clips)

    started = time.perf_counter()
    with _DiffObserver(module.MotionSmoothness) as observed:
        submodules = {"config": str(config), "ckpt": str(ckpt)}
        aggregate, results = module.compute_motion_smoothness(str(info), "cpu", submodules)
    seconds = time.perf_counter() - started

    # The recipe must be exactly the architecture VBench built.
    motion = module.MotionSmoothness(str(config), str(ckpt), "cpu")
    built = {key: tuple(value.shape) for key, value in motion.model.state_dict().items()}
    assert built == {name: shape for name, shape, _, _ in amt_s_recipe()}, "recipe differs from VBench's AMT-S"

    per_video = {Path(item["video_path"]).stem: item for item in results}
    videos = []
    for name, item in per_video.items():
        frames, decoded = _decoded_sha256(module, clips[name]["video"])
        errors = observed.values[name]
        videos.append({"name": name, "video_results": float(item["video_results"]), "num_frames": frames,
                       "decoded_sha256": decoded, "interpolated_frames": len(errors), "errors": errors})

    # VBench's CUDA downscaling rule, run by VBench's own motion_score on CPU; then the CPU anchors again.
    motion.anchor_resolution, motion.anchor_memory = 1024 * 512, 1500 * 1024**2
    motion.anchor_memory_bias, motion.vram_avail = 2500 * 1024**2, CUDA_RULE_VRAM
    cuda_rule = {"vram_bytes": CUDA_RULE_VRAM, "videos": _score_videos(motion, module, clips, CUDA_RULE_CLIPS)}
    motion.anchor_resolution, motion.anchor_memory, motion.anchor_memory_bias, motion.vram_avail = 8192 * 8192, 1, 0, 1

    sensitivity = {}
    reference = {video["name"]: video["video_results"] for video in videos}
    original_tensor2img = module.tensor2img

    def rounded(img_t):
        return (img_t * 255.0).detach().squeeze(0).permute(1, 2, 0).cpu().numpy().clip(0, 255).round().astype("uint8")

    module.tensor2img = rounded
    try:
        sensitivity["round_instead_of_truncate"] = _score_videos(motion, module, clips, reference)
    finally:
        module.tensor2img = original_tensor2img
    original_model = motion.model

    class Swapped(torch.nn.Module):
        def forward(self, in_0, in_1, *rest, **kwargs):
            return original_model(in_1, in_0, *rest, **kwargs)

    motion.model = Swapped()
    try:
        sensitivity["inputs_swapped"] = _score_videos(motion, module, clips, reference)
    finally:
        motion.model = original_model
    reference_errors = {video["name"]: video["errors"] for video in videos}
    for variant, values in sensitivity.items():
        deltas = {name: values[name]["video_results"] - reference[name] for name in reference}
        error_deltas = [abs(changed - unchanged) for name in reference
                        for changed, unchanged in zip(values[name]["errors"], reference_errors[name])]
        sensitivity[variant] = {"video_deltas": deltas, "max_abs_video_delta": max(map(abs, deltas.values())),
                                "min_abs_video_delta": min(map(abs, deltas.values())),
                                "max_abs_error_delta": max(error_deltas), "min_abs_error_delta": min(error_deltas)}

    command = ("flock /tmp/anibench-heavy.lock $PARITY_HOME/venv/bin/python "
               "scripts/parity/vbench_motion_smoothness_reference.py")
    if argv is None and sys.argv[1:]:
        command += " " + shlex.join(sys.argv[1:])
    fixture = {
        "dimension": "motion_smoothness",
        "vbench_call": "vbench.motion_smoothness.compute_motion_smoothness(full_info_json, 'cpu', "
                       "{'config': vbench/third_party/amt/cfgs/AMT-S.yaml, 'ckpt': amt-s.pth})",
        "aggregate_rule": "np.mean over videos",
        "aggregate": float(aggregate),
        "videos": videos,
        "cuda_rule": cuda_rule,
        "sensitivity": sensitivity,
        "seconds_compute_call": seconds,
        "recipe": {
            **_environment(),
            "weights": {"amt_s": {"writer": "tests/parity/weights_amt.py:write_amt_s_checkpoint", "seed": args.seed,
                                  "format": "torch.save({'state_dict': ...}), as VBench reads it",
                                  "state_dict_sha256": state_dict_sha256(amt_s_state_dict(args.seed)),
                                  "placed_at": "$VBENCH_CACHE_DIR/amt_model/amt-s.pth (VBench local mode)"}},
            "clips": {"writer": "tests/parity/clips.py:write_clip with tests/parity/weights_amt.py:MOTION_CLIPS",
                      "specs": [clip["spec"] for clip in clips.values()],
                      "video_file_sha256": {name: clip["video_file_sha256"] for name, clip in clips.items()}},
            "command": command,
            "tolerance": TOLERANCE,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "vbench_motion_smoothness.json"
    path.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"motion_smoothness: aggregate {aggregate:.8f} ({seconds:.1f} s) -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
