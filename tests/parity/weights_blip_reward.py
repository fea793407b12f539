"""Fixed random AnimeReward BLIP weights in the published checkpoint format, full size or small, and a vocabulary.

Recipe shared by the reference side (scripts/parity/anime_reward_blip_reference.py, the published model
classes of bilibili/Index-anisora at 171fe63 in the parity venv) and anibench's tests; numpy + torch only.

Published files (HF ``IndexTeam/Index-anisora``): ``reward/weights/Pretrain_text_humangt_meanvideo_trainset_wGT_
random_samescore/checkpoint_05.pth`` (text-video), ``reward/weights/Pretrain_humangt_meanvideo_trainset_wGT/
checkpoint_06.pth`` (image-video), ``reward/IP_checkpoints/blip_checkpoints/animate_recoginzer.pth`` (character
recogniser). BLIP saves ``torch.save({'model': model.state_dict(), ...})`` and ``load_checkpoint`` reads
``checkpoint['model']``, so each file written here is ``{'model': state_dict}`` with the keys of the published
classes' ``state_dict()``:

- text-video (``models/blip_pretrain_text.BLIP_Pretrain``): ``visual_encoder.*`` (vit.py), ``text_encoder.*``
  (med.py ``BertModel`` built from ``configs/bert_config.json``, which has ``add_cross_attention: true``, so
  every layer also holds ``crossattention.*``; its ``embeddings.position_ids`` buffer, int64), ``img_proj``,
  ``img_key_proj``, ``head_diff``;
- image-video (``models/blip_pretrain.BLIP_Pretrain``): the same without ``text_encoder``;
- recogniser (``character/BLIP/blip_models/blip_pretrain.BLIP_Pretrain`` at eval_pretrain.yaml: ViT-L):
  ``visual_encoder.*`` + ``vision_proj``; the training model's other tensors are in the real file but not in
  the inference class; a few stand-ins (``temp``, ``text_proj``, ``vision_proj_m``, ``visual_encoder_m.cls_token``)
  are added to show that both sides ignore them.

Sizes: :data:`FULL` — ViT-B/16 (768, 12 layers, MLP 3072), BERT-base (768, 12, 3072, 512 positions,
vocabulary 30524 = 30522 + [DEC] + [ENC]), projections 768; recogniser ViT-L/16 (1024, 24, 4096) with
``vision_proj`` 256. :data:`SMALL` keeps 224 px, patch 16, the vocabulary and 512 positions, and shrinks the
towers to 128 wide, 2 layers (2 heads of 64), MLP 512, projections 64 (recogniser 32).

Tokenizer: the real bert-base-uncased vocabulary cannot be downloaded here, so :func:`write_vocab_folder`
writes a WordPiece vocabulary of exactly 30522 lines in BERT's layout ([PAD] 0, [unused*], [UNK] 100,
[CLS] 101, [SEP] 102, [MASK] 103, then characters, words and ``##`` pieces, padded with ``[unused*]``) so
the published ``resize_token_embeddings(len(tokenizer))`` gives 30524 as with the real one. Both sides read
it with transformers' ``BertTokenizer``.

Values: :func:`parity.weights._values` (one generator per tensor), scales as in ``parity.weights``.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import numpy as np
import torch

from parity.weights import QKV_GAIN, TensorRecipe, _layer_norm, _linear, _values, state_dict_sha256

VOCAB_LINES = 30522  # bert-base-uncased
IMAGE_SIZE, PATCH, MAX_POSITIONS = 224, 16, 512

FULL = {"vit_width": 768, "vit_layers": 12, "vit_mlp": 3072, "bert_width": 768, "bert_layers": 12,
        "bert_mlp": 3072, "proj": 768, "char_width": 1024, "char_layers": 24, "char_mlp": 4096,
        "char_proj": 256}  # fmt: skip
SMALL = {"vit_width": 128, "vit_layers": 2, "vit_mlp": 512, "bert_width": 128, "bert_layers": 2,
         "bert_mlp": 512, "proj": 64, "char_width": 128, "char_layers": 2, "char_mlp": 512,
         "char_proj": 32}  # fmt: skip

# Published relative paths (HF IndexTeam/Index-anisora) of the three files and the tokenizer folder.
PUBLISHED_FILES = {
    "text_video": "reward/weights/Pretrain_text_humangt_meanvideo_trainset_wGT_random_samescore/checkpoint_05.pth",
    "image_video": "reward/weights/Pretrain_humangt_meanvideo_trainset_wGT/checkpoint_06.pth",
    "recognizer": "reward/IP_checkpoints/blip_checkpoints/animate_recoginzer.pth",
    "tokenizer": "reward/weights/bert-base-uncased",
}
ENTRIES = {
    "text_video": "anime_reward_text_video_blip",
    "image_video": "anime_reward_image_video_blip",
    "recognizer": "anime_reward_character_recognizer",
    "tokenizer": "anime_reward_bert_base_uncased_tokenizer",
}


# --- the vocabulary -------------------------------------------------------------------------------------

_WORDS = """a an the of in on at to and or with is are was were be been it its this that these those as by for
from into over under after before while during video scene character characters girl boy man woman cat dog
anime cartoon samurai sword swords forest night day light dark red blue green white black yellow hair eyes
face smile smiles smiling run runs running jump jumps jumping walk walks walking dance dancing wave waving
arms hand hands sky cloud clouds city street room window door tree trees water sea river mountain snow rain
fire big small large little long short young old happy sad angry fast slow camera shot close up view zoom
background foreground stands sits looks turns holds wears dressed traditional armor group two three one
protagonist movement stationary apparent remain there no text depicted engaged confrontation""".split()


def vocab_tokens() -> list[str]:
    """The 30522 vocabulary lines, in BERT's special-token layout."""
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens += chars + sorted(set(_WORDS)) + ["##" + c for c in string.ascii_lowercase + string.digits]
    tokens += ["##s", "##ing", "##ed", "##er", "##ly", "##es"]
    seen: set[str] = set()
    unique = [t for t in tokens if not (t in seen or seen.add(t))]
    unique += [f"[unused{i}]" for i in range(99, 99 + VOCAB_LINES - len(unique))]
    assert len(unique) == VOCAB_LINES
    return unique


