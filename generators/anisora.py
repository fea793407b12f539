"""AniSora generators (bilibili/Index-anisora @ 171fe63) on diffusers pipelines.

=================  =====================================  ==========================================
generator          model                                  conditions
=================  =====================================  ==========================================
anisora-v1         V1, CogVideoX-5B I2V (SAT weights)      first; first + last; first + middle + last
anisora-v1-rl      V1 after GAPO/RL (``5B_RL``)            as V1
anisora-v2         V2, Wan2.1-I2V-14B                      first frame
anisora-v3         V3, Wan2.1-I2V-14B, 8-step distilled    keyframes at any positions (V3 snapping)
anisora-v3.1       V3.1, as V3                             as V3
anisora-v3.2       V3.2, Wan2.2 I2V-A14B (two experts)     as V3
anisora-anymask    anymask, Wan2.1-I2V-14B                 first frame + motion mask
=================  =====================================  ==========================================

Each loads a diffusers base folder (UMT5/T5, VAE, CLIP, scheduler: the weights entries
``wan21_i2v_14b_480p_diffusers``, ``wan22_i2v_a14b_diffusers``, ``cogvideox_5b_i2v_diffusers``)
and AniSora's own transformer, converted from the published original layout when it is
imported (``anibench weights import anisora_v3_dit <folder>``). ``model=<diffusers folder or
hub id>`` loads a complete diffusers checkpoint instead (a community port).

The sampling settings are the published ones, by preset (``preset=``), each overridable:
V3/V3.2 ``anisoraV3/README.md`` (8 steps, shift 5, guidance 1, 81 frames, 1280×720 area);
V2 ``anisoraV2_gpu/generate-pi-i2v*.py`` (UniPC 40 steps or the 16-step OSS schedule, shift 5,
guidance 5, 960×544 area); V1 ``anisoraV1_infer`` (50 steps, dynamic CFG 6, 49 frames,
720×1280). Prompts get the published suffixes (score phrases, and " There is no text in the
video." for V2/V3) unless they already state them.

Frame counts are snapped, not refused: Wan models to the nearest 8k+1 (so that AniSora's
multiple-of-8 guide snapping puts position 1 on the last frame), CogVideoX to 4k+1; the
count used is recorded in the generator's description (``output``). Output sizes follow
the case's aspect ratio within the preset's area for Wan (AniSora's ``lat_h``/``lat_w``
rounding) and are the preset's fixed landscape size for V1 (published: landscape only);
guide images are centre-cropped to that size (recorded per clip in ``guides``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from anibench.conditions import Guidance, GuidePlacement, fit_guidance
from anibench.diffusion import ConditionSupport, DiffusionGenerator, Preset
from anibench.errors import InputError
from anibench.generation import GenerationRequest

NO_TEXT = "There is no text in the video."
# Wan's default negative prompt, which AniSora's scripts use when none is given (wan/configs/shared_config.py:19 in
# anisoraV2_gpu, anisoraV3, anisoraV3.2 and anisora_anymask @ 171fe63); it only matters with CFG (guidance > 1).
WAN_NEGATIVE_PROMPT = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
                       "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
                       "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")
ANISORA_FPS = 16.0
ANISORA_REPO = "bilibili/Index-anisora @ 171fe63"


def _snap(value: int, step: int, minimum: int) -> int:
    """The nearest ``step·k + 1`` frame count (ties go up), at least ``minimum``."""
    k = max(0, int(np.floor((int(value) - 1) / step + 0.5)))
    return max(minimum, step * k + 1)


# -- Wan family (V2, V3, V3.1, V3.2, anymask) --------------------------------------------------------
V3_SUFFIX = f"aesthetic score: 5.5. motion score: 3.0. {NO_TEXT}"
V2_SUFFIX = f"aesthetic score: 5.5. motion score: 1.5. {NO_TEXT}"


def _wan_preset(name: str, description: str, source: str, **settings: Any) -> Preset:
    """A Wan-family preset: V3's distilled settings (8 UniPC steps, shift 5, no CFG, 81 frames at 16 fps, a
    1280×720 area, Wan's negative prompt, V3's suffix) with ``settings`` changed."""
    published = {"steps": 8, "shift": 5.0, "guidance_scale": 1.0, "solver": "unipc", "num_frames": 81,
                 "fps": ANISORA_FPS, "max_area": 1280 * 720, "negative_prompt": WAN_NEGATIVE_PROMPT,
                 "prompt_suffix": V3_SUFFIX}
    return Preset(name, description, f"{ANISORA_REPO} {source}", {**published, **settings})


def _by_name(*presets: Preset) -> dict[str, Preset]:
    return {preset.name: preset for preset in presets}


V3_PRESETS = _by_name(
    _wan_preset("distilled-8step", "V3 distilled sampling: 8 UniPC steps, shift 5, no CFG, 81 frames at 16 fps, "
                "1280×720 area", "anisoraV3/README.md (--sample_steps 8 --sample_shift 5 --sample_guide_scale 1 "
                "--frame_num 81 --size 1280*720); suffix from anisoraV3/data/inference_any.txt"),
    _wan_preset("distilled-8step-360p", "as distilled-8step at a 640×360 area (the README's 5 s 360p clip in "
                "about 8 s)", "anisoraV3/README.md (360p); the exact 360p area is not published (unverified)",
                max_area=640 * 360),
)
V2_PRESETS = _by_name(
    _wan_preset("oss-16step", "V2 with the 16-step OSS schedule distilled from a 96-step teacher (about 2.5x "
                "faster)", "anisoraV2_gpu/wan/image2video_mdinfer_oss_stu.py; generate-pi-i2v-myinfer-oss-stu.py",
                steps=16, schedule="oss", guidance_scale=5.0, num_frames=49, max_area=960 * 544,
                prompt_suffix=V2_SUFFIX),
    _wan_preset("unipc-40step", "V2 as published: 40 UniPC steps, shift 5, guidance 5, 960×544 area",
                "anisoraV2_gpu/generate-pi-i2v.py (--task i2v-14B --size 960*544)", steps=40, guidance_scale=5.0,
                num_frames=49, max_area=960 * 544, prompt_suffix=V2_SUFFIX),
)
ANYMASK_PRESETS = _by_name(
    _wan_preset("spatial-8step", "anymask, spatial masks: 8 steps, shift 5, no CFG, 65 frames (4 s windows at "
                "16 fps)", "anisora_anymask/README.md and generate-pi-i2v-any-mask1_spa.py (read_video: ss*16+1 "
                "frames; the README's --frame_num 129 is not used by that script)", num_frames=65,
                mask_mode="spatial"),
    _wan_preset("temporal-8step", "anymask, temporal script: as spatial-8step, every 8th frame kept, bicubic mask",
                "anisora_anymask/wan/image2video_any_mask1.py", num_frames=65, mask_mode="temporal"),
)
ANY_KEYFRAMES = ConditionSupport(any_positions=True)


class _AniSoraWan(DiffusionGenerator):
    """Shared by the Wan-based AniSora models: base folder + AniSora DiT(s), AniSora V3's conditioning."""

    version = "1"
    guide_placement = GuidePlacement.ANISORA_V3
    base_entry: ClassVar[str] = "wan21_i2v_14b_480p_diffusers"
    dit_entries: ClassVar[tuple[str, ...]] = ()
    boundary_ratio: ClassVar[float | None] = None
    default_params = {**DiffusionGenerator.common_params}

    @classmethod
    def weight_entries(cls) -> tuple[str, ...]:
        return (cls.base_entry, *cls.dit_entries)

    def frame_count(self) -> int:
        return _snap(self.settings["num_frames"], 8, 9)

    def output_shape(self, guidance: Guidance) -> tuple[int, int, int]:
        from anibench.models.wan_anisora import wan_output_size

        if self.settings.get("height") and self.settings.get("width"):
            height, width = int(self.settings["height"]), int(self.settings["width"])
            if height % 16 or width % 16:
                raise InputError(f"generator {self.name!r}: height and width must be multiples of 16, "
                                 f"got {height}x{width}")
        else:
            height, width = wan_output_size(guidance.height, guidance.width, int(self.settings["max_area"]))
        return self.frame_count(), height, width

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described["output"] = {"num_frames": self.frame_count(), "frame_rule": "8k+1 (nearest)",
                               "size_rule": "case aspect within max_area, multiples of 16 (AniSora lat_h/lat_w)",
                               "guide_fit": "center-crop to the output size"}
        return described

    def build_pipeline(self, runtime: Any, dtype: Any) -> Any:
        from anibench.models import wan_anisora

        if self._params["model"]:
            pipeline = wan_anisora.load_pipeline(self._params["model"], boundary_ratio=self.boundary_ratio,
                                                 dtype=dtype)
        else:
            base = runtime.resolve_weights(self.base_entry).path
            dits = [runtime.resolve_weights(name).path for name in self.dit_entries]
            pipeline = wan_anisora.load_pipeline(base, transformer=dits[0], transformer_2=dits[1] if len(dits) > 1
                                                 else None, boundary_ratio=self.boundary_ratio, dtype=dtype)
        wan_anisora.scheduler(pipeline, self.settings["solver"], float(self.settings["shift"]))
        return pipeline

    def condition(self, request: GenerationRequest) -> Any:
        from anibench.models.wan_anisora import keyframe_condition

        return keyframe_condition([g.image for g in request.guides], [g.frame_index for g in request.guides],
                                  request.num_frames, request.height, request.width)

    def call_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"guidance_scale": float(self.settings["guidance_scale"])}
        if self.settings.get("schedule") == "oss":
            from anibench.models.wan_anisora import oss_sigmas

            kwargs["sigmas"] = oss_sigmas(float(self.settings["shift"]))
        else:
            kwargs["num_inference_steps"] = int(self.settings["steps"])
        return kwargs

    def call_pipeline(self, pipeline: Any, request: GenerationRequest, generator: Any) -> np.ndarray:
        output = pipeline(condition=self.condition(request), prompt=self.prompt(request),
                          negative_prompt=self.settings.get("negative_prompt") or None, generator=generator,
                          output_type="np", **self.call_kwargs())
        return output.frames[0]


