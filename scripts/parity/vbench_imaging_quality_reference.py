"""Run VBench's own imaging quality (MUSIQ-SPAQ) on the parity recipe and write its fixture; also time it.

    scripts/parity/setup_vbench_env.sh
    flock /tmp/parity-pip.lock /work/parity-work/venv/bin/python -m pip install -c scripts/parity/constraints.txt \
        --build-constraint scripts/parity/constraints.txt --no-deps -r scripts/parity/requirements-imaging_quality.txt
    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python scripts/parity/vbench_imaging_quality_reference.py
    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python scripts/parity/vbench_imaging_quality_reference.py --timing

VBench's ``vbench/imaging_quality.py`` (45e79ec) is called unmodified:
``compute_imaging_quality(full_info_json, 'cpu', {'model_path': ...})`` builds
``pyiqa.archs.musiq_arch.MUSIQ(pretrained_model_path=...)`` (pyiqa 0.1.10, strict load of the recipe's
checkpoint, tests/parity/weights_musiq.py), decodes each clip with VBench's ``load_video`` (decord),
applies ``transform(images, 'longer')`` and averages ``float(model(frame))`` over frames; the
aggregate is the mean over videos / 100.

pyiqa is installed without its dependencies (``opencv-python``, the GUI build, would replace the
headless ``cv2`` of this venv; tensorboard, facexlib, imgaug, lmdb ... are not needed by MUSIQ).
``import pyiqa.archs.musiq_arch`` would run pyiqa's package ``__init__`` files, which import every
metric and those dependencies; :func:`import_pyiqa_musiq` therefore registers the five packages on
the import path of ``musiq_arch`` (``pyiqa``, ``pyiqa.archs``, ``pyiqa.utils``, ``pyiqa.data``,
``pyiqa.matlab_utils``) as plain package objects pointing at pyiqa's installed folders, so that
``musiq_arch`` and the modules it imports (``arch_util``, ``constants``, ``utils.registry``,
``utils.download_util``, ``utils.misc``, ``utils.dist_util``, ``data.multiscale_trans_util``,
``matlab_utils.padding``) run as pyiqa ships them. ``pyiqa.matlab_utils`` re-exports
``ExactPadding2d``/``exact_padding_2d`` from its ``padding`` module; those two names are copied onto
the package object. Nothing pyiqa computes is replaced.

Writes tests/parity/fixtures/vbench_imaging_quality.json (VBench's aggregate and per-video values as
returned, each frame's score recorded by a forward hook on VBench's model, the frame size VBench fed
it, the decoded frames' sha256, sensitivity runs with one preprocessing step changed, and the
recipe), or with ``--timing`` tests/parity/fixtures/vbench_imaging_quality_timing.json (VBench's side).
This script is never imported by anibench.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shlex
import sys
import tempfile
import time
import types
from pathlib import Path

import vbench_env

FIXTURES = vbench_env.REPO / "tests" / "parity" / "fixtures"
FIXTURE = FIXTURES / "vbench_imaging_quality.json"
TIMING = FIXTURES / "vbench_imaging_quality_timing.json"
TOLERANCE = 1e-4
SEED = 0
SENSITIVITY_CLIP = "iq_wide_576x320"
PYIQA_PACKAGES = ("pyiqa", "pyiqa.archs", "pyiqa.utils", "pyiqa.data", "pyiqa.matlab_utils")


def import_pyiqa_musiq() -> types.ModuleType:
    """pyiqa's ``musiq_arch`` module, imported without running pyiqa's package ``__init__`` files."""
    spec = importlib.util.find_spec("pyiqa")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pyiqa is not installed in this venv: see scripts/parity/requirements-imaging_quality.txt")
    root = Path(list(spec.submodule_search_locations)[0])
    for name in PYIQA_PACKAGES:
        package = types.ModuleType(name)
        package.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
        package.__package__ = name
        sys.modules[name] = package
    padding = importlib.import_module("pyiqa.matlab_utils.padding")
    matlab_utils = sys.modules["pyiqa.matlab_utils"]
    matlab_utils.ExactPadding2d = padding.ExactPadding2d
    matlab_utils.exact_padding_2d = padding.exact_padding_2d
    return importlib.import_module("pyiqa.archs.musiq_arch")


def _setup(work: Path) -> None:
    """Import paths (VBench, tests/ for the recipe, the torchvision shim), VBench's cache dir, pyiqa."""
    vbench_env.add_import_paths()
    os.environ["VBENCH_CACHE_DIR"] = str(work / "vbench_cache")  # read by vbench.utils at import
    import_pyiqa_musiq()


