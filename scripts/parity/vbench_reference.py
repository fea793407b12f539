"""Run VBench's own code for three dimensions on the parity recipe and write the fixtures.

    scripts/parity/setup_vbench_env.sh
    /work/parity-work/venv/bin/python scripts/parity/vbench_reference.py

Builds the recipe's fixed random weights (tests/parity/weights.py) and clips (tests/parity/clips.py),
lays them out where VBench's local mode loads them (see vbench_env.py), and calls VBench's functions,
unmodified, on CPU in float32:

- ``vbench.subject_consistency.compute_subject_consistency`` (DINO ViT-B/16 via torch.hub, source local),
- ``vbench2_beta_i2v.i2v_subject.compute_i2v_subject`` (same DINO, conditioning image per clip),
- ``vbench.background_consistency.compute_background_consistency`` (CLIP ViT-B/32 via ``clip.load``).

Writes tests/parity/fixtures/vbench_{subject_consistency,i2v_subject,background_consistency}.json: VBench's
aggregate and per-video values exactly as returned, the decoded frames' sha256 as VBench's reader
(decord) saw them, debugging values (preprocessed shapes, a few input and feature values, the per-frame
similarities) and the recipe. With sensitivity checks on (default), each dimension is re-run through
VBench's inner function with one preprocessing step deliberately changed, to show the fixture detects it.
This script is never imported by anibench.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import vbench_env

FIXTURES = vbench_env.REPO / "tests" / "parity" / "fixtures"
TOLERANCE = 1e-4
FEATURE_VALUES = 8
# The DINO sensitivity runs use two clips (CPU time: every variant re-runs ViT-B/16 on every frame): one
# that the resize upsamples to a non-square size and one that it downsamples. CLIP runs use all clips.
DINO_SENSITIVITY_CLIPS = ("portrait_64x96_cut", "downscale_320x240")


def _full_info(work: Path, clips: dict, dimensions: list[str]) -> Path:
    """VBench's custom-input full-info JSON: one entry per clip, image given as custom_image_path."""
    entries = [
        {"prompt_en": name, "dimension": dimensions, "video_list": [clip["video"]], "custom_image_path": clip["image"]}
        for name, clip in clips.items()
    ]
    path = work / "full_info.json"
    path.write_text(json.dumps(entries, indent=2))
    return path


def _clip_name(path: str) -> str:
    return Path(path).stem


def _first(values, count: int = FEATURE_VALUES) -> list[float]:
    return [float(v) for v in values.reshape(-1)[:count]]


def _tensor_summary(tensor) -> dict:
    return {
        "shape": list(tensor.shape),
        "first_values": _first(tensor),
        "mean": float(tensor.double().mean()),
        "sum_abs": float(tensor.double().abs().sum()),
    }


def _decoded(load_video, video_path: str) -> tuple[object, str]:
    """VBench's reader output (float32 0..255, T x C x H x W) and its sha256 as uint8 T x H x W x C."""
    import torch

    from parity.clips import frames_sha256

    frames = load_video(video_path)
    as_uint8 = frames.permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8).numpy()
    assert (as_uint8.astype("float32") == frames.permute(0, 2, 3, 1).numpy()).all()
    return frames, frames_sha256(as_uint8)


def _pyav_sha256(video_path: str) -> str:
    import av
    import numpy as np

    from parity.clips import frames_sha256

    with av.open(video_path) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    return frames_sha256(frames)


class _Recorder:
    """Observes VBench's own run: wraps the model loader ``owner.name`` so that the model it returns gets
    a forward hook recording each call's input summary and output. Nothing VBench computes is changed."""

    def __init__(self, owner, name: str, module_of=lambda model: model):
        self.owner, self.name, self.module_of = owner, name, module_of
        self.calls: list[tuple[dict, object]] = []
        self.model = None
        self._handles = []

    def _hook(self, module, inputs, output) -> None:
        self.calls.append((_tensor_summary(inputs[0].detach()), output.detach().clone()))

    def __enter__(self) -> "_Recorder":
        original = getattr(self.owner, self.name)
        self._original = original

        def loader(*args, **kwargs):
            model = original(*args, **kwargs)
            self.model = model
            self._handles.append(self.module_of(model).register_forward_hook(self._hook))
            return model

        setattr(self.owner, self.name, loader)
        return self

    def __exit__(self, *exc) -> None:
        setattr(self.owner, self.name, self._original)
        for handle in self._handles:
            handle.remove()


