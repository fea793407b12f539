"""The scorer interface, shared by every metric (weight-free, VBench, AnimeReward).

Like torchmetrics' ``Metric``, every scorer is a small class with one contract:

* it declares what it reads (:class:`Input`), at which frame sampling
  (:class:`FrameSampling`), its per-video range and direction, its aggregate rule, its
  version and its parameters, and how it should react to the perturbation battery
  (:class:`Expect`, see :mod:`anibench.sanity`);
* it never opens files: the run engine decodes each video once into a
  :class:`ScoreInput` shared by all scorers, with memoised features (optical flow);
* :meth:`Scorer.compute` returns a :class:`ScoreResult` for one clip; batching scorers
  override :meth:`Scorer.score_batch`.

Scores are cached by (video sha256, scorer name, version, parameters, fingerprint of the
declared inputs), so changing any of these recomputes and nothing else does.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import cv2
import numpy as np

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import AnibenchError, InputError, NotApplicable
from anibench.features import DEFAULT_WORKING_SIDE, FeatureCache
from anibench.plugin import Configurable
from anibench.registry import Registry
from anibench.video import Video


class Input(str, Enum):
    """What a scorer reads besides the frames."""

    FRAMES = "frames"
    PROMPT = "prompt"
    GUIDES = "guides"
    MASK = "mask"
    GROUND_TRUTH = "ground_truth"


class Expect(str, Enum):
    """Declared reaction to a perturbation: the value goes up, goes down, or stays put."""

    UP = "up"
    DOWN = "down"
    NONE = "none"


@dataclass(frozen=True)
class FrameSampling:
    """Which frames a scorer reads, and at what size.

    * ``all``: every frame.
    * ``fps_stride``: every ``max(1, round(fps / target_fps))``-th frame (VBench's dynamic
      degree reads ~8 fps).
    * ``uniform``: ``count`` frames at ``arange(0, M, M / count)`` with
      ``M = min(T, within_first)``, all frames when ``T <= count`` (AnimeReward's 24 of the
      first 144).

    ``max_side`` shrinks frames (area interpolation) so the longer side is at most that.
    """

    kind: str = "all"
    target_fps: float | None = None
    count: int | None = None
    within_first: int | None = None
    max_side: int | None = None

    def indices(self, num_frames: int, fps: float) -> np.ndarray:
        if self.kind == "all":
            return np.arange(num_frames)
        if self.kind == "fps_stride":
            return np.arange(0, num_frames, self.stride(fps))
        if self.kind == "uniform":
            span = min(num_frames, self.within_first or num_frames)
            if num_frames <= self.count:
                return np.arange(num_frames)
            return np.arange(0, span, span / self.count).astype(int)[: self.count]
        raise ValueError(f"unknown frame sampling {self.kind!r}")

    def stride(self, fps: float) -> int:
        return max(1, round(fps / self.target_fps)) if self.kind == "fps_stride" else 1

    def describe(self) -> str:
        parts = [self.kind]
        if self.kind == "fps_stride":
            parts.append(f"stride=max(1,round(fps/{self.target_fps:g}))")
        if self.kind == "uniform":
            parts.append(f"count={self.count}" + (f", first {self.within_first}" if self.within_first else ""))
        if self.max_side:
            parts.append(f"max_side={self.max_side}")
        return " ".join(parts)


@dataclass(frozen=True)
class ScoreResult:
    """One clip's score: the value, the scorer's documented range and direction, and details."""

    scorer: str
    value: float
    lower: float
    upper: float
    higher_is_better: bool
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ScoreInput:
    """One decoded clip and everything a scorer may read about it.

    ``guidance`` carries the guide frames (and motion region) the clip was generated
    from, or is checked against. :meth:`motion_features` memoises grayscale frames and
    optical flow for every scorer of the clip.
    """

    case_id: str
    video: Video
    prompt: str = ""
    guidance: Guidance | None = None
    ground_truth: Video | None = None
    ground_truth_sha256: str | None = None
    label: str | None = None
    style: str | None = None
    video_path: Path | None = None
    _features: dict = field(init=False, repr=False, default_factory=dict)
    _sampled: dict = field(init=False, repr=False, default_factory=dict)

    @property
    def guides(self) -> tuple[GuideFrame, ...]:
        return self.guidance.guides if self.guidance else ()

    @property
    def motion_region(self) -> np.ndarray | None:
        return self.guidance.motion_region if self.guidance else None

    def frames(self, sampling: FrameSampling) -> tuple[np.ndarray, np.ndarray]:
        """(indices, frames) at ``sampling``; computed once per sampling."""
        if sampling not in self._sampled:
            idx = sampling.indices(self.video.num_frames, self.video.fps)
            frames = self.video.frames[idx]
            if sampling.max_side and max(frames.shape[1:3]) > sampling.max_side:
                scale = sampling.max_side / max(frames.shape[1:3])
                size = (max(1, round(frames.shape[2] * scale)), max(1, round(frames.shape[1] * scale)))
                frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
            self._sampled[sampling] = (idx, frames)
        return self._sampled[sampling]

    def motion_features(self, max_side: int | None = DEFAULT_WORKING_SIDE) -> FeatureCache:
        """Grayscale frames and optical flow at a working size, shared by every scorer of this clip."""
        if max_side not in self._features:
            self._features[max_side] = FeatureCache(self.video.frames, max_side)
        return self._features[max_side]

    def with_changes(self, **changes: Any) -> "ScoreInput":
        """A copy with some fields replaced and fresh feature caches (used by perturbations)."""
        return replace(self, **changes)

    def fingerprint(self, inputs: frozenset[Input]) -> str:
        return inputs_fingerprint(
            inputs, prompt=self.prompt, guidance=self.guidance, ground_truth_sha256=self.ground_truth_sha256
        )


def inputs_fingerprint(
    inputs: frozenset[Input], *, prompt: str, guidance: Guidance | None, ground_truth_sha256: str | None
) -> str:
    """sha256 over the non-frame inputs a scorer declared (the frames are keyed by the file hash).

    ``guidance`` is the one resolved for the case (before it is re-placed on a clip of
    another length), so the key is known before the clip is decoded.
    """
    digest = hashlib.sha256()
    if Input.PROMPT in inputs:
        digest.update(b"prompt\0" + prompt.encode("utf-8"))
    if Input.GUIDES in inputs and guidance is not None:
        for guide in guidance.guides:
            digest.update(f"guide\0{guide.position!r}\0{guide.frame_index}\0{guide.image.shape}".encode())
            digest.update(np.ascontiguousarray(guide.image).tobytes())
    if Input.MASK in inputs and guidance is not None and guidance.motion_region is not None:
        digest.update(f"mask\0{guidance.motion_region.shape}".encode())
        digest.update(np.packbits(guidance.motion_region).tobytes())
    if Input.GROUND_TRUTH in inputs:
        digest.update(b"gt\0" + (ground_truth_sha256 or "").encode())
    return digest.hexdigest()


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else math.nan


AGGREGATIONS = {"mean": _mean, "median": _median}


class Scorer(Configurable, ABC):
    """Base class of every scorer; subclasses set the class attributes and implement ``compute``.

    Class attributes:
        name, version: identity; bump ``version`` whenever the values could change.
        requires: inputs besides frames; a clip lacking one is :class:`NotApplicable`
            (no guides, no mask) or an :class:`InputError` (an empty prompt).
        sampling: the frames read (see :class:`FrameSampling`).
        lower, upper, higher_is_better, unit: the per-video range and direction.
        aggregate: how per-video values combine into a suite score (``AGGREGATIONS``).
        min_frames: clips with fewer decoded frames are an input error.
        default_params: tunable parameters; part of the cache key.
        expectations: perturbation name → :class:`Expect` (see :mod:`anibench.sanity`).
        none_tolerance: how far the value may move and still count as "no effect".
    """

    kind: ClassVar[str] = "scorer"
    requires: ClassVar[frozenset[Input]] = frozenset()
    sampling: ClassVar[FrameSampling] = FrameSampling()
    lower: ClassVar[float] = 0.0
    upper: ClassVar[float] = 1.0
    higher_is_better: ClassVar[bool] = True
    unit: ClassVar[str] = ""
    aggregate: ClassVar[str] = "mean"
    min_frames: ClassVar[int] = 2
    expectations: ClassVar[Mapping[str, Expect]] = {}
    none_tolerance: ClassVar[float] = 1e-6

    def describe(self) -> dict[str, Any]:
        """Provenance: identity, parameters, inputs, preprocessing, range, direction, weights."""
        return {
            "name": self.name,
            "version": self.version,
            "params": self.params,
            "requires": sorted(i.value for i in self.requires),
            "sampling": self.sampling.describe(),
            "range": [self.lower, self.upper if math.isfinite(self.upper) else None],
            "higher_is_better": self.higher_is_better,
            "unit": self.unit,
            "aggregate": self.aggregate,
            "weights": self.weights(),
        }

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this scorer cannot run here (missing weights, say), or None when it can."""
        return None

    def weights(self) -> list[dict[str, str]]:
        """Weight files used, as ``{"name", "path", "sha256"}``; weight-free scorers have none."""
        return []

    def result(self, value: float, **details: Any) -> ScoreResult:
        return ScoreResult(self.name, float(value), self.lower, self.upper, self.higher_is_better, details)

    def check(self, sample: ScoreInput) -> None:
        """Raise if ``sample`` lacks what this scorer declared it needs."""
        if sample.video.num_frames < self.min_frames:
            raise InputError(
                f"video has {sample.video.num_frames} frame(s); {self.name} needs at least {self.min_frames}",
                case_id=sample.case_id,
                path=sample.video_path,
            )
        if Input.PROMPT in self.requires and not sample.prompt.strip():
            raise InputError(f"empty prompt; {self.name} scores text against the video", case_id=sample.case_id)
        if Input.GUIDES in self.requires and not sample.guides:
            raise NotApplicable(f"{self.name} needs guide frames and none were given", case_id=sample.case_id)
        if Input.MASK in self.requires and sample.motion_region is None:
            raise NotApplicable(f"{self.name} needs a motion mask and the case has none", case_id=sample.case_id)
        if Input.GROUND_TRUTH in self.requires and sample.ground_truth is None:
            raise NotApplicable(f"{self.name} needs a ground-truth video", case_id=sample.case_id)

    def score(self, sample: ScoreInput) -> ScoreResult:
        """Check the inputs, then compute; errors name the case and the video file."""
        try:
            self.check(sample)
            return self.compute(sample)
        except AnibenchError as exc:
            raise exc.with_context(case_id=sample.case_id, path=sample.video_path)

    def score_batch(self, samples: Sequence[ScoreInput]) -> list[ScoreResult | Exception]:
        """Score several clips; one clip's error is returned in its slot, not raised."""
        results: list[ScoreResult | Exception] = []
        for sample in samples:
            try:
                results.append(self.score(sample))
            except Exception as exc:  # noqa: BLE001 - one bad clip must not lose the batch
                results.append(exc)
        return results

    @abstractmethod
    def compute(self, sample: ScoreInput) -> ScoreResult:
        """Score one clip whose inputs have been checked."""


class MotionScorer(Scorer):
    """A scorer built on optical flow; ``flow_max_side`` sets the working size of the flow.

    Clips of one run share flows between scorers with the same working size (see
    :class:`anibench.features.FeatureCache`).
    """

    default_params: ClassVar[Mapping[str, Any]] = {"flow_max_side": DEFAULT_WORKING_SIDE}

    def motion(self, sample: ScoreInput) -> FeatureCache:
        return sample.motion_features(self.params["flow_max_side"])


SCORERS: Registry[type[Scorer]] = Registry("scorer", "anibench.scorers")


def create_scorer(name: str, **params: Any) -> Scorer:
    return SCORERS.get(name)(**params)
