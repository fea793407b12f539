"""The run machinery: plan against the store, generate, score — resumable after any interruption.

:class:`Engine` turns a run's items (:mod:`anibench.planning`) into work against what the
run store already holds, and hands it to an executor (:mod:`anibench.executor`):

1. items whose case failed to load are recorded as failed;
2. generation: every item whose clip is missing — or was made by a generator of another
   identity — becomes a :class:`~anibench.planning.GenerationUnit` (a case the condition
   does not apply to is recorded once as not applicable, never retried);
3. scoring: every (item, scorer) gets its content key (clip sha256, scorer, version,
   identity, inputs); stored keys are linked, new ones computed once — items sharing a
   key follow the one that computes it.

Everything is written through the :class:`~anibench.sink.ResultSink` as it happens, so a
run killed at any point resumes where it stopped and ends with identical results.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

from anibench.conditions import Condition, Guidance, Placement, resolve
from anibench.errors import AnibenchError, InputError, NotApplicable
from anibench.executor import Executor, LocalExecutor, ProgressFn
from anibench.images import write_thumbnail
from anibench.planning import GenerationUnit, ScorerRef, ScoreTask, ScoringPlan, ScoringUnit, WorkItem
from anibench.runtime.context import Runtime
from anibench.scoring import Input, Scorer, inputs_fingerprint
from anibench.sink import ResultSink
from anibench.store import RunStore, ScoreKey
from anibench.suite import Case, GenerationDefaults, Suite
from anibench.video import Video

GUIDES_DIR = "guides"
GROUND_TRUTH_CACHE = 2


class _LRU:
    """A small thread-safe cache of computed values (decoded ground truths, guidance)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, compute: Callable):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value


