"""AnimeReward's visual-motion head (bilibili/Index-anisora 171fe63) on seeded ActionCLIP weights → parity fixtures.

    /work/parity-work/venv/bin/python scripts/parity/anime_reward_motion_reference.py [--no-full] [--work DIR]

Runs in the parity venv (packages: scripts/parity/requirements-anime_reward_motion.txt; never imported by
anibench) and writes tests/parity/fixtures/anime_reward_motion.json (SMALL network) and
tests/parity/fixtures/anime_reward_motion_full.json (full-size ViT-B/16 network, unless ``--no-full``).

**What runs is the published code.** ``reward/models/{__init__,actionclip,adapter,load}.py`` are imported
unchanged from the extracted tree (``$ANISORA_REWARD``, default /work/parity-work/anisora/reward, identical to
``git show 171fe63:reward/...``), and the model is built by their ``init_actionclip(path, device='cpu',
mode='self')`` — mmengine's ``_load_checkpoint``, the adapter-layer count read from the keys, strict
``load_state_dict``. The per-clip statements of ``reward/reward_infer.py`` (lines 119-134 ``prepare_text_embedding``,
136-149 ``load_key_image``, 36-49 ``_read_video_pyav``, 152-153 the text features, 164-197 frame sampling,
preprocessing, the 8 motion frames and the score) are taken from that file's syntax tree and executed as they
are; the script cannot be imported as a module because it loads all six models at import time.

**What is stubbed, and why** (nothing on the numeric path):

- ``mmaction`` is not installed (mmaction2 needs mmcv, a compiled package). actionclip.py only needs
  ``mmaction.registry.MODELS`` to register ``ActionClip`` and to build its training loss
  (``dict(type='CrossEntropyLoss', loss_weight=0.5)``); a stand-in module provides an mmengine ``Registry``
  holding a ``CrossEntropyLoss`` stand-in with no parameters or buffers, as mmaction's own has none
  (``class_weight`` is a plain attribute). The loss is never called by the inference path. load.py's
  ``_transform`` (mmaction's decord test pipeline, returned as ``motion_preprocess`` and never used by
  reward_infer.py) is built from mmaction transform names: inert stand-ins are registered under those names.
- ``clip.load('ViT-B/16')`` (actionclip.py:112) would download OpenAI's ViT-B-16.pt. It is redirected to a local
  TorchScript archive of the same architecture (as clip.load needs on torch 2.13, see tests/parity/README.md)
  holding **other** seeded values (seed + 1000); the real ``clip.load`` then builds the model from it
  (``build_model``, fp16 ``convert_weights``, ``.float()`` on CPU). init_actionclip's strict ``load_state_dict``
  overwrites every tensor; the script checks that every parameter equals the checkpoint afterwards
  (``construction_weights_overwritten``). The OpenAI file is therefore only needed for the architecture.
- mmengine itself is real (``mmengine-lite`` 0.10.7: mmengine without opencv-python and matplotlib, which would
  clash with the venv's opencv-python-headless).

Observers: the 24 sampled indices (arguments of ``_read_video_pyav``), the decoded frames' sha256, the model
input (``encode_video``'s argument) and the normalised embeddings are recorded; nothing is changed.
Sensitivity: variants with one step changed (centre crop instead of the squash, bilinear instead of bicubic,
all frames instead of the first 144, the 8 frames from the start instead of spread) run through the same
published model, to show the 1e-4 tolerance catches each.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import platform
import shlex
import sys
import tempfile
import time
import types
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REWARD = Path(os.environ.get("ANISORA_REWARD", "/work/parity-work/anisora/reward"))
FIXTURE = REPO / "tests" / "parity" / "fixtures" / "anime_reward_motion.json"
FIXTURE_FULL = REPO / "tests" / "parity" / "fixtures" / "anime_reward_motion_full.json"
COMMIT = "171fe63409792bf7f0bd9d825f83c20fe8ec5477"
TOLERANCE = 1e-4
SEED = 0
EXTRA_TOKEN_TEXTS = [
    "a cat",
    "The protagonist's arms wave: UP & down, 3 times!",
    "  Multiple   spaces\tand\nnewlines  ",
    "Ünïcödé — café, naïve; 東京",
    "<b>html &amp; entities</b> don't",
]


def _paths() -> None:
    for path in (REPO / "tests", Path(__file__).resolve().parent, REWARD):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import torchvision_shim  # noqa: F401  (before any torchvision import)


def _stub_mmaction() -> None:
    """``mmaction.registry.MODELS`` with a parameter-free ``CrossEntropyLoss`` (see module doc)."""
    import torch.nn as nn
    from mmengine.registry import Registry

    models = Registry("model", scope="mmaction")

    @models.register_module()
    class CrossEntropyLoss(nn.Module):  # mmaction's has no parameters or buffers either
        def __init__(self, loss_weight: float = 1.0, class_weight=None):
            super().__init__()
            self.loss_weight = loss_weight
            self.class_weight = class_weight

    from mmengine.registry import TRANSFORMS

    # init_actionclip also returns mmaction's test pipeline (load.py:25-42, _transform), built from these names;
    # reward_infer.py never applies it (motion_preprocess is unused), so inert stand-ins only let it be built.
    for name in ("DecordInit", "SampleFrames", "DecordDecode", "Resize", "CenterCrop", "FormatShape"):
        if TRANSFORMS.get(name) is None:
            TRANSFORMS.register_module(name=name, module=type(name, (), {"__init__": lambda self, **kw: None,
                                                                       "__call__": lambda self, results: results}))

    package = types.ModuleType("mmaction")
    registry = types.ModuleType("mmaction.registry")
    registry.MODELS = models
    package.registry = registry
    sys.modules["mmaction"] = package
    sys.modules["mmaction.registry"] = registry


def _infer_source() -> tuple[str, list[ast.stmt]]:
    source = (REWARD / "reward_infer.py").read_text()
    return source, ast.parse(source).body


def _published_functions(body: list[ast.stmt], namespace: dict) -> None:
    wanted = {"_read_video_pyav", "prepare_text_embedding", "load_key_image"}
    nodes = [node for node in body if isinstance(node, ast.FunctionDef) and node.name in wanted]
    assert {node.name for node in nodes} == wanted
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(REWARD / "reward_infer.py"), "exec"), namespace)


def _statements(body: list[ast.stmt], first_line: int, last_line: int) -> types.CodeType:
    nodes = [node for node in body if first_line <= node.lineno <= last_line]
    return compile(ast.Module(body=nodes, type_ignores=[]), str(REWARD / "reward_infer.py"), "exec")


def _sha(array) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).hexdigest()


def _summary(tensor) -> dict:
    return {"shape": list(tensor.shape), "first_values": [float(v) for v in tensor.reshape(-1)[:8]],
            "sum_abs": float(tensor.double().abs().sum()), "mean": float(tensor.double().mean())}


def _construction_file(work: Path, size: dict, seed: int) -> Path:
    """A TorchScript archive of OpenAI CLIP at ``size`` with other values: what ``clip.load`` builds from."""
    import torch

    from parity.weights import _state_module
    from parity.weights_actionclip import openai_clip_state_dict

    path = work / f"construction-clip-{size['vision_width']}.pt"
    torch.jit.save(torch.jit.script(_state_module(openai_clip_state_dict(size, seed))), str(path))
    return path


def _load_published_model(checkpoint: Path, construction: Path):
    import clip
    import torch

    real_load = clip.load

    def load_local(name, device="cpu", jit=False, download_root=None):
        assert name == "ViT-B/16", name  # what init_actionclip(mode='self') asks for (load.py:57)
        return real_load(str(construction), device=device, jit=jit)

    clip.load = load_local
    try:
        from models.load import init_actionclip

        model, _ = init_actionclip(str(checkpoint), device="cpu", mode="self")
    finally:
        clip.load = real_load
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    ours = model.state_dict()
    overwritten = set(ours) == set(state) and all(torch.equal(ours[k], state[k]) for k in state)
    return model, overwritten, sorted(ours)


def _clip_run(model, namespace: dict, code_text, code_clip, video_path: Path, device) -> dict:
    """Execute reward_infer.py's text (152-153) and per-clip (164-197) statements for one clip."""
    import torch

    record: dict = {}
    published_read = namespace["_read_video_pyav"]

    def observed_read(container, indices):
        frames = published_read(container, indices)
        record["indices"] = [int(i) for i in indices]
        record["decoded_sha256"] = _sha(frames)
        return frames

    published_encode = model.encode_video

    def observed_encode(video):
        record["model_input"] = _summary(video)
        record["model_input_tensor"] = video.clone()
        return published_encode(video)

    # The published functions read ``container`` and ``indices`` as module globals (``_read_video_pyav`` ignores
    # its arguments), so the statements run in the namespace the functions were defined in.
    scope = namespace
    scope.update(_read_video_pyav=observed_read, motion_model=model, device=device, video_path=str(video_path),
                 video_prompt="a prompt the motion head does not read")
    model.encode_video = observed_encode
    try:
        exec(code_text, scope)
        record["token_ids"] = scope["motion_text"].tolist()
        exec(code_clip, scope)
    finally:
        del model.encode_video
        scope["_read_video_pyav"] = published_read
        scope["container"].close()
    record["total_frames_metadata"] = int(scope["total_frames"])
    record["motion_positions"] = scope["indices"].tolist()  # reassigned by line 191 to the linspace positions
    record["video_feature"] = [float(v) for v in scope["video_features"][0]]
    record["text_features"] = [[float(v) for v in row] for row in scope["text_features"].detach()]
    record["cosines"] = [float(v) for v in (scope["video_features"] @ scope["text_features"].T)[0].detach()]
    record["probs"] = [float(v) for v in scope["probs"][0].detach()]
    record["motion_score"] = float(scope["motion_score"])
    with torch.no_grad():
        record["logit_scale_unused"] = float(model.clip.logit_scale)
    return record


