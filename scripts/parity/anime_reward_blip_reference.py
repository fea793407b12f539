"""Golden values of AnimeReward's BLIP heads from the published code (bilibili/Index-anisora at 171fe63).

Run in the parity venv (never imported by anibench)::

    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python scripts/parity/anime_reward_blip_reference.py
    # -> tests/parity/fixtures/anime_reward_blip.json   (--sizes small  for the SMALL networks only)

What runs is the published code, extracted with ``git show 171fe63:<path>`` from the mirror
``$ANISORA_MIRROR`` (default /work/.mirror/bilibili+Index-anisora/repo) into the work folder:
``reward/models/{blip,blip_pretrain,blip_pretrain_text,vit,med}.py`` + ``reward/configs/bert_config.json``
(the two consistency heads, built by ``blip_pretrain(pretrained=..., image_size=224, vit='base', ...)`` as
``reward_infer.py`` lines 86-95 does, scored with their ``inference(img_all, video_prompt, key_image)``), and
``reward/character/BLIP/blip_models/*.py`` + ``blip_configs/eval_pretrain.yaml`` (the recogniser, built as
``reward_infer.py`` lines 103-108, embedded with ``compute_gallery_embeds`` of
``character/BLIP/infer_retrieval_pretrain_v2.py``). ``reward_infer.py``'s own functions ``_read_video_pyav``
and ``load_key_image`` are taken from the file by ``ast`` and executed; its top-level frame selection
(lines 164-189: declared frame count, ``arange(0, min(T, 144), min(T, 144) / 24).astype(int)``, PIL frames,
``load_key_image`` per frame, ``torch.cat(..., 1)``) is restated here because it is module-level code of a
script that loads every model on import.

Made to run here — each change is outside the computation being compared:

- ``fairscale`` is not installed: a stub module provides ``checkpoint_wrapper`` (vit.py wraps blocks with it
  only when ``use_grad_checkpointing``, False here); it raises if called.
- transformers 5.23 moved ``apply_chunking_to_forward`` / ``prune_linear_layer`` to ``pytorch_utils`` and
  dropped ``find_pruneable_heads_and_indices``: med.py imports them from ``modeling_utils``, so the first two
  are re-exported there and the third is a stub that raises (used only by ``prune_heads``). Other v4 helpers
  med.py calls and v5 removed are restored with their v4 behaviour (listed in the fixture's recipe).
- ``models/__init__.py`` (imports ActionCLIP/mmaction) and the ``character``/``character.BLIP`` package
  ``__init__`` files are not executed: the packages are registered with their ``__path__`` only.
- No downloads: ``torch.hub.load_state_dict_from_url`` (DeiT-base init of the ViT-B) returns
  ``{'model': {}}`` and med's ``BertModel.from_pretrained('./weights/bert-base-uncased', ...)`` builds the
  model from its config without weights. Both are initial values that ``load_checkpoint`` then overwrites:
  the script asserts that the checkpoint left **no** missing key.
- ``./weights/bert-base-uncased`` (the tokenizer) is the recipe's WordPiece vocabulary
  (tests/parity/weights_blip_reward.py); ``configs/bert_config.json`` is the published file at FULL size.
- SMALL size only: ``create_vit`` hard-codes ViT-B/L sizes and ``BLIP_Pretrain`` hard-codes ``text_width =
  768`` for ``img_proj``/``img_key_proj``/``head_diff``; the published ``VisionTransformer`` is built at
  the SMALL sizes, those three layers are re-created at the SMALL widths before the checkpoint is loaded,
  and ``bert_config.json`` is written with the SMALL sizes. ``inference`` is unchanged.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts" / "parity"))

import torchvision_shim  # noqa: E402,F401  (before anything imports torchvision)

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from parity import weights_blip_reward as W  # noqa: E402
from parity.clips import file_sha256, frames_sha256, write_parity_clips  # noqa: E402
from parity.clips_anime_reward_blip import BLIP_CLIPS, PROMPTS, TOKENIZER_PROMPTS, recogniser_crops  # noqa: E402

COMMIT = "171fe63"
MIRROR = Path(os.environ.get("ANISORA_MIRROR", "/work/.mirror/bilibili+Index-anisora/repo"))
FIXTURE = REPO / "tests" / "parity" / "fixtures" / "anime_reward_blip.json"
SEED = 0
TOLERANCE = 1e-4
SOURCES = [
    "reward/reward_infer.py",
    "reward/models/blip.py", "reward/models/blip_pretrain.py", "reward/models/blip_pretrain_text.py",
    "reward/models/vit.py", "reward/models/med.py", "reward/configs/bert_config.json",
    "reward/character/BLIP/blip_models/blip.py", "reward/character/BLIP/blip_models/blip_pretrain.py",
    "reward/character/BLIP/blip_models/vit.py", "reward/character/BLIP/blip_models/med.py",
    "reward/character/BLIP/blip_configs/eval_pretrain.yaml", "reward/character/BLIP/blip_configs/bert_config.json",
    "reward/character/BLIP/infer_retrieval_pretrain_v2.py",
]  # fmt: skip
SHIMS: list[str] = []


# --- the published sources -------------------------------------------------------------------------------


def extract_sources(work: Path) -> Path:
    """``git show 171fe63:<path>`` of every file used, under ``work/src``; returns the ``reward`` folder."""
    root = work / "src"
    for path in SOURCES:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(subprocess.run(["git", "-C", str(MIRROR), "show", f"{COMMIT}:{path}"], check=True,
                                          capture_output=True).stdout)  # fmt: skip
    return root / "reward"


def published_functions(path: Path, names: tuple[str, ...], namespace: dict) -> dict:
    """Execute the named top-level function definitions of ``path`` (by ``ast``) in ``namespace``."""
    tree = ast.parse(path.read_text())
    chosen = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    assert {n.name for n in chosen} == set(names), names
    exec(compile(ast.Module(body=chosen, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace


def install_shims(reward: Path) -> None:
    """The changes listed in the module docstring (imports and downloads only)."""
    # fairscale: checkpoint_wrapper is used only with gradient checkpointing.
    for name in ("fairscale", "fairscale.nn", "fairscale.nn.checkpoint", "fairscale.nn.checkpoint.checkpoint_activations"):
        sys.modules.setdefault(name, types.ModuleType(name))

    def checkpoint_wrapper(*args, **kwargs):
        raise RuntimeError("fairscale stub: gradient checkpointing is not used for inference")

    sys.modules["fairscale.nn.checkpoint.checkpoint_activations"].checkpoint_wrapper = checkpoint_wrapper
    SHIMS.append("fairscale.nn.checkpoint.checkpoint_activations.checkpoint_wrapper: stub (grad checkpointing only)")

    import transformers.modeling_utils as mu
    import transformers.pytorch_utils as pu

    for name in ("apply_chunking_to_forward", "prune_linear_layer"):
        if not hasattr(mu, name):
            setattr(mu, name, getattr(pu, name))
            SHIMS.append(f"transformers.modeling_utils.{name} = transformers.pytorch_utils.{name}")
    if not hasattr(mu, "find_pruneable_heads_and_indices"):
        def find_pruneable_heads_and_indices(*args, **kwargs):
            raise RuntimeError("stub: head pruning is not used for inference")

        mu.find_pruneable_heads_and_indices = find_pruneable_heads_and_indices
        SHIMS.append("transformers.modeling_utils.find_pruneable_heads_and_indices: stub (prune_heads only)")
    if not hasattr(mu.PreTrainedModel, "get_head_mask"):
        def get_head_mask(self, head_mask, num_hidden_layers, is_attention_chunked=False):
            assert head_mask is None, "head masks are not used here"
            return [None] * num_hidden_layers  # transformers 4.x behaviour for head_mask=None

        mu.PreTrainedModel.get_head_mask = get_head_mask
        SHIMS.append("PreTrainedModel.get_head_mask: transformers 4.x behaviour for head_mask=None ([None] * layers)")

    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    if not hasattr(PreTrainedTokenizerBase, "additional_special_tokens_ids"):
        def additional_special_tokens_ids(self):
            return [self.convert_tokens_to_ids(str(token)) for token in self._extra_special_tokens]

        PreTrainedTokenizerBase.additional_special_tokens_ids = property(additional_special_tokens_ids)
        SHIMS.append("tokenizer.additional_special_tokens_ids (transformers 4.x name; v5 keeps them in "
                     "_extra_special_tokens): init_tokenizer reads it for enc_token_id, unused by inference")

    # Packages without their __init__ (models/__init__.py imports ActionCLIP and mmaction).
    for name, folder in (("models", reward / "models"), ("character", reward / "character"),
                         ("character.BLIP", reward / "character" / "BLIP"),
                         ("character.BLIP.blip_models", reward / "character" / "BLIP" / "blip_models")):  # fmt: skip
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    SHIMS.append("packages models, character, character.BLIP, character.BLIP.blip_models registered without "
                 "executing their __init__.py")

    # No downloads (DeiT init of ViT-B): every tensor is then loaded from the checkpoint.
    def no_download(url, *args, **kwargs):
        return {"model": {}}

    torch.hub.load_state_dict_from_url = no_download
    SHIMS.append("torch.hub.load_state_dict_from_url -> {'model': {}} (DeiT-base init; overwritten by the checkpoint)")


def patch_bert_from_pretrained(med) -> None:
    @classmethod
    def from_config(cls, path, config=None, **kwargs):
        return cls(config=config, **kwargs)

    med.BertModel.from_pretrained = from_config
    if hasattr(med.PreTrainedModel, "post_init"):
        original = med.PreTrainedModel.init_weights

        def init_weights(self):
            if self.__dict__.get("_shim_posted"):  # post_init calls init_weights itself
                return original(self)
            self.__dict__["_shim_posted"] = True
            self.post_init()  # transformers 5: init_weights needs post_init's bookkeeping

        med.BertModel.init_weights = init_weights
        SHIMS.append(f"{med.__name__}.BertModel.init_weights -> post_init() (transformers 5; initial values "
                     "overwritten by the checkpoint)")
    SHIMS.append(f"{med.__name__}.BertModel.from_pretrained(path, config) -> BertModel(config) (bert-base "
                 "init; overwritten by the checkpoint)")


# --- building the published networks -----------------------------------------------------------------------


def small_vit(vit_module, size: dict, prefix: str = "vit"):
    """The published VisionTransformer at SMALL sizes (create_vit hard-codes base/large)."""

    def create_vit(vit, image_size, use_grad_checkpointing=False, ckpt_layer=0, drop_path_rate=0):
        width = size[f"{prefix}_width"]
        return vit_module.VisionTransformer(img_size=image_size, patch_size=16, embed_dim=width,
                                            depth=size[f"{prefix}_layers"], num_heads=width // 64,
                                            use_grad_checkpointing=False, ckpt_layer=0,
                                            drop_path_rate=drop_path_rate), width  # fmt: skip

    return create_vit


def build_head(kind: str, checkpoint: Path, size_name: str, size: dict, reward: Path):
    """``blip_pretrain(_text)(pretrained=checkpoint, image_size=224, vit='base', ...)`` as reward_infer.py does."""
    import importlib

    module = importlib.import_module("models.blip_pretrain_text" if kind == "text_video" else "models.blip_pretrain")
    vit = importlib.import_module("models.vit")
    blip = importlib.import_module("models.blip")
    original_load = module.load_checkpoint
    restore = []
    if size_name == "small":
        restore.append((module, "create_vit", module.create_vit))
        module.create_vit = small_vit(vit, size)

        def load_small(model, path):
            # BLIP_Pretrain hard-codes text_width = 768 for these three layers.
            key_width = size["bert_width"] if kind == "text_video" else size["vit_width"]
            model.img_proj = torch.nn.Linear(size["vit_width"], size["proj"])
            model.img_key_proj = torch.nn.Linear(key_width, size["proj"])
            model.head_diff = torch.nn.Linear(2 * size["proj"], 1)
            return original_load(model, path)

        restore.append((module, "load_checkpoint", original_load))
        module.load_checkpoint = load_small
    try:
        model = module.blip_pretrain(pretrained=str(checkpoint), image_size=224, vit="base", vit_grad_ckpt=False,
                                     vit_ckpt_layer=0, queue_size=57600)  # fmt: skip
    finally:
        for owner, name, value in restore:
            setattr(owner, name, value)
    # The published loader is strict=False: make sure every parameter came from the checkpoint.
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    missing = [k for k in model.state_dict() if k not in state]
    assert not missing, f"{kind}: parameters not in the checkpoint: {missing[:5]}"
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key].to(value.dtype)), f"{kind}: {key} not loaded"
    del blip
    return model.eval()


def build_recognizer(checkpoint: Path, size_name: str, size: dict, reward: Path):
    import importlib

    import yaml

    config = yaml.safe_load((reward / "character" / "BLIP" / "blip_configs" / "eval_pretrain.yaml").read_text())
    module = importlib.import_module("character.BLIP.blip_models.blip_pretrain")
    vit = importlib.import_module("character.BLIP.blip_models.vit")
    restore = []
    if size_name == "small":
        restore.append((module, "create_vit", module.create_vit))
        module.create_vit = small_vit(vit, size, prefix="char")
        original = module.BLIP_Pretrain.__init__

        def init(self, *args, embed_dim=256, **kwargs):
            original(self, *args, embed_dim=size["char_proj"], **kwargs)

        restore.append((module.BLIP_Pretrain, "__init__", original))
        module.BLIP_Pretrain.__init__ = init
    try:
        model = module.blip_pretrain(pretrained=str(checkpoint), image_size=config["image_size"], vit=config["vit"],
                                     vit_grad_ckpt=config["vit_grad_ckpt"], vit_ckpt_layer=config["vit_ckpt_layer"],
                                     queue_size=config["queue_size"])  # fmt: skip
    finally:
        for owner, name, value in restore:
            setattr(owner, name, value)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    missing = [k for k in model.state_dict() if k not in state]
    assert not missing, f"recognizer: parameters not in the checkpoint: {missing[:5]}"
    return model.eval(), config


# --- running them ----------------------------------------------------------------------------------------------


def sampled_frames(video_path: str, fns: dict) -> tuple[list[int], list]:
    """reward_infer.py lines 164-175: declared frame count, the 24 indices, ``_read_video_pyav``, PIL frames."""
    from PIL import Image

    container = av.open(video_path)
    total_frames = container.streams.video[0].frames
    max_num_frames, max_length = 24, 144  # MAX_NUM_FRAMES, MAX_LENGTH (lines 62-63)
    if total_frames > max_num_frames:
        indices = np.arange(0, min(total_frames, max_length), min(total_frames, max_length) / max_num_frames).astype(int)
    else:
        indices = np.arange(total_frames)
    fns["container"], fns["indices"] = container, indices  # _read_video_pyav reads these globals
    frames = [Image.fromarray(x) for x in fns["_read_video_pyav"](container, indices)]
    container.close()
    return [int(i) for i in indices], frames


def model_inputs(frames, image_path: str, fns: dict):
    """reward_infer.py lines 161, 185-189: key image and ``img_all`` (1, N, 3, 224, 224)."""
    key_image = fns["load_key_image"](image_size=224, img_path=image_path, device="cpu")
    img_all = torch.cat([fns["load_key_image"](image_size=224, img_path=x, device="cpu").unsqueeze(0) for x in frames], 1)
    return key_image, img_all


def summary(tensor: torch.Tensor) -> dict:
    t = tensor.detach().double()
    return {"shape": list(tensor.shape), "sum": float(t.sum()), "sum_abs": float(t.abs().sum())}


def run_size(size_name: str, work: Path, reward: Path, clips: dict, fns: dict) -> dict:
    size = W.FULL if size_name == "full" else W.SMALL
    folder = work / size_name
    written = W.write_weights_folder(folder, size, SEED)
    out: dict = {"size": size, "weights": {}}
    for kind in ("text_video", "image_video", "recognizer"):
        out["weights"][kind] = {"file": W.PUBLISHED_FILES[kind], "state_dict_sha256": W.state_sha256(kind, size, SEED),
                                "seed": SEED}  # fmt: skip

    cwd = os.getcwd()
    run = folder / "run"
    (run / "configs").mkdir(parents=True, exist_ok=True)
    (run / "weights").mkdir(parents=True, exist_ok=True)
    config = json.loads((reward / "configs" / "bert_config.json").read_text())
    if size_name == "small":
        config.update(hidden_size=size["bert_width"], num_hidden_layers=size["bert_layers"],
                      num_attention_heads=size["bert_width"] // 64, intermediate_size=size["bert_mlp"])  # fmt: skip
    (run / "configs" / "bert_config.json").write_text(json.dumps(config))
    os.symlink(written[W.ENTRIES["tokenizer"]], run / "weights" / "bert-base-uncased")
    os.chdir(run)
    try:
        videos = []
        for kind in ("text_video", "image_video"):
            started = time.perf_counter()
            model = build_head(kind, written[W.ENTRIES[kind]], size_name, size, reward)
            built = time.perf_counter() - started
            for spec in BLIP_CLIPS:
                clip = clips[spec.name]
                indices, frames = sampled_frames(clip["video"], fns)
                key_image, img_all = model_inputs(frames, clip["image"], fns)
                started = time.perf_counter()
                with torch.no_grad():
                    value = model.inference(img_all, PROMPTS[spec.name], key_image)
                    video_cls = torch.mean(torch.cat([model.visual_encoder(img_all[:, i]).unsqueeze(0)
                                                      for i in range(img_all.shape[1])], 0), 0)[:, 0]  # fmt: skip
                    if kind == "text_video":
                        text = model.tokenizer(PROMPTS[spec.name], padding="max_length", truncation=True,
                                               max_length=30, return_tensors="pt")  # fmt: skip
                        key_cls = model.text_encoder(text.input_ids, attention_mask=text.attention_mask,
                                                     return_dict=True, mode="text").last_hidden_state[:, 0]  # fmt: skip
                    else:
                        key_cls = model.visual_encoder(key_image)[:, 0]
                row = next((v for v in videos if v["name"] == spec.name), None)
                if row is None:
                    row = {"name": spec.name, "prompt": PROMPTS[spec.name], "frame_indices": indices,
                           "decoded_sha256": frames_sha256(np.stack([np.asarray(f) for f in frames])),
                           "model_input": summary(img_all), "key_image_input": summary(key_image)}  # fmt: skip
                    videos.append(row)
                row[kind] = float(value.reshape(-1)[0])
                row.setdefault("debug", {})[kind] = {
                    "video_cls": [float(x) for x in video_cls[0]],
                    "key_cls": [float(x) for x in key_cls[0]],
                    "seconds": time.perf_counter() - started,
                }
                if kind == "text_video":
                    row["prompt_ids"] = [int(i) for i in text.input_ids[0]]
                    row["prompt_mask"] = [int(i) for i in text.attention_mask[0]]
            out.setdefault("build_seconds", {})[kind] = built
            if kind == "text_video":
                out["tokenizer"] = [{"prompt": p, "ids": model.tokenizer(p, padding="max_length", truncation=True,
                                                                         max_length=30)["input_ids"],
                                     "full_length": len(model.tokenizer(p)["input_ids"])}
                                    for p in TOKENIZER_PROMPTS]  # fmt: skip
                out["tokenizer_length"] = len(model.tokenizer)
            del model
        out["videos"] = videos
        out["aggregate"] = {k: float(np.mean([v[k] for v in videos])) for k in ("text_video", "image_video")}

        started = time.perf_counter()
        model, config = build_recognizer(written[W.ENTRIES["recognizer"]], size_name, size, reward)
        crops = torch.from_numpy(recogniser_crops())
        with torch.no_grad():
            embeds = fns["compute_gallery_embeds"](model, [(crops, ["c"] * len(crops))], "cpu")
        out["recognizer"] = {"config": {k: config[k] for k in ("vit", "image_size", "vit_grad_ckpt", "vit_ckpt_layer")},
                             "crops": summary(crops), "embeddings": [[float(x) for x in row] for row in embeds],
                             "seconds": time.perf_counter() - started}  # fmt: skip
        del model
    finally:
        os.chdir(cwd)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,full")
    parser.add_argument("--work", default=None)
    parser.add_argument("--out", default=str(FIXTURE))
    args = parser.parse_args()
    torch.manual_seed(0)
    work = Path(args.work or tempfile.mkdtemp(prefix="blip-parity-"))
    reward = extract_sources(work)
    install_shims(reward)
    import importlib

    patch_bert_from_pretrained(importlib.import_module("models.med"))
    patch_bert_from_pretrained(importlib.import_module("character.BLIP.blip_models.med"))
    fns = published_functions(reward / "reward_infer.py", ("_read_video_pyav", "load_key_image"),
                              {"np": np, "torch": torch, "Image": __import__("PIL.Image").Image,
                               "transforms": importlib.import_module("torchvision.transforms"),
                               "InterpolationMode": importlib.import_module("torchvision.transforms.functional").InterpolationMode,
                               "List": list})  # fmt: skip
    published_functions(reward / "character" / "BLIP" / "infer_retrieval_pretrain_v2.py", ("compute_gallery_embeds",),
                        fns)
    fns["torch"] = torch
    clips = write_parity_clips(work / "clips", BLIP_CLIPS)
    import timm
    import transformers
    from PIL import Image

    fixture = {
        "recipe": {
            "reference": f"bilibili/Index-anisora@{COMMIT} reward/ (models/blip_pretrain_text.py, models/blip_pretrain.py, "
                         "character/BLIP/blip_models/blip_pretrain.py)",
            "commit": COMMIT,
            "sources_sha256": {p: file_sha256(work / "src" / p) for p in SOURCES},
            "command": "flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python "
                       "scripts/parity/anime_reward_blip_reference.py",
            "packages": {"python": platform.python_version(), "torch": torch.__version__,
                         "transformers": transformers.__version__, "timm": timm.__version__,
                         "numpy": np.__version__, "av": av.__version__, "Pillow": Image.__version__},
            "shims": SHIMS,
            "tolerance": TOLERANCE,
            "clips": {"recipe": "tests/parity/clips_anime_reward_blip.py BLIP_CLIPS",
                      "video_file_sha256": {n: c["video_file_sha256"] for n, c in clips.items()},
                      "image_pixels_sha256": {n: c["image_pixels_sha256"] for n, c in clips.items()}},
            "weights": "tests/parity/weights_blip_reward.py (seed 0); vocabulary: write_vocab_folder",
            "vocab_sha256": hashlib.sha256("\n".join(W.vocab_tokens()).encode()).hexdigest(),
        },
        "sizes": {},
    }
    for size_name in args.sizes.split(","):
        started = time.perf_counter()
        fixture["sizes"][size_name] = run_size(size_name, work, reward, clips, fns)
        fixture["sizes"][size_name]["total_seconds"] = time.perf_counter() - started
        print(f"{size_name}: {time.perf_counter() - started:.1f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
