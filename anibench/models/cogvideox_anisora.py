"""AniSora V1 (a CogVideoX-5B image-to-video fine-tune) on diffusers: SAT converter and multi-guide pipeline.

Reference: bilibili/Index-anisora @ 171fe63409792bf7f0bd9d825f83c20fe8ec5477 (cited below as ``[IA] path``),
``anisoraV1_infer/fastercache_sample_cogvideox_sp.py`` (inference), ``anisoraV1_infer/configs/cogvideox/
cogvideox_5b_720_169_2.yaml`` (architecture and sampler), ``anisoraV1_infer/fastercache/models/cogvideox/
dit_video_concat.py`` (the SAT DiT) and ``anisoraV1_infer/sat/training/model_io.py`` (checkpoint loading).
The SAT -> diffusers key names follow the facts of huggingface/diffusers ``scripts/convert_cogvideox_to_diffusers.py``
(the CogVideoX-5B-I2V mapping of commit 8336405e; later commits only add the 1.5 ``ofs_embed`` keys).

- :func:`convert_transformer`: SAT ``mp_rank_00_model_states.pt`` -> diffusers ``CogVideoXTransformer3DModel`` folder.
- :class:`AniSoraCogVideoXPipeline`: ``CogVideoXImageToVideoPipeline`` whose ``prepare_latents`` writes one to three
  guide latents at AniSora's latent slots (:func:`v1_latent_slots`).
- :func:`fit_v1_image`, :func:`v1_guide_frames`, :func:`snap_num_frames`, :func:`load_pipeline`;
  :func:`use_v1_sampler` + :data:`V1_SAMPLING` for AniSora's published sampler settings.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    CogVideoXDDIMScheduler,
    CogVideoXDPMScheduler,
    CogVideoXImageToVideoPipeline,
    CogVideoXTransformer3DModel,
)
from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video import retrieve_latents
from diffusers.pipelines.cogvideo.pipeline_output import CogVideoXPipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from transformers import T5EncoderModel, T5Tokenizer

from anibench.errors import InputError
from anibench.models.checkpoints import check_layout, read_torch_state_dict, tensors_only

CONVERTER_VERSION = "1"

SAT_FILE = "mp_rank_00_model_states.pt"
SAT_PREFIX = "model.diffusion_model."
# Parts of SATVideoDiffusionEngine that are not the DiT (VAE, T5); the diffusers base folder supplies them.
ENGINE_PREFIXES = ("first_stage_model.", "conditioner.")
# Tensors the SAT checkpoint may hold that AniSora's inference never reads (see read_sat_state).
DROPPED_KEYS = (
    "mixins.pos_embed.freqs_sin",
    "mixins.pos_embed.freqs_cos",
    "mixins.pos_embed.pos_embedding",
    "transformer.position_embeddings.weight",
)
# [IA] configs/cogvideox/cogvideox_5b_720_169_2.yaml: latent_height 90, latent_width 160 (720 x 1280 pixels),
# text_length 226; AniSora samples 49 frames (13 latents) or 97 (25).
ANISORA_LATENT_HEIGHT, ANISORA_LATENT_WIDTH = 90, 160
ANISORA_NUM_FRAMES = 49
TEXT_LENGTH = 226
MAX_GUIDES = 3
# AniSora V1's sampling ([IA] configs/cogvideox/cogvideox_5b_720_169_2.yaml sampler_config): 50 steps, DynamicCFG
# scale 6, exp 5. diffusers' use_dynamic_cfg computes 1 + s (1 - cos(pi ((N - t) / N) ** 5)) / 2 with t the DDPM
# timestep, as SAT does (sampling.py VideoDDIMSampler.denoise: step_index = num_steps - timestep; guiders.py
# DynamicCFG). Use with use_v1_sampler().
V1_SAMPLING = {"num_inference_steps": 50, "guidance_scale": 6.0, "use_dynamic_cfg": True}
ADALN_CHUNKS = 12  # shift/scale/gate for attention and MLP, image then text: dit_video_concat.py AdaLNMixin


# ---------------------------------------------------------------------------------------------------------------
# Guide placement


def v1_latent_slots(num_guides: int, num_latent_frames: int) -> tuple[int, ...]:
    """Latent frame of each guide, as AniSora concatenates them ([IA] fastercache_sample_cogvideox_sp.py l.690-750).

    1 guide -> ``(0,)``; 2 -> ``(0, T-1)`` (``[image, zeros(T-2), image_2]``); 3 -> ``(0, 1+(T-3)//2, T-1)``
    (``[image, zeros((T-3)//2), image_mid, zeros(T-3-(T-3)//2), image_last]``), with ``T`` latent frames.
    """
    if not 1 <= num_guides <= MAX_GUIDES:
        raise InputError(f"AniSora V1 takes 1 to {MAX_GUIDES} guide images, got {num_guides}")
    if num_latent_frames < num_guides:
        raise InputError(f"{num_guides} guides need at least {num_guides} latent frames, got {num_latent_frames}")
    last = num_latent_frames - 1
    return {1: (0,), 2: (0, last), 3: (0, 1 + (num_latent_frames - 3) // 2, last)}[num_guides]


def v1_guide_frames(num_guides: int, num_frames: int) -> tuple[int, ...]:
    """Pixel frame of each guide slot: latent ``l`` -> frame 0 if ``l == 0`` else ``4 l`` (49 frames -> 0, 24, 48).

    CogVideoX's causal VAE turns frame 0 into latent 0 and frames ``4l-3 .. 4l`` into latent ``l``; a guide encoded
    alone as a one-frame clip and written at slot ``l`` stands for the group's last frame ``4 l``.
    Latent frames ``T = (num_frames - 1) // 4 + 1`` as in diffusers' CogVideoX pipelines.
    """
    num_latent_frames = (num_frames - 1) // 4 + 1
    return tuple(4 * slot for slot in v1_latent_slots(num_guides, num_latent_frames))


def snap_num_frames(n: int) -> int:
    """Nearest ``4k + 1`` frame count (>= 5; ties go down) for CogVideoX 1.0 models such as AniSora V1.

    CogVideoX 1.0 (and AniSora V1) compress time by 4 with a causal first frame, so ``F = 4k + 1``; AniSora samples
    49 (13 latents) or 97 (25). CogVideoX 1.5 uses a temporal patch of 2 and wants an even latent count
    (``F = 8k + 1``, 81 or 161); diffusers pads the latents itself there. This function is for the 1.0 rule only.
    """
    if n < 1:
        raise InputError(f"frame count must be positive, got {n}")
    return max(5, 4 * round((n - 1) / 4 - 1e-9) + 1)


def fit_v1_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """AniSora's ``resize_for_rectangle_crop(..., reshape_mode='center')`` ([IA] fastercache_sample_cogvideox_sp.py
    l.104-130) of one uint8 RGB image: float ``[0, 1]`` (``ToTensor``), bicubic resize (antialiased, as torchvision
    resizes tensors) so that the image covers ``height x width`` (the side that overflows gets
    ``int(side * scale)``), then a centre crop at ``top = (h - height) // 2``, ``left = (w - width) // 2``.

    Returns float32 ``(height, width, 3)`` in AniSora's ``[0, 1]`` scale, not clamped (bicubic may overshoot
    slightly, as in AniSora, which maps it to ``[-1, 1]`` by ``x * 2 - 1`` without clamping).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"a guide image must be uint8 H x W x 3, got {image.dtype} {image.shape}")
    src_h, src_w = image.shape[:2]
    if src_w / src_h > width / height:
        size = (height, int(src_w * height / src_h))
    else:
        size = (int(src_h * width / src_w), width)
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    resized = torch.nn.functional.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=True)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return resized[0, :, top : top + height, left : left + width].permute(1, 2, 0).numpy().astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Pipeline


