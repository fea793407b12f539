"""The scoring session: scorers and model families loaded once, scoring clips in batches.

A :class:`ScoringSession` is what everything that scores goes through: the run engine
(clips on disk, with their cases' prompts and guides), the perturbation battery (frames
in memory), the reward service (clips as files, bytes or uint8 frame arrays straight
from a trainer). Per batch of clips it

1. reads each clip's facts (length, rate, size) and places its guides on it;
2. asks each scorer which features it reads (:meth:`anibench.scoring.Scorer.features`),
   deduplicating equal specs across scorers;
3. computes every feature of a clip in one streaming pass over its frames (decoded once,
   in ``workers`` threads, ahead of use), model features batched across clips by their
   :class:`~anibench.features.ModelFamily`, persisted ones read from and written to a
   feature store;
4. runs each scorer's :meth:`~anibench.scoring.Scorer.score_batch` on its clips.

One clip's or one scorer's error is returned in its slot; nothing is raised for a clip.
A :class:`RewardSpec` turns the per-head scores into one bounded reward per clip.
"""

from __future__ import annotations

import math
import queue
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

import numpy as np

from anibench.conditions import Guidance, GuidePlacement, Placement, fit_guidance
from anibench.errors import AnibenchError, InputError
from anibench.features.base import FEATURES, Deferred, FeatureSpec, spec_digest
from anibench.features.stream import compute_features
from anibench.frames import ArrayFrames, ClipInfo, FileFrames, FrameSource
from anibench.runspec import PluginSpec
from anibench.runtime.context import Runtime
from anibench.scoring import SCORERS, ScoreInput, ScoreResult, Scorer
from anibench.video import Video

PREFETCH_FRAMES = 8


@dataclass
class ScoringJob:
    """One clip to score: where its frames come from, what is known about it, which scorers.

    ``sample`` holds the non-frame inputs; its ``guidance`` is the case's (resolved before
    the clip's length is known) and is placed on the clip with ``placement`` (where its
    generator put the guides) or, for given clips, by the nearest-frame rule.
    """

    source: FrameSource | str | Path | Video
    sample: ScoreInput | None = None
    scorers: Sequence[str] | None = None
    placement: Placement | None = None


@dataclass
class JobResult:
    """Scores of one clip: scorer name → result or the error it raised; seconds spent."""

    scores: dict[str, ScoreResult | BaseException] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    decode_seconds: float = 0.0


class FeatureStore(Protocol):
    """Where persisted features live (:class:`anibench.store.RunStore` is one); None disables persistence."""

    def get_feature(self, video_sha256: str, digest: str) -> np.ndarray | None: ...

    def put_feature(self, video_sha256: str, digest: str, extractor: str, value: np.ndarray) -> None: ...


