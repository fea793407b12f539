"""Executors: run planned work units. :class:`LocalExecutor` runs them in this process.

Generation is one pass per generator: the generator is loaded once, its requests are
batched by :meth:`~anibench.generation.Generator.batch_key`, and it is unloaded (with
every model the runtime holds) before the next generator or any scorer loads — a GPU
never holds a generator and the scorers at once. Remote API generators
(:class:`~anibench.generation.AsyncGenerator`) submit, poll and fetch, with their job
ids in the run store.

Scoring runs in waves of clips through one :class:`~anibench.session.ScoringSession`
(scorers and model families loaded once for the pass; each clip decoded once; model
features batched across the clips of a wave). A clip's scores are written as soon as it
is done — weight-free clips as their worker finishes them, clips waiting for model
features when their wave's last batches have run — so a killed run loses at most the
clips in flight and, for model-based scorers, one wave.

The :class:`Executor` interface is what a distributed executor (Ray) implements: units
are plain data, results go through the sink.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Callable, Sequence

from anibench.conditions import Placement
from anibench.errors import AnibenchError, NotApplicable
from anibench.generation import AsyncGenerator, GenerationRequest, Generator, JobState, request_seed
from anibench.planning import GenerationUnit, GeneratorRef, ScoringUnit
from anibench.runtime.context import Runtime
from anibench.scoring import ScoreInput, ScoreResult
from anibench.session import ScoringJob, ScoringSession
from anibench.sink import ResultSink

ProgressFn = Callable[[str, int, int], None]
DEFAULT_WAVE = 64  # clips per scoring session pass: model features batch across them


class Executor(ABC):
    """Runs generation and scoring units, reporting every outcome to a :class:`ResultSink`."""

    @abstractmethod
    def generate(self, units: Sequence[GenerationUnit], sink: ResultSink) -> None:
        """Make the clip of every unit."""

    @abstractmethod
    def score(self, units: Sequence[ScoringUnit], sink: ResultSink) -> None:
        """Compute every score task of every unit."""


def build_request(unit: GenerationUnit, generator: Generator) -> GenerationRequest:
    """The request for a unit: its guides placed where ``generator`` conditions on them, its own seed."""
    item = unit.item
    return GenerationRequest(
        case_id=item.case.id, prompt=item.case.prompt, guidance=generator.place(unit.guidance), seed=item.seed,
        rng_seed=request_seed(item.seed, item.case.id, item.condition.name), label=item.case.label,
        style=item.case.style, ground_truth=item.case.video,
    )


class LocalExecutor(Executor):
    """Runs units in this process: ``workers`` threads decode and compute clip features."""

    def __init__(self, runtime: Runtime | None = None, *, workers: int = 2, wave: int = DEFAULT_WAVE,
                 progress: ProgressFn | None = None):
        self.runtime = runtime or Runtime()
        self.workers = max(1, workers)
        self.wave = max(1, wave)
        self.progress = progress or (lambda stage, done, total: None)
        self.stats: dict[str, float] = {}

    # -- generation ---------------------------------------------------------------------------
    def generate(self, units: Sequence[GenerationUnit], sink: ResultSink) -> None:
        by_generator: dict[GeneratorRef, list[GenerationUnit]] = {}
        for unit in units:
            by_generator.setdefault(unit.item.generator, []).append(unit)
        done = 0
        self.progress("generate", 0, len(units))
        for ref, group in by_generator.items():
            generator = ref.create()
            try:
                generator.load(self.runtime)
            except Exception as exc:  # noqa: BLE001 - every clip of this generator fails with it
                for unit in group:
                    sink.failed(unit.item, "generate", exc, identity=ref.identity)
                done += len(group)
                self.progress("generate", done, len(units))
                continue
            try:
                if isinstance(generator, AsyncGenerator):
                    self._generate_remote(generator, ref, group, sink)
                else:
                    self._generate_local(generator, ref, group, sink)
            finally:
                generator.unload()
                self.runtime.release()
            done += len(group)
            self.progress("generate", done, len(units))

    def _generate_local(self, generator: Generator, ref: GeneratorRef, group: Sequence[GenerationUnit],
                        sink: ResultSink) -> None:
        batches: dict[object, list[tuple[GenerationUnit, GenerationRequest]]] = {}
        for unit in group:
            request = build_request(unit, generator)
            batches.setdefault(generator.batch_key(request), []).append((unit, request))
        size = max(1, getattr(generator, "max_batch", 8))
        for batch in batches.values():
            for start in range(0, len(batch), size):
                chunk = batch[start : start + size]
                started = time.perf_counter()
                outputs = generator.generate_batch([request for _, request in chunk])
                seconds = (time.perf_counter() - started) / len(chunk)
                for (unit, request), output in zip(chunk, outputs):
                    self._record(unit, request, output, ref, seconds, sink)

    def _generate_remote(self, generator: AsyncGenerator, ref: GeneratorRef, group: Sequence[GenerationUnit],
                         sink: ResultSink) -> None:
        """Submit (or find the job already submitted), poll until done, fetch; job ids live in the store."""
        waiting = []
        for unit in group:
            request = build_request(unit, generator)
            known = sink.store.job(unit.item.item_id, ref.identity)
            try:
                if known and known["state"] != JobState.FAILED.value:
                    job_id = known["job_id"]
                else:
                    generator.check(request)
                    job_id = generator.submit(request)
                    sink.store.put_job(unit.item.item_id, ref.identity, job_id, JobState.PENDING.value)
            except Exception as exc:  # noqa: BLE001
                self._record(unit, request, exc, ref, 0.0, sink)
                continue
            waiting.append((unit, request, job_id, time.monotonic()))
        while waiting:
            still = []
            for unit, request, job_id, since in waiting:
                try:
                    status = generator.poll(job_id)
                except Exception as exc:  # noqa: BLE001 - a failed poll is retried until max_wait
                    status = None
                    sink.store.put_job(unit.item.item_id, ref.identity, job_id, JobState.RUNNING.value,
                                       f"poll failed: {type(exc).__name__}: {exc}")
                if status is not None and status.state is JobState.SUCCEEDED:
                    sink.store.put_job(unit.item.item_id, ref.identity, job_id, status.state.value, status.message)
                    try:
                        output = generator.fetch(job_id, request)
                    except Exception as exc:  # noqa: BLE001
                        output = exc
                    self._record(unit, request, output, ref, time.monotonic() - since, sink)
                elif status is not None and status.state is JobState.FAILED:
                    sink.store.put_job(unit.item.item_id, ref.identity, job_id, status.state.value, status.message)
                    error = AnibenchError(f"remote job {job_id} failed: {status.message}", case_id=request.case_id)
                    self._record(unit, request, error, ref, time.monotonic() - since, sink)
                elif time.monotonic() - since > generator.max_wait:
                    error = AnibenchError(f"remote job {job_id} did not finish within {generator.max_wait:g} s; "
                                          "rerun to poll it again", case_id=request.case_id)
                    self._record(unit, request, error, ref, time.monotonic() - since, sink)
                else:
                    if status is not None:
                        sink.store.put_job(unit.item.item_id, ref.identity, job_id, status.state.value, status.message)
                    still.append((unit, request, job_id, since))
            waiting = still
            if waiting:
                time.sleep(generator.poll_interval)

    @staticmethod
    def _record(unit: GenerationUnit, request: GenerationRequest, output: object, ref: GeneratorRef,
                seconds: float, sink: ResultSink) -> None:
        item = unit.item
        if isinstance(output, NotApplicable):
            sink.not_applicable(item, str(output.with_context(case_id=item.case.id)), identity=ref.identity)
            return
        if isinstance(output, BaseException):
            sink.failed(item, "generate", output, identity=ref.identity)
            return
        try:
            sink.generated(item, output, identity=ref.identity, placement=Placement.of(request.guidance),
                           seconds=seconds)
        except Exception as exc:  # noqa: BLE001 - a clip that cannot be saved is this item's failure
            sink.failed(item, "generate", exc, identity=ref.identity)

    # -- scoring --------------------------------------------------------------------------------
    def score(self, units: Sequence[ScoringUnit], sink: ResultSink) -> None:
        scorers = {}
        for unit in units:
            for task in unit.tasks:
                if task.scorer.name not in scorers:
                    scorers[task.scorer.name] = task.scorer.create()
        if not scorers:
            return
        session = ScoringSession(list(scorers.values()), self.runtime, workers=self.workers, feature_store=sink.store)
        total, done = sum(len(u.tasks) for u in units), 0
        self.progress("score", 0, total)
        try:
            for start in range(0, len(units), self.wave):
                wave = units[start : start + self.wave]
                for index, result in session.iter_scores([_job(unit) for unit in wave]):
                    unit = wave[index]
                    for task in unit.tasks:
                        self._store(unit, task, result.scores.get(task.scorer.name),
                                    result.seconds.get(task.scorer.name, 0.0), sink)
                    done += len(unit.tasks)
                    self.progress("score", done, total)
        finally:
            self.stats.update({k: float(v) for k, v in session.stats.items()})
            session.close()

    @staticmethod
    def _store(unit: ScoringUnit, task, outcome, seconds: float, sink: ResultSink) -> None:
        if isinstance(outcome, ScoreResult):
            sink.score(unit.item.item_id, task.key, outcome, seconds, [f.item_id for f in task.followers])
            return
        error = outcome if isinstance(outcome, BaseException) else RuntimeError("no result")
        sink.score_error(unit.item, task.scorer.name, error)
        for item in task.followers:
            sink.score_error(item, task.scorer.name, in_name_of(error, item))


def in_name_of(error: BaseException, item) -> BaseException:
    """The same error about another item with the same clip content: it names that item's case and file."""
    if isinstance(error, AnibenchError):
        copy = type(error).__new__(type(error))
        copy.__dict__.update(error.__dict__)
        copy.case_id, copy.path = item.case.id, str(item.video_path)
        copy.args = (copy._render(),)
        return copy
    return AnibenchError(f"{type(error).__name__}: {error}", case_id=item.case.id, path=item.video_path)


def _job(unit: ScoringUnit) -> ScoringJob:
    """The session's job for a unit; the file is opened by the session (its errors fail that clip only)."""
    item = unit.item
    sample = ScoreInput(
        case_id=item.case.id, prompt=item.case.prompt, guidance=unit.guidance, label=item.case.label,
        style=item.case.style, video_path=item.video_path, video_sha256=unit.video_sha256,
        ground_truth_path=item.case.video,
    )
    return ScoringJob(item.video_path, sample, [t.scorer.name for t in unit.tasks], unit.placement)