class AniSoraCogVideoXPipeline(CogVideoXImageToVideoPipeline):
    """CogVideoX image-to-video with AniSora V1's first / first-last / first-middle-last guides.

    ``prepare_latents`` is the one changed step: each guide is VAE-encoded alone as a one-frame clip (a sample of the latent
    distribution, as AniSora's ``encode_first_stage``), multiplied by the VAE scaling factor (0.7 for 5B) and
    written at its slot of :func:`v1_latent_slots`; the other latent frames are zero. diffusers concatenates the
    same image latents to both classifier-free-guidance branches, as AniSora does (``uc["concat"] = image``).
    CogVideoX 1.5 checkpoints (temporal patches) are refused: AniSora V1 is CogVideoX 1.0. ``__call__`` takes
    ``guides=`` and fits them (:func:`fit_v1_image`, ``x * 2 - 1``) itself, so the video processor passes them on
    unchanged (:class:`_FittedGuides`).
    """

    def __init__(
        self,
        tokenizer: T5Tokenizer,
        text_encoder: T5EncoderModel,
        vae: AutoencoderKLCogVideoX,
        transformer: CogVideoXTransformer3DModel,
        scheduler: CogVideoXDDIMScheduler | CogVideoXDPMScheduler,
    ) -> None:
        super().__init__(tokenizer, text_encoder, vae, transformer, scheduler)
        self.video_processor = _FittedGuides(vae_scale_factor=self.vae_scale_factor_spatial)

    def prepare_latents(
        self,
        image: torch.Tensor,
        batch_size: int = 1,
        num_channels_latents: int = 16,
        num_frames: int = 13,
        height: int = 60,
        width: int = 90,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise and guide latents ``(B, T, C, h, w)``; ``image`` holds the guides ``(G, 3, H, W)`` in [-1, 1]."""
        if self.transformer.config.patch_size_t is not None:
            raise InputError("AniSoraCogVideoXPipeline is for CogVideoX 1.0 transformers (AniSora V1), not 1.5")
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"{len(generator)} generators for a batch of {batch_size}")
        num_latent_frames = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        shape = (
            batch_size,
            num_latent_frames,
            num_channels_latents,
            height // self.vae_scale_factor_spatial,
            width // self.vae_scale_factor_spatial,
        )
        slots = v1_latent_slots(image.shape[0], num_latent_frames)
        generators = generator if isinstance(generator, list) else [generator] * batch_size
        image_latents = torch.zeros(shape, device=device, dtype=dtype)
        for item, item_generator in enumerate(generators):
            for guide, slot in zip(image, slots):
                image_latents[item, slot] = self._guide_latent(guide, item_generator).to(dtype)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        else:
            latents = latents.to(device)
        return latents * self.scheduler.init_noise_sigma, image_latents

    def _guide_latent(self, guide: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One guide ``(3, H, W)`` as a scaled latent frame ``(C, h, w)``: encode a one-frame clip, sample, scale."""
        encoded = self.vae.encode(guide[None, :, None])
        latent = retrieve_latents(encoded, generator)[0, :, 0]
        return self.vae_scaling_factor_image * latent

    def __call__(  # type: ignore[override]
        self, *, guides: Sequence[np.ndarray], **kwargs: object
    ) -> CogVideoXPipelineOutput | tuple:
        """Generate from 1-3 uint8 RGB guides (first; first, last; first, middle, last); other arguments as
        ``CogVideoXImageToVideoPipeline.__call__`` (``image`` is built here). Each guide is fitted with
        :func:`fit_v1_image` to ``height x width`` (default: the transformer's sample size, 720 x 1280 for AniSora)."""
        if "image" in kwargs:
            raise TypeError("pass the guide images as guides=, not image=")
        if not 1 <= len(guides) <= MAX_GUIDES:
            raise InputError(f"AniSora V1 takes 1 to {MAX_GUIDES} guide images, got {len(guides)}")
        height = kwargs.get("height") or self.transformer.config.sample_height * self.vae_scale_factor_spatial
        width = kwargs.get("width") or self.transformer.config.sample_width * self.vae_scale_factor_spatial
        fitted = np.stack([fit_v1_image(guide, height, width) for guide in guides])
        image = torch.from_numpy(fitted).permute(0, 3, 1, 2) * 2.0 - 1.0  # AniSora: image * 2.0 - 1.0, no clamp
        return super().__call__(image=image, **{**kwargs, "height": height, "width": width})


def use_v1_sampler(pipe: CogVideoXImageToVideoPipeline) -> None:
    """Give ``pipe`` AniSora V1's sampler: ``CogVideoXDPMScheduler`` (the stochastic DPM++ 2M step of SAT's
    ``VPSDEDPMPP2MSampler``) on the zero-terminal-SNR DDPM schedule with SNR shift 1.0 (``ZeroSNRDDPMDiscretization``,
    ``shift_scale: 1.0``), v-prediction (SAT's ``VideoScaling`` denoiser) and trailing timesteps 999, 979, ... (SAT's
    ``generate_roughly_equally_spaced_steps``: ``linspace(999, 0, N, endpoint=False).astype(int)``)."""
    pipe.scheduler = CogVideoXDPMScheduler.from_config(
        pipe.scheduler.config,
        snr_shift_scale=1.0,
        rescale_betas_zero_snr=True,
        prediction_type="v_prediction",
        timestep_spacing="trailing",
    )


class _FittedGuides(VideoProcessor):
    """The pipeline's video processor: guides arrive already fitted and in [-1, 1] from ``__call__`` and pass
    unchanged. (diffusers' own preprocessing maps [0, 1] to [-1, 1] only when no value is negative, which a bicubic
    undershoot breaks; decoding keeps diffusers' postprocessing.)"""

    def preprocess(self, image: torch.Tensor, height: int | None = None, width: int | None = None, **kwargs: object):
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or tuple(image.shape[-2:]) != (height, width):
            raise TypeError("AniSoraCogVideoXPipeline takes guide images through guides=")
        return image


def load_pipeline(
    base: str | Path,
    *,
    transformer: str | Path | None = None,
    dtype: torch.dtype | None = None,
) -> AniSoraCogVideoXPipeline:
    """:class:`AniSoraCogVideoXPipeline` from a diffusers CogVideoX I2V folder or hub id (e.g. CogVideoX-5b-I2V), its
    transformer replaced by a converted AniSora folder (:func:`convert_transformer`) when ``transformer`` is given."""
    replaced = {}
    if transformer is not None:
        replaced["transformer"] = CogVideoXTransformer3DModel.from_pretrained(str(transformer), dtype=dtype)
    return AniSoraCogVideoXPipeline.from_pretrained(str(base), dtype=dtype, **replaced)


# ---------------------------------------------------------------------------------------------------------------
# SAT checkpoint -> diffusers CogVideoXTransformer3DModel


def convert_transformer(source: Path, target_dir: Path) -> None:
    """Convert AniSora V1's SAT DiT checkpoint to a diffusers ``CogVideoXTransformer3DModel`` folder in ``target_dir``.

    ``source`` is ``mp_rank_00_model_states.pt`` (a dict ``{"module": state_dict}``, read with
    ``torch.load(weights_only=True)``) or a folder holding exactly one such file (e.g. ``transformer/1/``).
    The architecture comes from the tensor shapes (:func:`sat_config`), overridden by a diffusers ``config.json``
    beside the file when there is one. Every tensor is checked (names and shapes, :func:`sat_layout`); renaming
    follows :func:`sat_to_diffusers`. Written with ``save_pretrained`` (safetensors + ``config.json``) in the
    checkpoint's own dtype (the 5B release trains in bf16: a float32 copy would double its ~11 GB).
    """
    path = find_sat_file(Path(source))
    state = read_sat_state(path)
    config = sat_config(state, path)
    config.update(_config_beside(path))
    check_layout(state, sat_layout(config), path, "AniSora V1 (CogVideoX SAT) DiT")
    converted = sat_to_diffusers(state)
    with torch.device("meta"):
        model = CogVideoXTransformer3DModel(**config)
    try:
        model.load_state_dict(converted, strict=True, assign=True)
    except RuntimeError as exc:
        raise InputError(f"the SAT DiT does not fit its inferred config {config}: {exc}", path=path) from exc
    Path(target_dir).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target_dir), safe_serialization=True)