class AniSoraV2(_AniSoraWan):
    """AniSora V2 (Wan2.1-I2V-14B-480P with AniSora's DiT): first-frame guidance only, as published."""

    name = "anisora-v2"
    dit_entries = ("anisora_v2_dit",)
    presets = V2_PRESETS
    default_preset = "oss-16step"
    support = ConditionSupport(position_sets=((0.0,),))

    def __init__(self, **params: Any):
        super().__init__(**params)
        oss_steps = self.preset.settings["steps"]
        if self.settings.get("schedule") == "oss" and self.settings["steps"] != oss_steps:
            raise InputError(f"generator {self.name!r}: the OSS schedule has {oss_steps} fixed steps; "
                             f"use preset=unipc-40step to choose the step count")


class AniSoraV3(_AniSoraWan):
    """AniSora V3: keyframes at any positions, snapped to multiples of 8 (anisoraV3/wan/image2video_any.py)."""

    name = "anisora-v3"
    dit_entries = ("anisora_v3_dit",)
    presets = V3_PRESETS
    default_preset = "distilled-8step"
    support = ANY_KEYFRAMES


class AniSoraV31(AniSoraV3):
    """AniSora V3.1: the V3 architecture and conditioning with the V3.1 DiT."""

    name = "anisora-v3.1"
    dit_entries = ("anisora_v3_1_dit",)