class Engine:
    """Generates and scores :class:`~anibench.planning.WorkItem` s into a run directory."""

    def __init__(
        self,
        run_dir: str | Path,
        scorers: Sequence[Scorer],
        *,
        suite: Suite | None = None,
        runtime: Runtime | None = None,
        executor: Executor | None = None,
        workers: int = 2,
        progress: ProgressFn | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.store = RunStore.in_dir(self.run_dir)
        self.sink = ResultSink(self.store, self.run_dir)
        self.scorers = list(scorers)
        self.suite = suite
        self.runtime = runtime or Runtime()
        self.executor = executor or LocalExecutor(self.runtime, workers=workers, progress=progress)
        self._ground_truth = _LRU(GROUND_TRUTH_CACHE)
        self._guidance = _LRU(256)

    # -- inputs -----------------------------------------------------------------------------------
    def ground_truth(self, case: Case) -> Video | None:
        """The case's decoded ground-truth video (its guides may be taken from it)."""
        if case.video is None:
            return None

        def decode() -> Video:
            try:
                return Video.read(case.video)
            except AnibenchError as exc:
                raise exc.with_context(case_id=case.id)

        return self._ground_truth.get(case.video, decode)

    def guidance(self, case: Case, condition: Condition | None) -> Guidance | None:
        """The condition resolved for the case (guide images at their frames, motion region); cached."""
        if condition is None:
            return None

        def compute() -> Guidance:
            defaults = self.suite.defaults if self.suite else GenerationDefaults()
            guidance = resolve(case, condition, ground_truth=self.ground_truth(case), defaults=defaults)
            self._record_guides(case, guidance)
            return guidance

        return self._guidance.get((case.key, condition.name), compute)

    def _guidance_or_error(self, item: WorkItem) -> tuple[Guidance | None, BaseException | None]:
        """The item's guidance; (None, None) when the condition does not apply, (None, error) when it fails."""
        try:
            return self.guidance(item.case, item.condition), None
        except NotApplicable:
            return None, None
        except Exception as exc:  # noqa: BLE001 - reported by the scorers that need guides
            return None, exc

    def _record_guides(self, case: Case, guidance: Guidance) -> None:
        """Store which frames guide (case, condition), with small thumbnails for reports."""
        folder = self.run_dir / GUIDES_DIR / guidance.condition / case.key
        records = []
        for ordinal, guide in enumerate(guidance.guides):
            path = folder / f"{ordinal}.jpg"
            if not path.is_file():
                write_thumbnail(guide.image, path)
            records.append({"position": guide.position, "frame_index": guide.frame_index, "source": guide.source,
                            "thumbnail": path.relative_to(self.run_dir).as_posix()})
        self.store.put_guides(guidance.condition, case.id, records)

    # -- the run ----------------------------------------------------------------------------------
    def execute(self, items: Sequence[WorkItem], command: str = "") -> None:
        """Record load errors, generate what is missing, score what is unscored."""
        self.store.begin_invocation(command)
        try:
            for item in items:
                if item.load_error is not None:
                    self.sink.failed(item, "load", item.load_error)
            self.executor.generate(self.generation_units(items), self.sink)
            for item in items:
                if item.generator is None and item.load_error is None:
                    self._register_given(item)
            plan = self.scoring_plan(items)
            for item_id, key in plan.reuse:
                self.sink.link(item_id, key)
            for item, scorer, error in plan.errors:
                self.sink.score_error(item, scorer, error)
            self.executor.score(plan.units, self.sink)
        finally:
            self.store.end_invocation()

    def generation_units(self, items: Sequence[WorkItem]) -> list[GenerationUnit]:
        """Items whose clip must be made; not-applicable cases are recorded here, once per identity."""
        units = []
        for item in items:
            if item.generator is None or item.load_error is not None or self._already_generated(item):
                continue
            try:
                guidance = self.guidance(item.case, item.condition)
            except NotApplicable as exc:
                self.sink.not_applicable(item, str(exc.with_context(case_id=item.case.id)),
                                         identity=item.generator.identity)
                continue
            except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                self.sink.failed(item, "generate", exc, identity=item.generator.identity)
                continue
            units.append(GenerationUnit(item, guidance))
        return units

    def _already_generated(self, item: WorkItem) -> bool:
        """A stored clip (or not-applicable verdict) made by a generator of this exact identity."""
        row = self.store.item(item.item_id)
        if not row or row["model_identity"] != item.generator.identity:
            return False
        if row["status"] == "not_applicable":
            return True
        if row["status"] != "generated" or not item.video_path.is_file():
            return False
        return self.sink.file_hash(item.video_path) == row["video_sha256"]

    def _register_given(self, item: WorkItem) -> None:
        if not item.video_path.is_file():
            self.sink.failed(item, "input", InputError("video file not found", path=item.video_path))
        else:
            self.sink.given(item)

    def scoring_plan(self, items: Sequence[WorkItem]) -> ScoringPlan:
        """Content keys for every (ready item, scorer): stored ones are linked, each new one computed once."""
        plan = ScoringPlan()
        claimed: dict[ScoreKey, tuple[int, int]] = {}
        followers: dict[ScoreKey, list[WorkItem]] = {}
        refs = {scorer.name: ScorerRef(scorer.name, tuple(sorted(
            (k, json.dumps(v, sort_keys=True, default=str)) for k, v in scorer.params.items()))) for scorer in self.scorers}
        identities = {scorer.name: scorer.identity(self.runtime) for scorer in self.scorers}
        for item in items:
            if item.load_error is not None:
                continue
            row = self.store.item(item.item_id)
            if not row or row["status"] not in ("generated", "given"):
                continue
            placement = Placement.from_json(row["placement"]) if row.get("placement") else None
            guidance, guidance_error = self._guidance_or_error(item)
            tasks: list[ScoreTask] = []
            for scorer in self.scorers:
                needs_guidance = Input.GUIDES in scorer.requires or (Input.MASK in scorer.requires and item.case.mask)
                if guidance_error is not None and needs_guidance:
                    plan.errors.append((item, scorer.name, guidance_error))
                    continue
                gt_sha = None
                if Input.GROUND_TRUTH in scorer.requires and item.case.video is not None:
                    gt_sha = self.sink.file_hash(item.case.video)
                fingerprint = inputs_fingerprint(
                    scorer.requires, prompt=item.case.prompt, guidance=guidance, ground_truth_sha256=gt_sha,
                    placement=placement if Input.GUIDES in scorer.requires else None,
                )
                key = ScoreKey(row["video_sha256"], scorer.name, scorer.version, identities[scorer.name], fingerprint)
                if self.store.has_score(key):
                    plan.reuse.append((item.item_id, key))
                elif key in claimed:
                    followers.setdefault(key, []).append(item)
                else:
                    claimed[key] = (len(plan.units), len(tasks))
                    tasks.append(ScoreTask(refs[scorer.name], key))
            if tasks:
                plan.units.append(ScoringUnit(item, row["video_sha256"], guidance, placement, tuple(tasks),
                                              guidance_error))
        for key, waiting in followers.items():
            unit_index, task_index = claimed[key]
            unit = plan.units[unit_index]
            tasks = list(unit.tasks)
            tasks[task_index] = ScoreTask(tasks[task_index].scorer, key, tuple(waiting))
            plan.units[unit_index] = ScoringUnit(unit.item, unit.video_sha256, unit.guidance, unit.placement,
                                                 tuple(tasks), unit.guidance_error)
        return plan


def resolve_scorers(specs) -> tuple[list[Scorer], dict[str, str]]:
    """Scorer instances for ``specs``, or every available scorer; plus {name: why skipped}.

    A spec may name a scorer group (``datasets/scorer_groups.yaml``, e.g. ``vbench-i2v``): its
    members that can run here are used and the others are skipped with the reason (which
    weights are missing and how to provide them), so the rest of the group still runs. A
    scorer named directly is always used: without its weights every clip fails with that reason.
    """
    from anibench.scoring import SCORERS, scorer_groups

    if specs is None:
        return _importable_and_available(SCORERS.names())
    groups = scorer_groups()
    scorers: list[Scorer] = []
    skipped: dict[str, str] = {}
    for spec in specs:
        if spec.name not in groups:
            scorers.append(SCORERS.get(spec.name)(**spec.params))
            continue
        if spec.params:
            raise InputError(f"scorer group {spec.name!r} takes no parameters; give its members by name instead")
        members = groups[spec.name]["members"]
        registered = set(SCORERS.names())
        for member in members:
            if member not in registered:
                skipped[member] = f"not installed (a member of the group {spec.name}, registered by no plugin here)"
        available, unavailable = _importable_and_available([m for m in members if m in registered])
        scorers += available
        skipped.update(unavailable)
    unique = list({(s.name, s.params_hash()): s for s in scorers}.values())  # a group and its member named twice
    names = {s.name for s in unique}
    skipped = {k: v for k, v in skipped.items() if k not in names}
    if skipped and not unique:  # every scorer asked for is a group member that cannot run here: nothing to score
        raise InputError("none of the scorers asked for can run here:\n"
                         + "\n".join(f"  {name}: {reason}" for name, reason in skipped.items()))
    return unique, skipped


def _importable_and_available(names: Sequence[str]) -> tuple[list[Scorer], dict[str, str]]:
    """Instances of the scorers ``names`` that can run here; {name: why not} for the others (a plugin
    that cannot be imported, missing weights), so one broken plugin never stops the rest."""
    from anibench.scoring import SCORERS

    scorers, skipped = [], {}
    for name in names:
        try:
            cls = SCORERS.get(name)
            reason = cls.unavailable_reason()
        except AnibenchError as exc:  # an unimportable plugin, or weights its manifest does not describe
            skipped[name] = str(exc)
            continue
        if reason:
            skipped[name] = reason
        else:
            scorers.append(cls())
    return scorers, skipped
