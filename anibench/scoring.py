"""The scorer interface, shared by every metric (weight-free, VBench, AnimeReward).

Like torchmetrics' ``Metric``, every scorer is a small class with one contract:

* it declares what it reads besides frames (:class:`Input`), the clip features it
  computes from (:meth:`Scorer.features`: specs of :mod:`anibench.features` extractors,
  weight-free or model-based), its per-video range and direction (or "descriptive"),
  its aggregate rule, its version and its parameters, and how it should react to the
  perturbation battery (:class:`Expect`, see :mod:`anibench.sanity`);
* it never opens files nor loops over a video: the run computes every feature of a clip
  in one streaming pass shared by all scorers (:func:`anibench.features.compute_features`)
  and hands each scorer a :class:`ScoreInput` holding them;
* it is batch-first: :meth:`Scorer.setup` once per process with the model runtime,
  :meth:`Scorer.score_batch` on many clips, :meth:`Scorer.release`; weight-free scorers
  implement the one-clip :meth:`Scorer.compute` and inherit the rest.

Scores are cached by (video sha256, scorer name, version, :meth:`Scorer.identity` —
parameters, weights' sha256 and numeric precision —, fingerprint of the declared
inputs): changing any of these recomputes, and nothing else does (not the device index
nor the batch size).
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import AnibenchError, InputError, NotApplicable
from anibench.features import DEFAULT_WORKING_SIDE, FeatureSpec, FrameSampling, resolve_value
from anibench.features.pixel import sampling_params
from anibench.frames import ArrayFrames, ClipInfo
from anibench.plugin import Configurable
from anibench.registry import Registry
from anibench.video import Video

if TYPE_CHECKING:
    from anibench.conditions import Placement
    from anibench.runtime.context import Runtime

__all__ = ["AGGREGATIONS", "Expect", "FrameSampling", "Input", "MotionScorer", "SCORERS", "ScoreInput",
           "ScoreResult", "Scorer", "create_scorer", "inputs_fingerprint", "scorer_groups"]


class Input(str, Enum):
    """What a scorer reads besides the frames."""

    FRAMES = "frames"
    PROMPT = "prompt"
    GUIDES = "guides"
    MASK = "mask"
    GROUND_TRUTH = "ground_truth"


class Expect(str, Enum):
    """Declared reaction to a perturbation: the value goes up, goes down, stays put, or — when the
    reaction depends on the clip — no claim (declare it explicitly and say why in a comment)."""

    UP = "up"
    DOWN = "down"
    NONE = "none"
    NO_CLAIM = "no claim"


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
    """One clip and everything a scorer may read about it.

    ``info`` gives the clip's length, rate and size; ``features`` the clip features the
    run computed for it (:meth:`feature`). ``guidance`` carries the guide frames (placed
    on this clip) and the motion region the clip was generated from or is checked
    against. ``video`` holds the frames when the clip is in memory (the perturbation
    battery, frames handed to a scoring session); a feature missing from ``features``
    is then computed on first use.
    """

    case_id: str
    video: Video | None = None
    prompt: str = ""
    guidance: Guidance | None = None
    label: str | None = None
    style: str | None = None
    video_path: Path | None = None
    video_sha256: str | None = None
    ground_truth_path: Path | None = None
    ground_truth_sha256: str | None = None
    info: ClipInfo | None = None
    features: dict[FeatureSpec, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.info is None and self.video is not None:
            self.info = ClipInfo(self.video.num_frames, self.video.fps, self.video.height, self.video.width)

    @property
    def num_frames(self) -> int:
        return self.info.num_frames

    @property
    def fps(self) -> float:
        return self.info.fps

    @property
    def guides(self) -> tuple[GuideFrame, ...]:
        return self.guidance.guides if self.guidance else ()

    @property
    def motion_region(self) -> np.ndarray | None:
        return self.guidance.motion_region if self.guidance else None

    def feature(self, spec: FeatureSpec) -> Any:
        """The value of ``spec`` for this clip; re-raises the error its computation raised."""
        if spec not in self.features:
            # A feature the scorer did not declare: computed now, with a pass of its own.
            from anibench.features.stream import compute_features
            from anibench.frames import FileFrames

            if self.video is not None:
                source = ArrayFrames.of(self.video)
            elif self.video_path is not None:
                source = FileFrames(self.video_path)
            else:
                raise RuntimeError(f"feature {spec.describe()} was not computed for case {self.case_id!r}")
            self.features.update(compute_features(source, [spec], self))
        value = resolve_value(self.features[spec])
        if isinstance(value, BaseException):
            raise value
        return value

    def frames(self, sampling: FrameSampling) -> tuple[np.ndarray, np.ndarray]:
        """(indices, frames) of ``sampling`` (the ``frames.sampled`` feature)."""
        return self.feature(FeatureSpec.of("frames.sampled", **sampling_params(sampling)))

    def with_changes(self, **changes: Any) -> "ScoreInput":
        """A copy with some fields replaced; new frames drop the computed features (used by perturbations)."""
        if "video" in changes and "info" not in changes:
            video = changes["video"]
            changes["info"] = ClipInfo(video.num_frames, video.fps, video.height, video.width)
        if "features" not in changes:
            changes["features"] = {} if {"video", "info", "guidance", "prompt"} & set(changes) else dict(self.features)
        return replace(self, **changes)

    def fingerprint(self, inputs: frozenset["Input"]) -> str:
        return inputs_fingerprint(
            inputs, prompt=self.prompt, guidance=self.guidance, ground_truth_sha256=self.ground_truth_sha256
        )


def inputs_fingerprint(
    inputs: frozenset[Input], *, prompt: str, guidance: Guidance | None, ground_truth_sha256: str | None,
    placement: "Placement | None" = None,
) -> str:
    """sha256 over the non-frame inputs a scorer declared (the frames are keyed by the file hash).

    ``guidance`` is the one resolved for the case (before it is placed on the clip), so the
    key is known before the clip is decoded; ``placement`` — where the clip's generator
    placed the guides, when it recorded that — is part of it for guide-reading scorers.
    """
    digest = hashlib.sha256()
    if Input.PROMPT in inputs:
        digest.update(b"prompt\0" + prompt.encode("utf-8"))
    if Input.GUIDES in inputs and guidance is not None:
        for guide in guidance.guides:
            digest.update(f"guide\0{guide.position!r}\0{guide.frame_index}\0{guide.image.shape}".encode())
            digest.update(np.ascontiguousarray(guide.image).tobytes())
        if placement is not None:
            digest.update(b"placed\0" + placement.to_json().encode())
    if Input.MASK in inputs and guidance is not None and guidance.motion_region is not None:
        digest.update(f"mask\0{guidance.motion_region.shape}".encode())
        digest.update(np.packbits(guidance.motion_region).tobytes())
    if Input.GROUND_TRUTH in inputs:
        digest.update(b"gt\0" + (ground_truth_sha256 or "").encode())
    return digest.hexdigest()


def _mean(values: Sequence[float], details: Sequence[Mapping[str, Any]]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _median(values: Sequence[float], details: Sequence[Mapping[str, Any]]) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _frame_weighted(values: Sequence[float], details: Sequence[Mapping[str, Any]]) -> float:
    """Σ frame_sum / Σ frame_count over clips: long clips weigh more (VBench's single-process
    aggregate of subject and background consistency); needs ``frame_sum``/``frame_count`` details."""
    count = sum(d["frame_count"] for d in details)
    return sum(d["frame_sum"] for d in details) / count if count else math.nan


def _mean_of_percent(values: Sequence[float], details: Sequence[Mapping[str, Any]]) -> float:
    """The mean of per-clip values on 0–100, divided by 100 (VBench's imaging quality: MUSIQ per
    video on 0–100, suite value on 0–1, ``vbench/imaging_quality.py``)."""
    return _mean(values, details) / 100.0


# Aggregate rules: (per-clip values, their details) → the suite's value.
AGGREGATIONS = {"mean": _mean, "median": _median, "frame_weighted": _frame_weighted,
                "mean_of_percent": _mean_of_percent}


class Scorer(Configurable, ABC):
    """Base class of every scorer; subclasses set the class attributes and implement ``compute``.

    Class attributes:
        name, version: identity; bump ``version`` whenever the values could change.
        requires: inputs besides frames; a clip lacking one is :class:`NotApplicable`
            (no guides, no mask) or an :class:`InputError` (an empty prompt).
        sampling: the frames read (see :class:`FrameSampling`), for documentation and
            for scorers reading ``frames.sampled``.
        families: model families (:class:`anibench.features.ModelFamily`) whose features
            it reads; their weights and the runtime's precision enter :meth:`identity`.
        lower, upper, higher_is_better, unit: the per-video range and direction;
            ``higher_is_better = None`` marks a descriptive property (no better or worse).
        aggregate: how per-video values combine into a suite score (``AGGREGATIONS``).
        min_frames: clips with fewer frames are an input error.
        default_params: tunable parameters that change values; part of the cache key.
        expectations: perturbation name → :class:`Expect` (see :mod:`anibench.sanity`).
        none_tolerance: how far the value may move and still count as "no effect".
    """

    kind: ClassVar[str] = "scorer"
    requires: ClassVar[frozenset[Input]] = frozenset()
    sampling: ClassVar[FrameSampling] = FrameSampling()
    families: ClassVar[tuple[str, ...]] = ()
    lower: ClassVar[float] = 0.0
    upper: ClassVar[float] = 1.0
    higher_is_better: ClassVar[bool | None] = True
    unit: ClassVar[str] = ""
    aggregate: ClassVar[str] = "mean"
    min_frames: ClassVar[int] = 2
    expectations: ClassVar[Mapping[str, Expect]] = {}
    none_tolerance: ClassVar[float] = 1e-6

    runtime: "Runtime | None" = None

    # -- lifecycle --------------------------------------------------------------------
    def setup(self, runtime: "Runtime") -> None:
        """Called once per process before scoring: keep the runtime (device, dtype, weights)."""
        self.runtime = runtime

    def release(self) -> None:
        """Called when the scorer is no longer needed (models it holds itself are freed here)."""

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this scorer cannot run here (missing weights, say), or None when it can."""
        from anibench.runtime.context import missing_weights

        missing = missing_weights(cls.families)
        return str(missing) if missing else None

    # -- identity ---------------------------------------------------------------------
    def identity(self, runtime: "Runtime | None" = None) -> str:
        """Short sha256 of what decides the values: parameters, and for model-based scorers the
        weights' sha256 and the numeric precision (never the device index or the batch size)."""
        if not self.families:
            return self.params_hash()
        from anibench.runtime.context import family_digests

        payload = {"params": self.params, "families": family_digests(self.families, runtime or self.runtime)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def describe(self, runtime: "Runtime | None" = None) -> dict[str, Any]:
        """Provenance: identity, parameters, inputs, preprocessing, range, direction, weights."""
        return {
            "name": self.name,
            "version": self.version,
            "params": self.params,
            "identity": self.identity(runtime),
            "requires": sorted(i.value for i in self.requires),
            "sampling": self.sampling.describe(),
            "range": [self.lower, self.upper if math.isfinite(self.upper) else None],
            "higher_is_better": self.higher_is_better,
            "unit": self.unit,
            "aggregate": self.aggregate,
            "families": list(self.families),
            "weights": self.weights(),
        }

    def weights(self) -> list[dict[str, Any]]:
        """Weight files used (name, file, sha256, source); weight-free scorers have none."""
        if not self.families:
            return []
        from anibench.runtime.context import family_weights

        return family_weights(self.families)

    # -- what it reads ------------------------------------------------------------------
    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        """The clip features :meth:`compute` reads for ``sample`` (its guidance and facts are set)."""
        return []

    def result(self, value: float, **details: Any) -> ScoreResult:
        return ScoreResult(self.name, float(value), self.lower, self.upper, self.higher_is_better, details)

    def check(self, sample: ScoreInput) -> None:
        """Raise if ``sample`` lacks what this scorer declared it needs."""
        if sample.num_frames < self.min_frames:
            raise InputError(
                f"video has {sample.num_frames} frame(s); {self.name} needs at least {self.min_frames}",
                case_id=sample.case_id,
                path=sample.video_path,
            )
        if Input.PROMPT in self.requires and not sample.prompt.strip():
            raise InputError(f"empty prompt; {self.name} scores text against the video", case_id=sample.case_id)
        if Input.GUIDES in self.requires and not sample.guides:
            raise NotApplicable(f"{self.name} needs guide frames and none were given", case_id=sample.case_id)
        if Input.MASK in self.requires and sample.motion_region is None:
            raise NotApplicable(f"{self.name} needs a motion mask and the case has none", case_id=sample.case_id)
        if Input.GROUND_TRUTH in self.requires and sample.ground_truth_path is None:
            raise NotApplicable(f"{self.name} needs a ground-truth video", case_id=sample.case_id)

    # -- scoring ------------------------------------------------------------------------
    def score(self, sample: ScoreInput) -> ScoreResult:
        """Check the inputs, then compute; errors name the case and the video file."""
        try:
            self.check(sample)
            return self.compute(sample)
        except AnibenchError as exc:
            raise exc.with_context(case_id=sample.case_id, path=sample.video_path)
        except Exception as exc:  # noqa: BLE001 - a library error still names the case and the file
            raise AnibenchError(f"{self.name} failed: {type(exc).__name__}: {exc}", case_id=sample.case_id,
                                path=sample.video_path) from exc

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
        """Score one clip whose inputs have been checked, from ``sample.feature(...)``."""


class MotionScorer(Scorer):
    """A scorer built on optical flow; ``flow_max_side`` sets the working size of the flow.

    Clips share flows between scorers with the same working size (see
    :class:`anibench.features.ClipContext`).
    """

    default_params: ClassVar[Mapping[str, Any]] = {"flow_max_side": DEFAULT_WORKING_SIDE}


SCORERS: Registry[type[Scorer]] = Registry("scorer", "anibench.scorers")


def create_scorer(name: str, **params: Any) -> Scorer:
    return SCORERS.get(name)(**params)


def scorer_groups() -> dict[str, dict[str, Any]]:
    """Named groups of scorers (``datasets/scorer_groups.yaml``): {group: {description, members}}."""
    from anibench.resources import load_yaml

    return load_yaml("scorer_groups.yaml")