class AniSoraV32(_AniSoraWan):
    """AniSora V3.2 on Wan2.2 I2V-A14B: high-noise expert for t >= 0.9·1000, low-noise after; no CLIP."""

    name = "anisora-v3.2"
    base_entry = "wan22_i2v_a14b_diffusers"
    dit_entries = ("anisora_v3_2_high_noise_dit", "anisora_v3_2_low_noise_dit")
    boundary_ratio = 0.9
    presets = V3_PRESETS
    default_preset = "distilled-8step"
    support = ANY_KEYFRAMES

    def call_kwargs(self) -> dict[str, Any]:
        kwargs = super().call_kwargs()
        kwargs["guidance_scale_2"] = kwargs["guidance_scale"]
        return kwargs


class AniSoraAnymask(_AniSoraWan):
    """AniSora's mask model: the first frame is kept, masked-out pixels kept, the motion region generated.

    The core's motion region is True where motion is wanted; AniSora's mask marks what is kept
    (brighter than mid-grey = keep), so the kept pixels are the region's complement, taken from
    the first guide on every frame (anisora_anymask/wan/image2video_any_mask1_spa.py).
    """

    name = "anisora-anymask"
    dit_entries = ("anisora_anymask_dit",)
    presets = ANYMASK_PRESETS
    default_preset = "spatial-8step"
    support = ConditionSupport(position_sets=((0.0,),), motion_mask=True, requires_mask=True)

    def condition(self, request: GenerationRequest) -> Any:
        from anibench.models.wan_anisora import motion_mask_condition

        return motion_mask_condition(request.guides[0].image, ~request.motion_region, request.num_frames,
                                     request.height, request.width,
                                     temporal=self.settings.get("mask_mode") == "temporal")


# -- CogVideoX family (V1) -----------------------------------------------------------------------------
V1_SETTINGS = {"steps": 50, "guidance_scale": 6.0, "dynamic_cfg": True, "num_frames": 49, "fps": ANISORA_FPS,
               "prompt_suffix": "aesthetic score: 5.5. motion score: 0.7."}