class ScoringSession:
    """Scorers set up once on a :class:`Runtime`; :meth:`score` / :meth:`score_jobs` score clips."""

    def __init__(
        self,
        scorers: Sequence[Scorer | str | PluginSpec],
        runtime: Runtime | None = None,
        *,
        workers: int = 2,
        feature_store: FeatureStore | None = None,
    ):
        self.runtime = runtime or Runtime()
        self.workers = max(1, workers)
        self.feature_store = feature_store
        self.scorers: dict[str, Scorer] = {}
        for scorer in scorers:
            if not isinstance(scorer, Scorer):
                spec = PluginSpec.parse(scorer)
                scorer = SCORERS.get(spec.name)(**spec.params)
            if scorer.name in self.scorers:  # results are keyed by scorer name: one parameter set per name
                if self.scorers[scorer.name].params == scorer.params:
                    continue
                raise InputError(f"scorer {scorer.name!r} is named twice with different parameters "
                                 f"({self.scorers[scorer.name].params} and {scorer.params}); results are keyed "
                                 "by scorer name, so score each parameter set in its own run")
            scorer.setup(self.runtime)
            self.scorers[scorer.name] = scorer
        self.stats: dict[str, float] = {"clips": 0, "decodes": 0, "feature_seconds": 0.0}
        self._stats_lock = threading.Lock()

    def close(self) -> None:
        for scorer in self.scorers.values():
            scorer.release()
        self.runtime.release()

    def __enter__(self) -> "ScoringSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- convenience: clips as files, bytes or frames -------------------------------------------
    def score(
        self,
        clips: Sequence[str | Path | bytes | np.ndarray | Video],
        *,
        prompts: Sequence[str] | None = None,
        guidance: Sequence[Guidance | None] | None = None,
        fps: float | Sequence[float] = 16.0,
        case_ids: Sequence[str] | None = None,
    ) -> list[dict[str, ScoreResult | BaseException]]:
        """Score clips given as file paths, encoded bytes (mp4, webm, ...) or (T, H, W, 3) uint8 arrays.

        ``guidance`` gives each clip's guide frames (already placed on it) and motion
        region; ``fps`` applies to frame arrays. Returns, per clip, scorer → result or error.
        """
        jobs = []
        with tempfile.TemporaryDirectory(prefix="anibench-clips-") as scratch:
            for i, clip in enumerate(clips):
                case_id = case_ids[i] if case_ids else f"clip{i}"
                rate = fps[i] if isinstance(fps, Sequence) else fps
                try:
                    source = _as_source(clip, rate, Path(scratch) / f"{i}")
                except AnibenchError as exc:
                    source = _Unreadable(exc.with_context(case_id=case_id))
                sample = ScoreInput(case_id, info=getattr(source, "info", None) or ClipInfo(0, rate, 0, 0),
                                    prompt=prompts[i] if prompts else "",
                                    guidance=guidance[i] if guidance else None,
                                    video_path=getattr(source, "path", None))
                jobs.append(ScoringJob(source, sample))
            results = self.score_jobs(jobs, place_guides=False)
        return [r.scores for r in results]

    # -- the engine's entry ---------------------------------------------------------------------
    def score_jobs(self, jobs: Sequence[ScoringJob], *, place_guides: bool = True) -> list[JobResult]:
        """Score every job with its scorers; features computed once per clip, models batched across clips."""
        results: list[JobResult | None] = [None] * len(jobs)
        for index, result in self.iter_scores(jobs, place_guides=place_guides):
            results[index] = result
        return results

    def iter_scores(self, jobs: Sequence[ScoringJob], *, place_guides: bool = True) -> Iterator[tuple[int, JobResult]]:
        """``(job index, result)`` as each clip is done, in any order.

        A clip whose features are all weight-free is done as soon as its worker has decoded
        and scored it; clips waiting for model features are done after the families run
        their last batches, at the end.
        """
        results = [JobResult() for _ in jobs]
        prepared = [self._prepare(job, result, place_guides) for job, result in zip(jobs, results)]
        families = self._load_families(prepared, results)
        waiting: list[int] = []
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="anibench-clip") as pool:
            futures = {pool.submit(self._features, p, families): i for i, p in enumerate(prepared) if p is not None}
            for i, p in enumerate(prepared):
                if p is None:
                    yield i, results[i]
            for future in as_completed(futures):
                i = futures[future]
                future.result()
                if set(prepared[i].scorers) <= set(results[i].scores):
                    yield i, results[i]
                else:
                    waiting.append(i)
        for family in families.values():
            family.flush()
        for i in waiting:
            self._resolve(prepared[i])
        self._score([prepared[i] for i in waiting])
        for i in waiting:
            yield i, results[i]

    # -- steps ----------------------------------------------------------------------------------
    def _prepare(self, job: ScoringJob, result: JobResult, place_guides: bool) -> "_Prepared | None":
        names = list(job.scorers) if job.scorers is not None else list(self.scorers)
        try:
            if isinstance(job.source, _Unreadable):
                raise job.source.error
            source = _as_source(job.source, 16.0, None)
            sample = job.sample or ScoreInput("clip", info=source.info)
            sample.info = source.info
            sample.video_path = sample.video_path or source.path
            if isinstance(source, ArrayFrames) and sample.video is None:
                sample.video = Video(source._frames, source.info.fps)
            if place_guides and sample.guidance is not None:
                sample.guidance = _place(sample.guidance, source.info, job.placement)
        except Exception as exc:  # noqa: BLE001 - every scorer of the clip fails with it
            error = _with_context(exc, job.sample)
            for name in names:
                result.scores[name] = error
            return None
        prepared = _Prepared(source, sample, [], {}, result)
        for name in names:
            scorer = self.scorers[name]
            try:
                scorer.check(sample)
                specs = scorer.features(sample)
            except Exception as exc:  # noqa: BLE001 - recorded for this scorer
                result.scores[name] = _with_context(exc, sample)
                continue
            prepared.scorers.append(name)
            for spec in specs:
                prepared.specs.setdefault(spec, None)
                if spec in sample.features:  # computed before (the clip's inputs changed, its frames did not)
                    prepared.values[spec] = sample.features[spec]
        self._load_persisted(prepared)
        return prepared

    def _load_families(self, prepared: Sequence["_Prepared | None"], results: Sequence[JobResult]) -> dict[str, Any]:
        needed: dict[str, list[FeatureSpec]] = {}
        for p in prepared:
            for spec in (p.specs if p else ()):
                family = FEATURES.get(spec.extractor).family
                if family and spec not in p.values:
                    needed.setdefault(family, []).append(spec)
        loaded = {}
        for family in needed:
            try:
                loaded[family] = self.runtime.family(family)
            except Exception as exc:  # noqa: BLE001 - the features of this family fail, the rest go on
                for p in prepared:
                    for spec in (p.specs if p else ()):
                        if FEATURES.get(spec.extractor).family == family:
                            p.values[spec] = exc
        return loaded

    def _features(self, p: "_Prepared", families: Mapping[str, Any]) -> None:
        todo = [s for s in p.specs if s not in p.values]
        if not todo:
            return
        started = time.perf_counter()
        try:
            p.values.update(compute_features(_prefetched(p.source), todo, p.sample, runtime=self.runtime,
                                             families=families))
            decoded = True
        except Exception as exc:  # noqa: BLE001 - a decoding error fails every feature of the clip
            error = _with_context(exc, p.sample)
            for spec in todo:
                p.values[spec] = error
            decoded = False
        p.result.decode_seconds = time.perf_counter() - started
        with self._stats_lock:
            self.stats["decodes"] += decoded
            self.stats["clips"] += 1
            self.stats["feature_seconds"] += p.result.decode_seconds
        if not any(isinstance(v, Deferred) for v in p.values.values()):
            # Every feature is in: one-clip scorers compute now, in this worker, while others decode.
            self._compute(p, [n for n in p.scorers if self._one_clip(n)])

    def _resolve(self, p: "_Prepared") -> None:
        for spec, value in list(p.values.items()):
            if isinstance(value, Deferred):
                try:
                    value = value.result()
                except Exception as exc:  # noqa: BLE001
                    value = exc
                p.values[spec] = value
                self._store_persisted(p, spec, value)

    def _one_clip(self, name: str) -> bool:
        """A scorer that scores clip by clip (the inherited ``score_batch``), not as a batch."""
        return type(self.scorers[name]).score_batch is Scorer.score_batch

    def _compute(self, p: "_Prepared", names: Sequence[str]) -> None:
        p.sample.features = dict(p.values)
        for name in names:
            started = time.perf_counter()
            (p.result.scores[name],) = self.scorers[name].score_batch([p.sample])
            p.result.seconds[name] = time.perf_counter() - started + p.result.decode_seconds / max(1, len(p.scorers))

    def _score(self, prepared: Sequence["_Prepared"]) -> None:
        """Scores not computed yet: batch scorers over all their clips, one-clip scorers clip by clip."""
        by_scorer: dict[str, list[_Prepared]] = {}
        for p in prepared:
            p.sample.features = dict(p.values)
            for name in p.scorers:
                if name not in p.result.scores:
                    by_scorer.setdefault(name, []).append(p)
        for name, group in by_scorer.items():
            started = time.perf_counter()
            outputs = self.scorers[name].score_batch([p.sample for p in group])
            per_clip = (time.perf_counter() - started) / len(group)
            for p, output in zip(group, outputs):
                p.result.scores[name] = output
                p.result.seconds[name] = per_clip + p.result.decode_seconds / max(1, len(p.scorers))

    # -- persisted model features ------------------------------------------------------------
    def _persist_key(self, p: "_Prepared", spec: FeatureSpec) -> str | None:
        cls = FEATURES.get(spec.extractor)
        if self.feature_store is None or not cls.persist or not p.sample.video_sha256:
            return None
        return spec_digest(spec, self.runtime.family(cls.family) if cls.family else None)

    def _load_persisted(self, p: "_Prepared") -> None:
        for spec in [s for s in p.specs if s not in p.values]:
            try:
                digest = self._persist_key(p, spec)
            except Exception:  # noqa: BLE001 - the family cannot load: reported when it is needed
                continue
            if digest is not None:
                value = self.feature_store.get_feature(p.sample.video_sha256, digest)
                if value is not None:
                    p.values[spec] = value

    def _store_persisted(self, p: "_Prepared", spec: FeatureSpec, value: Any) -> None:
        if isinstance(value, BaseException):
            return
        digest = self._persist_key(p, spec)
        if digest is not None:
            self.feature_store.put_feature(p.sample.video_sha256, digest, spec.extractor, np.asarray(value))


