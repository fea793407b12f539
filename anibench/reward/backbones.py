"""Frozen backbones for trainable reward heads: clip → one feature vector, through the core's feature pass.

A :class:`Backbone` names the clip features it reads (:class:`~anibench.features.FeatureSpec` s, so a
clip is decoded once, model features are batched across clips by their family and persisted in the
feature store like every scorer's) and how their values become one float vector. Heads
(:mod:`anibench.reward.heads`) are fitted on those vectors; the backbone's name and version are
stored in each head's config and the scorer ``anime_reward.trained`` rebuilds the same vector.

Backbones:

* ``handcrafted`` — weight-free clip statistics (:class:`ClipStats`, :class:`GuideStats` and the
  ``flow.peaks`` feature dynamic degree also reads): colour, contrast, saturation, sharpness and
  colourfulness of the 24 AnimeReward frames, frame-difference and optical-flow motion, and the
  guide image's agreement with the clip. Runs anywhere, no weights.
* ``clip_vit_b32`` — OpenAI CLIP ViT-B/32 image embeddings (the ``vbench.clip_frames`` feature the
  VBench background-consistency scorer reads, so both share one pass and one cache): the L2-normalised
  mean frame embedding, mean cosine of consecutive frames, and the guide image's embedding
  similarity. anibench's conversion keeps CLIP's image tower only, so this backbone reads no prompt.
* ``viclip_l14`` — ViCLIP video embedding and prompt text embedding (VBench overall consistency's
  features) and their cosine: the backbone that reads the prompt.

Adding a backbone on another registered model family takes a few lines: a function returning the
specs for a clip, one turning their values into a vector, and a :func:`register` call (see the
three below). Model backbones whose weights are missing fail with the core's
:class:`~anibench.errors.MissingWeightsError` (which entry, which file, where it looked, how to get it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from anibench.errors import AnibenchError, InputError
from anibench.features.base import Deferred, FeatureSpec, FrameFeature
from anibench.features.flow import DEFAULT_WORKING_SIDE
from anibench.features.anime_reward_inputs import MIN_FRAMES, SAMPLING
from anibench.features.sampling import FrameSampling
from anibench.scoring import Input, ScoreInput, ScoreResult, Scorer

STATS_SIDE = 128  # working size (longer side) of the handcrafted statistics


def _sampling() -> FrameSampling:
    return SAMPLING


@dataclass(frozen=True)
class Backbone:
    """A frozen feature extractor: clip (with prompt and optional guide) → float vector.

    ``specs(sample)`` lists the features to compute; ``vector(sample)`` reads them back
    (``sample.feature(spec)``) into a 1-D float64 array of ``len(feature_names)``. ``families``
    are the model families read (empty: weight-free); ``requires`` the inputs besides frames that
    every clip must have (a prompt); the guide image is optional for every backbone (its absence is
    a feature: ``has_guide`` = 0).
    """

    name: str
    version: str
    description: str
    feature_names: tuple[str, ...]
    specs: Callable[[ScoreInput], list[FeatureSpec]]
    vector: Callable[[ScoreInput], np.ndarray]
    families: tuple[str, ...] = ()
    requires: frozenset[Input] = frozenset()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "description": self.description,
                "families": list(self.families), "requires": sorted(i.value for i in self.requires),
                "dimension": len(self.feature_names)}


BACKBONES: dict[str, Backbone] = {}


def register(backbone: Backbone) -> Backbone:
    BACKBONES[backbone.name] = backbone
    return backbone


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise InputError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}") from None


def first_guide(sample: ScoreInput) -> np.ndarray | None:
    """The clip's first-frame guide image (the case's guide image), or None."""
    for guide in sample.guides:
        if guide.position == 0.0:
            return guide.image
    return None


def _image_key(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() + str(image.shape)


# -- weight-free features -----------------------------------------------------------------------------
FRAME_STATS = ("red", "green", "blue", "brightness", "contrast", "saturation", "sharpness", "colourfulness")


def frame_stats(frame: np.ndarray) -> np.ndarray:
    """Per-frame statistics of an RGB uint8 image, each roughly in [0, 1] (see :data:`FRAME_STATS`).

    Means of R, G, B and of the grey level (÷255); contrast = std of the grey level (÷128);
    saturation = mean HSV saturation (÷255); sharpness = log(1 + variance of the grey Laplacian) ÷ 10;
    colourfulness = Hasler & Süsstrunk's M (σ + 0.3 μ of the rg/yb opponent channels) ÷ 100.
    """
    rgb = frame.astype(np.float32)
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    means = rgb.reshape(-1, 3).mean(0) / 255.0
    return np.array([*means, gray.mean() / 255.0, gray.std() / 128.0, hsv[..., 1].mean() / 255.0,
                     np.log1p(float(lap.var())) / 10.0, colourful / 100.0], dtype=np.float64)


class ClipStats(FrameFeature):
    """``reward.clip_stats``: weight-free statistics of the 24 AnimeReward frames (24 of the first 144).

    Value: float64 vector — the mean over frames of :func:`frame_stats`, the std over frames of
    brightness and sharpness, and the mean absolute difference of consecutive sampled frames (÷255:
    mean, std, max). Frames are read at ``max_side`` (area-shrunk working frames). Persisted in
    the feature store like a model feature (it depends on the frames only).
    """

    name = "reward.clip_stats"
    version = "1"
    persist = True

    NAMES = (*(f"{s}_mean" for s in FRAME_STATS), "brightness_std", "sharpness_std",
             "frame_diff_mean", "frame_diff_std", "frame_diff_max")

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.max_side = int(spec.get("max_side", STATS_SIDE))
        self.wanted = _sampling().indices(clip.info.num_frames, clip.info.fps)
        self._stats: list[np.ndarray] = []
        self._diffs: list[float] = []
        self._previous: np.ndarray | None = None

    def step(self, t: int) -> None:
        frame = self.clip.working(t, self.max_side)
        self._stats.append(frame_stats(frame))
        if self._previous is not None:
            self._diffs.append(float(cv2.absdiff(self._previous, frame).mean()) / 255.0)
        self._previous = frame

    def finish(self) -> np.ndarray:
        stats = np.stack(self._stats)
        diffs = np.asarray(self._diffs or [0.0])
        return np.array([*stats.mean(0), stats[:, 3].std(), stats[:, 6].std(),
                         diffs.mean(), diffs.std(), diffs.max()], dtype=np.float64)


class GuideStats(FrameFeature):
    """``reward.guide_stats``: how well the 24 AnimeReward frames agree with the guide image (weight-free).

    Both are compared at the clip's working size (``max_side``; the guide resized with area
    interpolation to the frame's size). Value: [mean |guide − first frame| ÷255, mean over frames
    of it, correlation of HSV hue–saturation histograms with the first frame, its mean and its
    minimum over frames]. The guide is a parameter (its sha256 and shape) so two guides never share
    a value; not persisted.
    """

    name = "reward.guide_stats"
    version = "1"

    NAMES = ("guide_diff_first", "guide_diff_mean", "guide_hist_first", "guide_hist_mean", "guide_hist_min")

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.max_side = int(spec.get("max_side", STATS_SIDE))
        image = first_guide(clip.sample)
        if image is None:
            raise InputError("reward.guide_stats needs a first-frame guide image")
        height, width = clip.working_size(self.max_side)
        self.guide = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        self.guide_hist = _hs_hist(self.guide)
        self.wanted = _sampling().indices(clip.info.num_frames, clip.info.fps)
        self._diffs: list[float] = []
        self._hists: list[float] = []

    def step(self, t: int) -> None:
        frame = self.clip.working(t, self.max_side)
        self._diffs.append(float(cv2.absdiff(self.guide, frame).mean()) / 255.0)
        self._hists.append(float(cv2.compareHist(self.guide_hist, _hs_hist(frame), cv2.HISTCMP_CORREL)))

    def finish(self) -> np.ndarray:
        return np.array([self._diffs[0], np.mean(self._diffs), self._hists[0], np.mean(self._hists),
                         np.min(self._hists)], dtype=np.float64)


def _hs_hist(image: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
    return cv2.normalize(hist, hist).astype(np.float32)


FLOW_SPEC = FeatureSpec.of("flow.peaks", target_fps=8, fraction=0.05, max_side=DEFAULT_WORKING_SIDE)  # = dynamic_degree's


def _handcrafted_specs(sample: ScoreInput) -> list[FeatureSpec]:
    specs = [FeatureSpec.of("reward.clip_stats", max_side=STATS_SIDE), FLOW_SPEC]
    image = first_guide(sample)
    if image is not None:
        specs.append(FeatureSpec.of("reward.guide_stats", max_side=STATS_SIDE, image=_image_key(image)))
    return specs


def _handcrafted_vector(sample: ScoreInput) -> np.ndarray:
    specs = _handcrafted_specs(sample)
    stats = np.asarray(sample.feature(specs[0]), dtype=np.float64)
    flow = sample.feature(specs[1])
    height, width = flow["working_size"]
    peaks = np.asarray(flow["peaks"] or [0.0], dtype=np.float64) / float(np.hypot(height, width))
    motion = np.array([peaks.mean(), peaks.std(), peaks.max()])
    if len(specs) > 2:
        guide = np.concatenate([[1.0], np.asarray(sample.feature(specs[2]), dtype=np.float64)])
    else:
        guide = np.zeros(1 + len(GuideStats.NAMES))
    return np.concatenate([stats, motion, guide])


HANDCRAFTED = register(Backbone(
    name="handcrafted", version="1",
    description="weight-free clip statistics: colour, contrast, saturation, sharpness, colourfulness, "
                "frame-difference and optical-flow motion, guide-image agreement",
    feature_names=(*ClipStats.NAMES, "flow_peak_mean", "flow_peak_std", "flow_peak_max", "has_guide",
                   *GuideStats.NAMES),
    specs=_handcrafted_specs, vector=_handcrafted_vector,
))


# -- model backbones ---------------------------------------------------------------------------------
class ClipGuideImage(FrameFeature):
    """``reward.clip_guide``: CLIP ViT-B/32 embedding of the guide image (same preprocessing as
    ``vbench.clip_frames``). Reads no frames; the image is a parameter (sha256 + shape); not persisted."""

    name = "reward.clip_guide"
    family = "clip_vit_b32"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        from anibench.models.vbench_consistency import background_consistency_pixels

        self.wanted = np.array([], dtype=np.int64)
        image = first_guide(clip.sample)
        if image is None:
            raise InputError("reward.clip_guide needs a first-frame guide image")
        pixels = background_consistency_pixels(image[None])[0]
        self.deferred = Deferred(lambda rows: np.asarray(rows[0], dtype=np.float32))
        clip.family(self.family).submit(pixels, self.deferred, tuple(pixels.shape))

    def step(self, t: int) -> None:
        """Reads no frames."""

    def finish(self) -> Deferred:
        return self.deferred.seal()


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def _clip_specs(sample: ScoreInput) -> list[FeatureSpec]:
    specs = [FeatureSpec.of("vbench.clip_frames")]
    image = first_guide(sample)
    if image is not None:
        specs.append(FeatureSpec.of("reward.clip_guide", image=_image_key(image)))
    return specs


CLIP_DIM = 512


def _clip_vector(sample: ScoreInput) -> np.ndarray:
    specs = _clip_specs(sample)
    frames = _unit(sample.feature(specs[0]))
    mean = _unit(frames.mean(0))
    consecutive = float(np.mean(np.sum(frames[1:] * frames[:-1], axis=1))) if len(frames) > 1 else 1.0
    guide = [0.0, 0.0, 0.0]
    if len(specs) > 1:
        image = _unit(np.asarray(sample.feature(specs[1])))
        guide = [1.0, float(image @ mean), float(image @ frames[0])]
    return np.concatenate([mean, [consecutive], guide])


CLIP_VIT_B32 = register(Backbone(
    name="clip_vit_b32", version="1",
    description="OpenAI CLIP ViT-B/32 image tower: mean frame embedding, consecutive-frame similarity, "
                "guide-image similarity (no text tower in anibench's conversion: reads no prompt)",
    feature_names=(*(f"clip_mean_{i}" for i in range(CLIP_DIM)), "clip_consecutive_cos", "has_guide",
                   "clip_guide_cos_mean", "clip_guide_cos_first"),
    specs=_clip_specs, vector=_clip_vector, families=("clip_vit_b32",),
))


VICLIP_DIM = 768


def _viclip_specs(sample: ScoreInput) -> list[FeatureSpec]:
    return [FeatureSpec.of("vbench.viclip_video"), FeatureSpec.of("vbench.viclip_text", prompt=sample.prompt)]


def _viclip_vector(sample: ScoreInput) -> np.ndarray:
    video, text = (_unit(sample.feature(s)) for s in _viclip_specs(sample))
    return np.concatenate([video, text, [float(video @ text)]])


VICLIP_L14 = register(Backbone(
    name="viclip_l14", version="1",
    description="ViCLIP ViT-L/14 (InternVid-10M-FLT): video embedding, prompt embedding, their cosine",
    feature_names=(*(f"viclip_video_{i}" for i in range(VICLIP_DIM)),
                   *(f"viclip_text_{i}" for i in range(VICLIP_DIM)), "viclip_text_video_cos"),
    specs=_viclip_specs, vector=_viclip_vector, families=("viclip_l14",), requires=frozenset({Input.PROMPT}),
))


# -- extraction through a scoring session ------------------------------------------------------------
class BackboneProbe(Scorer):
    """An internal scorer (never registered) whose result carries a clip's backbone vector in its details.

    Running it in a :class:`~anibench.session.ScoringSession` gives training and evaluation the core's
    whole pass: one decode per clip, families batched across clips, persisted features, per-clip errors.
    """

    name = "reward.backbone"
    min_frames = MIN_FRAMES
    default_params = {"backbone": "handcrafted"}

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.backbone = get_backbone(self.params["backbone"])
        self.requires = self.backbone.requires
        self.families = self.backbone.families

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return self.backbone.specs(sample)

    def compute(self, sample: ScoreInput) -> ScoreResult:
        vector = self.backbone.vector(sample)
        if not np.all(np.isfinite(vector)):
            raise InputError(f"backbone {self.backbone.name} gave non-finite features for this clip")
        return self.result(0.0, vector=vector)


@dataclass
class ClipRequest:
    """One clip to embed: its file, prompt, optional guide image file, and its sha256 (feature-store key)."""

    key: str
    video: Path
    prompt: str = ""
    guide_image: Path | None = None
    video_sha256: str | None = None


@dataclass
class Extraction:
    """Vectors by request key, errors by request key (the reason a clip could not be embedded)."""

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def feature_cache_dir() -> Path:
    """Where backbone features are persisted between training and evaluation runs: ``$ANIBENCH_CACHE/reward-features``."""
    from anibench.suites.smoke import cache_root

    return cache_root() / "reward-features"


def extract(requests: Sequence[ClipRequest], backbone: str, *, runtime: Any = None, workers: int = 2,
            cache: Path | None | bool = None) -> Extraction:
    """Backbone vectors of ``requests`` (one streaming pass per clip, shared with any other feature).

    A model backbone whose weights are missing raises :class:`~anibench.errors.MissingWeightsError`
    before any clip is read. ``cache``: folder of the feature store (default :func:`feature_cache_dir`;
    False: none).
    """
    from anibench.runtime.context import Runtime, missing_weights

    chosen = get_backbone(backbone)
    runtime = runtime or Runtime()
    missing = missing_weights(chosen.families, runtime)
    if missing is not None:
        raise missing
    out = Extraction()
    results = score_requests(requests, [BackboneProbe(backbone=backbone)], runtime=runtime, workers=workers,
                             cache=cache)
    for request in requests:
        value = results[request.key]
        value = value.get(BackboneProbe.name) if isinstance(value, dict) else value
        if isinstance(value, ScoreResult):
            out.vectors[request.key] = np.asarray(value.details["vector"], dtype=np.float64)
        else:
            out.errors[request.key] = str(value)
    return out


def score_requests(requests: Sequence[ClipRequest], scorers: Sequence[Any], *, runtime: Any = None,
                   workers: int = 2, cache: Path | None | bool = None) -> dict[str, Any]:
    """Score ``requests`` with ``scorers`` in one :class:`~anibench.session.ScoringSession`:
    key → {scorer name: result or error}, or the error that kept the clip from being read."""
    from anibench.conditions import Guidance, GuideFrame
    from anibench.frames import FileFrames
    from anibench.images import load_image
    from anibench.runtime.context import Runtime
    from anibench.session import ScoringJob, ScoringSession

    runtime = runtime or Runtime()
    store = None
    if cache is not False:
        from anibench.store import RunStore

        folder = Path(cache) if isinstance(cache, (str, Path)) else feature_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        store = RunStore.in_dir(folder)
    out: dict[str, Any] = {}
    jobs, keys = [], []
    for request in requests:
        try:
            source = FileFrames(request.video)
            guidance = None
            if request.guide_image is not None:
                image = load_image(request.guide_image)
                info = source.info
                guidance = Guidance("reward", (GuideFrame(0.0, 0, image, str(request.guide_image)),),
                                    info.num_frames, info.fps, info.height, info.width)
        except AnibenchError as exc:
            out[request.key] = exc
            continue
        sample = ScoreInput(request.key, prompt=request.prompt, guidance=guidance, video_path=request.video,
                            video_sha256=request.video_sha256, info=source.info)
        jobs.append(ScoringJob(source, sample))
        keys.append(request.key)
    if jobs:
        with ScoringSession(list(scorers), runtime, workers=workers, feature_store=store) as session:
            for key, result in zip(keys, session.score_jobs(jobs, place_guides=False)):
                out[key] = result.scores
    return out