def find_sat_file(source: Path) -> Path:
    """``source`` itself when it is a file, else the single ``mp_rank_00_model_states.pt`` below the folder."""
    if source.is_file():
        return source
    found = sorted(source.rglob(SAT_FILE)) if source.is_dir() else []
    if len(found) != 1:
        raise InputError(f"expected one {SAT_FILE} below the folder, found {len(found)}: {found[:5]}", path=source)
    return found[0]


def read_sat_state(path: Path) -> dict[str, torch.Tensor]:
    """The DiT tensors of a SAT checkpoint, without the ``model.diffusion_model.`` prefix.

    Unwraps ``{"module": ...}`` (SAT/DeepSpeed) or ``{"state_dict": ...}``; leaves out the VAE and T5 parts of the
    engine (``first_stage_model.``, ``conditioner.``) and :data:`DROPPED_KEYS`, which AniSora's inference never
    reads: SAT deletes the rotary tables ``freqs_sin/cos`` before loading and loads non-strictly ([IA]
    sat/training/model_io.py l.308-320), and AniSora's config builds neither a learned position table
    (``learnable_pos_embed`` unset) nor the base transformer's absolute ``position_embeddings`` (rotary replaces
    them). Any other key without the DiT prefix is an error.
    """
    loaded = read_torch_state_dict(path, "AniSora V1 SAT")
    for wrapper in ("module", "state_dict"):
        if isinstance(loaded.get(wrapper), Mapping):
            loaded = dict(loaded[wrapper])
    state = tensors_only(loaded, path, "AniSora V1 SAT")
    foreign = [key for key in state if not key.startswith(SAT_PREFIX) and not key.startswith(ENGINE_PREFIXES)]
    if foreign:
        raise InputError(
            f"not a CogVideoX SAT checkpoint: keys without the {SAT_PREFIX!r} prefix: {foreign[:5]}", path=path
        )
    stripped = {key[len(SAT_PREFIX) :]: value for key, value in state.items() if key.startswith(SAT_PREFIX)}
    return {key: value for key, value in stripped.items() if key not in DROPPED_KEYS}


