"""Features: what scorers read from a clip, computed once per clip in one pass over its frames.

A scorer never opens a file or loops over a video: it declares the features it reads
(:class:`FeatureSpec`: an extractor by name plus parameters), and the run computes each
distinct feature of a clip once, in a single streaming pass shared by every extractor
(:func:`anibench.features.stream.compute_features`). Equal specs asked by several scorers
are computed once — torchmetrics' compute groups, for video.

An extractor (:class:`FrameFeature`) is created per clip. It says which frame indices
it reads (``wanted``; None = every frame), how many frames back it looks (``lookback``)
and which frames it keeps for the whole clip (``pinned``); :meth:`FrameFeature.step` is
called for each of its frames in order, :meth:`FrameFeature.finish` returns the value.
Memory is bounded by the look-back window, never by the clip's length.

Model-based extractors name a :class:`ModelFamily` (a backbone loaded once per process
with its weights, device and dtype); their frames go to the family's batcher, which
runs the model on batches that span clips and hands each clip its rows back
(:class:`Deferred`). Their values can be persisted in the run store, keyed by content
and by the spec's digest (extractor version, weights, precision), so adding a scorer
later does not recompute a backbone.
"""

from __future__ import annotations

import hashlib
import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from anibench.registry import Registry

if TYPE_CHECKING:
    from anibench.features.stream import ClipContext
    from anibench.runtime.context import Runtime


def _freeze(value: Any) -> Any:
    """Parameters as hashable values (lists → tuples, dicts → sorted item tuples)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class FeatureSpec:
    """A clip feature: extractor name and parameters. Equal specs are computed once per clip."""

    extractor: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, extractor: str, **params: Any) -> "FeatureSpec":
        return cls(extractor, tuple(sorted((k, _freeze(v)) for k, v in params.items())))

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params)
        return f"{self.extractor}({args})"


class FrameFeature(ABC):
    """One feature of one clip, computed from its frames in a single ordered pass.

    Subclasses set ``name`` (the registry name), ``version`` (bump when values change),
    and in ``__init__`` the frames they read: ``wanted`` (ascending indices, or None for
    every frame), ``lookback`` (how many frame indices back :meth:`step` may read through
    the clip context) and ``pinned`` (frames kept for the whole pass, e.g. the first).
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    family: ClassVar[str | None] = None
    persist: ClassVar[bool] = False

    def __init__(self, spec: FeatureSpec, clip: "ClipContext"):
        self.spec = spec
        self.clip = clip
        self.wanted: np.ndarray | None = None
        self.lookback = 0
        self.pinned: frozenset[int] = frozenset()

    @abstractmethod
    def step(self, t: int) -> None:
        """Frame ``t`` (one of ``wanted``) has arrived; ``self.clip.frame(t)`` and the window are readable."""

    @abstractmethod
    def finish(self) -> Any:
        """The feature's value (or a :class:`Deferred` that a model family resolves at its next flush)."""


FEATURES: Registry[type[FrameFeature]] = Registry("feature", "anibench.features")


class Deferred:
    """A value assembled from parts a model family produces when it runs its batches.

    A feature takes a slot per input (:meth:`slot`), submits the input with it, and
    :meth:`seal` s the deferred when it has submitted everything; the value is
    ``combine(parts in slot order)`` once every slot is filled.
    """

    def __init__(self, combine: Callable[[list[Any]], Any]):
        self._combine = combine
        self._parts: list[Any] = []
        self._missing = 0
        self._sealed = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()

    def slot(self) -> int:
        with self._lock:
            self._parts.append(None)
            self._missing += 1
            return len(self._parts) - 1

    def seal(self) -> "Deferred":
        with self._lock:
            self._sealed = True
            ready = self._missing == 0
        if ready:
            self._finish()
        return self

    def fill(self, position: int, value: Any) -> None:
        with self._lock:
            self._parts[position] = value
            self._missing -= 1
            ready = self._sealed and self._missing == 0
        if ready:
            self._finish()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def _finish(self) -> None:
        if self._done.is_set():
            return
        try:
            self._value = self._combine(self._parts)
        except Exception as exc:  # noqa: BLE001 - surfaced by result()
            self._error = exc
        self._parts = []
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> Any:
        if not self._done.is_set():
            raise RuntimeError("feature not computed yet: its model family has not been flushed")
        if self._error is not None:
            raise self._error
        return self._value


