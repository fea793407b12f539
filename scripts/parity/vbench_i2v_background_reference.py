"""Run VBench-I2V's own ``i2v_background`` (DreamSim) on the parity recipe and write its fixture.

    /work/parity-work/venv/bin/python scripts/parity/vbench_i2v_background_reference.py            # fixture
    /work/parity-work/venv/bin/python scripts/parity/vbench_i2v_background_reference.py --timing   # 480p timing

Needs, besides scripts/parity/setup_vbench_env.sh, the packages pinned in
scripts/parity/requirements-i2v_background.txt (dreamsim 0.2.1 and PEFT; VBench imports
``from dreamsim import dreamsim`` without declaring it).

What runs, unmodified: ``vbench2_beta_i2v.i2v_background.compute_i2v_background`` (VBench 45e79ec) with
a custom-input full-info JSON, which calls DreamSim's ``dreamsim(pretrained=True)`` (dreamsim 0.2.1 =
ssundaram21/dreamsim db4d16c) and then ``i2v_background(model, pairs, 'cpu')``. One thing cannot run
as written on a CPU machine: ``dreamsim()``'s default ``device="cuda"``, which VBench does not override
(ViTExtractor moves every branch to it). The module's ``dreamsim`` name is therefore wrapped to pass
``device="cpu"``; every other argument (``cache_dir="./models"``, ``normalize_embeds=True``,
``dreamsim_type="ensemble"``) is DreamSim's default, as in VBench's call.

DreamSim's cache, laid out in ``<work>/models`` (the script runs with ``<work>`` as its working
directory, where DreamSim's ``./models`` resolves), as ``download_weights`` and ``torch.hub`` leave it
after a first online run: the recipe's archive (tests/parity/weights_dreamsim.py) extracted there;
``facebookresearch_dino_main/`` = the dino repository at its pin (torch.hub's cached checkout for
``facebookresearch/dino:main``, since DreamSim calls ``torch.hub.set_dir('./models')``); and
``checkpoints/dino_vitbase16_pretrain.pth`` = the recipe's DINO backbone (tests/parity/weights.py),
which hubconf's ``dino_vitb16`` reads with ``load_state_dict_from_url``.

Debug values come from wrapping the loaded model's ``embed`` (an observer: inputs and outputs
recorded, nothing changed). The loaded LoRA factors are checked against the recipe (PEFT silently
keeps freshly initialised adapters when keys do not match). Sensitivity runs call VBench's inner
``i2v_background`` with one step deliberately changed. This script is never imported by anibench.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import vbench_env

FIXTURES = vbench_env.REPO / "tests" / "parity" / "fixtures"
FIXTURE = FIXTURES / "vbench_i2v_background.json"
TIMING = FIXTURES / "vbench_i2v_background_vbench_timing.json"
TOLERANCE = 1e-4
FEATURE_VALUES = 8
# Two clips keep anibench's full-size parity test cheap (23 DreamSim embeddings of three ViT-B/16):
# a portrait clip with a scene cut whose image has another aspect (90x120 vs 64x96), and a 320x240 clip
# that the resize downsamples (antialiasing matters) with a 16:9 image.
PARITY_CLIP_NAMES = ("portrait_64x96_cut", "downscale_320x240")


def _first(values, count: int = FEATURE_VALUES) -> list[float]:
    return [float(v) for v in values.reshape(-1)[:count]]


def _summary(tensor) -> dict:
    return {"shape": list(tensor.shape), "first_values": _first(tensor), "mean": float(tensor.double().mean()),
            "sum_abs": float(tensor.double().abs().sum())}


def prepare_dreamsim_cache(work: Path, seed: int) -> dict:
    """``<work>/models`` as DreamSim and torch.hub leave it; returns the weights recipe."""
    from parity.weights import dino_vitb16_state_dict, state_dict_sha256, write_dino_vitb16_checkpoint
    from parity.weights_dreamsim import FULL, write_dreamsim_archive

    models = work / "models"
    models.mkdir(parents=True, exist_ok=True)
    archive = work / "dreamsim_ensemble_checkpoint.zip"
    dreamsim_recipe = write_dreamsim_archive(archive, FULL, seed)
    with zipfile.ZipFile(archive) as opened:  # what download_weights does after downloading (model.py:247-248)
        opened.extractall(models)
    hub_repo = models / "facebookresearch_dino_main"
    if hub_repo.exists():
        shutil.rmtree(hub_repo)
    shutil.copytree(vbench_env.DINO_TREE, hub_repo)
    write_dino_vitb16_checkpoint(models / "checkpoints" / "dino_vitbase16_pretrain.pth", seed=seed)
    return {
        "dino": {"writer": "tests/parity/weights.py:write_dino_vitb16_checkpoint", "seed": seed,
                 "format": "plain state dict (torch.save), as published",
                 "state_dict_sha256": state_dict_sha256(dino_vitb16_state_dict(seed)),
                 "placed_at": ["./models/checkpoints/dino_vitbase16_pretrain.pth (torch.hub dir = ./models, "
                               "read by dino hubconf dino_vitb16)"]},
        "dreamsim_ensemble": {**dreamsim_recipe, "placed_at": ["./models/ (the archive extracted, as "
                                                                "dreamsim.model.download_weights does)"]},
    }


def _full_info(work: Path, clips: dict) -> Path:
    entries = [{"prompt_en": name, "dimension": ["i2v_background"], "video_list": [clip["video"]],
                "custom_image_path": clip["image"]} for name, clip in clips.items()]
    path = work / "full_info.json"
    path.write_text(json.dumps(entries, indent=2))
    return path


class _EmbedRecorder:
    """Wraps ``model.embed`` of the DreamSim model VBench gets: records (input summary, output) per call."""

    def __init__(self):
        self.calls: list[tuple[dict, object]] = []

    def attach(self, model) -> None:
        original = model.embed

        def embed(images):
            output = original(images)
            self.calls.append((_summary(images.detach()), output.detach().clone()))
            return output

        model.embed = embed


def _check_lora(model, seed: int) -> dict:
    """The adapters PEFT loaded equal the recipe's (key by key), and PEFT's scaling is alpha / r."""
    import torch

    from parity.weights_dreamsim import FULL, lora_scaling, lora_state_dict

    recipe = lora_state_dict(FULL, seed)
    checked, scalings = 0, set()
    for name, module in model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in getattr(module, "lora_A", {}):
            continue
        key = name  # PEFT's module names are the saved keys without ".lora_A.weight"
        for kind in ("A", "B"):
            loaded = getattr(module, f"lora_{kind}")["default"].weight
            expected = recipe[f"{key}.lora_{kind}.weight"]
            assert torch.equal(loaded.detach().cpu(), expected), f"{key}.lora_{kind} differs from the recipe"
            checked += 1
        scalings.add(float(module.scaling["default"]))
    assert checked == len(recipe), (checked, len(recipe))
    assert scalings == {lora_scaling(FULL)}, scalings
    return {"lora_tensors_checked": checked, "peft_scaling": sorted(scalings)}


def _load_model_patch(module, recorder: _EmbedRecorder, holder: dict):
    """``module.dreamsim`` with ``device='cpu'`` (VBench leaves DreamSim's default ``cuda``); records the model."""
    original = module.dreamsim

    @functools.wraps(original)
    def dreamsim_on_cpu(*args, **kwargs):
        model, preprocess = original(*args, **{**kwargs, "device": "cpu"})
        holder["model"] = model
        recorder.attach(model)
        return model, preprocess

    return original, dreamsim_on_cpu


def _videos_from_calls(results: list[dict], clips: dict, calls: list) -> tuple[list[dict], dict]:
    import numpy as np
    import torch.nn.functional as F
    from PIL import Image

    from parity.clips import frames_sha256
    from vbench2_beta_i2v.utils import load_video

    videos, outputs_by_clip = [], {}
    for item in results:
        name = Path(item["video_path"]).stem
        frames = load_video(clips[name]["video"])
        as_uint8 = frames.permute(0, 2, 3, 1).round().clamp(0, 255).to(__import__("torch").uint8).numpy()
        (image_input, image_output), mine = calls[0], calls[1: 1 + len(frames)]
        calls = calls[1 + len(frames):]
        outputs_by_clip[name] = [image_output] + [output for _, output in mine]
        image_embedding = F.normalize(image_output, dim=-1, p=2)
        frame_embeddings = F.normalize(__import__("torch").cat([output for _, output in mine]), dim=-1, p=2)
        pil_image = Image.open(clips[name]["image"])
        videos.append({
            "name": name, "image": Path(item["image_path"]).name, "video_results": float(item["video_results"]),
            "num_frames": int(frames.shape[0]), "decoded_sha256": frames_sha256(as_uint8),
            "image_pixels_sha256": frames_sha256(np.asarray(pil_image.convert("RGB"))[None]),
            "debug": {
                "conditioning_image": {"size_wh": list(pil_image.size), "mode": pil_image.mode,
                                       "model_input": image_input,
                                       "embedding_first_values": _first(image_embedding)},
                "model_input_frame0": mine[0][0],
                "embedding_dim": int(frame_embeddings.shape[-1]),
                "embedding_frame0_first_values": _first(frame_embeddings[0]),
                "embedding_frame1_first_values": _first(frame_embeddings[1]),
                "cos_to_image": [float(F.cosine_similarity(image_embedding, f[None]).item()) for f in frame_embeddings],
                "cos_prev": [float(F.cosine_similarity(frame_embeddings[i - 1:i], frame_embeddings[i:i + 1]).item())
                             for i in range(1, len(frame_embeddings))],
            },
        })
    assert not calls, "embed calls left over: video order differs from VBench's"
    return videos, outputs_by_clip


# ----------------------------------------------------------------------------- sensitivity


def _variants():
    """name -> (change, context manager factory (module, model) that applies it)."""
    import contextlib

    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Lambda, PILToTensor, Resize

    bicubic = InterpolationMode.BICUBIC
    scale = Lambda(lambda x: x.float().div(255.0))

    @contextlib.contextmanager
    def swapped(module, name, factory):
        original = getattr(module, name)
        setattr(module, name, factory)
        try:
            yield
        finally:
            setattr(module, name, original)

    @contextlib.contextmanager
    def attribute(target, name, value):
        original = getattr(target, name)
        setattr(target, name, value)
        try:
            yield
        finally:
            setattr(target, name, original)

    return {
        "frames_antialias_off": (
            "frames: Resize((224, 224), bicubic, antialias=False) (torchvision < 0.17 default)",
            lambda module, model: swapped(module, "dreamsim_transform", lambda n: Compose(
                [Resize((n, n), interpolation=bicubic, antialias=False), scale]))),
        "frames_keep_aspect": (
            "frames: Resize(224, bicubic) on the short side + CenterCrop(224) instead of squashing",
            lambda module, model: swapped(module, "dreamsim_transform", lambda n: Compose(
                [Resize(n, interpolation=bicubic), CenterCrop(n), scale]))),
        "image_tensor_resize": (
            "conditioning image resized as a float tensor (torch bicubic, antialias) instead of by Pillow",
            lambda module, model: swapped(module, "dreamsim_transform_Image", lambda n: Compose(
                [PILToTensor(), Lambda(lambda x: x.float()), Resize((n, n), interpolation=bicubic), scale]))),
        "embeddings_not_centred": (
            "DreamSim embeddings without normalize_embeds (no mean subtraction)",
            lambda module, model: attribute(model.base_model.model, "normalize_embeds", False)),
        "lora_disabled": (
            "the three backbones without DreamSim's LoRA (PEFT disable_adapter)",
            lambda module, model: model.disable_adapter()),
    }


def _sensitivity(module, model, pairs, reference: dict) -> dict:
    import numpy as np

    out = {}
    for name, (change, apply) in _variants().items():
        with apply(module, model):
            aggregate, results = module.i2v_background(model, pairs, "cpu")
        values = {Path(item["video_path"]).stem: float(item["video_results"]) for item in results}
        deltas = {clip: values[clip] - reference[clip] for clip in values}
        out[name] = {"change": change, "aggregate": float(aggregate),
                     "aggregate_delta": float(aggregate) - float(np.mean(list(reference.values()))),
                     "video_deltas": deltas, "max_abs_video_delta": max(abs(d) for d in deltas.values()),
                     "min_abs_video_delta": min(abs(d) for d in deltas.values())}
        print(f"  {name}: max |Δ| {out[name]['max_abs_video_delta']:.2e}", flush=True)
    return out


# ----------------------------------------------------------------------------- runs


def _environment() -> dict:
    env = vbench_env.environment()
    env["packages"].update({name: vbench_env._version(name) for name in
                            ("dreamsim", "peft", "open_clip_torch", "timm", "transformers", "safetensors")})
    env["dreamsim_source"] = {"package": f"dreamsim=={vbench_env._version('dreamsim')} (PyPI)",
                              "repo": "https://github.com/ssundaram21/dreamsim",
                              "note": "dreamsim 0.2.1's package code equals ssundaram21/dreamsim at db4d16c"}
    return env


def run_fixture(work: Path, seed: int, sensitivity: bool, command: str) -> dict:
    vbench_env.add_import_paths()
    from parity.clips import PARITY_CLIPS, write_parity_clips

    weights = prepare_dreamsim_cache(work, seed)
    specs = tuple(spec for spec in PARITY_CLIPS if spec.name in PARITY_CLIP_NAMES)
    clips = write_parity_clips(work / "clips", specs)
    info = _full_info(work, clips)
    os.chdir(work)  # DreamSim's cache_dir default "./models"

    import vbench2_beta_i2v.i2v_background as module

    recorder, holder = _EmbedRecorder(), {}
    original, patched = _load_model_patch(module, recorder, holder)
    module.dreamsim = patched
    try:
        start = time.perf_counter()
        aggregate, results = module.compute_i2v_background(str(info), "cpu", {"resolution": "1-1"})
        seconds = time.perf_counter() - start
    finally:
        module.dreamsim = original
    model = holder["model"]
    lora_check = _check_lora(model, seed)
    videos, _ = _videos_from_calls(results, clips, recorder.calls)
    fixture = {
        "dimension": "i2v_background",
        "vbench_call": "vbench2_beta_i2v.i2v_background.compute_i2v_background(full_info_json, 'cpu', "
                       "{'resolution': '1-1'}) -> dreamsim(pretrained=True) [device='cpu' forced, see script doc] "
                       "-> i2v_background(model, [(image_path, video_path)], 'cpu')",
        "aggregate": float(aggregate),
        "aggregate_rule": "video-weighted: np.mean of the per-video values; per video: "
                          "0.4 * max_t max(0, cos(img, f[t])) + 0.3 * mean_{t>=1} max(0, cos(f[t-1], f[t])) "
                          "+ 0.3 * min_{t>=1} max(0, cos(f[t-1], f[t])) on DreamSim embeddings (the max includes frame 0)",
        "videos": videos,
        "seconds_compute_call": seconds,
        "lora_check": lora_check,
        "recipe": {
            **_environment(),
            "weights": weights,
            "clips": {"writer": "tests/parity/clips.py:write_parity_clips",
                      "specs": [clip["spec"] for clip in clips.values()],
                      "video_file_sha256": {name: clip["video_file_sha256"] for name, clip in clips.items()},
                      "image_pixels_sha256": {name: clip["image_pixels_sha256"] for name, clip in clips.items()}},
            "command": command,
            "tolerance": TOLERANCE,
        },
    }
    if sensitivity:
        reference = {video["name"]: video["video_results"] for video in videos}
        pairs = [(clips[name]["image"], clips[name]["video"]) for name in reference]
        fixture["sensitivity"] = _sensitivity(module, model, pairs, reference)
    return fixture


def run_timing(work: Path, seed: int, repeat: int, command: str) -> dict:
    """Wall time of ``compute_i2v_background`` on the 848x480, 49-frame clip (model load + decode + compute)."""
    vbench_env.add_import_paths()
    import torch

    from parity.clips import TIMING_CLIP, write_parity_clips
    from vbench2_beta_i2v.utils import load_video

    weights = prepare_dreamsim_cache(work, seed)
    clips = write_parity_clips(work / "clips", (TIMING_CLIP,))
    info = _full_info(work, clips)
    os.chdir(work)
    import vbench2_beta_i2v.i2v_background as module

    runs = []
    for _ in range(repeat):
        recorder, holder = _EmbedRecorder(), {}
        original, patched = _load_model_patch(module, recorder, holder)
        timed_load = {}

        @functools.wraps(patched)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            loaded = patched(*args, **kwargs)
            timed_load["seconds"] = time.perf_counter() - start
            return loaded

        module.dreamsim = timed
        try:
            start = time.perf_counter()
            aggregate, results = module.compute_i2v_background(str(info), "cpu", {"resolution": "1-1"})
            total = time.perf_counter() - start
        finally:
            module.dreamsim = original
        start = time.perf_counter()
        load_video(clips[TIMING_CLIP.name]["video"])
        decode = time.perf_counter() - start
        runs.append({"end_to_end_s": total, "model_load_s": timed_load["seconds"], "decode_s": decode,
                     "compute_s": total - timed_load["seconds"], "value": float(aggregate),
                     "embed_calls": len(recorder.calls)})
        print(f"  run: {runs[-1]}", flush=True)
    return {
        "dimension": "i2v_background",
        "side": "vbench",
        "clip": {"name": TIMING_CLIP.name, "width": TIMING_CLIP.width, "height": TIMING_CLIP.height,
                 "frames": TIMING_CLIP.frames, "image": [TIMING_CLIP.image_width, TIMING_CLIP.image_height]},
        "runs": runs,
        "best": {key: min(run[key] for run in runs) for key in ("end_to_end_s", "model_load_s", "decode_s", "compute_s")},
        "torch_num_threads": torch.get_num_threads(),
        "weights": {"size": "full (FULL in tests/parity/weights_dreamsim.py)", "seed": seed,
                    "dreamsim_ensemble_sha": weights["dreamsim_ensemble"]["state_dict_sha256"]},
        "packages": _environment()["packages"],
        "command": command,
        "note": "one frame per DreamSim call (batch 1), three ViT-B/16 per call, CPU float32",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-sensitivity", action="store_true")
    parser.add_argument("--timing", action="store_true", help="time the 480p clip instead of writing the fixture")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    command = shlex.join([Path(sys.executable).as_posix(), "scripts/parity/" + Path(__file__).name,
                          *(argv if argv is not None else sys.argv[1:])])
    work = args.work or Path(tempfile.mkdtemp(prefix="vbench-i2v-background-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.timing:
        result, target = run_timing(work, args.seed, args.repeat, command), TIMING
    else:
        result, target = run_fixture(work, args.seed, not args.no_sensitivity, command), FIXTURE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {target}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