def sat_config(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, object]:
    """diffusers ``CogVideoXTransformer3DModel`` config of a SAT DiT, read from its tensor shapes.

    hidden size, input channels and patch from ``mixins.patch_embed.proj`` (a 4-D conv: CogVideoX 1.0), head size
    from the q layernorm (64 for 5B: 48 heads), text width from ``text_proj`` (4096, T5-XXL), time embedding width
    from ``time_embed.0`` (512), output channels from the final linear. Fixed values of AniSora's config ([IA]
    configs/cogvideox/cogvideox_5b_720_169_2.yaml): rotary positions, no learned positions, text length 226,
    sample size 90 x 160 latents (720 x 1280, the size the rotary table is built for) and 49 frames.
    """
    needed = ["mixins.patch_embed.proj.weight", "mixins.patch_embed.text_proj.weight", "time_embed.0.weight",
              "mixins.final_layer.linear.weight", "mixins.adaln_layer.query_layernorm_list.0.weight"]
    missing = [key for key in needed if key not in state]
    if missing:
        raise InputError(f"not an AniSora V1 / CogVideoX SAT DiT: missing {SAT_PREFIX}{missing[0]} ...", path=path)
    proj = state["mixins.patch_embed.proj.weight"]
    if proj.ndim != 4:
        raise InputError("a CogVideoX 1.5 SAT DiT (temporal patches); AniSora V1 is CogVideoX 1.0", path=path)
    hidden, in_channels, patch = proj.shape[0], proj.shape[1], proj.shape[2]
    head_dim = state["mixins.adaln_layer.query_layernorm_list.0.weight"].shape[0]
    return {
        "num_attention_heads": hidden // head_dim,
        "attention_head_dim": head_dim,
        "in_channels": in_channels,
        "out_channels": state["mixins.final_layer.linear.weight"].shape[0] // patch**2,
        "time_embed_dim": state["time_embed.0.weight"].shape[0],
        "text_embed_dim": state["mixins.patch_embed.text_proj.weight"].shape[1],
        "num_layers": _count_layers(state),
        "patch_size": patch,
        "sample_height": ANISORA_LATENT_HEIGHT,
        "sample_width": ANISORA_LATENT_WIDTH,
        "sample_frames": ANISORA_NUM_FRAMES,
        "max_text_seq_length": TEXT_LENGTH,
        "use_rotary_positional_embeddings": True,
        "use_learned_positional_embeddings": False,
    }


