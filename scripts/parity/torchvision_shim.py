"""Make torchvision 0.28.0 (CUDA-only wheel) importable on the CPU build of torch 2.13.0, in the
VBench reference venv. Import this module before anything imports torchvision.

The fix itself is anibench's own module ``anibench/runtime/torchvision_compat.py`` (shared reference
dependencies.md section 3), loaded here by its file path: the reference venv does not install anibench,
and that module needs only torch. None of VBench's parity dimensions calls a torchvision native op
other than through ``torchvision.transforms``; the shim only lets ``import torchvision`` succeed.

Also gives ``pkg_resources`` the ``packaging`` attribute that openai-clip 1.0.1 reads for its
torch-version warning (setuptools >= 70 dropped it; torch 2.13 needs setuptools >= 77).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

_COMPAT = Path(__file__).resolve().parents[2] / "anibench" / "runtime" / "torchvision_compat.py"


def install() -> None:
    spec = importlib.util.spec_from_file_location("anibench_torchvision_compat", _COMPAT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # keeps its torch.library registrations alive
    spec.loader.exec_module(module)
    module.ensure_torchvision()
    try:
        import pkg_resources  # noqa: F401  (deprecated module; only its attribute is needed)
    except ImportError:
        sys.modules["pkg_resources"] = types.ModuleType("pkg_resources")
    import packaging.version

    sys.modules["pkg_resources"].packaging = packaging


install()
