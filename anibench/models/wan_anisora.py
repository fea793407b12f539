"""AniSora V2/V3/V3.1/V3.2/anymask generation on diffusers' Wan image-to-video pipeline.

AniSora's Wan generators (bilibili/Index-anisora @ 171fe63) feed the DiT the same input as Wan I2V:
``cat(noise 16, mask 4, VAE latents 16)`` per latent frame, with CLIP features of one image for Wan2.1
bases and two experts without CLIP for the Wan2.2 base (V3.2). They differ from stock Wan I2V only in
*which* pixels are conditioned:

- V3/V3.1/V3.2 (``anisoraV3/wan/image2video_any.py``, ``anisoraV3.2/wan/image2video.py``): guide images at
  arbitrary (snapped) frames of a zero video, the mask 1 on those whole frames (:func:`keyframe_condition`);
- anymask (``anisora_anymask/wan/image2video_any_mask1_spa.py`` and ``..._any_mask1.py``): known pixels on
  every frame, the mask 1 there (:func:`motion_mask_condition`);
- V2 is plain first-frame I2V; its OSS variant (``anisoraV2_gpu/wan/image2video_mdinfer_oss_stu.py``) runs
  16 Euler steps picked from a 96-step schedule (:data:`OSS_STEPS`, :func:`oss_sigmas`).

:class:`AniSoraWanPipeline` overrides only ``prepare_latents`` of ``WanImageToVideoPipeline`` (diffusers
0.42.1) and adds a thin ``__call__`` taking a :class:`WanCondition`; it never passes diffusers' ``last_image``,
which crashes on Wan2.1-I2V-like transformers (shared reference generators.md §1.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from anibench.runtime.torchvision_compat import ensure_torchvision

ensure_torchvision()  # before diffusers' pipelines import transformers (which imports torchvision)

from diffusers import (  # noqa: E402
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanTransformer3DModel,
)
from diffusers.pipelines.wan.pipeline_wan_i2v import retrieve_latents  # noqa: E402
from diffusers.utils.torch_utils import get_module_execution_device, randn_tensor  # noqa: E402

VAE_TEMPORAL, VAE_SPATIAL, PATCH = 4, 8, 2
# anisoraV2_gpu/wan/image2video_mdinfer_oss_stu.py: the 16 student steps, indices into a 96-step teacher schedule.
OSS_STEPS = (2, 5, 11, 21, 36, 49, 63, 71, 80, 84, 87, 89, 92, 94, 95, 96)
OSS_TEACHER_STEPS = 96
SOLVERS = ("unipc", "euler")
MASK_MODES = ("nearest", "bicubic")


@dataclass(frozen=True)
class WanCondition:
    """What AniSora conditions one clip on, at pixel rate.

    ``video`` (B, 3, F, H, W) float32 in [-1, 1] (bicubic resizing may overshoot slightly, as in AniSora),
    zeros where unknown; ``known`` (B, F, H, W) float32, 1 where given; ``clip_image`` the uint8 H x W x 3
    image CLIP sees (the first guide) or None (Wan2.2 bases have no CLIP); ``mask_mode`` how ``known`` is
    downsampled to the latent grid (:func:`latent_mask`).
    """

    video: torch.Tensor
    known: torch.Tensor
    clip_image: np.ndarray | None
    mask_mode: str = "nearest"


def _to_unit_range(image: np.ndarray) -> torch.Tensor:
    """uint8 H x W x 3 -> (1, 3, H, W) float32 ``x / 255 * 2 - 1`` (torchvision ``to_tensor`` then ``(x-.5)/.5``)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 H x W x 3 image, got {image.dtype} {image.shape}")
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255.0)  # a copy: guides are read-only
    return pixels.sub(0.5).div(0.5)[None]


def _check_size(num_frames: int, height: int, width: int) -> None:
    if num_frames < 1 or (num_frames - 1) % VAE_TEMPORAL:
        raise ValueError(f"num_frames must be 4k+1, got {num_frames}")
    if height % (VAE_SPATIAL * PATCH) or width % (VAE_SPATIAL * PATCH):
        raise ValueError(f"height and width must be multiples of {VAE_SPATIAL * PATCH}, got {height}x{width}")


