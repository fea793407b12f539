"""A tiny random AnimeReward Mantis checkpoint folder in the published layout, and the parity clips.

Recipe shared by the reference side (scripts/parity/anime_reward_mantis_reference.py: the vendored Mantis
``Idefics2ForSequenceClassification`` under transformers 4.45.1, in its own venv) and anibench's tests
(tests/test_anime_reward_mantis.py, transformers 5.x); numpy, torch, safetensors and tokenizers only, no
transformers, so both venvs write byte-identical folders.

The published checkpoints (HF ``IndexTeam/Index-anisora``, ``reward/weights/mantis-8b-idefics2-video-eval-
24frame-{quality,benchmark-1epoch}_4096_regression/checkpoint-final``) are what Mantis' trainer saved with
transformers 4.45.1 (``reward/mantis/train/train_idefics2.py``: ``Trainer(..., tokenizer=processor)`` then
``save_pretrained`` into ``checkpoint-final``). :func:`write_tiny_checkpoint` writes the same kind of folder:

- ``config.json``: ``architectures: ["Idefics2ForSequenceClassification"]``, ``model_type: idefics2``, one
  label (``problem_type: regression``), ``image_token_id``, ``pad_token_id``, ``tie_word_embeddings: false``,
  ``transformers_version: 4.45.1``, with ``vision_config`` (SigLIP), ``perceiver_config`` and
  ``text_config`` (Mistral) dicts;
- ``model-0000N-of-00002.safetensors`` + ``model.safetensors.index.json`` (sharded, with ``weight_map``),
  keys exactly those of the Mantis class's ``state_dict()``: ``model.vision_model.*``, ``model.connector.*``
  (``modality_projection`` and ``perceiver_resampler``), ``model.text_model.*`` and ``score.{weight,bias}``;
- the processor: ``preprocessor_config.json`` (Idefics2ImageProcessor, ``do_image_splitting: false`` as
  Mantis trains, longest/shortest edge shrunk to 56/28 px for the tiny vision tower), ``processor_config.json``
  (``image_seq_len`` = the resampler's latents), and a Llama/Mistral-style fast tokenizer (``tokenizer.json``
  with the Mistral normaliser ``Prepend('▁') + Replace(' ', '▁')``, byte-fallback BPE, ``<s>`` template;
  ``tokenizer_config.json`` / ``special_tokens_map.json``) whose added special tokens are
  ``<fake_token_around_image>``, ``<image>``, ``<end_of_utterance>`` and ``<pad>``.

Values: :func:`parity.weights._values` (one generator per tensor, seeded by the seed and the tensor name),
fan-in scaled matrices, norm weights 1 +- 0.1, the score head scaled so logits land in the tens (as a 0-100
regression head's would).
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import numpy as np

from parity.clips import ClipSpec
from parity.weights import _values

SEED = 0
SHARDS = 2

# Special tokens after the base vocabulary, as in Idefics2's tokenizer (32000..32002 there) plus Mantis' pad.
FAKE_TOKEN, IMAGE_TOKEN, END_TOKEN, PAD_TOKEN = "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<pad>"

# Parity clips: one longer than 24 frames (the published arange sampling picks 24 of them) whose frames the
# 56 px longest edge shrinks to 31 x 56 (not a multiple of the 14 px patch), one of 12 frames (all read)
# that is upscaled to the 28 px shortest edge on one side.
MANTIS_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("mantis_landscape_72x40", 72, 40, 30, seed=31, image_width=72, image_height=40),
    ClipSpec("mantis_portrait_24x60", 24, 60, 12, seed=32, image_width=24, image_height=60),
)
MANTIS_PROMPTS = {
    "mantis_landscape_72x40": "A girl with silver hair runs through a field of sunflowers, anime style.",
    "mantis_portrait_24x60": 'Two samurai face each other at night; "honour" and {braces} stay literal.',
}


def _tokenizer_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``<unk> <s> </s>``, the 256 byte-fallback tokens, ``▁`` and printable characters, a few merges."""
    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for char in "▁" + string.ascii_letters + string.digits + string.punctuation:
        vocab.setdefault(char, len(vocab))
    merges = [("▁", "t"), ("h", "e"), ("▁t", "he"), ("▁", "a"), ("i", "n"), ("▁", "o"), ("e", "r"),
              ("▁", "s"), ("o", "r"), ("▁", "f"), ("a", "n"), ("▁", "▁"), ("r", "e"), ("▁", "i")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return vocab, merges


def tiny_config(vocab_size: int, special_ids: dict[str, int]) -> dict:
    """The tiny model's config.json (transformers 4.45.1 layout of an Idefics2 sequence classifier)."""
    text = {
        "model_type": "mistral", "vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
        "hidden_act": "silu", "max_position_embeddings": 32768, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0,
        "sliding_window": 4096, "pad_token_id": 0, "tie_word_embeddings": False, "torch_dtype": "float32",
        "attention_dropout": 0.0, "use_cache": True,
    }
    vision = {
        "model_type": "idefics2", "hidden_size": 24, "intermediate_size": 40, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_channels": 3, "image_size": 56, "patch_size": 14,
        "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-06, "attention_dropout": 0.0,
        "initializer_range": 0.02,
    }
    perceiver = {
        "model_type": "idefics2", "hidden_act": "silu", "resampler_n_latents": 4, "resampler_depth": 2,
        "resampler_n_heads": 2, "resampler_head_dim": 8, "num_key_value_heads": 1, "attention_dropout": 0.0,
    }
    return {
        "_name_or_path": "tiny-random-mantis-idefics2-regression",
        "architectures": ["Idefics2ForSequenceClassification"],
        "model_type": "idefics2",
        "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0},
        "problem_type": "regression",
        "image_token_id": special_ids[IMAGE_TOKEN],
        "pad_token_id": special_ids[PAD_TOKEN],
        "tie_word_embeddings": False,
        "use_cache": True,
        "torch_dtype": "float32",
        "transformers_version": "4.45.1",
        "text_config": text,
        "vision_config": vision,
        "perceiver_config": perceiver,
    }


def state_dict_recipe(config: dict) -> list[tuple[str, tuple[int, ...], float, float]]:
    """(name, shape, mean, std) of every tensor of Mantis' ``Idefics2ForSequenceClassification.state_dict()``."""
    text, vision, perceiver = config["text_config"], config["vision_config"], config["perceiver_config"]
    t, ti, v, vi = text["hidden_size"], text["intermediate_size"], vision["hidden_size"], vision["intermediate_size"]
    head_dim = text.get("head_dim") or t // text["num_attention_heads"]
    out: list[tuple[str, tuple[int, ...], float, float]] = []

    def linear(name, rows, cols, bias=True, gain=1.0):
        out.append((f"{name}.weight", (rows, cols), 0.0, gain / math.sqrt(cols)))
        if bias:
            out.append((f"{name}.bias", (rows,), 0.0, 0.02))

    def norm(name, width, bias=True):
        out.append((f"{name}.weight", (width,), 1.0, 0.1))
        if bias:
            out.append((f"{name}.bias", (width,), 0.0, 0.05))

    p = vision["patch_size"]
    grid = vision["image_size"] // p
    vm = "model.vision_model"
    out.append((f"{vm}.embeddings.patch_embedding.weight", (v, 3, p, p), 0.0, 1 / math.sqrt(3 * p * p)))
    out.append((f"{vm}.embeddings.patch_embedding.bias", (v,), 0.0, 0.02))
    out.append((f"{vm}.embeddings.position_embedding.weight", (grid * grid, v), 0.0, 0.5))
    for i in range(vision["num_hidden_layers"]):
        layer = f"{vm}.encoder.layers.{i}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            linear(f"{layer}.self_attn.{proj}", v, v, gain=2.0 if proj != "out_proj" else 1.0)
        norm(f"{layer}.layer_norm1", v)
        linear(f"{layer}.mlp.fc1", vi, v)
        linear(f"{layer}.mlp.fc2", v, vi)
        norm(f"{layer}.layer_norm2", v)
    norm(f"{vm}.post_layernorm", v)

    cn = "model.connector"
    linear(f"{cn}.modality_projection.gate_proj", ti, v, bias=False)
    linear(f"{cn}.modality_projection.up_proj", ti, v, bias=False)
    linear(f"{cn}.modality_projection.down_proj", t, ti, bias=False)
    pr = f"{cn}.perceiver_resampler"
    out.append((f"{pr}.latents", (perceiver["resampler_n_latents"], t), 1.0, 0.5))
    heads, kv, hd = perceiver["resampler_n_heads"], perceiver["num_key_value_heads"], perceiver["resampler_head_dim"]
    for i in range(perceiver["resampler_depth"]):
        layer = f"{pr}.layers.{i}"
        norm(f"{layer}.input_latents_norm", t, bias=False)
        norm(f"{layer}.input_context_norm", t, bias=False)
        linear(f"{layer}.self_attn.q_proj", heads * hd, t, bias=False, gain=2.0)
        linear(f"{layer}.self_attn.k_proj", kv * hd, t, bias=False, gain=2.0)
        linear(f"{layer}.self_attn.v_proj", kv * hd, t, bias=False)
        linear(f"{layer}.self_attn.o_proj", t, heads * hd, bias=False)
        norm(f"{layer}.post_attention_layernorm", t, bias=False)
        linear(f"{layer}.mlp.gate_proj", 4 * t, t, bias=False)
        linear(f"{layer}.mlp.up_proj", 4 * t, t, bias=False)
        linear(f"{layer}.mlp.down_proj", t, 4 * t, bias=False)
    norm(f"{pr}.norm", t, bias=False)

    tm = "model.text_model"
    out.append((f"{tm}.embed_tokens.weight", (text["vocab_size"], t), 0.0, 1.0))
    heads, kv = text["num_attention_heads"], text["num_key_value_heads"]
    for i in range(text["num_hidden_layers"]):
        layer = f"{tm}.layers.{i}"
        linear(f"{layer}.self_attn.q_proj", heads * head_dim, t, bias=False, gain=2.0)
        linear(f"{layer}.self_attn.k_proj", kv * head_dim, t, bias=False, gain=2.0)
        linear(f"{layer}.self_attn.v_proj", kv * head_dim, t, bias=False)
        linear(f"{layer}.self_attn.o_proj", t, heads * head_dim, bias=False)
        linear(f"{layer}.mlp.gate_proj", ti, t, bias=False)
        linear(f"{layer}.mlp.up_proj", ti, t, bias=False)
        linear(f"{layer}.mlp.down_proj", t, ti, bias=False)
        norm(f"{layer}.input_layernorm", t, bias=False)
        norm(f"{layer}.post_attention_layernorm", t, bias=False)
    norm(f"{tm}.norm", t, bias=False)

    out.append(("score.weight", (1, t), 0.0, 20.0 / math.sqrt(t)))
    out.append(("score.bias", (1,), 50.0, 1.0))
    return out


def _tokenizer_json(vocab: dict[str, int], merges: list[tuple[str, str]], specials: dict[str, int]) -> str:
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    return tok.to_str(pretty=True)


def write_tiny_checkpoint(folder: str | Path, seed: int = SEED) -> Path:
    """Write the tiny random published-format checkpoint folder into ``folder`` (created); returns it."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = _tokenizer_vocab()
    specials = {}
    for token in (FAKE_TOKEN, IMAGE_TOKEN, END_TOKEN, PAD_TOKEN):
        specials[token] = len(vocab) + len(specials)
    config = tiny_config(len(vocab) + len(specials), specials)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    recipe = state_dict_recipe(config)
    names = [name for name, *_ in recipe]
    split = len(recipe) // 2
    shard_names = [f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors" for i in range(SHARDS)]
    weight_map, total = {}, 0
    for index, part in enumerate((recipe[:split], recipe[split:])):
        tensors = {name: torch.from_numpy(_values(name, shape, mean, std, seed)) for name, shape, mean, std in part}
        save_file(tensors, str(folder / shard_names[index]), metadata={"format": "pt"})
        for name, tensor in tensors.items():
            weight_map[name] = shard_names[index]
            total += tensor.numel() * tensor.element_size()
    index_json = {"metadata": {"total_size": total}, "weight_map": {k: weight_map[k] for k in sorted(names)}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index_json, indent=2) + "\n")

    (folder / "tokenizer.json").write_text(_tokenizer_json(vocab, merges, specials))
    added = {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                      "special": True}
             for c, i in [("<unk>", 0), ("<s>", 1), ("</s>", 2), *specials.items()]}
    tokenizer_config = {
        "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added,
        "additional_special_tokens": [FAKE_TOKEN, IMAGE_TOKEN, END_TOKEN], "bos_token": "<s>",
        "clean_up_tokenization_spaces": False, "do_image_splitting": False, "eos_token": "</s>", "legacy": False,
        "model_max_length": 1000000000000000019884624838656, "pad_token": PAD_TOKEN, "padding_side": "right",
        "processor_class": "Idefics2Processor", "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>", "use_default_system_prompt": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    special_map = {"additional_special_tokens": [FAKE_TOKEN, IMAGE_TOKEN, END_TOKEN], "bos_token": "<s>",
                   "eos_token": "</s>", "pad_token": PAD_TOKEN, "unk_token": "<unk>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    preprocessor = {
        "do_convert_rgb": True, "do_image_splitting": False, "do_normalize": True, "do_pad": True,
        "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "Idefics2ImageProcessor", "image_std": [0.5, 0.5, 0.5],
        "processor_class": "Idefics2Processor", "resample": 2, "rescale_factor": 0.00392156862745098,
        "size": {"longest_edge": 56, "shortest_edge": 28},
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    processor = {"image_seq_len": config["perceiver_config"]["resampler_n_latents"],
                 "processor_class": "Idefics2Processor"}
    (folder / "processor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
    return folder


def folder_state_sha256(folder: str | Path) -> str:
    """Digest of the folder's tensors (names, dtypes, shapes, values in sorted key order)."""
    import hashlib

    from safetensors.numpy import load_file

    digest = hashlib.sha256()
    tensors = {}
    for shard in sorted(Path(folder).glob("model-*.safetensors")):
        tensors.update(load_file(str(shard)))
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        digest.update(f"{name}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


TINY_ENTRY = "seeded_mantis_tiny"
PUBLISHED_ENTRIES = ("anime_reward_mantis_smoothness", "anime_reward_mantis_appeal")


def install_tiny_weights(weights_root: str | Path, seed: int = SEED) -> dict[str, str]:
    """Write the tiny random checkpoint folder and register it in the anibench weights folder ``weights_root``
    as the local ``hf-folder`` entry :data:`TINY_ENTRY` (for benchmarks and tests; anibench side only).

    Returns the ``weight_aliases`` that make both Mantis heads load it::

        aliases = install_tiny_weights(root)
        Runtime(device="cpu", dtype="fp32", weights_root=str(root), weight_aliases=aliases)

    Random weights: the values measure speed and check plumbing, they are never scores.
    """
    import tempfile

    from anibench.runtime.weights import WeightStore

    store = WeightStore(weights_root)
    if TINY_ENTRY not in store.entries():
        with tempfile.TemporaryDirectory() as scratch:
            folder = write_tiny_checkpoint(Path(scratch) / "checkpoint-final", seed)
            store.add_local(TINY_ENTRY, folder, format="hf-folder", description="tiny random Mantis-Idefics2 "
                            "regression checkpoint (tests/parity/weights_mantis.py; not a scorer's weights)",
                            used_by=["anime_reward.visual_smoothness", "anime_reward.visual_appeal"])
    return {entry: TINY_ENTRY for entry in PUBLISHED_ENTRIES}