def _feature_debug(input_summary: dict, raw_features) -> dict:
    """Debug values for one video from its recorded model calls: raw (un-normalised) outputs (N, D)."""
    import torch.nn.functional as F

    features = F.normalize(raw_features, dim=-1, p=2)
    pairs = [{"cos_prev": float(F.cosine_similarity(features[i - 1:i], features[i:i + 1]).item()),
              "cos_first": float(F.cosine_similarity(features[0:1], features[i:i + 1]).item())}
             for i in range(1, len(features))]
    return {
        "model_input_frame0": input_summary,
        "feature_dim": int(features.shape[-1]),
        "feature_frame0_first_values": _first(features[0]),
        "feature_frame1_first_values": _first(features[1]),
        "frame_pairs": pairs,
    }


def _per_video(results: list[dict], key: str = "video_path") -> dict[str, dict]:
    return {_clip_name(item[key]): item for item in results}


def _recipe(env: dict, weights: dict, clips: dict, command: str) -> dict:
    return {
        **env,
        "weights": weights,
        "clips": {
            "writer": "tests/parity/clips.py:write_parity_clips",
            "specs": [clip["spec"] for clip in clips.values()],
            "video_file_sha256": {name: clip["video_file_sha256"] for name, clip in clips.items()},
            "image_pixels_sha256": {name: clip["image_pixels_sha256"] for name, clip in clips.items()},
        },
        "command": command,
        "tolerance": TOLERANCE,
    }


# ----------------------------------------------------------------------------- sensitivity variants


def _variants_dino_subject():
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Lambda, Normalize, Resize

    norm = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    scale = Lambda(lambda x: x.float().div(255.0))
    to_uint8 = Lambda(lambda x: x.round().clamp(0, 255).to(__import__("torch").uint8))
    return {
        "antialias_on": ("Resize(224, antialias=True) instead of antialias=False",
                         lambda n: Compose([Resize(n, antialias=True), scale, norm])),
        "bicubic": ("bicubic instead of bilinear", lambda n: Compose(
            [Resize(n, interpolation=InterpolationMode.BICUBIC, antialias=False), scale, norm])),
        "center_crop_224": ("adds CenterCrop(224) after the resize (VBench keeps the aspect, no crop)",
                            lambda n: Compose([Resize(n, antialias=False), CenterCrop(n), scale, norm])),
        "uint8_resize": ("resizes uint8 frames (rounded) instead of VBench's float32 0..255 frames",
                         lambda n: Compose([to_uint8, Resize(n, antialias=False), scale, norm])),
    }


def _variants_dino_i2v():
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Lambda, Normalize, PILToTensor, Resize

    norm = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    scale = Lambda(lambda x: x.float().div(255.0))
    bicubic = InterpolationMode.BICUBIC
    return {
        "frames_antialias_off": ("frames: Resize(256, bicubic, antialias=False) (torchvision < 0.17 default)",
                                 lambda r=256, c=224: Compose([Resize(r, interpolation=bicubic, antialias=False),
                                                               CenterCrop(c), scale, norm])),
        "frames_bilinear": ("frames: bilinear instead of bicubic",
                            lambda r=256, c=224: Compose([Resize(r), CenterCrop(c), scale, norm])),
        "frames_no_center_crop": ("frames: Resize(224, bicubic) keeping the aspect, no CenterCrop",
                                  lambda r=256, c=224: Compose([Resize(c, interpolation=bicubic), scale, norm])),
        "image_tensor_resize": ("conditioning image resized as a float tensor (torch bicubic, antialias) instead "
                                "of by PIL (Pillow bicubic on uint8)",
                                lambda r=256, c=224: Compose([PILToTensor(), Lambda(lambda x: x.float()),
                                                              Resize(r, interpolation=bicubic), CenterCrop(c),
                                                              scale, norm]),
                                "dino_transform_Image_internet"),
    }


def _variants_clip():
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Lambda, Normalize, Resize

    norm = Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
    scale = Lambda(lambda x: x.float().div(255.0))
    bicubic = InterpolationMode.BICUBIC
    to_uint8 = Lambda(lambda x: x.round().clamp(0, 255).to(__import__("torch").uint8))
    return {
        "antialias_on": ("Resize(224, bicubic, antialias=True) instead of antialias=False",
                         lambda n: Compose([Resize(n, interpolation=bicubic, antialias=True), CenterCrop(n), scale, norm])),
        "bilinear": ("bilinear instead of bicubic", lambda n: Compose(
            [Resize(n, antialias=False), CenterCrop(n), scale, norm])),
        "squash_224x224": ("Resize((224, 224)) (aspect squashed) instead of short side 224 + CenterCrop",
                           lambda n: Compose([Resize((n, n), interpolation=bicubic, antialias=False), scale, norm])),
        "uint8_resize": ("resizes uint8 frames (bicubic result rounded and clamped) instead of float32 frames",
                         lambda n: Compose([to_uint8, Resize(n, interpolation=bicubic, antialias=False),
                                            CenterCrop(n), scale, norm])),
    }