def write_vocab_folder(folder: str | Path) -> Path:
    """A bert-base-uncased-like tokenizer folder: ``vocab.txt`` (30522 lines) + ``tokenizer_config.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab_tokens()) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}))
    return folder


# --- the tensors ------------------------------------------------------------------------------------------


def vit_recipe(prefix: str, width: int, layers: int, mlp: int) -> list[TensorRecipe]:
    """vit.py ``VisionTransformer.state_dict()`` (224 px, patch 16) under ``prefix``."""
    grid = IMAGE_SIZE // PATCH
    recipe: list[TensorRecipe] = [
        (f"{prefix}.cls_token", (1, 1, width), 0.0, 1.0),
        (f"{prefix}.pos_embed", (1, grid * grid + 1, width), 0.0, 0.5),
        (f"{prefix}.patch_embed.proj.weight", (width, 3, PATCH, PATCH), 0.0, 1 / math.sqrt(3 * PATCH * PATCH)),
        (f"{prefix}.patch_embed.proj.bias", (width,), 0.0, 0.02),
    ]
    for i in range(layers):
        b = f"{prefix}.blocks.{i}"
        recipe += _layer_norm(f"{b}.norm1", width)
        recipe += _linear(f"{b}.attn.qkv", 3 * width, width, QKV_GAIN)
        recipe += _linear(f"{b}.attn.proj", width, width)
        recipe += _layer_norm(f"{b}.norm2", width)
        recipe += _linear(f"{b}.mlp.fc1", mlp, width)
        recipe += _linear(f"{b}.mlp.fc2", width, mlp)
    recipe += _layer_norm(f"{prefix}.norm", width)
    return recipe


def bert_recipe(prefix: str, width: int, layers: int, mlp: int, encoder_width: int) -> list[TensorRecipe]:
    """med.py ``BertModel(add_pooling_layer=False)`` with cross-attention layers (float tensors only)."""
    recipe: list[TensorRecipe] = [
        (f"{prefix}.embeddings.word_embeddings.weight", (VOCAB_LINES + 2, width), 0.0, 0.5),
        (f"{prefix}.embeddings.position_embeddings.weight", (MAX_POSITIONS, width), 0.0, 0.5),
    ]
    recipe += _layer_norm(f"{prefix}.embeddings.LayerNorm", width)
    for i in range(layers):
        b = f"{prefix}.encoder.layer.{i}"
        recipe += _linear(f"{b}.attention.self.query", width, width, QKV_GAIN)
        recipe += _linear(f"{b}.attention.self.key", width, width, QKV_GAIN)
        recipe += _linear(f"{b}.attention.self.value", width, width)
        recipe += _linear(f"{b}.attention.output.dense", width, width)
        recipe += _layer_norm(f"{b}.attention.output.LayerNorm", width)
        recipe += _linear(f"{b}.crossattention.self.query", width, width)
        recipe += _linear(f"{b}.crossattention.self.key", width, encoder_width)
        recipe += _linear(f"{b}.crossattention.self.value", width, encoder_width)
        recipe += _linear(f"{b}.crossattention.output.dense", width, width)
        recipe += _layer_norm(f"{b}.crossattention.output.LayerNorm", width)
        recipe += _linear(f"{b}.intermediate.dense", mlp, width)
        recipe += _linear(f"{b}.output.dense", width, mlp)
        recipe += _layer_norm(f"{b}.output.LayerNorm", width)
    return recipe


def recipe(kind: str, size: dict[str, int]) -> list[TensorRecipe]:
    """The float tensors of one published file (``text_video``, ``image_video``, ``recognizer``) at ``size``."""
    if kind == "recognizer":
        width = size["char_width"]
        out = vit_recipe("visual_encoder", width, size["char_layers"], size["char_mlp"])
        out += _linear("vision_proj", size["char_proj"], width)
        # Stand-ins for the training model's tensors the inference class does not have (ignored by both sides).
        out += [("temp", (), 0.07, 0.0), ("visual_encoder_m.cls_token", (1, 1, width), 0.0, 1.0)]
        out += _linear("vision_proj_m", size["char_proj"], width) + _linear("text_proj", size["char_proj"], width)
        return out
    width, proj = size["vit_width"], size["proj"]
    out = vit_recipe("visual_encoder", width, size["vit_layers"], size["vit_mlp"])
    if kind == "text_video":
        out += bert_recipe("text_encoder", size["bert_width"], size["bert_layers"], size["bert_mlp"], width)
    key_width = size["bert_width"] if kind == "text_video" else width
    out += _linear("img_proj", proj, width) + _linear("img_key_proj", proj, key_width)
    out += _linear("head_diff", 1, 2 * proj)
    return out


def state_dict(kind: str, size: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """The published file's ``model`` entry (float32 values + med's int64 ``position_ids`` buffer)."""
    state = {name: torch.from_numpy(_values(name, shape, mean, std, seed)) for name, shape, mean, std in
             recipe(kind, size)}  # fmt: skip
    if kind == "text_video":
        state["text_encoder.embeddings.position_ids"] = torch.arange(MAX_POSITIONS).expand((1, -1)).clone()
    return state


def write_checkpoint(path: str | Path, kind: str, size: dict[str, int], seed: int = 0) -> Path:
    """Write one published-format file: ``torch.save({'model': state_dict})``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state_dict(kind, size, seed)}, path)
    return path