def keyframe_condition(images: Sequence[np.ndarray], frames: Sequence[int], num_frames: int, height: int,
                       width: int) -> WanCondition:
    """Guide images at given frames (AniSora V3/V3.1/V3.2).

    ``anisoraV3/wan/image2video_any.py`` (Index-anisora @ 171fe63): each image becomes
    ``to_tensor(img).sub(.5).div(.5)``, is resized with ``F.interpolate(mode='bicubic')`` (align_corners False,
    no antialias) to (height, width) and placed at its frame of a zero (3, F, H, W) video; the mask is 1 on
    those whole frames. ``frames`` are taken as given (the caller has snapped them to AniSora's
    ``round(int((F-1)*pos)/8)*8``). Two images on one frame: the later wins, as in AniSora. CLIP sees
    ``images[0]``.
    """
    if not images or len(images) != len(frames):
        raise ValueError(f"need one frame per image, got {len(images)} images and {len(frames)} frames")
    _check_size(num_frames, height, width)
    video = torch.zeros(1, 3, num_frames, height, width)
    known = torch.zeros(1, num_frames, height, width)
    for image, frame in zip(images, frames):
        if not 0 <= frame < num_frames:
            raise ValueError(f"guide frame {frame} is outside 0..{num_frames - 1}")
        video[0, :, frame] = F.interpolate(_to_unit_range(image), size=(height, width), mode="bicubic")[0]
        known[0, frame] = 1.0
    return WanCondition(video=video, known=known, clip_image=images[0])


def _forced_known_frames(num_frames: int, temporal: bool) -> list[int]:
    """Frames AniSora anymask always marks known: 0 (spatial script), every 8th (temporal script)."""
    return list(range(0, num_frames, 8)) if temporal else [0]


def motion_mask_condition(first: np.ndarray, keep: np.ndarray, num_frames: int, height: int, width: int, *,
                          temporal: bool = False) -> WanCondition:
    """Known pixels on every frame, the rest generated (AniSora anymask).

    ``anisora_anymask/wan/image2video_any_mask1_spa.py`` (Index-anisora @ 171fe63): the binary keep mask
    (mask video > 0) gets frame 0 set to 1, is resized ``mode='nearest'`` to (height, width); the source
    frames, resized ``nearest`` too, are multiplied by it and VAE-encoded; the latent mask is the keep mask
    resized ``nearest`` to the latent grid. ``temporal=True`` follows ``image2video_any_mask1.py``: every 8th frame
    is fully known and the latent mask is resized ``bicubic`` (so it is not binary).

    Difference: AniSora takes the known pixels from a source video; we have none, so every frame's known
    pixels come from ``first``. ``keep`` is (F, h, w) bool at any resolution, True = known.
    """
    _check_size(num_frames, height, width)
    if keep.ndim != 3 or keep.shape[0] != num_frames:
        raise ValueError(f"keep must be (num_frames={num_frames}, H, W), got {keep.shape}")
    mask = torch.from_numpy(np.asarray(keep, dtype=bool)).float()
    mask[_forced_known_frames(num_frames, temporal)] = 1.0
    known = F.interpolate(mask[None], size=(height, width), mode="nearest")
    pixels = F.interpolate(_to_unit_range(first), size=(height, width), mode="nearest")
    video = pixels[:, :, None] * known[:, None]
    return WanCondition(video=video, known=known, clip_image=first, mask_mode="bicubic" if temporal else "nearest")