def _sensitivity(run: Callable[[], tuple[float, list[dict]]], module, attribute: str, variants: dict,
                 reference: tuple[float, dict[str, float]], hooked, reference_outputs: list,
                 name_key: str = "video_path") -> dict:
    """Re-run VBench's inner function with ``module.attribute`` (a transform factory) replaced.

    Records the change of each video's value, of VBench's aggregate over the same clips (``reference``:
    the unchanged aggregate over the clips ``run`` scores, and the unchanged per-video values), and of the
    model's L2-normalised features (``hooked`` is the module whose outputs VBench normalises;
    ``reference_outputs`` its outputs in the unchanged run, for the same clips in the same order).
    """
    import torch
    import torch.nn.functional as F

    originals = {name: getattr(module, name) for name in
                 {attribute} | {spec[2] for spec in variants.values() if len(spec) > 2}}
    outputs: list = []
    handle = hooked.register_forward_hook(lambda _m, _i, output: outputs.append(output.detach().clone()))
    out = {}
    try:
        for variant, (description, factory, *patched) in variants.items():
            setattr(module, patched[0] if patched else attribute, factory)
            outputs.clear()
            aggregate, results = run()
            per_video = {_clip_name(item[name_key]): float(item["video_results"]) for item in results}
            deltas = {name: per_video[name] - reference[1][name] for name in per_video}
            changed = F.normalize(torch.cat(outputs), dim=-1)
            unchanged = F.normalize(torch.cat(reference_outputs), dim=-1)
            out[variant] = {
                "change": description,
                "aggregate": float(aggregate),
                "aggregate_delta": float(aggregate) - reference[0],
                "video_deltas": deltas,
                "max_abs_video_delta": max(abs(d) for d in deltas.values()),
                "min_abs_video_delta": min(abs(d) for d in deltas.values()),
                "feature_max_abs_delta": float((changed - unchanged).abs().max()),
                "feature_min_cos_to_reference": float((changed * unchanged).sum(-1).min()),
            }
            print(f"  sensitivity {variant}: aggregate delta {out[variant]['aggregate_delta']:+.6f}", flush=True)
            for name, original in originals.items():
                setattr(module, name, original)
    finally:
        for name, original in originals.items():
            setattr(module, name, original)
        handle.remove()
    return out


# ----------------------------------------------------------------------------- dimensions


def run_subject_consistency(info: Path, clips: dict, recipe: dict, sensitivity: bool) -> dict:
    import torch
    import vbench.subject_consistency as module
    from vbench.utils import init_submodules, load_video

    submodules = init_submodules(["subject_consistency"], local=True)["subject_consistency"]
    with _Recorder(torch.hub, "load") as recorder:
        start = time.perf_counter()
        aggregate, results = module.compute_subject_consistency(str(info), "cpu", submodules)
        seconds = time.perf_counter() - start
    model, calls = recorder.model, recorder.calls
    outputs_by_clip = {}
    videos = []
    for name, item in _per_video(results).items():
        frames, sha = _decoded(load_video, clips[name]["video"])
        mine, calls = calls[: len(frames)], calls[len(frames):]
        outputs_by_clip[name] = [output for _, output in mine]
        debug = _feature_debug(mine[0][0], torch.cat([output for _, output in mine]))
        videos.append({
            "name": name, "video_results": float(item["video_results"]), "num_frames": int(frames.shape[0]),
            "decoded_sha256": sha, "decoded_sha256_pyav_equal": sha == _pyav_sha256(clips[name]["video"]),
            "debug": debug,
        })
    assert not calls, "model calls left over: video order differs from VBench's"
    fixture = {
        "dimension": "subject_consistency",
        "vbench_call": "vbench.subject_consistency.compute_subject_consistency(full_info_json, 'cpu', "
                       "init_submodules(['subject_consistency'], local=True)['subject_consistency']) -> "
                       "subject_consistency(model, video_list, 'cpu', read_frame=False)",
        "aggregate": float(aggregate),
        "aggregate_rule": "frame-weighted (one process): sum over videos of the per-frame-pair values / number "
                          "of frame pairs over all videos; per video: mean over i >= 1 of "
                          "(max(0, cos(f[i-1], f[i])) + max(0, cos(f[0], f[i]))) / 2",
        "videos": videos,
        "seconds_compute_call": seconds,
        "recipe": recipe,
    }
    if sensitivity:
        names = [name for name in DINO_SENSITIVITY_CLIPS if name in clips]
        chosen = [v for v in videos if v["name"] in names]
        subset_aggregate = (sum(v["video_results"] * (v["num_frames"] - 1) for v in chosen)
                            / sum(v["num_frames"] - 1 for v in chosen))  # frame-weighted, as VBench
        reference = (subset_aggregate, {v["name"]: v["video_results"] for v in videos})
        video_list = [clips[name]["video"] for name in names]
        fixture["sensitivity"] = _sensitivity(
            lambda: module.subject_consistency(model, video_list, "cpu", False),
            module, "dino_transform", _variants_dino_subject(), reference, model,
            [output for name in names for output in outputs_by_clip[name]])
        fixture["sensitivity_clips"] = names
    return fixture


