"""Diffusion generators: a diffusers pipeline loaded once per process, under a named preset.

:class:`DiffusionGenerator` is the base of anibench's diffusers-based generator plugins
(AniSora V1 on CogVideoX, V2/V3/V3.2 and the motion-mask model on Wan). It owns what every
such model shares, so a plugin only says how to build its pipeline and how to call it:

* **Presets** (:class:`Preset`): the published settings (steps, sampler, shift, guidance,
  frame count, fps, output area, prompt suffix), selected by name (``preset=``) and
  overridable one by one (``steps=8``, ``num_frames=17`` …). The resolved settings are
  recorded in :meth:`describe`, so a run says exactly what it sampled with.
* **Hardware**: the runtime's device and dtype (CUDA bf16, an Ascend NPU through torch_npu
  when asked for with ``--device npu``, MPS, CPU); ``devices=cuda:0,cuda:1`` loads one
  pipeline per device and spreads a batch's clips over them (data parallel: each clip is
  made on one device, so a clip never depends on which device made it).
* **Memory** (params, not part of a clip's identity where they leave values unchanged):
  ``offload=none|model|sequential|group`` (diffusers' model / sequential CPU offload and
  block-level group offload), ``vae_tiling``, ``vae_slicing``.
* **LoRA**: ``lora=path`` (a diffusers/PEFT LoRA file or folder) at ``lora_scale``; its
  sha256 enters the generator's identity.
* **Seeds**: each clip's noise comes from a CPU ``torch.Generator`` seeded with the
  request's ``rng_seed`` (run seed, case, condition), so a clip is the same whatever the
  batch, the order or the device.
* **Out of memory**: a clip that runs out of device memory is retried once after the
  cache is emptied; a second failure is that case's error, naming the memory options, and
  the other cases go on (:meth:`Generator.generate_batch`).

Plugin modules stay light (no torch at import): they name the ``anibench.models`` module
that builds their pipeline and import it in :meth:`DiffusionGenerator.build_pipeline`.
"""

from __future__ import annotations

import gc
import hashlib
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Sequence

import numpy as np

from anibench.conditions import Guidance, fit_guidance
from anibench.errors import AnibenchError, InputError, MissingWeightsError, NotApplicable
from anibench.generation import GenerationRequest, Generator
from anibench.video import Video

if TYPE_CHECKING:
    from anibench.runtime.context import Runtime

OFFLOAD_MODES = ("none", "model", "sequential", "group")
# Parameters that change how a clip is computed, not what it is: left out of the identity,
# so a run resumed with another offload mode or device list reuses its clips.
EXECUTION_PARAMS = frozenset({"offload", "devices"})
MEMORY_ADVICE = ("try offload=model (or sequential / group), vae_tiling=true, vae_slicing=true, "
                 "or a smaller max_area / num_frames")


