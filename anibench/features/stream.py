"""One pass over a clip's frames feeding every feature it needs.

:func:`compute_features` decodes the union of the frames the clip's features read, in
order and once, and keeps only a sliding window of them (the largest look-back any
feature declared, plus pinned frames). :class:`ClipContext` is what features see: the
clip's facts and inputs, the window, and a memo of derived images shared between
features — the working-size RGB and grey frames and the optical flow of a pair are
computed once whichever features ask (dynamic degree and motion smoothness share the
flows of frames t → t+2 of a 16 fps clip; static-clip detection and mask precision the
consecutive ones). Memo entries leave with the frames they were computed from.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from anibench.errors import AnibenchError
from anibench.features.base import FEATURES, Deferred, FeatureSpec, FrameFeature, ModelFamily
from anibench.features.flow import DEFAULT_WORKING_SIDE, dis_flow, flow_magnitude, to_gray, top_fraction_mean
from anibench.frames import ClipInfo, FrameSource

if TYPE_CHECKING:
    from anibench.runtime.context import Runtime


def working_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """(h, w) after shrinking so the longer side is at most ``max_side`` (never below 2 px)."""
    scale = min(1.0, max_side / max(height, width)) if max_side else 1.0
    return max(2, round(height * scale)), max(2, round(width * scale))


class ClipContext:
    """A clip during its pass: facts, inputs, the frame window, and a memo of derived images.

    ``sample`` carries the non-frame inputs (prompt, guidance fitted to this clip, case
    facts; see :class:`anibench.scoring.ScoreInput`). ``families`` are the loaded model
    families model-based features submit to.
    """

    def __init__(self, info: ClipInfo, sample: Any = None, *, runtime: "Runtime | None" = None,
                 families: Mapping[str, ModelFamily] | None = None):
        self.info = info
        self.sample = sample
        self.runtime = runtime
        self.families = dict(families or {})
        self.frames_seen = 0
        self.last_index = -1
        self._frames: dict[int, np.ndarray] = {}
        self._memo: dict[tuple, Any] = {}
        self._memo_by_frame: dict[int, set[tuple]] = {}
        self._scalars: dict[tuple, float] = {}
        self._pinned: frozenset[int] = frozenset()
        self._lock = threading.Lock()

    # -- the window --------------------------------------------------------------------
    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` (full size, uint8 RGB); it must be in the window or pinned."""
        try:
            return self._frames[t]
        except KeyError:
            raise RuntimeError(f"frame {t} is not in the window (a feature read further back than it declared)") from None

    def has_frame(self, t: int) -> bool:
        return t in self._frames

    def _admit(self, t: int, frame: np.ndarray) -> None:
        self._frames[t] = frame
        self.frames_seen += 1
        self.last_index = t

    def _evict_before(self, oldest: int) -> None:
        for t in [t for t in self._frames if t < oldest and t not in self._pinned]:
            del self._frames[t]
            for key in self._memo_by_frame.pop(t, ()):
                self._memo.pop(key, None)

    # -- derived images, shared by every feature of the clip --------------------------------
    def memo(self, key: tuple, frames: Sequence[int], compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key``; forgotten when any frame of ``frames`` leaves the window."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        value = compute()
        with self._lock:
            self._memo[key] = value
            for t in frames:
                self._memo_by_frame.setdefault(t, set()).add(key)
        return value

    def working_size(self, max_side: int | None = DEFAULT_WORKING_SIDE) -> tuple[int, int]:
        return working_size(self.info.height, self.info.width, max_side)

    def working(self, t: int, max_side: int | None = DEFAULT_WORKING_SIDE) -> np.ndarray:
        """Frame ``t`` shrunk with area interpolation so its longer side is at most ``max_side``."""
        size = self.working_size(max_side)
        frame = self.frame(t)
        if frame.shape[:2] == size:
            return frame
        return self.memo(("rgb", max_side, t), (t,),
                         lambda: cv2.resize(frame, size[::-1], interpolation=cv2.INTER_AREA))

    def gray(self, t: int, max_side: int | None = DEFAULT_WORKING_SIDE) -> np.ndarray:
        return self.memo(("gray", max_side, t), (t,), lambda: to_gray(self.working(t, max_side)))

    def flow(self, i: int, j: int, max_side: int | None = DEFAULT_WORKING_SIDE) -> np.ndarray:
        """DIS optical flow from frame ``i`` to frame ``j`` at the working size (both in the window)."""
        return self.memo(("flow", max_side, i, j), (i, j),
                         lambda: dis_flow(self.gray(i, max_side), self.gray(j, max_side)))

    def peak_motion(self, i: int, j: int, fraction: float, max_side: int | None = DEFAULT_WORKING_SIDE) -> float:
        """Mean of the top ``fraction`` of flow magnitudes from ``i`` to ``j`` (kept for the whole clip)."""
        key = ("peak", max_side, i, j, fraction)
        with self._lock:
            if key in self._scalars:
                return self._scalars[key]
        value = top_fraction_mean(flow_magnitude(self.flow(i, j, max_side)), fraction)
        with self._lock:
            self._scalars[key] = value
        return value

    def family(self, name: str) -> ModelFamily:
        try:
            return self.families[name]
        except KeyError:
            raise RuntimeError(f"model family {name!r} is not loaded for this pass") from None


class FeatureError(Exception):
    """Wraps the error one feature raised, so the others of the clip still complete."""


def compute_features(
    source: FrameSource,
    specs: Sequence[FeatureSpec],
    sample: Any = None,
    *,
    runtime: "Runtime | None" = None,
    families: Mapping[str, ModelFamily] | None = None,
) -> dict[FeatureSpec, Any]:
    """Every feature of ``specs`` for one clip, from one ordered pass over its frames.

    A value is the feature's result, a :class:`~anibench.features.base.Deferred` for
    model features (resolved when their family flushes), or the exception the feature
    raised (one feature's error never stops the others). A decoding error is raised:
    every feature of the clip fails with it.
    """
    clip = ClipContext(source.info, sample, runtime=runtime, families=families)
    features: dict[FeatureSpec, FrameFeature] = {}
    values: dict[FeatureSpec, Any] = {}
    for spec in dict.fromkeys(specs):
        try:
            features[spec] = FEATURES.get(spec.extractor)(spec, clip)
        except Exception as exc:  # noqa: BLE001 - recorded as this feature's value
            values[spec] = exc
    if not features:
        return values
    wanted = _union([f.wanted for f in features.values()])
    lookback = max(f.lookback for f in features.values())
    clip._pinned = frozenset().union(*(f.pinned for f in features.values()))
    readers = {spec: (None if f.wanted is None else set(int(i) for i in f.wanted)) for spec, f in features.items()}
    for t, frame in source.frames(wanted):
        clip._evict_before(t - lookback)
        clip._admit(t, frame)
        for spec, feature in list(features.items()):
            if readers[spec] is None or t in readers[spec]:
                try:
                    feature.step(t)
                except Exception as exc:  # noqa: BLE001
                    values[spec] = exc
                    del features[spec]
    for spec, feature in features.items():
        try:
            values[spec] = feature.finish()
        except Exception as exc:  # noqa: BLE001
            values[spec] = exc
    return values


def _union(wanted: Sequence[np.ndarray | None]) -> np.ndarray | None:
    if any(w is None for w in wanted):
        return None
    return np.unique(np.concatenate([np.asarray(w, dtype=np.int64) for w in wanted])) if wanted else np.array([], int)


def needs_no_decode(values: Mapping[FeatureSpec, Any]) -> bool:
    return all(not isinstance(v, Deferred) for v in values.values())


def feature_error(value: Any, spec: FeatureSpec) -> AnibenchError | None:
    """The error a feature value carries, if any."""
    if isinstance(value, BaseException):
        return value if isinstance(value, AnibenchError) else AnibenchError(
            f"feature {spec.describe()} failed: {type(value).__name__}: {value}")
    return None
