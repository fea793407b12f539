"""Classical optical flow and the image steps around it: grey frames, DIS flow, warping, peak motion.

The streaming feature pass (:class:`anibench.features.ClipContext`) computes each flow
once per clip through these functions. :class:`FeatureCache` is the same memo over a
whole clip held in memory, for random access in notebooks and tests.

Flow is OpenCV's DIS (Kroeger et al., ECCV 2016), a weight-free stand-in for the RAFT
model VBench uses: values follow VBench's rules but are not numerically identical.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import cv2
import numpy as np

from anibench.errors import InputError

DEFAULT_FLOW_CACHE_BYTES = 768 * 1024**2
DEFAULT_WORKING_SIDE = 512
MIN_FLOW_SIDE = 12
_local = threading.local()


def _dis() -> "cv2.DISOpticalFlow":
    # DIS objects keep state between calls and are not thread-safe: one per thread.
    if not hasattr(_local, "dis"):
        _local.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _local.dis


def to_gray(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 → single-channel uint8 luma (ITU-R BT.601 weights, as OpenCV)."""
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def dis_flow(gray_a: np.ndarray, gray_b: np.ndarray) -> np.ndarray:
    """Dense flow from ``gray_a`` to ``gray_b``: (H, W, 2) float32 pixels, a(p) ≈ b(p + flow(p)).

    Frames under :data:`MIN_FLOW_SIDE` pixels on a side (a 10000x16 clip shrinks to 512x1
    at the working size) are refused: DIS cannot estimate flow there.
    """
    if min(gray_a.shape[:2]) < MIN_FLOW_SIDE:
        height, width = gray_a.shape[:2]
        raise InputError(f"frames are {width}x{height} at the optical-flow working size; flow needs at least "
                         f"{MIN_FLOW_SIDE} px on each side (a clip this thin or small cannot be scored for motion)")
    return _dis().calc(gray_a, gray_b, None)


def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    return np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2)


def top_fraction_mean(values: np.ndarray, fraction: float = 0.05) -> float:
    """Mean of the largest ``fraction`` of ``values``, at least one value (VBench: the top 5 % of flow
    magnitudes for dynamic degree, the top 2 % for the static filter)."""
    flat = values.ravel()
    k = max(1, int(flat.size * fraction))
    return float(np.partition(flat, flat.size - k)[flat.size - k :].mean())


def backward_warp(image: np.ndarray, flow: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Sample ``image`` at p + scale·flow(p) (bilinear, border replicated)."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = grid_x + scale * flow[..., 0]
    map_y = grid_y + scale * flow[..., 1]
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FeatureCache:
    """Memoised features of one clip at a working size, bounded by ``max_bytes`` (LRU).

    Motion features are computed on frames shrunk (area interpolation) so that the
    longer side is at most ``max_side``: DIS costs ~150 ms per pair at 2002x1080 and
    ~12 ms at 512 px, and every motion rule anibench implements is stated relative to
    the frame size, so decisions carry over. Flow vectors are in working-size pixels;
    :attr:`size` gives that size.
    """

    def __init__(self, frames: np.ndarray, max_side: int | None = DEFAULT_WORKING_SIDE,
                 max_bytes: int = DEFAULT_FLOW_CACHE_BYTES):
        self._frames = frames
        height, width = frames.shape[1:3]
        scale = min(1.0, max_side / max(height, width)) if max_side else 1.0
        self.size = (max(2, round(height * scale)), max(2, round(width * scale)))
        self.max_side = max_side
        self._max_bytes = max_bytes
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._scalars: dict[tuple, float] = {}
        self._lock = threading.Lock()
        self.computed = 0

    def rgb(self, index: int) -> np.ndarray:
        """Frame ``index`` at the working size."""
        frame = self._frames[index]
        if frame.shape[:2] == self.size:
            return frame
        return self._get(("rgb", index), lambda: cv2.resize(frame, self.size[::-1], interpolation=cv2.INTER_AREA))

    def gray(self, index: int) -> np.ndarray:
        return self._get(("gray", index), lambda: to_gray(self.rgb(index)))

    def flow(self, i: int, j: int) -> np.ndarray:
        """DIS flow from frame ``i`` to frame ``j`` at the working size."""
        return self._get(("flow", i, j), lambda: dis_flow(self.gray(i), self.gray(j)))

    def peak_motion(self, i: int, j: int, fraction: float = 0.05) -> float:
        """Mean of the top ``fraction`` of flow magnitudes from frame ``i`` to ``j`` (VBench's per-pair motion)."""
        key = ("peak", i, j, fraction)
        with self._lock:
            if key in self._scalars:
                return self._scalars[key]
        value = top_fraction_mean(flow_magnitude(self.flow(i, j)), fraction)
        with self._lock:
            self._scalars[key] = value
        return value

    def _get(self, key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self.computed += 1
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self._max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes
        return value