def sat_layout(config: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    """Every tensor of a SAT DiT with this config (after :func:`read_sat_state`) and its shape.

    From the module definitions of [IA] fastercache/models/cogvideox/dit_video_concat.py (ImagePatchEmbeddingMixin,
    AdaLNMixin with qk_ln, FinalLayerMixin, time_embed) and sat/model/transformer.py (BaseTransformerLayer: pre-norm,
    fused query_key_value, 4x GELU MLP, final_layernorm).
    """
    head, heads = int(config["attention_head_dim"]), int(config["num_attention_heads"])
    hidden, emb, patch = head * heads, int(config["time_embed_dim"]), int(config["patch_size"])
    out = patch * patch * int(config["out_channels"])
    layout: dict[str, tuple[int, ...]] = {
        "time_embed.0.weight": (emb, hidden), "time_embed.0.bias": (emb,),
        "time_embed.2.weight": (emb, emb), "time_embed.2.bias": (emb,),
        "mixins.patch_embed.proj.weight": (hidden, int(config["in_channels"]), patch, patch),
        "mixins.patch_embed.proj.bias": (hidden,),
        "mixins.patch_embed.text_proj.weight": (hidden, int(config["text_embed_dim"])),
        "mixins.patch_embed.text_proj.bias": (hidden,),
        "transformer.final_layernorm.weight": (hidden,), "transformer.final_layernorm.bias": (hidden,),
        "mixins.final_layer.norm_final.weight": (hidden,), "mixins.final_layer.norm_final.bias": (hidden,),
        "mixins.final_layer.linear.weight": (out, hidden), "mixins.final_layer.linear.bias": (out,),
        "mixins.final_layer.adaLN_modulation.1.weight": (2 * hidden, emb),
        "mixins.final_layer.adaLN_modulation.1.bias": (2 * hidden,),
    }
    for i in range(int(config["num_layers"])):
        layout.update(_sat_layer_layout(i, hidden, head, emb))
    return layout


def _sat_layer_layout(i: int, hidden: int, head: int, emb: int) -> dict[str, tuple[int, ...]]:
    block, adaln = f"transformer.layers.{i}.", "mixins.adaln_layer."
    shapes: dict[str, tuple[int, ...]] = {
        "input_layernorm.weight": (hidden,), "input_layernorm.bias": (hidden,),
        "attention.query_key_value.weight": (3 * hidden, hidden), "attention.query_key_value.bias": (3 * hidden,),
        "attention.dense.weight": (hidden, hidden), "attention.dense.bias": (hidden,),
        "post_attention_layernorm.weight": (hidden,), "post_attention_layernorm.bias": (hidden,),
        "mlp.dense_h_to_4h.weight": (4 * hidden, hidden), "mlp.dense_h_to_4h.bias": (4 * hidden,),
        "mlp.dense_4h_to_h.weight": (hidden, 4 * hidden), "mlp.dense_4h_to_h.bias": (hidden,),
    }
    layout = {block + key: shape for key, shape in shapes.items()}
    layout.update({
        f"{adaln}adaLN_modulations.{i}.1.weight": (ADALN_CHUNKS * hidden, emb),
        f"{adaln}adaLN_modulations.{i}.1.bias": (ADALN_CHUNKS * hidden,),
        f"{adaln}query_layernorm_list.{i}.weight": (head,), f"{adaln}query_layernorm_list.{i}.bias": (head,),
        f"{adaln}key_layernorm_list.{i}.weight": (head,), f"{adaln}key_layernorm_list.{i}.bias": (head,),
    })
    return layout


# SAT name (after the prefix) -> diffusers name, for tensors copied as they are.
_GLOBAL_RENAMES = {
    "time_embed.0": "time_embedding.linear_1",
    "time_embed.2": "time_embedding.linear_2",
    "mixins.patch_embed.proj": "patch_embed.proj",
    "mixins.patch_embed.text_proj": "patch_embed.text_proj",
    "transformer.final_layernorm": "norm_final",
    "mixins.final_layer.norm_final": "norm_out.norm",
    "mixins.final_layer.linear": "proj_out",
    "mixins.final_layer.adaLN_modulation.1": "norm_out.linear",
}
_LAYER_RENAMES = {
    "input_layernorm": "norm1.norm",
    "post_attention_layernorm": "norm2.norm",
    "attention.dense": "attn1.to_out.0",
    "mlp.dense_h_to_4h": "ff.net.0.proj",
    "mlp.dense_4h_to_h": "ff.net.2",
}


def sat_to_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename (and split) SAT DiT tensors into ``CogVideoXTransformer3DModel`` names.

    - ``attention.query_key_value`` -> ``attn1.to_q / to_k / to_v``: thirds along the output dimension.
    - ``adaLN_modulations.i.1`` (12 chunks of ``hidden``: shift, scale, gate of attention, then of the MLP, for the
      video tokens, then the same six for the text tokens) -> ``norm1.linear`` = chunks 0-2 and 6-8 (attention:
      video, text), ``norm2.linear`` = chunks 3-5 and 9-11 (MLP).
    - ``query/key_layernorm_list.i`` -> ``attn1.norm_q / norm_k``; the rest renamed one to one (tables above).
    """
    converted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        converted.update(_convert_one(key, value))
    return converted


def _convert_one(key: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    name, kind = key.rsplit(".", 1)
    if name in _GLOBAL_RENAMES:
        return {f"{_GLOBAL_RENAMES[name]}.{kind}": value}
    parts = name.split(".")
    if name.startswith("transformer.layers."):
        block, inner = f"transformer_blocks.{parts[2]}.", ".".join(parts[3:])
        if inner == "attention.query_key_value":
            q, k, v = value.chunk(3, dim=0)
            return {f"{block}attn1.to_q.{kind}": q, f"{block}attn1.to_k.{kind}": k, f"{block}attn1.to_v.{kind}": v}
        return {f"{block}{_LAYER_RENAMES[inner]}.{kind}": value}
    block = f"transformer_blocks.{parts[3]}."
    if parts[2] == "adaLN_modulations":
        chunks = value.chunk(ADALN_CHUNKS, dim=0)
        return {
            f"{block}norm1.linear.{kind}": torch.cat(chunks[0:3] + chunks[6:9]),
            f"{block}norm2.linear.{kind}": torch.cat(chunks[3:6] + chunks[9:12]),
        }
    norm = {"query_layernorm_list": "norm_q", "key_layernorm_list": "norm_k"}[parts[2]]
    return {f"{block}attn1.{norm}.{kind}": value}


def _count_layers(state: Mapping[str, torch.Tensor]) -> int:
    parts = (key.split(".") for key in state if key.startswith("transformer.layers."))
    indices = {int(part[2]) for part in parts if part[2].isdigit()}
    return max(indices) + 1 if indices else 0


def _config_beside(path: Path) -> dict[str, object]:
    """The ``CogVideoXTransformer3DModel`` arguments of a diffusers ``config.json`` next to the SAT file (or none)."""
    beside = path.parent / "config.json"
    if not beside.is_file():
        return {}
    try:
        config = json.loads(beside.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable transformer config beside the SAT checkpoint: {exc}", path=beside) from exc
    if not isinstance(config, dict):
        raise InputError("the config.json beside the SAT checkpoint is not a JSON object", path=beside)
    accepted = inspect.signature(CogVideoXTransformer3DModel.__init__).parameters
    return {key: value for key, value in config.items() if key in accepted and key != "self"}
