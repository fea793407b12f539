"""Clip features: what scorers read, computed once per clip in one streaming pass.

* :mod:`anibench.features.base` — :class:`FeatureSpec`, :class:`FrameFeature` (the
  extractor contract), :class:`ModelFamily` (backbones loaded once, batched across clips),
  the ``FEATURES`` and ``MODEL_FAMILIES`` registries;
* :mod:`anibench.features.stream` — :func:`compute_features`, :class:`ClipContext`;
* :mod:`anibench.features.sampling` — :class:`FrameSampling`;
* weight-free extractors: :mod:`~anibench.features.pixel`, :mod:`~anibench.features.motion`
  (on the DIS optical flow of :mod:`~anibench.features.flow`).
"""

from anibench.features.base import (
    FEATURES, MODEL_FAMILIES, Deferred, FeatureSpec, FrameFeature, ModelFamily, resolve_value, spec_digest,
)
from anibench.features.flow import (
    DEFAULT_WORKING_SIDE, FeatureCache, backward_warp, dis_flow, flow_magnitude, to_gray, top_fraction_mean,
)
from anibench.features.sampling import FrameSampling
from anibench.features.stream import ClipContext, compute_features

__all__ = [
    "FEATURES", "MODEL_FAMILIES", "ClipContext", "DEFAULT_WORKING_SIDE", "Deferred", "FeatureCache", "FeatureSpec",
    "FrameFeature", "FrameSampling", "ModelFamily", "backward_warp", "compute_features", "dis_flow",
    "flow_magnitude", "resolve_value", "spec_digest", "to_gray", "top_fraction_mean",
]