def latent_mask(known: torch.Tensor, temporal_factor: int = VAE_TEMPORAL, spatial_factor: int = VAE_SPATIAL,
                mode: str = "nearest") -> torch.Tensor:
    """Pixel-rate ``known`` (B, F, H, W) -> the DiT's 4 mask channels (B, 4, T, H/8, W/8), T = (F-1)/4 + 1.

    AniSora (``anisoraV3/wan/image2video_any.py``, ``anisora_anymask/wan/image2video_any_mask1*.py``,
    Index-anisora @ 171fe63) and diffusers: resize each frame to the latent grid (``mode``), repeat frame 0 four times,
    view as (T, 4, h, w) and swap to (4, T, h, w): pixel frame f >= 1 lands in latent (f-1)//4+1, channel
    (f-1)%4; latent 0's four channels all hold frame 0.
    """
    if mode not in MASK_MODES:
        raise ValueError(f"mask mode must be one of {MASK_MODES}, got {mode!r}")
    batch, frames, height, width = known.shape
    if (frames - 1) % temporal_factor or height % spatial_factor or width % spatial_factor:
        raise ValueError(f"known {tuple(known.shape)} does not fit the VAE strides {temporal_factor}/{spatial_factor}")
    size = (height // spatial_factor, width // spatial_factor)
    mask = F.interpolate(known.float(), size=size, mode=mode)
    mask = torch.cat([mask[:, :1].repeat_interleave(temporal_factor, dim=1), mask[:, 1:]], dim=1)
    return mask.view(batch, -1, temporal_factor, *size).transpose(1, 2)


def wan_output_size(image_height: int, image_width: int, max_area: int, vae_stride: int = VAE_SPATIAL,
                    patch: int = PATCH) -> tuple[int, int]:
    """(height, width) of the generated video for a guide image (Wan/AniSora ``generate``).

    ``anisoraV3/wan/image2video_any.py`` (Index-anisora @ 171fe63), with r = h/w:
    ``lat_h = round(sqrt(max_area * r) // stride // patch * patch)``,
    ``lat_w = round(sqrt(max_area / r) // stride // patch * patch)``; output ``(lat_h, lat_w) * stride``.
    """
    aspect = image_height / image_width
    lat_h = round(math.sqrt(max_area * aspect) // vae_stride // patch * patch)
    lat_w = round(math.sqrt(max_area / aspect) // vae_stride // patch * patch)
    if lat_h < patch or lat_w < patch:
        raise ValueError(f"max_area {max_area} is too small for a {image_height}x{image_width} image")
    return lat_h * vae_stride, lat_w * vae_stride


def snap_num_frames(n: int) -> int:
    """Nearest Wan frame count 4k+1 (at least 5); halfway cases go up (7 -> 9)."""
    if n < 1:
        raise ValueError(f"num_frames must be positive, got {n}")
    return max(5, 4 * math.floor((n - 1) / 4 + 0.5) + 1)


class AniSoraFlowUniPC(UniPCMultistepScheduler):
    """diffusers' flow-matching UniPC on Wan's own sigma grid.

    ``wan/utils/fm_solvers_unipc.py`` ``FlowUniPCMultistepScheduler`` (Index-anisora @ 171fe63, built with shift 1):
    ``sigma_max = float32(1 - 1/N)`` (N = 1000 training steps), ``sigma_min = 0``; ``set_timesteps(n, shift)``
    takes ``linspace(sigma_max, 0, n + 1)[:-1]``, shifts it ``shift*s/(1+(shift-1)*s)``, timesteps
    ``int64(1000 s)`` and a final sigma 0. diffusers' own grid starts at 1 and ends at 1/N instead; the UniPC
    update (bh2, order 2, x0 prediction, lower order at the end) is the same.
    """

    def set_timesteps(self, num_inference_steps: int | None = None, device: Any = None,
                      sigmas: Sequence[float] | None = None, mu: float | None = None) -> None:
        if sigmas is None:
            sigma_max = float(np.float32(1.0 - 1.0 / self.config.num_train_timesteps))
            sigmas = np.linspace(sigma_max, 0.0, num_inference_steps + 1)[:-1]
        super().set_timesteps(device=device, sigmas=sigmas, mu=mu)


def scheduler(pipe: WanImageToVideoPipeline, solver: str,
              shift: float) -> AniSoraFlowUniPC | FlowMatchEulerDiscreteScheduler:
    """Put AniSora's sampler on ``pipe`` and return it.

    ``'unipc'`` (V2, V3/V3.1/V3.2, anymask; ``--sample_solver unipc``): :class:`AniSoraFlowUniPC` with
    ``flow_shift=shift``; ``'euler'``: ``FlowMatchEulerDiscreteScheduler(shift)`` (a plain flow-matching
    Euler; V2-OSS passes its own sigmas to :meth:`AniSoraWanPipeline.__call__` instead).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    steps = pipe.scheduler.config.num_train_timesteps
    if solver == "unipc":
        new = AniSoraFlowUniPC(num_train_timesteps=steps, prediction_type="flow_prediction", use_flow_sigmas=True,
                               flow_shift=shift)
    else:
        new = FlowMatchEulerDiscreteScheduler(num_train_timesteps=steps, shift=shift)
    pipe.scheduler = new
    return new


def oss_sigmas(shift: float = 5.0) -> list[float]:
    """The 16 noise levels of AniSora V2's OSS sampler, noisiest first (timesteps are 1000 x these).

    ``anisoraV2_gpu/wan/image2video_mdinfer_oss_stu.py`` (Index-anisora @ 171fe63): ``FlowMatchScheduler(shift=5,
    sigma_min=0, extra_one_step=True).set_timesteps(96)`` gives ``s_p = 1 - p/96`` shifted, p = 0..95;
    ``OSS/model_wrap.py`` flips it with a 0 appended, so step index i has sigma ``shift(i/96)``; ``infer_OSS``
    evaluates at :data:`OSS_STEPS` from 96 down and Euler-steps to the next one, the last to 0. Shift:
    ``shift*u/(1+(shift-1)*u)``; the published script fixes it at 5.
    """
    fractions = [step / OSS_TEACHER_STEPS for step in reversed(OSS_STEPS)]
    return [shift * u / (1 + (shift - 1) * u) for u in fractions]


class _FixedSigmasEuler(FlowMatchEulerDiscreteScheduler):
    """Flow-matching Euler that runs the given noise levels whatever step count it is asked for (shift 1)."""

    def __init__(self, sigmas: Sequence[float], num_train_timesteps: int) -> None:
        super().__init__(num_train_timesteps=num_train_timesteps, shift=1.0)
        self._fixed_sigmas = [float(s) for s in sigmas]

    def set_timesteps(self, num_inference_steps: int | None = None, device: Any = None, **_: Any) -> None:
        super().set_timesteps(sigmas=self._fixed_sigmas, device=device)


class AniSoraWanPipeline(WanImageToVideoPipeline):
    """``WanImageToVideoPipeline`` conditioned on a :class:`WanCondition` (AniSora keyframes or masks).

    Only ``prepare_latents`` is replaced: the condition video is VAE-encoded (argmax, normalised
    ``(mu - mean) * (1 / std)``) and the 4 mask channels come from :func:`latent_mask`; the DiT gets
    ``cat(noise, mask, latents)`` exactly as AniSora's ``y = cat(msk, vae.encode(video))``
    (``anisoraV3/wan/image2video_any.py``, Index-anisora @ 171fe63). Works with CLIP (Wan2.1-like,
    ``image_dim`` set) and without (Wan2.2-like two experts). One clip per call: diffusers repeats CLIP
    embeddings per prompt only, so use one prompt and ``num_videos_per_prompt=1``.
    """

    _condition: WanCondition | None = None

    def condition_latents(self, condition: WanCondition, batch_size: int = 1, device: Any = None,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """AniSora's ``y``: (B, 4 + z_dim, T, h, w) = ``cat(latent_mask(known), normalised VAE latents)``."""
        video = _batched(condition.video, batch_size)
        video = video.to(device=get_module_execution_device(self.vae), dtype=self.vae.dtype)
        latents = retrieve_latents(self.vae.encode(video), sample_mode="argmax").to(device=device, dtype=dtype)
        shape = (1, self.vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(self.vae.config.latents_mean).view(shape).to(latents.device, dtype)
        inv_std = 1.0 / torch.tensor(self.vae.config.latents_std).view(shape).to(latents.device, dtype)
        mask = latent_mask(_batched(condition.known, batch_size), self.vae_scale_factor_temporal,
                           self.vae_scale_factor_spatial, condition.mask_mode)
        return torch.cat([mask.to(latents.device, dtype), (latents - mean) * inv_std], dim=1)

    def prepare_latents(self, image: Any, batch_size: int, num_channels_latents: int = 16, height: int = 480,
                        width: int = 832, num_frames: int = 81, dtype: torch.dtype | None = None,
                        device: Any = None, generator: Any = None, latents: torch.Tensor | None = None,
                        last_image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise as diffusers draws it, and the condition from the :class:`WanCondition` (``image`` unused)."""
        if self._condition is None or last_image is not None:
            raise RuntimeError("AniSoraWanPipeline is driven by __call__(condition=...), without last_image")
        shape = (batch_size, num_channels_latents, (num_frames - 1) // self.vae_scale_factor_temporal + 1,
                 height // self.vae_scale_factor_spatial, width // self.vae_scale_factor_spatial)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents, self.condition_latents(self._condition, batch_size, device, dtype)

    def __call__(self, condition: WanCondition, *, sigmas: Sequence[float] | None = None, **kwargs: Any):
        """Generate one clip for ``condition``; other keyword arguments go to ``WanImageToVideoPipeline``.

        ``sigmas`` (e.g. :func:`oss_sigmas`) replaces the scheduler for this call with Euler steps through
        exactly those noise levels (then 0). ``image``, ``last_image``, ``image_embeds``, ``height``,
        ``width`` and ``num_frames`` come from ``condition`` and may not be passed.
        """
        reserved = {"image", "last_image", "image_embeds", "height", "width", "num_frames"} & kwargs.keys()
        if reserved:
            raise ValueError(f"{sorted(reserved)} come from the WanCondition; diffusers' last_image is not used")
        if self.config.expand_timesteps:
            raise ValueError("expand_timesteps (Wan2.2 TI2V-5B) pipelines are not AniSora bases")
        _, _, frames, height, width = condition.video.shape
        _check_size(frames, height, width)
        saved = self.scheduler
        if sigmas is not None:
            self.scheduler = _FixedSigmasEuler(sigmas, saved.config.num_train_timesteps)
            kwargs["num_inference_steps"] = len(sigmas)
        self._condition = condition
        try:
            return super().__call__(image=self.clip_input(condition), height=height, width=width,
                                    num_frames=frames, last_image=None, **kwargs)
        finally:
            self._condition = None
            self.scheduler = saved

    def clip_input(self, condition: WanCondition) -> Image.Image:
        """The image handed to diffusers as ``image`` (which only CLIP reads here).

        AniSora's CLIP (``anisoraV3/wan/modules/clip.py`` ``visual``, Index-anisora @ 171fe63) squashes the
        [-1, 1] image to the CLIP size with ``F.interpolate(mode='bicubic')``, no crop; diffusers' processor
        would resize the short side and centre-crop. So the image is squashed here the AniSora way and
        returned as uint8 at the processor's crop size, which the processor then leaves as is (rounding to
        uint8 and clipping the bicubic overshoot are the only differences). Without CLIP it is a placeholder
        (frame 0).
        """
        if condition.clip_image is None:
            if self.transformer is not None and self.transformer.config.image_dim is not None:
                raise ValueError("this transformer takes CLIP image features: the WanCondition needs a clip_image")
            return _to_pil(condition.video[:1, :, 0])
        if self.image_processor is None:
            return Image.fromarray(condition.clip_image)
        crop = self.image_processor.crop_size
        squashed = F.interpolate(_to_unit_range(condition.clip_image), size=(crop["height"], crop["width"]),
                                 mode="bicubic", align_corners=False)
        return _to_pil(squashed)


def _to_pil(pixels: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) in [-1, 1] -> uint8 PIL image (rounded, clipped)."""
    values = pixels[0].add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return Image.fromarray(values.permute(1, 2, 0).cpu().numpy())


def _batched(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``tensor`` with batch ``batch_size`` (a batch of one is repeated)."""
    if tensor.shape[0] == batch_size:
        return tensor
    if tensor.shape[0] != 1:
        raise ValueError(f"condition batch {tensor.shape[0]} does not match the pipeline batch {batch_size}")
    return tensor.expand(batch_size, *tensor.shape[1:])


def load_pipeline(base: str | Path, *, transformer: str | Path | None = None, transformer_2: str | Path | None = None,
                  boundary_ratio: float | None = None, dtype: torch.dtype | None = None) -> AniSoraWanPipeline:
    """Load a diffusers Wan I2V folder or hub id; ``transformer``/``transformer_2`` folders replace the base's.

    The AniSora DiTs (converted by ``anibench.models.wan_convert``) go in ``transformer`` (V2/V3/anymask, and
    V3.2's high-noise expert) and ``transformer_2`` (V3.2's low-noise expert); ``boundary_ratio`` overrides the
    base's (Wan2.2 A14B I2V: 0.9, as AniSora V3.2's ``config.boundary``).
    """
    overrides: dict[str, Any] = {}
    for name, folder in (("transformer", transformer), ("transformer_2", transformer_2)):
        if folder is not None:
            overrides[name] = WanTransformer3DModel.from_pretrained(folder, dtype=dtype).eval()
    if boundary_ratio is not None:
        overrides["boundary_ratio"] = boundary_ratio
    return AniSoraWanPipeline.from_pretrained(base, dtype=dtype, **overrides)
