"""Make ``import torchvision`` work on the CPU build of torch.

torchvision 0.28.0 (the release paired with torch 2.13.0) exists only as a CUDA wheel: its
native library links CUDA libraries that CPU torch lacks, and ``torchvision/_meta_registrations.py``
then fails with ``operator torchvision::nms does not exist`` (shared reference
``dependencies.md`` §3). :func:`ensure_torchvision` runs before any anibench module imports
torchvision (RAFT, open_clip, timm, pyiqa, dreamsim all do): when the native library does not
load it defines the ``nms``/``qnms`` schemas, registers a plain-tensor CPU ``nms``, keeps the
``torch.library.Library`` objects alive (torch drops a library's registrations when the object
is collected) and silences ``torchvision.ops.boxes._assert_has_ops``. Where the native library
loads (a CUDA torch with its matching torchvision) nothing is changed.

Not available on CPU either way: ``torchvision.io`` (anibench decodes with PyAV) and the
native detection ops other than ``nms``.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

_KEEP_ALIVE: list = []
_LOCK = threading.Lock()
_done = False


def _nms_cpu(dets, scores, iou_threshold: float):
    """Greedy NMS: keep the best-scoring box, drop boxes overlapping it by IoU > threshold, repeat."""
    import torch

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
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.submodule_search_locations is None:
        return True  # torchvision absent: nothing to fix (transformers then uses its PIL processors)
    for folder in spec.submodule_search_locations:
        for library in Path(folder).glob("_C*.so"):
            try:
                torch.ops.load_library(str(library))
                return True
            except (OSError, RuntimeError):
                return False
    return False


def ensure_torchvision() -> None:
    """Make ``import torchvision`` succeed on this torch; idempotent and thread-safe.

    Call it before the first import of torchvision or of a package that imports it.
    """
    global _done
    with _LOCK:
        if _done:
            return
        import torch

        if not _native_library_loads():
            definitions = torch.library.Library("torchvision", "DEF")
            for op in ("nms", "qnms"):
                definitions.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            cpu = torch.library.Library("torchvision", "IMPL", "CPU")
            cpu.impl("nms", _nms_cpu)
            _KEEP_ALIVE.extend([definitions, cpu])
            import torchvision.ops.boxes as boxes

            boxes._assert_has_ops = lambda: None
        _done = True
