"""Tiny random diffusers Wan image-to-video folders for tests (shared reference dependencies.md §5.4 sizes).

- :func:`write_tiny_wan_base` writes a complete ``WanImageToVideoPipeline`` folder with ``save_pretrained``:
  Wan2.1-I2V-like (UMT5 + CLIP vision + one transformer with ``image_dim``) or, with ``wan22=True``,
  Wan2.2-I2V-A14B-like (no CLIP, two experts ``transformer``/``transformer_2``, ``boundary_ratio`` 0.9).
- :func:`write_tiny_transformer` writes one transformer folder with other weights, standing in for a
  converted AniSora DiT (what ``anibench.models.wan_convert.convert_transformer`` produces).

Sizes: transformer patch (1, 2, 2), 2 heads of 12, in 36 (16 noise + 4 mask + 16 image latents), out 16,
text_dim 32, freq_dim 256, ffn 32, 2 layers, ``rms_norm_across_heads``, rope_max_seq_len 32; with CLIP
image_dim 4 and the image key/value projections ``added_kv_proj_dim`` = 24 (= 2 x 12, as the real I2V
models' 5120 = 40 x 128). VAE base_dim 3, z_dim 16. UMT5 vocab 32, d_model 32. CLIP vision hidden 4, patch 1,
image 32. The tokenizer is a word-level ``tokenizers`` model built in memory (no download). The scheduler is
the real Wan I2V folders' ``UniPCMultistepScheduler`` (flow prediction, flow sigmas, flow_shift 3.0).

Weights come from ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``, so the caller's global
generator is left untouched. Every component is put in eval mode before saving.
"""

from __future__ import annotations

from pathlib import Path

import torch

from anibench.runtime.torchvision_compat import ensure_torchvision

ensure_torchvision()  # before transformers imports torchvision

from diffusers import (  # noqa: E402
    AutoencoderKLWan,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanTransformer3DModel,
)
from tokenizers import Tokenizer, models, pre_tokenizers, processors  # noqa: E402
from transformers import (  # noqa: E402
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedTokenizerFast,
    UMT5Config,
    UMT5EncoderModel,
)

HEADS, HEAD_DIM = 2, 12
CLIP_HIDDEN = 4
BOUNDARY_RATIO = 0.9
FLOW_SHIFT = 3.0
WORDS = ("<pad>", "</s>", "<unk>", "a", "cat", "dog", "runs", "jumps", "the", "anime", "girl")


def transformer_config(*, wan22: bool = False) -> dict:
    """The tiny ``WanTransformer3DModel`` config (with CLIP image inputs unless ``wan22``)."""
    config = {
        "patch_size": (1, 2, 2), "num_attention_heads": HEADS, "attention_head_dim": HEAD_DIM,
        "in_channels": 36, "out_channels": 16, "text_dim": 32, "freq_dim": 256, "ffn_dim": 32,
        "num_layers": 2, "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6,
        "rope_max_seq_len": 32,
    }
    if not wan22:
        config.update(image_dim=CLIP_HIDDEN, added_kv_proj_dim=HEADS * HEAD_DIM)
    return config


def _seeded(seed: int, build):
    """``build()`` under ``torch.manual_seed(seed)`` without touching the caller's generator, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval()


def _tokenizer() -> PreTrainedTokenizerFast:
    vocab = {word: index for index, word in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)


def _text_encoder(seed: int) -> UMT5EncoderModel:
    config = UMT5Config(vocab_size=32, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return _seeded(seed, lambda: UMT5EncoderModel(config))


def _vae(seed: int) -> AutoencoderKLWan:
    return _seeded(seed, lambda: AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                                  temperal_downsample=[False, True, True]))


def _image_encoder(seed: int) -> CLIPVisionModel:
    config = CLIPVisionConfig(hidden_size=CLIP_HIDDEN, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                              intermediate_size=16, patch_size=1)
    return _seeded(seed, lambda: CLIPVisionModel(config))


def _transformer(seed: int, wan22: bool) -> WanTransformer3DModel:
    return _seeded(seed, lambda: WanTransformer3DModel(**transformer_config(wan22=wan22)))


def write_tiny_wan_base(folder: Path, *, wan22: bool = False, seed: int = 0) -> Path:
    """Save a complete tiny diffusers Wan I2V pipeline (Wan2.1-like, or Wan2.2-A14B-like) into ``folder``."""
    parts = {
        "tokenizer": _tokenizer(),
        "text_encoder": _text_encoder(seed),
        "vae": _vae(seed + 1),
        "scheduler": UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                             flow_shift=FLOW_SHIFT),
        "transformer": _transformer(seed + 2, wan22),
    }
    if wan22:
        parts.update(transformer_2=_transformer(seed + 3, wan22), boundary_ratio=BOUNDARY_RATIO)
    else:
        parts.update(image_encoder=_image_encoder(seed + 3),
                     image_processor=CLIPImageProcessor(crop_size=32, size={"shortest_edge": 32}))
    WanImageToVideoPipeline(**parts).save_pretrained(folder)
    return Path(folder)


def write_tiny_transformer(folder: Path, *, wan22: bool = False, seed: int = 1) -> Path:
    """Save one tiny ``WanTransformer3DModel`` (weights from ``seed``) into ``folder``."""
    _transformer(seed, wan22).save_pretrained(folder)
    return Path(folder)