def run_i2v_subject(info: Path, clips: dict, recipe: dict, sensitivity: bool) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    import vbench2_beta_i2v.i2v_subject as module
    from PIL import Image
    from vbench2_beta_i2v.utils import init_submodules, load_video

    from parity.clips import frames_sha256

    submodules = init_submodules(["i2v_subject"], local=True)["i2v_subject"]
    with _Recorder(torch.hub, "load") as recorder:
        start = time.perf_counter()
        aggregate, results = module.compute_i2v_subject(str(info), "cpu", submodules)
        seconds = time.perf_counter() - start
    model, calls = recorder.model, recorder.calls
    outputs_by_clip = {}
    videos = []
    for name, item in _per_video(results).items():
        frames, sha = _decoded(load_video, clips[name]["video"])
        (image_input, image_output), mine = calls[0], calls[1: 1 + len(frames)]
        outputs_by_clip[name] = [output for _, output in calls[: 1 + len(frames)]]
        calls = calls[1 + len(frames):]
        outputs = torch.cat([output for _, output in mine])
        debug = _feature_debug(mine[0][0], outputs)
        image_feature = F.normalize(image_output, dim=-1, p=2)
        pil_image = Image.open(clips[name]["image"])
        debug["conditioning_image"] = {
            "size_wh": list(pil_image.size), "mode": pil_image.mode, "model_input": image_input,
            "feature_first_values": _first(image_feature),
        }
        debug["cos_to_image"] = [float(F.cosine_similarity(image_feature, f[None]).item())
                                 for f in F.normalize(outputs, dim=-1, p=2)]
        videos.append({
            "name": name, "image": Path(item["image_path"]).name, "video_results": float(item["video_results"]),
            "num_frames": int(frames.shape[0]), "decoded_sha256": sha,
            "decoded_sha256_pyav_equal": sha == _pyav_sha256(clips[name]["video"]),
            "image_pixels_sha256": frames_sha256(np.asarray(pil_image.convert("RGB"))[None]),
            "debug": debug,
        })
    assert not calls, "model calls left over: video order differs from VBench's"
    fixture = {
        "dimension": "i2v_subject",
        "vbench_call": "vbench2_beta_i2v.i2v_subject.compute_i2v_subject(full_info_json, 'cpu', "
                       "vbench2_beta_i2v.utils.init_submodules(['i2v_subject'], local=True)['i2v_subject']) -> "
                       "i2v_subject(model, [(image_path, video_path)], 'cpu')",
        "aggregate": float(aggregate),
        "aggregate_rule": "video-weighted: np.mean of the per-video values; per video: "
                          "0.4 * max_t max(0, cos(img, f[t])) + 0.3 * mean_{t>=1} max(0, cos(f[t-1], f[t])) "
                          "+ 0.3 * min_{t>=1} max(0, cos(f[t-1], f[t])) (the max includes frame 0)",
        "videos": videos,
        "seconds_compute_call": seconds,
        "recipe": recipe,
    }
    if sensitivity:
        names = [name for name in DINO_SENSITIVITY_CLIPS if name in clips]
        subset_aggregate = float(np.mean([v["video_results"] for v in videos if v["name"] in names]))
        reference = (subset_aggregate, {v["name"]: v["video_results"] for v in videos})
        pairs = [(clips[name]["image"], clips[name]["video"]) for name in names]
        fixture["sensitivity"] = _sensitivity(
            lambda: module.i2v_subject(model, pairs, "cpu"),
            module, "dino_transform_internet", _variants_dino_i2v(), reference, model,
            [output for name in names for output in outputs_by_clip[name]])
        fixture["sensitivity_clips"] = names
    return fixture


