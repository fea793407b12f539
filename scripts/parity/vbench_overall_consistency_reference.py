"""VBench's overall consistency (45e79ec) on seeded ViCLIP weights and small clips → the parity fixture.

    /work/parity-work/venv/bin/python scripts/parity/vbench_overall_consistency_reference.py \
        [--work DIR] [--full-size-clip NAME|none] [--no-sensitivity]

Runs in the parity venv (VBench's code; never imported by anibench) and writes
tests/parity/fixtures/vbench_overall_consistency.json.

**Small network from VBench's own code.** ``ViCLIP.__init__`` (vbench/third_party/ViCLIP/viclip.py:19-63)
hard-codes ViT-L/14: it calls ``clip_joint_l14(...)`` and ``clip_text_l14(...)``, whose bodies fix the
widths and depths. The only change made here is to replace those two module-level builder functions
(looked up in viclip.py's globals by ``build_vision_encoder``/``build_text_encoder``) with builders that
construct VBench's *own* ``VisionTransformer`` (viclip_vision.py:100) and ``CLIP_TEXT``
(viclip_text.py:79) classes with the same arguments VBench passes (resolution, kernel size, frames,
drop-path, checkpointing; context length 32, vocabulary 49408) and the small sizes of
``tests/parity/weights_viclip.py:SMALL``, both returned ``.eval()`` as VBench's builders do. Everything
else is VBench's unmodified code: ``ViCLIP`` loads ``torch.load(pretrain)['model']`` strictly, and
``compute_overall_consistency`` decodes (decord), samples, transforms, tokenises (its own
``SimpleTokenizer``) and scores. With ``--full-size-clip`` (default ``downscale_320x240``) the builders are
restored and one clip is also scored at full size (ViT-L/14, 1.7 GB of seeded weights).

Observers (nothing VBench computes is changed): ``get_vid_features``/``get_text_features`` are wrapped in
the dimension module to record the model input and the normalised embeddings; frame indices come from
VBench's ``get_frame_indices`` on decord's frame count; token ids from the loaded model's own
``text_encoder.tokenize(prompt, context_length=32)``, the call ``encode_text`` makes. VBench caches text
features in a mutable default argument (``text_feature_dict={}``, overall_consistency.py:22); it is
cleared between the runs here so one network's text features never leak into another's.

Sensitivity: deliberately wrong preprocessing re-runs VBench's inner ``overall_consistency`` with one
step changed (frames resized as float, antialiasing on, first frame of each segment instead of the
middle) to show the fixture's tolerance catches each.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import vbench_env

FIXTURE = vbench_env.REPO / "tests" / "parity" / "fixtures" / "vbench_overall_consistency.json"
TOLERANCE = 1e-4
FIRST_VALUES = 8
DIMENSION = "overall_consistency"


def _first(tensor, count: int = FIRST_VALUES) -> list[float]:
    return [float(v) for v in tensor.reshape(-1)[:count]]


def _summary(tensor) -> dict:
    return {"shape": list(tensor.shape), "first_values": _first(tensor), "mean": float(tensor.double().mean()),
            "sum_abs": float(tensor.double().abs().sum())}


def _place_vocabulary(cache: Path) -> dict:
    """VBench reads $VBENCH_CACHE_DIR/ViCLIP/bpe_simple_vocab_16e6.txt.gz (it would wget openai/CLIP's file)."""
    from parity.clips import file_sha256

    source = Path(find_spec("clip").origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    target = cache / "ViCLIP" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return {"file": f"$VBENCH_CACHE_DIR/ViCLIP/{source.name}", "copied_from": "openai-clip 1.0.1 package",
            "sha256": file_sha256(target)}


class SmallBuilders:
    """Swap viclip.py's ``clip_joint_l14``/``clip_text_l14`` for builders of VBench's own classes at SMALL sizes."""

    def __init__(self, size: dict):
        from vbench.third_party.ViCLIP import viclip, viclip_text, viclip_vision

        self.viclip, self.size = viclip, size
        self.originals = (viclip.clip_joint_l14, viclip.clip_text_l14)
        self.vision_cls, self.text_cls = viclip_vision.VisionTransformer, viclip_text.CLIP_TEXT

    def vision(self, pretrained=False, input_resolution=224, kernel_size=1, center=True, num_frames=8,
               drop_path=0.0, checkpoint_num=0, dropout=0.0):
        width = self.size["vision_width"]
        return self.vision_cls(
            input_resolution=input_resolution, patch_size=14, width=width, layers=self.size["vision_layers"],
            heads=width // 64, output_dim=self.size["embed_dim"], kernel_size=kernel_size, num_frames=num_frames,
            drop_path=drop_path, checkpoint_num=checkpoint_num, dropout=dropout,
        ).eval()

    def text(self, embed_dim=768, context_length=77, vocab_size=49408, checkpoint_num=0, pretrained=True):
        width = self.size["text_width"]
        return self.text_cls(self.size["text_embed_dim"], context_length, vocab_size, width, width // 64,
                             self.size["text_layers"], checkpoint_num).eval()

    def __enter__(self):
        self.viclip.clip_joint_l14, self.viclip.clip_text_l14 = self.vision, self.text
        return self

    def __exit__(self, *exc):
        self.viclip.clip_joint_l14, self.viclip.clip_text_l14 = self.originals


class Observer:
    """Wraps the dimension module's feature functions and ViCLIP constructor; records, changes nothing."""

    def __init__(self, module):
        self.module = module
        self.videos: list[dict] = []
        self.texts: list[dict] = []
        self.model = None

    def __enter__(self):
        module = self.module
        self.originals = (module.get_vid_features, module.get_text_features, module.ViCLIP)
        get_vid, get_text, viclip_class = self.originals

        def get_vid_features(model, input_frames):
            features = get_vid(model, input_frames)
            self.videos.append({"input": _summary(input_frames), "features": features.detach().clone()})
            return features

        def get_text_features(model, input_text, tokenizer, *rest):
            features = get_text(model, input_text, tokenizer, *rest)
            self.texts.append({"prompt": input_text, "features": features.detach().clone()})
            return features

        def build(*args, **kwargs):
            self.model = viclip_class(*args, **kwargs)
            return self.model

        module.get_vid_features, module.get_text_features, module.ViCLIP = get_vid_features, get_text_features, build
        return self

    def __exit__(self, *exc):
        self.module.get_vid_features, self.module.get_text_features, self.module.ViCLIP = self.originals


def _clear_text_cache(module) -> None:
    """Empty VBench's text-feature cache (the mutable default of ``get_text_features``)."""
    module.get_text_features.__defaults__[0].clear()


def _full_info(work: Path, clips: dict, prompts: dict, name: str) -> Path:
    entries = [{"prompt_en": prompts[clip_name], "dimension": [DIMENSION], "video_list": [clip["video"]]}
               for clip_name, clip in clips.items()]
    path = work / name
    path.write_text(json.dumps(entries, indent=2))
    return path


def _decoded_facts(video_path: str) -> dict:
    """decord's frame count, VBench's 8 indices, and the sha256 of decord's frames (and PyAV's)."""
    import av
    import numpy as np
    from decord import VideoReader, bridge
    from vbench.utils import get_frame_indices

    from parity.clips import frames_sha256

    bridge.set_bridge("native")
    reader = VideoReader(video_path, num_threads=1)
    frames = reader.get_batch(range(len(reader))).asnumpy()
    with av.open(video_path) as container:
        pyav = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    indices = get_frame_indices(8, len(reader), sample="middle")
    return {"num_frames": len(reader), "frame_indices": [int(i) for i in indices],
            "decoded_sha256": frames_sha256(frames),
            "decoded_sha256_pyav_equal": frames_sha256(pyav) == frames_sha256(frames)}


def _run(module, info: Path, weights: Path) -> tuple[float, list[dict], Observer, float]:
    _clear_text_cache(module)
    with Observer(module) as observer:
        start = time.perf_counter()
        aggregate, results = module.compute_overall_consistency(str(info), "cpu", {"pretrain": str(weights)})
        seconds = time.perf_counter() - start
    return float(aggregate), results, observer, seconds


def _videos(results: list[dict], observer: Observer, clips: dict, prompts: dict, full_vectors: bool) -> list[dict]:
    rows = []
    texts = {item["prompt"]: item["features"] for item in observer.texts}
    for result, recorded in zip(results, observer.videos):
        name = Path(result["video_path"]).stem
        video_features = recorded["features"][0]
        text_features = texts[prompts[name]][0]
        row = {"name": name, "video_results": float(result["video_results"]), **_decoded_facts(clips[name]["video"]),
               "prompt": prompts[name],
               "debug": {"model_input": recorded["input"], "embed_dim": int(video_features.numel()),
                         "video_feature_first_values": _first(video_features),
                         "text_feature_first_values": _first(text_features)}}
        if full_vectors:
            row["debug"]["video_feature"] = [float(v) for v in video_features]
            row["debug"]["text_feature"] = [float(v) for v in text_features]
        rows.append(row)
    return rows


def _sensitivity(module, model, info: Path, reference: dict[str, float], reference_features: dict) -> dict:
    """Re-run VBench's inner function with one preprocessing step changed; report how far values move."""
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Lambda, Normalize, Resize
    from vbench.utils import load_dimension_info

    original_read, original_transform = module.read_frames_decord_by_fps, module.clip_transform

    def clip_transform_antialias(n_px):
        return Compose([Resize(n_px, interpolation=InterpolationMode.BICUBIC, antialias=True), CenterCrop(n_px),
                        Lambda(lambda x: x.float().div(255.0)),
                        Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])

    variants = {
        "float_frames": ("frames resized as float32 (no uint8 clamp and rounding after the bicubic resize)",
                         "read_frames_decord_by_fps", lambda *a, **k: original_read(*a, **k).float()),
        "antialias": ("Resize(224, bicubic) with antialias=True", "clip_transform", clip_transform_antialias),
        "segment_start": ("first frame of each segment instead of the middle (fix_start=0)",
                          "read_frames_decord_by_fps", lambda path, **k: original_read(path, **{**k, "fix_start": 0})),
    }
    _, video_dict = load_dimension_info(str(info), dimension=DIMENSION, lang="en")
    out = {}
    for name, (change, attribute, replacement) in variants.items():
        _clear_text_cache(module)
        setattr(module, attribute, replacement)
        try:
            with Observer(module) as observer:
                aggregate, results = module.overall_consistency(model, video_dict, None, "cpu")
        finally:
            original = original_read if attribute == "read_frames_decord_by_fps" else original_transform
            setattr(module, attribute, original)
        deltas = {Path(r["video_path"]).stem: float(r["video_results"]) - reference[Path(r["video_path"]).stem]
                  for r in results}
        feature_deltas = [float((item["features"][0] - reference_features[Path(r["video_path"]).stem]).abs().max())
                          for r, item in zip(results, observer.videos)]
        out[name] = {"change": change, "aggregate": float(aggregate), "video_deltas": deltas,
                     "max_abs_video_delta": max(abs(d) for d in deltas.values()),
                     "min_abs_video_delta": min(abs(d) for d in deltas.values()),
                     "feature_max_abs_delta": max(feature_deltas)}
        print(f"  sensitivity {name}: max |delta| {out[name]['max_abs_video_delta']:.2e}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-size-clip", default="downscale_320x240", help="clip scored at full size, or none")
    parser.add_argument("--no-sensitivity", action="store_true")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="vbench-overall-"))
    work.mkdir(parents=True, exist_ok=True)
    vbench_env.add_import_paths()
    cache = work / "vbench_cache"
    os.environ["VBENCH_CACHE_DIR"] = str(cache)  # read by vbench.utils at import time
    vocabulary = _place_vocabulary(cache)

    import torch

    torch.manual_seed(0)
    import vbench.overall_consistency as module

    from parity.clips import write_parity_clips
    from parity.clips_overall_consistency import OVERALL_CLIPS, PROMPTS, TOKENIZER_PROMPTS
    from parity.weights_viclip import FULL, SMALL, viclip_state_sha256, write_viclip_checkpoint

    clips = write_parity_clips(work / "videos", OVERALL_CLIPS)
    info = _full_info(work, clips, PROMPTS, "full_info.json")
    small_file = write_viclip_checkpoint(cache / "ViCLIP" / "ViClip-small-seeded.pth", SMALL, args.seed)

    print("small ViCLIP (VBench's own classes at SMALL sizes) ...", flush=True)
    with SmallBuilders(SMALL):
        aggregate, results, observer, seconds = _run(module, info, small_file)
    model = observer.model
    tokenizer_rows = [{"prompt": p, "ids": [int(i) for i in model.text_encoder.tokenize(p, context_length=32)[0]]}
                      for p in (*dict.fromkeys(PROMPTS.values()), *TOKENIZER_PROMPTS)]
    videos = _videos(results, observer, clips, PROMPTS, full_vectors=True)
    print(f"  aggregate {aggregate:.8f} in {seconds:.1f} s", flush=True)

    command = "$PARITY_HOME/venv/bin/python scripts/parity/vbench_overall_consistency_reference.py"
    if argv is None and sys.argv[1:]:
        command += " " + shlex.join(sys.argv[1:])
    fixture = {
        "dimension": DIMENSION,
        "vbench_call": "vbench.overall_consistency.compute_overall_consistency(full_info_json, 'cpu', "
                       "{'pretrain': <seeded file>}) with viclip.clip_joint_l14/clip_text_l14 building VBench's own "
                       "VisionTransformer/CLIP_TEXT at SMALL sizes",
        "aggregate_rule": "np.mean over videos (overall_consistency.py:63)",
        "aggregate": aggregate,
        "videos": videos,
        "tokenizer": tokenizer_rows,
        "seconds_compute_call": seconds,
    }
    if not args.no_sensitivity:
        print("sensitivity ...", flush=True)
        reference = {row["name"]: row["video_results"] for row in videos}
        features = {row["name"]: torch.tensor(row["debug"]["video_feature"]) for row in videos}
        fixture["sensitivity"] = _sensitivity(module, model, info, reference, features)
    weights = {"small": {"writer": "tests/parity/weights_viclip.py:write_viclip_checkpoint", "size": SMALL,
                         "seed": args.seed, "state_dict_sha256": viclip_state_sha256(SMALL, args.seed),
                         "format": "torch.save({'model': state_dict}), as published"}}
    del model, observer

    if args.full_size_clip != "none":
        print(f"full-size ViCLIP ViT-L/14 on {args.full_size_clip} ...", flush=True)
        one = {args.full_size_clip: clips[args.full_size_clip]}
        full_info = _full_info(work, one, PROMPTS, "full_info_full_size.json")
        full_file = write_viclip_checkpoint(cache / "ViCLIP" / "ViClip-InternVid-10M-FLT.pth", FULL, args.seed)
        full_aggregate, full_results, full_observer, full_seconds = _run(module, full_info, full_file)
        fixture["full_size"] = {
            "vbench_call": "compute_overall_consistency unmodified (ViCLIP ViT-L/14 as VBench builds it)",
            "aggregate": full_aggregate,
            "videos": _videos(full_results, full_observer, one, PROMPTS, full_vectors=False),
            "seconds_compute_call": full_seconds,
        }
        weights["full"] = {"writer": "tests/parity/weights_viclip.py:write_viclip_checkpoint", "size": FULL,
                           "seed": args.seed, "state_dict_sha256": viclip_state_sha256(FULL, args.seed),
                           "format": "torch.save({'model': state_dict}), as published"}
        full_file.unlink()
        print(f"  full-size value {full_aggregate:.8f} in {full_seconds:.1f} s", flush=True)

    fixture["recipe"] = {
        **vbench_env.environment(),
        "packages_extra": {name: vbench_env._version(name) for name in ("timm", "einops", "ftfy", "regex")},
        "weights": weights,
        "tokenizer_vocabulary": vocabulary,
        "clips": {"writer": "tests/parity/clips.py:write_parity_clips with "
                            "tests/parity/clips_overall_consistency.py:OVERALL_CLIPS",
                  "specs": [clip["spec"] for clip in clips.values()],
                  "video_file_sha256": {name: clip["video_file_sha256"] for name, clip in clips.items()},
                  "prompts": "tests/parity/clips_overall_consistency.py:PROMPTS"},
        "command": command,
        "tolerance": TOLERANCE,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    print(f"-> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