@dataclass(frozen=True)
class Preset:
    """Published sampling settings, by name.

    ``settings`` keys (all optional, a plugin documents which it reads): ``steps``,
    ``guidance_scale``, ``guidance_scale_2``, ``shift``, ``solver``, ``num_frames``, ``fps``,
    ``max_area`` or ``height``/``width``, ``prompt_suffix``, ``negative_prompt``,
    ``dynamic_cfg``, ``schedule``. ``source`` says where the values were published.
    """

    name: str
    description: str
    source: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConditionSupport:
    """Which conditions a model honours: guide position sets, any positions, and masks."""

    position_sets: tuple[tuple[float, ...], ...] = ((0.0,),)
    any_positions: bool = False
    motion_mask: bool = False
    requires_mask: bool = False

    def refusal(self, guidance: Guidance, generator: str) -> str | None:
        """Why ``guidance`` cannot be honoured (None when it can)."""
        positions = tuple(sorted(g.position for g in guidance.guides))
        has_mask = guidance.motion_region is not None
        if self.requires_mask and not has_mask:
            return (f"generator {generator!r} needs a motion mask (condition 'motion-mask'); condition "
                    f"{guidance.condition!r} gives none")
        if has_mask and not self.motion_mask:
            return (f"generator {generator!r} cannot take a motion mask (condition {guidance.condition!r}); "
                    "use anisora-anymask for masked motion")
        if self.any_positions and positions:
            return None
        if positions in self.position_sets:
            return None
        allowed = " | ".join(",".join(f"{p:g}" for p in s) for s in self.position_sets)
        return (f"generator {generator!r} cannot place guides at positions {','.join(f'{p:g}' for p in positions)} "
                f"(condition {guidance.condition!r}); it supports guide positions {allowed}")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an out-of-memory error: torch's ``OutOfMemoryError`` (CUDA), "out of memory" (NPU, MPS),
    and the CPU allocator's "can't allocate memory"."""
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class DiffusionGenerator(Generator):
    """Base of diffusers-based generators; see the module docstring.

    Subclasses set ``presets``, ``default_preset``, ``support`` (a :class:`ConditionSupport`),
    override :meth:`weight_entries` (the manifest entries :meth:`build_pipeline` loads), and implement
    :meth:`output_shape`, :meth:`build_pipeline` and :meth:`call_pipeline`.
    """

    presets: ClassVar[Mapping[str, Preset]] = {}
    default_preset: ClassVar[str] = ""
    support: ClassVar[ConditionSupport] = ConditionSupport()
    # One clip per pipeline call: diffusers' I2V pipelines repeat one image embedding per
    # batch row (``image_embeds.repeat(batch_size)``), so several guides per call mix up.
    max_batch: ClassVar[int] = 8
    setting_keys: ClassVar[tuple[str, ...]] = ("steps", "guidance_scale", "shift", "num_frames", "fps", "max_area",
                                               "height", "width", "prompt_suffix", "negative_prompt")
    common_params: ClassVar[Mapping[str, Any]] = {
        "preset": None, "steps": None, "guidance_scale": None, "shift": None, "num_frames": None, "fps": None,
        "max_area": None, "height": None, "width": None, "prompt_suffix": None, "negative_prompt": None,
        "model": "", "lora": "", "lora_scale": 1.0, "offload": "none", "vae_tiling": False, "vae_slicing": False,
        "devices": "",
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        preset = self._params["preset"] or self.default_preset
        if preset not in self.presets:
            raise InputError(f"generator {self.name!r} has no preset {preset!r}; known: {', '.join(self.presets)}")
        if self._params["offload"] not in OFFLOAD_MODES:
            raise InputError(f"generator {self.name!r}: offload must be one of {', '.join(OFFLOAD_MODES)}, "
                             f"got {self._params['offload']!r}")
        self.preset = self.presets[preset]
        self.settings = self._resolve_settings()
        self._pipelines: list[Any] = []
        self._devices: list[Any] = []

    # -- settings -------------------------------------------------------------------------------
    def _resolve_settings(self) -> dict[str, Any]:
        """The preset's settings with every non-None override applied."""
        settings = dict(self.preset.settings)
        settings.update({key: self._params[key] for key in self.setting_keys if self._params.get(key) is not None})
        return settings

    def params_hash(self) -> str:
        kept = {k: v for k, v in self._params.items() if k not in EXECUTION_PARAMS}
        kept["preset"] = self.preset.name
        return hashlib.sha256(repr(sorted(kept.items())).encode()).hexdigest()[:16]

    def prompt(self, request: GenerationRequest) -> str:
        """The case's prompt plus each part of the preset's suffix whose label it lacks.

        As AniSora V1's ``append_score_to_prompts`` (anisoraV1_infer/__init__.py @ 171fe63): a prompt that
        already states ``aesthetic score:`` or ``motion score:`` keeps its own value; V2/V3 append
        " There is no text in the video." (generate-pi-i2v-any.py:401), added here only once.
        """
        text = request.prompt.rstrip()
        for part in suffix_parts(self.settings.get("prompt_suffix") or ""):
            if _part_key(part) not in text.lower():
                text = f"{text} {part}"
        return text

    # -- identity and provenance ----------------------------------------------------------------
    def weights(self) -> dict[str, str]:
        """sha256 of every installed weight this generator loads (and of the LoRA); missing ones say so."""
        from anibench.runtime.context import Runtime

        runtime = self.runtime or Runtime()
        out: dict[str, str] = {}
        if self._params["model"]:
            out["model"] = _folder_identity(self._params["model"])
        else:
            for name in self.weight_entries():
                try:
                    out[name] = runtime.resolve_weights(name).sha256
                except AnibenchError:
                    out[name] = "missing"
        if self._params["lora"]:
            out["lora"] = _folder_identity(self._params["lora"])
        return out

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described.update({
            "preset": {"name": self.preset.name, "description": self.preset.description, "source": self.preset.source},
            "settings": self.settings,
            "conditions": self.support_description(),
        })
        return described

    def support_description(self) -> str:
        s = self.support
        if s.requires_mask:
            return "motion-mask (first frame + motion region)"
        if s.any_positions:
            return "guides at any positions in [0, 1]" + (", motion masks" if s.motion_mask else "")
        return "guide positions " + " | ".join(",".join(f"{p:g}" for p in ps) for ps in s.position_sets)

    def missing_weights(self, runtime: "Runtime") -> MissingWeightsError | None:
        """Every manifest entry this generator loads that is not installed, in one error (None when ready)."""
        if self._params["model"]:
            return None
        from anibench.runtime.context import missing_entries

        return missing_entries(self.weight_entries(), runtime)

    # -- placement --------------------------------------------------------------------------------
    @abstractmethod
    def output_shape(self, guidance: Guidance) -> tuple[int, int, int]:
        """(num_frames, height, width) this model produces for ``guidance`` under the settings."""

    def place(self, guidance: Guidance) -> Guidance:
        """The guides fitted to the model's output shape and placed by its rule."""
        num_frames, height, width = self.output_shape(guidance)
        return fit_guidance(guidance, num_frames, height, width, self.guide_placement)

    def check(self, request: GenerationRequest) -> None:
        super().check(request)
        refusal = self.support.refusal(request.guidance, self.name)
        if refusal:
            raise NotApplicable(refusal)

    # -- lifecycle --------------------------------------------------------------------------------
    @abstractmethod
    def build_pipeline(self, runtime: "Runtime", dtype: Any) -> Any:
        """The diffusers pipeline, on CPU in ``dtype`` (the base class moves or offloads it)."""

    @abstractmethod
    def call_pipeline(self, pipeline: Any, request: GenerationRequest, generator: Any) -> np.ndarray:
        """One clip as (F, H, W, 3) floats in [0, 1]."""

    def load(self, runtime: "Runtime") -> None:
        super().load(runtime)
        error = self.missing_weights(runtime)
        if error is not None:
            raise error
        self._devices = self._device_list(runtime)
        dtype = runtime.torch_dtype
        with _quiet_loading():
            for device in self._devices:
                pipeline = self.build_pipeline(runtime, dtype)
                self._apply_lora(pipeline)
                self._place_on(pipeline, device)
                pipeline.set_progress_bar_config(disable=True)
                self._pipelines.append(pipeline)

    def unload(self) -> None:
        self._pipelines.clear()
        self._free_memory()

    def _device_list(self, runtime: "Runtime") -> list[Any]:
        if not self._params["devices"]:
            return [runtime.torch_device]
        from anibench.runtime.devices import select_runtime

        names = [d.strip() for d in str(self._params["devices"]).split(",") if d.strip()]
        return [select_runtime(name, runtime.dtype).torch_device() for name in names]

    def _apply_lora(self, pipeline: Any) -> None:
        path = self._params["lora"]
        if not path:
            return
        source = Path(path)
        if not source.exists():
            raise InputError(f"generator {self.name!r}: LoRA file {path} not found", path=source)
        kwargs = {"weight_name": source.name} if source.is_file() else {}
        folder = source.parent if source.is_file() else source
        pipeline.load_lora_weights(str(folder), adapter_name="anibench", **kwargs)
        pipeline.set_adapters(["anibench"], adapter_weights=[float(self._params["lora_scale"])])

    def _place_on(self, pipeline: Any, device: Any) -> None:
        mode = self._params["offload"]
        if mode == "model":
            pipeline.enable_model_cpu_offload(device=device)
        elif mode == "sequential":
            pipeline.enable_sequential_cpu_offload(device=device)
        elif mode == "group":
            pipeline.enable_group_offload(onload_device=device, offload_type="block_level", num_blocks_per_group=1)
        else:
            pipeline.to(device)
        if self._params["vae_tiling"]:
            pipeline.vae.enable_tiling()
        if self._params["vae_slicing"]:
            pipeline.vae.enable_slicing()

    def _empty_cache(self) -> None:
        import torch

        for device in self._devices or []:
            kind = getattr(device, "type", str(device))
            if kind == "cuda":
                torch.cuda.empty_cache()
            elif kind == "npu" and hasattr(torch, "npu"):
                torch.npu.empty_cache()
            elif kind == "mps":
                torch.mps.empty_cache()

    # -- generation -------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> Video:
        return self._generate_on(self._pipelines[0] if self._pipelines else None, request)

    def _generate_on(self, pipeline: Any, request: GenerationRequest) -> Video:
        import torch

        if pipeline is None:
            raise AnibenchError(f"generator {self.name!r} is not loaded", case_id=request.case_id)
        generator = torch.Generator(device="cpu").manual_seed(request.rng_seed)
        frames = self.call_pipeline(pipeline, request, generator)
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim == 5:
            frames = frames[0]
        clip = np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
        return Video(clip, float(self.settings.get("fps") or request.fps))

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Video | Path | Exception]:
        """Each clip on one device; with several devices, one worker thread per device."""
        if len(self._pipelines) <= 1:
            return [self._one(self._pipelines[0] if self._pipelines else None, r) for r in requests]
        slots: list[Video | Path | Exception] = [None] * len(requests)  # type: ignore[list-item]
        lanes = [list(range(i, len(requests), len(self._pipelines))) for i in range(len(self._pipelines))]

        def lane(index: int) -> None:
            for position in lanes[index]:
                slots[position] = self._one(self._pipelines[index], requests[position])

        with ThreadPoolExecutor(max_workers=len(self._pipelines)) as pool:
            list(pool.map(lane, range(len(self._pipelines))))
        return slots

    def _one(self, pipeline: Any, request: GenerationRequest) -> Video | Exception:
        """One clip; an out-of-memory error is retried once after emptying the cache, then reported."""
        try:
            self.check(request)
            return self._generate_on(pipeline, request)
        except Exception as exc:  # noqa: BLE001 - one bad case must not lose the batch
            if not is_out_of_memory(exc):
                return exc
        self._free_memory()
        try:
            return self._generate_on(pipeline, request)
        except Exception as exc:  # noqa: BLE001
            if not is_out_of_memory(exc):
                return exc
        self._free_memory()
        return AnibenchError(f"out of memory generating {request.num_frames}x{request.height}x{request.width} with "
                             f"{self.name!r} (retried once after emptying the cache): {MEMORY_ADVICE}",
                             case_id=request.case_id)

    def _free_memory(self) -> None:
        gc.collect()
        self._empty_cache()


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """No "Loading pipeline components" / "Loading weights" progress bars in a run's output."""
    import anibench.models  # noqa: F401 - the torchvision shim must run before diffusers is imported
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    enabled = [m for m in (diffusers_logging, transformers_logging) if m.is_progress_bar_enabled()]
    for module in enabled:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module in enabled:
            module.enable_progress_bar()


def suffix_parts(suffix: str) -> list[str]:
    """``"aesthetic score: 5.5. motion score: 3.0. There is no text in the video."`` → its three sentences."""
    return [part.strip().rstrip(".") + "." for part in suffix.strip().split(". ") if part.strip(" .")]


def _part_key(part: str) -> str:
    """What makes a suffix part present in a prompt: its label (``motion score:``), else the whole sentence."""
    label, colon, _ = part.partition(":")
    return (label + colon if colon else part).lower()


def _folder_identity(path: str) -> str:
    """sha256 of a local file or folder tree (hub ids are recorded as they are, with their revision if pinned)."""
    source = Path(path)
    if not source.exists():
        return f"hub:{path}"
    from anibench.runtime.weights.files import sha256_file, tree_digest

    return tree_digest(source)[0] if source.is_dir() else sha256_file(source)