def run_background_consistency(info: Path, clips: dict, recipe: dict, sensitivity: bool) -> dict:
    import clip
    import torch
    import torch.nn.functional as F
    import vbench.background_consistency as module
    from vbench.utils import init_submodules, load_video

    submodules = init_submodules(["background_consistency"], local=True)["background_consistency"]
    with _Recorder(clip, "load", module_of=lambda loaded: loaded[0].visual) as recorder:
        start = time.perf_counter()
        aggregate, results = module.compute_background_consistency(str(info), "cpu", submodules)
        seconds = time.perf_counter() - start
    (model, preprocess), calls = recorder.model, recorder.calls
    reference_outputs = [output for _, output in calls]
    videos = []
    for (name, item), (input_summary, outputs) in zip(_per_video(results).items(), calls, strict=True):
        frames, sha = _decoded(load_video, clips[name]["video"])
        debug = _feature_debug(input_summary, outputs)
        debug["model_input"] = debug.pop("model_input_frame0")  # one batch: all frames of the video
        videos.append({
            "name": name, "video_results": float(item["video_results"]), "video_sim": float(item["video_sim"]),
            "cnt_per_video": int(item["cnt_per_video"]), "num_frames": int(frames.shape[0]),
            "decoded_sha256": sha, "decoded_sha256_pyav_equal": sha == _pyav_sha256(clips[name]["video"]),
            "debug": debug,
        })
    fixture = {
        "dimension": "background_consistency",
        "vbench_call": "vbench.background_consistency.compute_background_consistency(full_info_json, 'cpu', "
                       "init_submodules(['background_consistency'], local=True)['background_consistency']) -> "
                       "clip.load(ViT-B-32.pt, 'cpu'); background_consistency(model, preprocess, video_list, "
                       "'cpu', read_frame=False)",
        "aggregate": float(aggregate),
        "aggregate_rule": "frame-weighted (any number of processes): sum of video_sim / sum of cnt_per_video; "
                          "per video: mean over i >= 1 of (max(0, cos(f[i-1], f[i])) + max(0, cos(f[0], f[i]))) / 2, "
                          "all frames encoded as one batch",
        "videos": videos,
        "seconds_compute_call": seconds,
        "recipe": recipe,
    }
    if sensitivity:
        reference = (float(aggregate), {v["name"]: v["video_results"] for v in videos})
        video_list = [clip_["video"] for clip_ in clips.values()]
        fixture["sensitivity"] = _sensitivity(
            lambda: module.background_consistency(model, preprocess, video_list, "cpu", False),
            module, "clip_transform", _variants_clip(), reference, model.visual, reference_outputs)
        fixture["sensitivity_clips"] = list(clips)
    return fixture


DIMENSIONS = {  # CLIP first: it is the quickest
    "background_consistency": run_background_consistency,
    "subject_consistency": run_subject_consistency,
    "i2v_subject": run_i2v_subject,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--out", type=Path, default=FIXTURES, help="fixture folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dimensions", default=",".join(DIMENSIONS))
    parser.add_argument("--no-sensitivity", action="store_true", help="skip the deliberately-wrong preprocessing runs")
    parser.add_argument("--clips", help="comma-separated subset of clip names (default: all; fixtures use all)")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="vbench-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    weights = vbench_env.prepare(work, args.seed)
    import torch

    torch.manual_seed(0)
    from parity.clips import PARITY_CLIPS, write_parity_clips

    specs = PARITY_CLIPS
    if args.clips:
        specs = tuple(spec for spec in PARITY_CLIPS if spec.name in args.clips.split(","))
    clips = write_parity_clips(work / "videos", specs)
    dimensions = args.dimensions.split(",")
    info = _full_info(work, clips, dimensions)
    command = "scripts/parity/setup_vbench_env.sh && $PARITY_HOME/venv/bin/python scripts/parity/vbench_reference.py"
    if argv is None and sys.argv[1:]:
        command += " " + shlex.join(sys.argv[1:])
    recipe = _recipe(vbench_env.environment(), weights, clips, command)
    args.out.mkdir(parents=True, exist_ok=True)
    for dimension in dimensions:
        print(f"{dimension} ...", flush=True)
        fixture = DIMENSIONS[dimension](info, clips, recipe, not args.no_sensitivity)
        path = args.out / f"vbench_{dimension}.json"
        path.write_text(json.dumps(fixture, indent=1) + "\n")
        print(f"{dimension}: aggregate {fixture['aggregate']:.8f} -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