@dataclass
class _Prepared:
    source: FrameSource
    sample: ScoreInput
    scorers: list[str]
    specs: dict[FeatureSpec, None]
    result: JobResult
    values: dict[FeatureSpec, Any] = field(default_factory=dict)


class _Unreadable:
    def __init__(self, error: AnibenchError):
        self.error = error


def _as_source(clip: Any, fps: float, scratch: Path | None) -> FrameSource:
    if isinstance(clip, FrameSource):
        return clip
    if isinstance(clip, Video):
        return ArrayFrames.of(clip)
    if isinstance(clip, np.ndarray):
        return ArrayFrames(clip, fps)
    if isinstance(clip, (bytes, bytearray, memoryview)):
        if scratch is None:
            raise InputError("clip bytes need a scratch folder")
        scratch.parent.mkdir(parents=True, exist_ok=True)
        path = scratch.with_suffix(".mp4")
        path.write_bytes(bytes(clip))
        return FileFrames(path)
    if isinstance(clip, (str, Path)):
        return FileFrames(clip)
    raise InputError(f"cannot score a {type(clip).__name__}: give a file path, encoded bytes or (T, H, W, 3) uint8 frames")


def _place(guidance: Guidance, info: ClipInfo, placement: Placement | None) -> Guidance:
    """The case's guidance placed on this clip: where its generator put the guides, else at the nearest frames."""
    if placement is not None:
        return placement.on(guidance, info.num_frames, info.height, info.width)
    return fit_guidance(guidance, info.num_frames, info.height, info.width, GuidePlacement.NEAREST)