def resolve_value(value: Any) -> Any:
    """A feature value, waiting for nothing: a :class:`Deferred` must be done."""
    return value.result() if isinstance(value, Deferred) else value


class ModelFamily(ABC):
    """A backbone loaded once per process (weights, device, dtype) and run on batches.

    Extractors of the family submit inputs with :meth:`submit`; inputs of equal shape are
    batched across clips and run when ``batch_size`` of them are waiting, or at
    :meth:`flush`. Subclasses implement :meth:`load` (resolve weights through the runtime,
    build and move the model) and :meth:`forward` (one batch → one output row per input).
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    weights: ClassVar[tuple[str, ...]] = ()  # weights manifest entries

    def __init__(self, runtime: "Runtime"):
        self.runtime = runtime
        self.batch_size = runtime.batch_size
        self._pending: dict[tuple, list[tuple[Any, Deferred, int]]] = {}
        self._lock = threading.Lock()
        self._run_lock = runtime.model_lock  # forwards of every family of this runtime, one at a time
        self.batches_run = 0
        self.items_run = 0
        self.load()

    @abstractmethod
    def load(self) -> None:
        """Resolve weights (``self.runtime.weights``), build the model on the runtime's device and dtype."""

    @abstractmethod
    def forward(self, batch: Sequence[Any]) -> Sequence[Any]:
        """Run the model on inputs of one shape; one output per input (moved to CPU)."""

    def release(self) -> None:
        """Free the model (called when the pass that needed it ends)."""

    def digest(self) -> dict[str, Any]:
        """What makes this family's outputs what they are: version, weights' sha256, precision."""
        return {"family": self.name, "version": self.version, "weights": self.weight_digests(),
                "precision": self.runtime.precision}

    def weight_digests(self) -> dict[str, str]:
        return {}

    def submit(self, item: Any, deferred: Deferred, shape_key: tuple = ()) -> None:
        """Queue one input for a new slot of ``deferred``; runs a batch when ``batch_size`` inputs of ``shape_key`` wait."""
        position = deferred.slot()
        ready = None
        with self._lock:
            queue = self._pending.setdefault(shape_key, [])
            queue.append((item, deferred, position))
            if len(queue) >= self.batch_size:
                ready = self._pending.pop(shape_key)
        if ready:
            self._run(ready)

    def flush(self) -> None:
        """Run every waiting input."""
        with self._lock:
            queues = list(self._pending.values())
            self._pending.clear()
        for queue in queues:
            for start in range(0, len(queue), self.batch_size):
                self._run(queue[start : start + self.batch_size])

    def _run(self, queue: list[tuple[Any, Deferred, int]]) -> None:
        with self._run_lock:
            try:
                outputs = self.forward([item for item, _, _ in queue])
            except Exception as exc:  # noqa: BLE001 - every clip of the batch fails with it
                for _, deferred, _ in queue:
                    deferred.fail(exc)
                return
            self.batches_run += 1
            self.items_run += len(queue)
        for (_, deferred, position), output in zip(queue, outputs):
            deferred.fill(position, output)


MODEL_FAMILIES: Registry[type[ModelFamily]] = Registry("model family", "anibench.model_families")


def spec_digest(spec: FeatureSpec, family: ModelFamily | None = None) -> str:
    """sha256 naming a feature's value for persistence: extractor version, params, family digest."""
    cls = FEATURES.get(spec.extractor)
    payload = {"extractor": spec.extractor, "version": cls.version, "params": spec.params,
               "family": family.digest() if family is not None else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