V1_PRESETS = _by_name(
    Preset("sat-50step", "V1 as published: 50 steps, dynamic CFG 6, 49 frames at 16 fps, 720×1280 (landscape)",
           f"{ANISORA_REPO} anisoraV1_infer (configs, fastercache_sample_cogvideox_sp.py, demo.py motion 0.7)",
           {**V1_SETTINGS, "height": 720, "width": 1280}),
    Preset("sat-50step-640x1088", "as sat-50step at 640×1088, the size published for 24 GB cards (4×4090, offload)",
           f"{ANISORA_REPO} anisoraV1_infer/README.md", {**V1_SETTINGS, "height": 640, "width": 1088}),
)


class AniSoraV1(DiffusionGenerator):
    """AniSora V1 (CogVideoX-5B I2V): guide latents at slots 0 / T-1 / 1+(T-3)//2 (anisoraV1_infer)."""

    name = "anisora-v1"
    version = "1"
    base_entry: ClassVar[str] = "cogvideox_5b_i2v_diffusers"
    dit_entry: ClassVar[str] = "anisora_v1_5b_sat"
    presets = V1_PRESETS
    default_preset = "sat-50step"
    support = ConditionSupport(position_sets=((0.0,), (0.0, 1.0), (0.0, 0.5, 1.0)))
    default_params = {**DiffusionGenerator.common_params}

    @classmethod
    def weight_entries(cls) -> tuple[str, ...]:
        return (cls.base_entry, cls.dit_entry)

    def frame_count(self) -> int:
        return _snap(self.settings["num_frames"], 4, 5)

    def output_shape(self, guidance: Guidance) -> tuple[int, int, int]:
        height, width = int(self.settings["height"]), int(self.settings["width"])
        if height % 16 or width % 16:
            raise InputError(f"generator {self.name!r}: height and width must be multiples of 16, got {height}x{width}")
        return self.frame_count(), height, width

    def place(self, guidance: Guidance) -> Guidance:
        """Guides at the pixel frames of their latent slots (0, middle, last), when V1 can honour them."""
        from anibench.models.cogvideox_anisora import v1_guide_frames

        num_frames, height, width = self.output_shape(guidance)
        if self.support.refusal(guidance, self.name):  # check() refuses it per case; keep the positions' frames
            return fit_guidance(guidance, num_frames, height, width, self.guide_placement)
        return fit_guidance(guidance, num_frames, height, width, v1_guide_frames(len(guidance.guides), num_frames))

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described["output"] = {"num_frames": self.frame_count(), "frame_rule": "4k+1 (nearest)",
                               "size_rule": "the preset's fixed size (V1 is landscape only)",
                               "guide_fit": "center-crop to the output size (AniSora V1: resize_for_rectangle_crop)"}
        return described

    def build_pipeline(self, runtime: Any, dtype: Any) -> Any:
        from anibench.models import cogvideox_anisora

        if self._params["model"]:
            pipeline = cogvideox_anisora.load_pipeline(self._params["model"], dtype=dtype)
        else:
            pipeline = cogvideox_anisora.load_pipeline(runtime.resolve_weights(self.base_entry).path,
                                                       transformer=runtime.resolve_weights(self.dit_entry).path,
                                                       dtype=dtype)
        cogvideox_anisora.use_v1_sampler(pipeline)
        return pipeline

    def call_pipeline(self, pipeline: Any, request: GenerationRequest, generator: Any) -> np.ndarray:
        """Without a ``negative_prompt`` the unconditional branch gets zero text embeddings, as AniSora V1's
        sampling forces (``force_uc_zero_embeddings=["txt"]``, fastercache_sample_cogvideox_sp.py; sgm
        GeneralConditioner), not T5's embedding of an empty prompt."""
        import torch

        negative = self.settings.get("negative_prompt")
        prompt_embeds, negative_embeds = pipeline.encode_prompt(
            self.prompt(request), negative or None, do_classifier_free_guidance=bool(negative),
            device=pipeline._execution_device)
        if not negative:
            negative_embeds = torch.zeros_like(prompt_embeds)
        output = pipeline(guides=[g.image for g in sorted(request.guides, key=lambda g: g.frame_index)],
                          prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds,
                          height=request.height, width=request.width, num_frames=request.num_frames,
                          num_inference_steps=int(self.settings["steps"]),
                          guidance_scale=float(self.settings["guidance_scale"]),
                          use_dynamic_cfg=bool(self.settings.get("dynamic_cfg")), generator=generator,
                          output_type="np")
        return output.frames[0]


class AniSoraV1RL(AniSoraV1):
    """AniSora V1 after GAPO reward alignment (the published ``5B_RL`` weights)."""

    name = "anisora-v1-rl"
    dit_entry = "anisora_v1_5b_rl_sat"