def _weights(work: Path) -> tuple[Path, dict]:
    from parity.weights_musiq import musiq_state_dict, state_dict_sha256, write_musiq_checkpoint

    path = write_musiq_checkpoint(work / "vbench_cache" / "pyiqa_model" / "musiq_spaq_ckpt-358bb6af.pth", seed=SEED)
    return path, {
        "writer": "tests/parity/weights_musiq.py:write_musiq_checkpoint",
        "seed": SEED,
        "size": "SPAQ_SIZE (pyiqa MUSIQ defaults: hidden 384, MLP 1152, 14 layers, 6 heads, one output)",
        "format": "plain state dict (torch.save), as published; loaded by pyiqa with strict=True",
        "state_dict_sha256": state_dict_sha256(musiq_state_dict(SEED)),
        "placed_at": "$VBENCH_CACHE_DIR/pyiqa_model/musiq_spaq_ckpt-358bb6af.pth (vbench/utils.py:333)",
    }


def _full_info(work: Path, clips: dict) -> Path:
    entries = [{"prompt_en": name, "dimension": ["imaging_quality"], "video_list": [clip["video"]]}
               for name, clip in clips.items()]
    path = work / "full_info.json"
    path.write_text(json.dumps(entries, indent=2))
    return path


class _Recorder:
    """Wraps ``module.MUSIQ`` so the model VBench builds gets a forward hook recording each frame's
    input size and output; nothing VBench computes is changed."""

    def __init__(self, module):
        self.module = module
        self.calls: list[tuple[list[int], float]] = []
        self.model = None

    def __enter__(self) -> "_Recorder":
        self.original = self.module.MUSIQ

        def build(*args, **kwargs):
            model = self.original(*args, **kwargs)
            model.register_forward_hook(
                lambda _m, inputs, output: self.calls.append((list(inputs[0].shape), float(output))))
            self.model = model
            return model

        self.module.MUSIQ = build
        return self

    def __exit__(self, *exc) -> None:
        self.module.MUSIQ = self.original


def _environment() -> dict:
    import torch

    env = vbench_env.environment()
    env.pop("dino", None)
    env.pop("clip_source", None)
    env["packages"] = {name: vbench_env._version(name) for name in
                       ("torch", "torchvision", "numpy", "av", "decord", "pyiqa", "requests", "scipy")}
    env["pyiqa_import"] = ("pyiqa 0.1.10 installed with --no-deps; musiq_arch imported without pyiqa's package "
                           "__init__ files (scripts/parity/vbench_imaging_quality_reference.py:import_pyiqa_musiq)")
    env["torch_num_threads"] = torch.get_num_threads()
    return env