def state_sha256(kind: str, size: dict[str, int], seed: int = 0) -> str:
    return state_dict_sha256(state_dict(kind, size, seed))


def write_weights_folder(folder: str | Path, size: dict[str, int] = SMALL, seed: int = 0,
                         kinds: tuple[str, ...] = ("text_video", "image_video", "recognizer")) -> dict[str, Path]:
    """Random published-format files at their published relative paths under ``folder`` (for a benchmark).

    Returns ``{weights entry: path}`` (the three checkpoints asked for + the tokenizer folder), ready for
    ``anibench weights import ENTRY PATH`` — with ``size=SMALL`` the ``*_any_size`` converters are needed,
    ``FULL`` files convert with the published ones. Random weights: plumbing and timing only, never scores.
    """
    folder = Path(folder)
    out = {}
    for kind in kinds:
        out[ENTRIES[kind]] = write_checkpoint(folder / PUBLISHED_FILES[kind], kind, size, seed)
    out[ENTRIES["tokenizer"]] = write_vocab_folder(folder / PUBLISHED_FILES["tokenizer"])
    return out


def install_random_blip(root: str | Path, size: str = "small", seed: int = 0,
                        kinds: tuple[str, ...] = ("text_video", "image_video", "recognizer")) -> dict[str, str]:
    """Put seeded random BLIP weights of ``size`` (``small`` or ``full``) into the anibench weights folder ``root``.

    ``full``: the files are imported under the real entries (the published converters check the ViT-B/16,
    BERT-base and ViT-L/16 sizes), so no alias is needed. ``small``: local entries ``seeded_blip_<kind>_small``
    converted with the ``*_any_size`` converters. The vocabulary folder goes in as ``hf-folder`` under the
    real tokenizer entry (full) or ``seeded_bert_vocab`` (small). Returns the aliases to pass as
    ``Runtime(weight_aliases=...)`` (empty for full). **Random weights: timing and plumbing only, never scores.**
    """
    from anibench.runtime.weights import WeightStore

    root = Path(root)
    store = WeightStore(root)
    scratch = root / ".seeded-files"
    written = write_weights_folder(scratch, FULL if size == "full" else SMALL, seed, kinds)
    aliases: dict[str, str] = {}
    converters = {"text_video": "convert_text_video", "image_video": "convert_image_video",
                  "recognizer": "convert_recognizer"}  # fmt: skip
    for kind in (*kinds, "tokenizer"):
        entry, source = ENTRIES[kind], written[ENTRIES[kind]]
        if size == "full":
            store.import_file(entry, source, replace=True)
            continue
        name = f"seeded_blip_{kind}_small" if kind != "tokenizer" else "seeded_bert_vocab"
        if kind == "tokenizer":
            store.add_local(name, source, format="hf-folder", replace=name in store.entries())
        else:
            store.add_local(name, source, format="torch-state-dict", replace=name in store.entries(),
                            converter=f"anibench.models.blip_reward:{converters[kind]}_any_size")  # fmt: skip
        aliases[entry] = name
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    return aliases


def values_summary(state: dict[str, torch.Tensor]) -> dict[str, float]:  # pragma: no cover - diagnostics
    flat = np.concatenate([t.float().reshape(-1).numpy() for t in state.values() if t.is_floating_point()])
    return {"mean": float(flat.mean()), "std": float(flat.std())}