def _score(model, video, text_features) -> tuple[float, list[float]]:
    import torch

    with torch.no_grad():
        features = model.encode_video(video)
        features = features / features.norm(dim=-1, keepdim=True)
        text = text_features / text_features.norm(dim=-1, keepdim=True)
        probs = (100.0 * features @ text.T).softmax(dim=-1)
    return float(probs[0, 0]), [float(v) for v in features[0]]


def _sensitivity(model, namespace: dict, clips: dict, runs: dict) -> dict:
    """The score with one preprocessing step changed (the published model and text features)."""
    import av
    import numpy as np
    import torch
    from PIL import Image
    from torchvision import transforms
    from torchvision.transforms.functional import InterpolationMode

    norm = transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
    variants = {
        "center_crop_not_squash": transforms.Compose([transforms.Resize(224, interpolation=InterpolationMode.BICUBIC),
                                                      transforms.CenterCrop(224), transforms.ToTensor(), norm]),
        "bilinear_not_bicubic": transforms.Compose([transforms.Resize((224, 224),
                                                                      interpolation=InterpolationMode.BILINEAR),
                                                    transforms.ToTensor(), norm]),
    }
    out: dict = {}

    def frames_of(path, indices):
        container = av.open(str(path))
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in set(indices)]
        container.close()
        return [Image.fromarray(f) for f in frames]

    published = namespace["load_key_image"]
    for name, run in runs.items():
        text = torch.tensor(run["text_features"])
        positions = run["motion_positions"]
        frames = frames_of(clips[name]["video"], run["indices"])
        deltas = {}
        for variant, transform in variants.items():
            video = torch.stack([transform(frames[p]) for p in positions])[None]
            value, feature = _score(model, video, text)
            deltas[variant] = (value, feature)
        container = av.open(str(clips[name]["video"]))
        total = container.streams.video[0].frames
        container.close()
        span = np.arange(0, total, total / 24).astype(int) if total > 24 else np.arange(total)
        if total > 144:  # the first-144 rule ignored
            all_frames = frames_of(clips[name]["video"], span.tolist())
            video = torch.cat([published(224, all_frames[p], "cpu") for p in positions])[None]
            deltas["whole_clip_not_first_144"] = _score(model, video, text)
        first8 = torch.cat([published(224, frames[p], "cpu") for p in range(8)])[None]
        deltas["first_8_not_linspace"] = _score(model, first8, text)
        for variant, (value, feature) in deltas.items():
            entry = out.setdefault(variant, {"max_abs_score_delta": 0.0, "feature_max_abs_delta": 0.0})
            entry["max_abs_score_delta"] = max(entry["max_abs_score_delta"], abs(value - run["motion_score"]))
            entry["feature_max_abs_delta"] = max(entry["feature_max_abs_delta"], float(
                np.max(np.abs(np.asarray(feature) - np.asarray(run["video_feature"])))))
    return out


