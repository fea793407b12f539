"""Plugin registries, extended by Python entry points.

Modelled on lm-evaluation-harness's registry: a name maps either to an object or to a
lazy ``"module:attribute"`` reference that is imported on first use, so heavy backends
(torch, diffusers) load only when their plugin is selected. Entry points of the
registry's group (``anibench.scorers``, ``anibench.generators``, ``anibench.suites``)
are read on first access; anibench's own plugins are registered the same way, through
the entry points in its ``pyproject.toml``.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from importlib.metadata import entry_points
from typing import Callable, Generic, TypeVar

from anibench.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → plugin. ``kind`` is used in messages ("scorer"), ``group`` is the entry-point group."""

    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self._targets: dict[str, T | str] = {}
        self._loaded: dict[str, T] = {}
        self._entry_points_read = False
        self._lock = threading.RLock()

    def register(self, name: str, target: T | str, *, replace: bool = False) -> None:
        """Register ``target`` (an object or ``"module:attr"``) under ``name``.

        Registering a different target under a taken name raises, unless ``replace``.
        """
        with self._lock:
            self._read_entry_points()
            current = self._targets.get(name)
            if current is not None and current != target and not replace:
                raise RegistryError(f"{self.kind} {name!r} is already registered ({_describe(current)})")
            self._targets[name] = target
            self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a plugin registered in-process, for tests); an entry point reappears on :meth:`refresh`."""
        with self._lock:
            self._targets.pop(name, None)
            self._loaded.pop(name, None)

    def __call__(self, name: str) -> Callable[[T], T]:
        """Decorator form: ``@SCORERS("my_metric")``."""

        def decorate(obj: T) -> T:
            self.register(name, obj)
            return obj

        return decorate

    def get(self, name: str) -> T:
        """The plugin registered as ``name``, importing it if it is lazy."""
        with self._lock:
            self._read_entry_points()
            if name in self._loaded:
                return self._loaded[name]
            if name not in self._targets:
                close = difflib.get_close_matches(name, self._targets, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(self.names())}"
                raise RegistryError(f"unknown {self.kind} {name!r}{hint}")
            target = self._targets[name]
            obj = _import(target, self.kind, name) if isinstance(target, str) else target
            self._loaded[name] = obj
            return obj

    def names(self) -> list[str]:
        with self._lock:
            self._read_entry_points()
            return sorted(self._targets)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        for ep in entry_points(group=self.group):
            # First registration wins; a second distribution claiming a name is reported on use.
            self._targets.setdefault(ep.name, ep.value)

    def refresh(self) -> None:
        """Re-read entry points (after installing a plugin distribution in a running process)."""
        with self._lock:
            self._entry_points_read = False
            self._read_entry_points()


def _describe(target: object) -> str:
    return target if isinstance(target, str) else f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', target)}"


def _import(reference: str, kind: str, name: str):
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
        obj = module
        for part in attribute.split(".") if attribute else ():
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise RegistryError(f"{kind} {name!r} points to {reference!r}, which cannot be imported: {exc}") from exc
    return obj