def _variants() -> dict:
    """Replacements of ``vbench.imaging_quality.transform`` with one step changed."""
    import torch
    from torchvision import transforms

    def longer(images, interpolation=transforms.InterpolationMode.BILINEAR, antialias=False, to_uint8=False):
        _, _, h, w = images.size()
        if max(h, w) > 512:
            scale = 512.0 / max(h, w)
            images = transforms.Resize(size=(int(scale * h), int(scale * w)), interpolation=interpolation,
                                       antialias=antialias)(images)
            if to_uint8:
                images = images.round().clamp(0, 255).to(torch.uint8).float()
        return images / 255.0

    return {
        "antialias_on": ("Resize(..., antialias=True) instead of antialias=False",
                         lambda images, mode: longer(images, antialias=True)),
        "bicubic": ("bicubic instead of bilinear", lambda images, mode: longer(
            images, interpolation=transforms.InterpolationMode.BICUBIC)),
        "uint8_resize": ("resized frames rounded to uint8 (VBench resizes float32 0-255 frames)",
                         lambda images, mode: longer(images, to_uint8=True)),
        "no_resize": ("mode 'None': frames fed at full size", lambda images, mode: images / 255.0),
    }


def reference(work: Path, sensitivity: bool, command: str) -> dict:
    import torch
    import vbench.imaging_quality as module
    from vbench.utils import load_video

    from parity.clips import frames_sha256, write_parity_clips
    from parity.clips_musiq import IMAGING_QUALITY_CLIPS
    from parity.weights_musiq import musiq_recipe

    weights_path, weights = _weights(work)
    clips = write_parity_clips(work / "clips", IMAGING_QUALITY_CLIPS)
    info = _full_info(work, clips)
    with _Recorder(module) as recorder:
        start = time.perf_counter()
        aggregate, results = module.compute_imaging_quality(str(info), "cpu", {"model_path": str(weights_path)})
        seconds = time.perf_counter() - start
    calls = recorder.calls
    pyiqa_keys = [(key, tuple(value.shape)) for key, value in recorder.model.state_dict().items()]
    recipe_keys = [(name, tuple(shape)) for name, shape, _, _ in musiq_recipe()]
    assert pyiqa_keys == recipe_keys, "the recipe's layout is not pyiqa MUSIQ's state dict"
    videos = []
    for item in results:
        name = Path(item["video_path"]).stem
        frames = load_video(item["video_path"])
        as_uint8 = frames.permute(0, 2, 3, 1).to(torch.uint8).numpy()
        mine, calls = calls[: len(frames)], calls[len(frames):]
        videos.append({
            "name": name,
            "video_results": float(item["video_results"]),
            "num_frames": int(frames.shape[0]),
            "decoded_size_hw": list(frames.shape[-2:]),
            "model_input_size_hw": mine[0][0][-2:],
            "frame_scores": [score for _, score in mine],
            "decoded_sha256": frames_sha256(as_uint8),
        })
    assert not calls, "model calls left over: video order differs from VBench's"
    fixture = {
        "dimension": "imaging_quality",
        "vbench_call": "vbench.imaging_quality.compute_imaging_quality(full_info_json, 'cpu', "
                       "{'model_path': musiq_spaq_ckpt-358bb6af.pth}) -> technical_quality(model, video_list, 'cpu') "
                       "with preprocess_mode 'longer' (the default)",
        "aggregate": float(aggregate),
        "aggregate_rule": "mean over videos of the per-video values (each the mean over all frames of MUSIQ's "
                          "score, 0-100), divided by 100",
        "videos": videos,
        "pyiqa_state_dict_equals_recipe": "keys, order and shapes of pyiqa MUSIQ's state_dict() == "
                                          "tests/parity/weights_musiq.py:musiq_recipe() (asserted)",
        "seconds_compute_call": seconds,
        "recipe": {
            **_environment(),
            "weights": weights,
            "clips": {
                "writer": "tests/parity/clips.py:write_parity_clips(folder, tests/parity/clips_musiq.py:"
                          "IMAGING_QUALITY_CLIPS)",
                "specs": [clip["spec"] for clip in clips.values()],
                "video_file_sha256": {name: clip["video_file_sha256"] for name, clip in clips.items()},
            },
            "command": command,
            "tolerance": TOLERANCE,
        },
    }
    if sensitivity:
        fixture["sensitivity"] = _sensitivity(module, recorder.model, clips[SENSITIVITY_CLIP]["video"],
                                              _by_name(videos)[SENSITIVITY_CLIP]["video_results"])
        fixture["sensitivity_clip"] = SENSITIVITY_CLIP
    return fixture