def _with_context(error: BaseException, sample: ScoreInput | None) -> BaseException:
    if isinstance(error, AnibenchError) and sample is not None:
        return error.with_context(case_id=sample.case_id, path=sample.video_path)
    if isinstance(error, AnibenchError) or sample is None:
        return error
    wrapped = AnibenchError(f"{type(error).__name__}: {error}", case_id=sample.case_id, path=sample.video_path)
    wrapped.__cause__ = error
    return wrapped


class _Prefetch(FrameSource):
    """Decodes ahead in a background thread (bounded queue), so decoding overlaps feature work."""

    def __init__(self, source: FrameSource, depth: int = PREFETCH_FRAMES):
        self.inner, self.info, self.path, self.depth = source, source.info, source.path, depth

    def frames(self, wanted: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
        items: queue.Queue = queue.Queue(maxsize=self.depth)
        done = object()
        stop = threading.Event()

        def produce() -> None:
            try:
                for pair in self.inner.frames(wanted):
                    while not stop.is_set():
                        try:
                            items.put(pair, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                items.put(done)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                items.put(exc)

        worker = threading.Thread(target=produce, name="anibench-decode", daemon=True)
        worker.start()
        try:
            while True:
                item = items.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()


def _prefetched(source: FrameSource) -> FrameSource:
    return _Prefetch(source) if isinstance(source, FileFrames) else source


@dataclass(frozen=True)
class RewardSpec:
    """Per-head scores → one bounded reward per clip.

    ``heads`` maps scorer name → weight. Each head is normalised to [0, 1] with
    ``(value − low) / (high − low)``, clipped, where (low, high) is ``bounds[head]`` or the
    scorer's declared range; a head whose direction is "lower is better" is flipped.
    The reward is the weighted mean of the normalised heads; a clip missing a head gets
    ``missing`` (None: no reward, the clip is reported as failed).
    """

    heads: Mapping[str, float]
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    missing: float | None = None

    def __post_init__(self) -> None:
        if not self.heads:
            raise InputError("a reward spec needs at least one head")
        for name, weight in self.heads.items():
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
                raise InputError(f"reward weight of {name!r} must be a finite number ≥ 0, got {weight!r}")
        if sum(self.heads.values()) <= 0:
            raise InputError("reward weights must not all be 0")

    def normalise(self, name: str, result: ScoreResult) -> float:
        low, high = self.bounds.get(name, (result.lower, result.upper))
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise InputError(f"head {name!r} has no finite range; give bounds for it in the reward spec")
        share = min(1.0, max(0.0, (result.value - low) / (high - low)))
        return share if result.higher_is_better is not False else 1.0 - share

    def reward(self, scores: Mapping[str, ScoreResult | BaseException]) -> float | None:
        total = weight_sum = 0.0
        for name, weight in self.heads.items():
            result = scores.get(name)
            if not isinstance(result, ScoreResult) or not math.isfinite(result.value):
                if self.missing is None:
                    return None
                value = self.missing
            else:
                value = self.normalise(name, result)
            total += weight * value
            weight_sum += weight
        return total / weight_sum

    def describe(self) -> dict[str, Any]:
        return {"heads": dict(self.heads), "bounds": {k: list(v) for k, v in self.bounds.items()},
                "missing": self.missing}