def _versions() -> dict:
    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "absent"

    return {name: version(name) for name in ("torch", "torchvision", "numpy", "pillow", "av", "openai-clip",
                                             "mmengine-lite", "ftfy", "regex")}


def run(size_name: str, work: Path, clips: dict, sensitivity: bool) -> dict:
    import av
    import numpy as np
    import torch
    from PIL import Image
    from torchvision import transforms
    from torchvision.transforms.functional import InterpolationMode

    import clip
    from parity.weights_actionclip import SIZES, actionclip_state_sha256, write_actionclip_checkpoint

    size = SIZES[size_name]
    started = time.perf_counter()
    checkpoint = write_actionclip_checkpoint(work / f"{size_name}-testvl-pre76-top187-rec69.pth", size, SEED)
    construction = _construction_file(work, size, SEED + 1000)
    model, overwritten, keys = _load_published_model(checkpoint, construction)
    load_s = time.perf_counter() - started
    assert overwritten, "init_actionclip left construction-time weights in the model"

    source, body = _infer_source()
    namespace = {"av": av, "np": np, "torch": torch, "Image": Image, "transforms": transforms,
                 "InterpolationMode": InterpolationMode, "clip": clip, "List": list,
                 "MAX_NUM_FRAMES": 24, "MAX_LENGTH": 144, "IMAGE_SIZE": 224, "ROUND_DIGIT": 3,
                 "REGRESSION_QUERY_PROMPT": "{text_prompt}"}
    # Lines 67-69 (constants) are set above; REGRESSION_QUERY_PROMPT only feeds the Mantis prompt (lines 181-184).
    _published_functions(body, namespace)
    code_text = _statements(body, 151, 153)  # with torch.no_grad(): motion_text = ...; text_features = ...
    code_clip = _statements(body, 164, 197)  # container = av.open(video_path) ... motion_score = ...

    runs, timings = {}, {}
    for name, clip_info in clips.items():
        t0 = time.perf_counter()
        runs[name] = _clip_run(model, namespace, code_text, code_clip, Path(clip_info["video"]), "cpu")
        timings[name] = round(time.perf_counter() - t0, 3)
    tokens = {"motion_prompts": runs[next(iter(runs))]["token_ids"],
              "extra": [{"text": t, "ids": clip.tokenize(t)[0].tolist()} for t in EXTRA_TOKEN_TEXTS]}
    videos = []
    for name, record in runs.items():
        record.pop("model_input_tensor")
        record.pop("token_ids")
        videos.append({"name": name, **record})
    result = {
        "recipe": {
            "reference": {"repo": "https://github.com/bilibili/Index-anisora", "commit": COMMIT,
                          "files": ["reward/reward_infer.py", "reward/models/__init__.py",
                                    "reward/models/actionclip.py", "reward/models/adapter.py",
                                    "reward/models/load.py"],
                          "statements_executed": "reward_infer.py 36-49, 119-134, 136-149 (functions), 151-153, "
                                                 "164-197"},
            "stubs": ["mmaction.registry.MODELS (mmengine Registry + parameter-free CrossEntropyLoss stand-in)",
                      "clip.load('ViT-B/16') -> real clip.load on a local TorchScript archive of the same "
                      "architecture holding seed+1000 values (overwritten by the checkpoint)"],
            "packages": _versions(),
            "python": platform.python_version(),
            "torch_num_threads": torch.get_num_threads(),
            "device": "cpu", "dtype": "float32",
            "weights": {"writer": "tests/parity/weights_actionclip.py:write_actionclip_checkpoint",
                        "size": size_name, "architecture": size, "seed": SEED,
                        "state_dict_sha256": actionclip_state_sha256(size, SEED),
                        "format": "torch.save({'meta': {...}, 'state_dict': OrderedDict}) (mmengine checkpoint)",
                        "construction_seed": SEED + 1000,
                        "construction_weights_overwritten": overwritten,
                        "model_state_dict_keys": len(keys),
                        "adapter_layers_counted_by_load_py": sum(1 for k in keys if k.startswith("adapter.")
                                                                 and k.endswith(".attn.in_proj_weight"))},
            "clips": {"recipe": "tests/parity/clips_anime_reward_motion.py:MOTION_CLIPS (tests/parity/clips.py)",
                      "video_file_sha256": {n: c["video_file_sha256"] for n, c in clips.items()}},
            "tolerance": TOLERANCE,
            "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
            "timing_s": {"load": round(load_s, 2), "per_clip": timings},
        },
        "tokens": tokens,
        "videos": videos,
    }
    if sensitivity:
        result["sensitivity"] = _sensitivity(model, namespace, clips, runs)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--no-full", action="store_true", help="skip the full-size ViT-B/16 fixture")
    args = parser.parse_args()
    _paths()
    _stub_mmaction()
    import torch

    torch.manual_seed(0)
    from parity.clips import write_parity_clips
    from parity.clips_anime_reward_motion import MOTION_CLIPS

    with tempfile.TemporaryDirectory(prefix="motion-parity-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        clips = write_parity_clips(work / "clips", MOTION_CLIPS)
        small = run("small", work, clips, sensitivity=True)
        FIXTURE.write_text(json.dumps(small, indent=1) + "\n")
        print("wrote", FIXTURE, {v["name"]: v["motion_score"] for v in small["videos"]})
        if not args.no_full:
            full = run("full", work, clips, sensitivity=False)
            FIXTURE_FULL.write_text(json.dumps(full, indent=1) + "\n")
            print("wrote", FIXTURE_FULL, {v["name"]: v["motion_score"] for v in full["videos"]})


if __name__ == "__main__":
    main()