def _by_name(videos: list[dict]) -> dict[str, dict]:
    return {video["name"]: video for video in videos}


def _sensitivity(module, model, video: str, unchanged: float) -> dict:
    original = module.transform
    out = {}
    try:
        for name, (description, replacement) in _variants().items():
            module.transform = replacement
            _, results = module.technical_quality(model, [video], "cpu")
            value = float(results[0]["video_results"])
            out[name] = {"change": description, "video_results": value, "delta": value - unchanged}
            print(f"  sensitivity {name}: {value - unchanged:+.6f}", flush=True)
    finally:
        module.transform = original
    return out


def timing(work: Path, repeat: int, command: str) -> dict:
    """VBench's side of the timing table on the 49-frame 848x480 clip (tests/parity/clips.py TIMING_CLIP)."""
    import torch
    import vbench.imaging_quality as module
    from vbench.utils import load_video

    from parity.clips import TIMING_CLIP, write_parity_clips

    weights_path, weights = _weights(work)
    clip = write_parity_clips(work / "clips", (TIMING_CLIP,))[TIMING_CLIP.name]
    info = _full_info(work, {TIMING_CLIP.name: clip})
    load_avg_start = os.getloadavg()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        aggregate, results = module.compute_imaging_quality(str(info), "cpu", {"model_path": str(weights_path)})
        end_to_end = time.perf_counter() - start
        start = time.perf_counter()
        musiq = module.MUSIQ(pretrained_model_path=str(weights_path))
        musiq.training = False
        load = time.perf_counter() - start
        start = time.perf_counter()
        frames = load_video(clip["video"])
        decode = time.perf_counter() - start
        runs.append({"end_to_end_s": end_to_end, "model_load_s": load, "decode_s": decode,
                     "video_results": float(results[0]["video_results"])})
    best = {key: min(run[key] for run in runs) for key in ("end_to_end_s", "model_load_s", "decode_s")}
    return {
        "dimension": "imaging_quality",
        "clip": {"spec": clip["spec"], "video_file_sha256": clip["video_file_sha256"], "frames": int(frames.shape[0])},
        "weights": weights,
        "vbench": {**best, "per_clip_ms": best["end_to_end_s"] * 1000, "runs": runs,
                   "what": "compute_imaging_quality on a one-clip full-info JSON: MUSIQ build + strict load, "
                           "decord decode, 'longer' resize, 49 single-frame forward passes (min over runs)",
                   "load_average_start_end": [load_avg_start, os.getloadavg()],
                   "torch_num_threads": torch.get_num_threads(),
                   "command": command},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sensitivity", action="store_true", help="skip the changed-preprocessing runs")
    parser.add_argument("--timing", action="store_true", help="time VBench on the 49-frame 848x480 clip instead")
    parser.add_argument("--repeat", type=int, default=1, help="timing runs (the minimum is reported)")
    args = parser.parse_args()
    command = "/work/parity-work/venv/bin/python " + shlex.join(
        ["scripts/parity/vbench_imaging_quality_reference.py", *sys.argv[1:]])
    with tempfile.TemporaryDirectory(prefix="vbench-iq-") as tmp:
        work = Path(tmp)
        _setup(work)
        if args.timing:
            out, payload = TIMING, timing(work, args.repeat, command)
            if out.is_file():  # keep anibench's side if it was written already
                previous = json.loads(out.read_text())
                payload = {**previous, **payload}
                if "anibench" in payload:
                    payload["ratio_vbench_over_anibench"] = (payload["vbench"]["end_to_end_s"]
                                                             / payload["anibench"]["end_to_end_s"])
        else:
            out, payload = FIXTURE, reference(work, not args.no_sensitivity, command)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
