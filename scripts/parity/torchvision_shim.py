"""Make torchvision 0.28.0 (CUDA-only wheel) importable on the CPU build of torch 2.13.0.

Import this module before anything imports torchvision. Reference-environment helper for
scripts/parity only (shared reference dependencies.md section 3): the wheel's native library links
CUDA libraries that CPU torch lacks, and ``torchvision/_meta_registrations.py`` then fails on
``torchvision::nms`` not existing. We define the ``nms``/``qnms`` schemas, register a plain-tensor
CPU ``nms``, keep the ``torch.library.Library`` objects alive (torch drops a library's
registrations when the object is collected) and silence ``torchvision.ops.boxes._assert_has_ops``.
None of VBench's three parity dimensions calls a torchvision native op; the shim only lets
``import torchvision`` (transforms, which VBench's preprocessing uses) succeed.

Also gives ``pkg_resources`` the ``packaging`` attribute that openai-clip 1.0.1 reads for its
torch-version warning (setuptools >= 70 dropped it; torch 2.13 needs setuptools >= 77).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import torch

_KEEP_ALIVE: list[torch.library.Library] = []


def _nms_cpu(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: keep the best-scoring box, drop boxes overlapping it by IoU > threshold, repeat."""
    order = torch.argsort(scores, descending=True)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    keep: list[int] = []
    while order.numel() > 0:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        width = (torch.minimum(x2[best], x2[rest]) - torch.maximum(x1[best], x1[rest])).clamp(min=0)
        height = (torch.minimum(y2[best], y2[rest]) - torch.maximum(y1[best], y1[rest])).clamp(min=0)
        inter = width * height
        iou = inter / (areas[best] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.tensor(keep, dtype=torch.int64, device=dets.device)


def _native_library_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.submodule_search_locations is None:
        return True  # nothing to fix
    for folder in spec.submodule_search_locations:
        for lib in Path(folder).glob("_C*.so"):
            try:
                torch.ops.load_library(str(lib))
                return True
            except (OSError, RuntimeError):
                return False
    return False


def install() -> None:
    if not _native_library_loads():
        definitions = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            definitions.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        cpu = torch.library.Library("torchvision", "IMPL", "CPU")
        cpu.impl("nms", _nms_cpu)
        _KEEP_ALIVE.extend([definitions, cpu])
        import torchvision.ops.boxes as boxes

        boxes._assert_has_ops = lambda: None
    try:
        import pkg_resources  # noqa: F401  (deprecated module; only its attribute is needed)
    except ImportError:
        sys.modules["pkg_resources"] = types.ModuleType("pkg_resources")
    import packaging.version

    sys.modules["pkg_resources"].packaging = packaging


install()
