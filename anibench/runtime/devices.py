"""Device and numeric precision for model-based scorers and generators.

``--device auto|cpu|cuda[:N]|npu[:N]|mps`` and ``--dtype auto|fp32|bf16|fp16`` are parsed
here without torch (:func:`parse_device`, :func:`parse_dtype`), and resolved against the
machine by :func:`select_runtime`, which imports torch on first use. The weight-free core
never calls it, so it runs without torch installed.

Rules:

* ``auto`` picks the first of: CUDA (the current CUDA device), an Ascend NPU *only if
  torch_npu is already imported in this process*, Apple MPS, CPU. ``auto`` never imports
  torch_npu: on machines without Ascend's CANN libraries that import fails or, worse,
  breaks ``import torch`` (``../shared/reference/dependencies.md`` §4.5).
* ``npu[:N]`` imports torch_npu when asked for, and only then. Before anibench first
  imports torch it sets ``TORCH_DEVICE_BACKEND_AUTOLOAD=0`` (unless the variable is set),
  so an installed torch_npu is not auto-loaded by ``import torch`` either.
* An unavailable device (``cuda`` on a CPU-only build, ``cuda:3`` on a 2-GPU machine,
  ``mps`` off macOS) is a :class:`DeviceError` that lists what is available.
* ``--dtype auto`` is bf16 on CUDA devices with native bfloat16 (compute capability
  ≥ 8.0), fp32 everywhere else (CPU, MPS, NPU, older GPUs). fp16/bf16 on CPU are allowed
  only when asked for explicitly: CPU kernels compute them at reduced precision
  (about 3 significant digits for bf16, with slower fp16 kernels on most CPUs), so
  scores differ from fp32 in the third decimal and do not match VBench's fp32 numbers;
  parity fixtures are fp32 on CPU.

The selection is a frozen :class:`RuntimeSelection` recorded in provenance. The numeric
precision (``dtype``) changes values and belongs in score keys; the device index does not.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass
from typing import Any

from anibench.errors import AnibenchError

DEVICE_KINDS = ("auto", "cpu", "cuda", "npu", "mps")
# Short precision names (anibench's flags and score keys) → torch dtype attribute names.
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
_DTYPE_ALIASES = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}
DEVICE_HELP = "auto | cpu | cuda[:N] | npu[:N] | mps (auto: CUDA, then MPS, then CPU)"
DTYPE_HELP = "auto | fp32 | bf16 | fp16 (auto: bf16 on CUDA with native bfloat16, else fp32)"
NEURAL_EXTRA_HINT = "install anibench's neural extra: pip install 'anibench[neural]'"


class DeviceError(AnibenchError):
    """A ``--device``/``--dtype`` value is malformed or names hardware this machine lacks."""


class MissingDependencyError(AnibenchError):
    """An optional dependency (torch, transformers, …) that a model-based feature needs is not installed."""


@dataclass(frozen=True)
class DeviceRequest:
    """A parsed ``--device`` value: ``kind`` in :data:`DEVICE_KINDS`, ``index`` for cuda/npu (None: default)."""

    kind: str
    index: int | None = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def parse_device(text: str) -> DeviceRequest:
    """``"cuda:1"`` → ``DeviceRequest("cuda", 1)``; a malformed value is a :class:`DeviceError`."""
    value = str(text).strip().lower()
    kind, sep, index_text = value.partition(":")
    expected = "expected auto, cpu, cuda, cuda:N, npu, npu:N or mps"
    if kind not in DEVICE_KINDS:
        raise DeviceError(f"--device {text!r}: {expected}")
    if not sep:
        return DeviceRequest(kind)
    if kind not in ("cuda", "npu"):
        raise DeviceError(f"--device {text!r}: only cuda and npu take an index; {expected}")
    if not index_text.isdigit():
        raise DeviceError(f"--device {text!r}: the index must be a non-negative integer; {expected}")
    return DeviceRequest(kind, int(index_text))


def parse_dtype(text: str) -> str:
    """``"bf16"``/``"bfloat16"`` → ``"bf16"``; returns ``auto`` or a key of :data:`DTYPES`."""
    value = str(text).strip().lower()
    value = _DTYPE_ALIASES.get(value, value)
    if value != "auto" and value not in DTYPES:
        raise DeviceError(f"--dtype {text!r}: expected auto, fp32, bf16 or fp16")
    return value


@dataclass(frozen=True)
class RuntimeSelection:
    """The device and precision a process runs models with, as recorded in provenance.

    ``device`` is torch's device string with an explicit index for accelerators
    (``cuda:0``, ``npu:1``, ``mps``, ``cpu``); ``dtype`` is ``fp32``, ``bf16`` or ``fp16``.
    ``device_name``/``capability`` describe the hardware where torch can tell
    (``NVIDIA H200``, ``9.0``).
    """

    device: str
    dtype: str
    requested_device: str
    requested_dtype: str
    device_name: str | None
    capability: str | None
    torch_version: str

    @property
    def kind(self) -> str:
        return self.device.partition(":")[0]

    @property
    def index(self) -> int | None:
        _, sep, index = self.device.partition(":")
        return int(index) if sep else None

    def torch_device(self) -> Any:
        """The ``torch.device``."""
        return require_torch().device(self.device)

    def torch_dtype(self) -> Any:
        """The ``torch.dtype`` (``torch.float32``, ``torch.bfloat16``, ``torch.float16``)."""
        return getattr(require_torch(), DTYPES[self.dtype])

    def provenance(self) -> dict[str, Any]:
        return asdict(self)


def require_torch() -> Any:
    """Import torch (without auto-loading device backends such as torch_npu), or explain how to install it."""
    if "torch" not in sys.modules:
        os.environ.setdefault("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(f"this needs torch, which is not installed ({exc}); {NEURAL_EXTRA_HINT}") from exc
    return torch


def select_runtime(device: str | DeviceRequest = "auto", dtype: str = "auto") -> RuntimeSelection:
    """Resolve ``--device``/``--dtype`` against this machine; raises :class:`DeviceError` when unavailable."""
    request = device if isinstance(device, DeviceRequest) else parse_device(device)
    precision = parse_dtype(dtype)
    torch = require_torch()
    if request.kind == "npu":
        _import_torch_npu(torch, request)
    chosen = _resolve_device(torch, request)
    resolved_dtype = _resolve_dtype(torch, chosen, precision)
    name, capability = _describe_hardware(torch, chosen)
    return RuntimeSelection(
        device=str(chosen), dtype=resolved_dtype, requested_device=str(request), requested_dtype=precision,
        device_name=name, capability=capability, torch_version=torch.__version__,
    )


def available_devices() -> list[str]:
    """Devices this process can use now (``cpu`` first); NPUs only if torch_npu is already imported."""
    torch = require_torch()
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _npu_loaded(torch):
        found += [f"npu:{i}" for i in range(torch.npu.device_count())]
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


def _npu_loaded(torch: Any) -> bool:
    return "torch_npu" in sys.modules and hasattr(torch, "npu") and torch.npu.is_available()


def _import_torch_npu(torch: Any, request: DeviceRequest) -> None:
    try:
        import torch_npu  # noqa: F401  (registers torch.npu; Ascend only, never a dependency)
    except Exception as exc:  # ImportError, or RuntimeError/OSError when CANN's libraries are missing
        raise DeviceError(
            f"--device {request}: Ascend NPUs need the torch_npu package and Ascend CANN, and torch_npu cannot be "
            f"imported here ({type(exc).__name__}: {exc}); available: {', '.join(available_devices())}"
        ) from exc


def _resolve_device(torch: Any, request: DeviceRequest) -> Any:
    if request.kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _npu_loaded(torch):
            return torch.device("npu", torch.npu.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if request.kind == "cpu":
        return torch.device("cpu")
    if request.kind == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"--device mps: Apple's MPS backend is not available here; "
                              f"available: {', '.join(available_devices())}")
        return torch.device("mps")
    backend = torch.cuda if request.kind == "cuda" else torch.npu
    if not backend.is_available():
        raise DeviceError(f"--device {request}: {_why_no_accelerator(torch, request.kind)}; "
                          f"available: {', '.join(available_devices())}")
    count = backend.device_count()
    index = backend.current_device() if request.index is None else request.index
    if index >= count:
        raise DeviceError(f"--device {request}: this machine has {count} {request.kind.upper()} device(s) "
                          f"({request.kind}:0 … {request.kind}:{count - 1})")
    return torch.device(request.kind, index)


def _why_no_accelerator(torch: Any, kind: str) -> str:
    if kind == "cuda" and torch.version.cuda is None:
        return f"CUDA is not available: torch {torch.__version__} is a build without CUDA"
    if kind == "cuda":
        return f"CUDA is not available: torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU"
    return "torch_npu is imported but finds no usable NPU"


def _resolve_dtype(torch: Any, device: Any, precision: str) -> str:
    if device.type == "cuda":
        native_bf16 = _cuda_native_bf16(torch, device)
        if precision == "auto":
            return "bf16" if native_bf16 else "fp32"
        if precision == "bf16" and not native_bf16:
            name, capability = _describe_hardware(torch, device)
            raise DeviceError(f"--dtype bf16: {device} ({name}, compute capability {capability}) has no native "
                              "bfloat16; use --dtype fp16 or fp32")
        return precision
    return "fp32" if precision == "auto" else precision


def _cuda_native_bf16(torch: Any, device: Any) -> bool:
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def _describe_hardware(torch: Any, device: Any) -> tuple[str | None, str | None]:
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return torch.cuda.get_device_name(device), f"{major}.{minor}"
    if device.type == "npu":
        return torch.npu.get_device_name(device.index), None
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})", None
    return platform.processor() or platform.machine() or None, None
