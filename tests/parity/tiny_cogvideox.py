"""Tiny random CogVideoX image-to-video parts for AniSora V1 tests (sizes: shared/reference/dependencies.md §5.3).

- :func:`write_tiny_cogvideox_base`: a complete diffusers ``CogVideoXImageToVideoPipeline`` folder (T5, fast
  tokenizer built offline, CogVideoX VAE with scaling 0.7 as 5B, transformer with rotary positions and head size 16,
  ``CogVideoXDDIMScheduler``), built from configs, put in eval mode and written with ``save_pretrained``.
- :func:`write_tiny_sat_checkpoint`: a transformer of the same width in AniSora V1's SAT layout
  (``{"module": {"model.diffusion_model.<name>": tensor}}`` in ``mp_rank_00_model_states.pt``), its names and shapes
  written out here from the SAT module definitions (bilibili/Index-anisora @ 171fe63,
  anisoraV1_infer/fastercache/models/cogvideox/dit_video_concat.py and anisoraV1_infer/sat/model/transformer.py),
  independently of the converter under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

HEADS, HEAD_DIM = 2, 16
HIDDEN = HEADS * HEAD_DIM
IN_CHANNELS, OUT_CHANNELS, PATCH = 8, 4, 2
TIME_EMBED, TEXT_DIM, TEXT_LEN = 2, 32, 16
SAMPLE = {"sample_height": 4, "sample_width": 4, "sample_frames": 9}
# THUDM/CogVideoX-5b-I2V scheduler settings (zero terminal SNR, v-prediction; SNR shift 1.0 as AniSora's yaml).
SCHEDULER = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "clip_sample": False,
             "prediction_type": "v_prediction", "rescale_betas_zero_snr": True, "set_alpha_to_one": True,
             "snr_shift_scale": 1.0, "timestep_spacing": "trailing"}
WORDS = ["<pad>", "</s>", "<unk>", "a", "girl", "runs", "cat", "jumps", "anime", "city", "night"]


def write_tiny_cogvideox_base(folder: Path, seed: int = 0) -> Path:
    """A tiny CogVideoX I2V pipeline folder (32 x 32 pixels -> 4 x 4 latents, 4 latent channels)."""
    from diffusers import CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline

    torch.manual_seed(seed)
    pipe = CogVideoXImageToVideoPipeline(
        tokenizer=_tokenizer(),
        text_encoder=_text_encoder(),
        vae=_vae(),
        transformer=tiny_transformer(),
        scheduler=CogVideoXDDIMScheduler(**SCHEDULER),
    )
    folder = Path(folder)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def tiny_transformer(num_layers: int = 1) -> torch.nn.Module:
    """The tiny ``CogVideoXTransformer3DModel`` (2 heads of 16, rotary on, learned positions off), in eval mode."""
    from diffusers import CogVideoXTransformer3DModel

    return CogVideoXTransformer3DModel(
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=IN_CHANNELS,
        out_channels=OUT_CHANNELS,
        time_embed_dim=TIME_EMBED,
        text_embed_dim=TEXT_DIM,
        num_layers=num_layers,
        patch_size=PATCH,
        temporal_compression_ratio=4,
        max_text_seq_length=TEXT_LEN,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=False,
        **SAMPLE,
    ).eval()


def write_tiny_sat_checkpoint(path: Path, seed: int = 1, num_layers: int = 2, config_beside: bool = True) -> Path:
    """``path`` (a ``mp_rank_00_model_states.pt``) holding a tiny SAT DiT with seeded random values.

    Besides the trained tensors it holds what a SAT file also carries and AniSora's loading discards: the rotary
    tables ``freqs_sin/cos`` and the base transformer's unused absolute ``position_embeddings``. With
    ``config_beside`` a diffusers ``config.json`` next to it gives the tiny sample size (4 x 4 latents, 9 frames,
    text length 16) so that the converted transformer drops into :func:`write_tiny_cogvideox_base`'s pipeline.
    """
    generator = torch.Generator().manual_seed(seed)
    shapes = sat_shapes(num_layers)
    state = {"model.diffusion_model." + name: _value(name, shape, generator) for name, shape in shapes.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"module": state}, path)
    if config_beside:
        (path.parent / "config.json").write_text(json.dumps({**SAMPLE, "max_text_seq_length": TEXT_LEN}))
    return path


def sat_shapes(num_layers: int) -> dict[str, tuple[int, ...]]:
    """SAT names and shapes of the tiny DiT (no prefix), including the rotary tables and position table."""
    tokens = 3 * 2 * 2  # 9 frames -> 3 latents, 4 x 4 latents / patch 2
    shapes: dict[str, tuple[int, ...]] = {
        "time_embed.0.weight": (TIME_EMBED, HIDDEN), "time_embed.0.bias": (TIME_EMBED,),
        "time_embed.2.weight": (TIME_EMBED, TIME_EMBED), "time_embed.2.bias": (TIME_EMBED,),
        "mixins.patch_embed.proj.weight": (HIDDEN, IN_CHANNELS, PATCH, PATCH),
        "mixins.patch_embed.proj.bias": (HIDDEN,),
        "mixins.patch_embed.text_proj.weight": (HIDDEN, TEXT_DIM), "mixins.patch_embed.text_proj.bias": (HIDDEN,),
        "mixins.pos_embed.freqs_sin": (tokens, HEAD_DIM), "mixins.pos_embed.freqs_cos": (tokens, HEAD_DIM),
        "transformer.position_embeddings.weight": (64, HIDDEN),
        "transformer.final_layernorm.weight": (HIDDEN,), "transformer.final_layernorm.bias": (HIDDEN,),
        "mixins.final_layer.norm_final.weight": (HIDDEN,), "mixins.final_layer.norm_final.bias": (HIDDEN,),
        "mixins.final_layer.linear.weight": (PATCH * PATCH * OUT_CHANNELS, HIDDEN),
        "mixins.final_layer.linear.bias": (PATCH * PATCH * OUT_CHANNELS,),
        "mixins.final_layer.adaLN_modulation.1.weight": (2 * HIDDEN, TIME_EMBED),
        "mixins.final_layer.adaLN_modulation.1.bias": (2 * HIDDEN,),
    }
    for i in range(num_layers):
        layer = f"transformer.layers.{i}."
        for norm in ("input_layernorm", "post_attention_layernorm"):
            shapes[f"{layer}{norm}.weight"] = shapes[f"{layer}{norm}.bias"] = (HIDDEN,)
        linears = {
            "attention.query_key_value": (3 * HIDDEN, HIDDEN),
            "attention.dense": (HIDDEN, HIDDEN),
            "mlp.dense_h_to_4h": (4 * HIDDEN, HIDDEN),
            "mlp.dense_4h_to_h": (HIDDEN, 4 * HIDDEN),
        }
        for name, (rows, cols) in linears.items():
            shapes[f"{layer}{name}.weight"], shapes[f"{layer}{name}.bias"] = (rows, cols), (rows,)
        adaln = "mixins.adaln_layer."
        shapes[f"{adaln}adaLN_modulations.{i}.1.weight"] = (12 * HIDDEN, TIME_EMBED)
        shapes[f"{adaln}adaLN_modulations.{i}.1.bias"] = (12 * HIDDEN,)
        for norm in ("query_layernorm_list", "key_layernorm_list"):
            shapes[f"{adaln}{norm}.{i}.weight"] = shapes[f"{adaln}{norm}.{i}.bias"] = (HEAD_DIM,)
    return shapes


def _value(name: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(shape, generator=generator)
    is_norm_scale = "norm" in name and name.endswith(".weight")
    return 1.0 + 0.1 * noise if is_norm_scale else 0.2 * noise


def _tokenizer():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    vocab = {word: index for index, word in enumerate(WORDS)}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    backend.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=TEXT_LEN
    )


def _text_encoder():
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=32, d_model=TEXT_DIM, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5EncoderModel(config).eval()


def _vae():
    from diffusers import AutoencoderKLCogVideoX

    return AutoencoderKLCogVideoX(
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=OUT_CHANNELS,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
        scaling_factor=0.7,
    ).eval()
