"""Suite loaders, registered by name (entry-point group ``anibench.suites``).

A suite is named by a spec: ``smoke``, ``anisora:PATH`` or ``folder:PATH``, plus loader
options (``prompts``, ``guide_fit``, ...). A loader is a callable
``load(path: str | None, **options) -> Suite``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from anibench.errors import SuiteError
from anibench.registry import Registry
from anibench.suite import Suite

SUITES: Registry[Callable[..., Suite]] = Registry("suite", "anibench.suites")


def parse_suite_spec(spec: str) -> tuple[str, str | None]:
    """``"anisora:/data/bench"`` → ``("anisora", "/data/bench")``; ``"smoke"`` → ``("smoke", None)``."""
    name, sep, path = spec.partition(":")
    return name, (path if sep else None)


def load_suite(spec: str | Mapping[str, Any], **options: Any) -> Suite:
    """Load a suite from a spec string or a mapping ``{"name", "path", **options}``."""
    if isinstance(spec, Mapping):
        if not spec.get("name"):
            raise SuiteError(f"a suite spec needs a 'name' (smoke, anisora, folder, ...), got {dict(spec)!r}")
        options = {**{k: v for k, v in spec.items() if k not in ("name", "path")}, **options}
        name, path = str(spec["name"]), spec.get("path")
        path = str(path) if path is not None else None
    else:
        name, path = parse_suite_spec(spec)
    loader = SUITES.get(name)
    try:
        inspect.signature(loader).bind(path, **options)
    except TypeError as exc:
        raise SuiteError(f"suite {name!r} does not take options {sorted(options)} ({exc})") from None
    return loader(path, **options)
