"""The in-process reward service: scorers loaded once, clips from a trainer scored in batches.

:class:`RewardService` sits on the core's :class:`~anibench.session.ScoringSession`: the
scorers (by default the group ``anime-reward``, whose ``anime_reward.combined`` is the
reward) and their model families are set up once on one :class:`~anibench.runtime.context.Runtime`
(device, dtype) and stay loaded; :meth:`RewardService.score` scores a batch of items. An
item is a clip — a file path, encoded bytes (mp4, webm, …), a uint8 frame array
(T, H, W, 3) or a torch uint8 tensor (T, 3, H, W) as verl/verl-omni hand videos over — with
its frame rate, a prompt and optional guide image(s) (path, bytes or array). Frames given
as arrays are scored as they are (no encoding, no decoding); files and bytes are decoded
once, in the session's streaming pass.

Per item the result holds every scorer's value (or the error it raised), the reward —
the value of the combined scorer, or a :class:`~anibench.session.RewardSpec` over the
heads — and an item-level error when the clip itself is unusable. One bad item never
loses the batch. :meth:`RewardService.provenance` says what produced the values: scorer
names, versions, identities and parameters, weights (file, sha256), device and dtype.

Scoring is serialised by a lock (the models are shared); :class:`Batcher` queues requests
from many threads (the HTTP server's clients) and scores what is waiting in one batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import queue
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from anibench.errors import AnibenchError, InputError
from anibench.reward.payload import ClipData, Limits, PayloadError, RequestItem, image_layout, video_layout

DEFAULT_SCORERS = ("anime-reward",)
COMBINED = "anime_reward.combined"
DEFAULT_FPS = 16.0


@dataclass
class RewardItem:
    """One clip to score.

    ``video``: a file path, encoded bytes, a uint8 (T, H, W, 3) array or a uint8 torch tensor
    (T, 3, H, W) (``layout`` says which when the shape is ambiguous). ``fps`` applies to frame
    arrays (default 16; files and bytes carry their own). ``guides``: guide image(s) — paths,
    encoded bytes, (H, W, 3) / (3, H, W) uint8 arrays — placed at ``guide_positions`` in [0, 1]
    (default: one guide at 0, the first frame; several spread evenly from first to last).
    """

    video: Any
    prompt: str = ""
    fps: float | None = None
    guides: Sequence[Any] = ()
    guide_positions: Sequence[float] | None = None
    id: str | None = None
    layout: str | None = None

    @classmethod
    def of(cls, item: "RewardItem | Mapping[str, Any] | Any") -> "RewardItem":
        if isinstance(item, RewardItem):
            return item
        if isinstance(item, RequestItem):
            return cls(item.video, item.prompt, item.fps, [g for g, _ in item.guides],
                       [0.0 if p is None else p for _, p in item.guides] if any(p is not None for _, p in item.guides)
                       else None, item.id)
        if isinstance(item, Mapping):
            known = {"video", "prompt", "fps", "guides", "guide_positions", "id", "layout"}
            unknown = set(item) - known
            if unknown:
                raise InputError(f"unknown item field(s) {sorted(unknown)}; known: {sorted(known)}")
            if "video" not in item:
                raise InputError("an item needs a 'video'")
            guides = item.get("guides") or ()
            if not isinstance(guides, (list, tuple)):
                guides = [guides]
            return cls(item["video"], item.get("prompt") or "", item.get("fps"), guides, item.get("guide_positions"),
                       item.get("id"), item.get("layout"))
        return cls(item)  # a bare clip


@dataclass
class ItemResult:
    """One item's outcome: ``reward`` in [0, 1] (None when it could not be computed), scorer → value,
    scorer → error, and ``error`` when the item itself was unusable (no scorer ran)."""

    id: str
    reward: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    error: dict[str, str] | None = None
    details: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.reward is not None

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "ok": self.ok, "reward": _finite(self.reward),
               "scores": {k: _finite(v) for k, v in self.scores.items()}, "errors": self.errors, "error": self.error}
        if self.details is not None:
            out["details"] = self.details
        return out


@dataclass
class RewardBatch:
    """Results of one :meth:`RewardService.score` call, in the order of the items."""

    items: list[ItemResult]
    provenance_id: str
    seconds: float = 0.0

    @property
    def rewards(self) -> list[float | None]:
        return [r.reward for r in self.items]

    def to_json(self) -> dict[str, Any]:
        return {"items": [r.to_json() for r in self.items], "provenance_id": self.provenance_id,
                "seconds": round(self.seconds, 6)}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class RewardService:
    """Scorers and models loaded once; :meth:`score` scores batches of items (thread-safe).

    ``scorers``: scorer names (``name:key=value``), groups (``anime-reward``) or instances.
    A group's members that cannot run here are skipped (:attr:`skipped` says why); a scorer
    named directly is always used (without its weights every item reports that error).
    ``reward``: what the per-item reward is — ``"auto"`` (the ``anime_reward.combined``
    scorer when selected, else the equal-weight mean of every selected head, each
    normalised to [0, 1] by its declared range), a scorer name, a ``{scorer: weight}``
    mapping, or a :class:`~anibench.session.RewardSpec`.
    ``limits``: frames per clip and pixels per frame, checked from container metadata
    before an encoded clip is decoded (the HTTP server passes its own).
    """

    def __init__(
        self,
        scorers: Sequence[Any] | None = None,
        *,
        runtime: Any | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        workers: int = 2,
        reward: Any = "auto",
        limits: Limits | None = None,
    ):
        from anibench.runtime.context import Runtime
        from anibench.session import ScoringSession

        self.runtime = runtime or Runtime(device=device, dtype=dtype, batch_size=batch_size)
        instances, self.skipped = _resolve(DEFAULT_SCORERS if scorers is None else scorers)
        if not instances:
            reasons = "; ".join(f"{k}: {v}" for k, v in self.skipped.items()) or "none was selected"
            raise InputError(f"no scorer can run here ({reasons})")
        self.session = ScoringSession(instances, self.runtime, workers=workers)
        self.limits = limits
        self.reward_spec, self.reward_source = self._reward_spec(reward)
        self._lock = threading.Lock()
        self._provenance: dict[str, Any] | None = None

    # -- configuration -------------------------------------------------------------------------
    @property
    def scorer_names(self) -> list[str]:
        return list(self.session.scorers)

    def _reward_spec(self, reward: Any) -> tuple[Any, dict[str, Any]]:
        from anibench.session import RewardSpec

        names = self.scorer_names
        if isinstance(reward, RewardSpec):
            spec = reward
        elif reward == "auto" and COMBINED in names:
            spec = RewardSpec({COMBINED: 1.0})
        elif reward == "auto":
            heads = {n: 1.0 for n in names if self.session.scorers[n].higher_is_better is not None
                     and math.isfinite(self.session.scorers[n].upper)}
            if not heads:
                raise InputError(f"no selected scorer has a bounded range to make a reward from ({', '.join(names)})")
            spec = RewardSpec(heads)
        elif isinstance(reward, str):
            spec = RewardSpec({reward: 1.0})
        elif isinstance(reward, Mapping):
            spec = RewardSpec({str(k): float(v) for k, v in reward.items()})
        else:
            raise InputError(f"reward must be 'auto', a scorer name, {{scorer: weight}} or a RewardSpec, "
                             f"got {reward!r}")
        missing = [h for h in spec.heads if h not in names]
        if missing:
            raise InputError(f"the reward reads {missing}, which are not among the service's scorers "
                             f"({', '.join(names)})")
        kind = "scorer" if len(spec.heads) == 1 else "weighted mean of normalised heads"
        return spec, {"kind": kind, **spec.describe()}

    def warmup(self) -> list[str]:
        """Load every model family the scorers read now (not on the first request); their names.

        Raises what a family raises (missing weights, say), so a server fails at start, not per item.
        """
        families = list(dict.fromkeys(f for s in self.session.scorers.values() for f in s.families))
        for family in families:
            self.runtime.family(family)
        return families

    def provenance(self) -> dict[str, Any]:
        """What produced the values: scorers (version, identity, params, weights + sha256), device, dtype, reward."""
        if self._provenance is None:
            import anibench

            try:
                self.runtime.selection  # resolve device and dtype for the record
            except Exception:  # noqa: BLE001 - no torch: weight-free scorers only
                pass
            scorers = {}
            for name, scorer in self.session.scorers.items():
                try:
                    scorers[name] = scorer.describe(self.runtime)
                except Exception as exc:  # noqa: BLE001 - a family that cannot load is described by its error
                    scorers[name] = {"name": name, "version": scorer.version, "error": str(exc)}
            self._provenance = {
                "anibench": getattr(anibench, "__version__", "unknown"),
                "scorers": scorers,
                "skipped": dict(self.skipped),
                "runtime": self.runtime.describe(),
                "reward": self.reward_source,
            }
        return self._provenance

    def provenance_id(self) -> str:
        payload = json.dumps(self.provenance(), sort_keys=True, default=str).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "RewardService":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- scoring -------------------------------------------------------------------------------
    def score(self, items: Sequence[Any], *, scorers: Sequence[str] | None = None,
              details: bool = False) -> RewardBatch:
        """Score ``items`` (:class:`RewardItem`, mappings with its fields, or bare clips).

        ``scorers`` restricts this call to some of the service's scorers (the reward then
        needs its heads among them). ``details`` adds each scorer's details (JSON-safe).
        """
        import time

        from anibench.scoring import ScoreInput, ScoreResult
        from anibench.session import ScoringJob

        started = time.perf_counter()
        names = self.scorer_names if scorers is None else list(scorers)
        unknown = [n for n in names if n not in self.session.scorers]
        if unknown:
            raise InputError(f"unknown scorer(s) {unknown} for this service; it serves {', '.join(self.scorer_names)}")
        results: list[ItemResult] = []
        jobs: list[tuple[int, Any]] = []
        with tempfile.TemporaryDirectory(prefix="anibench-reward-") as scratch, self._lock:
            for index, raw in enumerate(items):
                item_id = str(getattr(raw, "id", None) or (raw.get("id") if isinstance(raw, Mapping) else None)
                              or f"item{index}")
                results.append(ItemResult(item_id))
                try:
                    item = RewardItem.of(raw)
                    source = self._source(item, Path(scratch) / str(index))
                    guidance = self._guidance(item, source.info, Path(scratch) / f"{index}-guides")
                except Exception as exc:  # noqa: BLE001 - this item is unusable; the others go on
                    results[-1].error = _error_json(_scrubbed(exc, scratch, item_id))
                    continue
                sample = ScoreInput(item_id, info=source.info, prompt=item.prompt or "", guidance=guidance,
                                    video_path=source.path)
                jobs.append((index, ScoringJob(source, sample, names)))
            outcomes = self.session.score_jobs([job for _, job in jobs], place_guides=False) if jobs else []
            for (index, _), outcome in zip(jobs, outcomes):
                result = results[index]
                for name in names:
                    value = outcome.scores.get(name)
                    if isinstance(value, ScoreResult):
                        result.scores[name] = value.value
                        if details:
                            result.details = result.details or {}
                            result.details[name] = _json_safe(dict(value.details))
                    else:
                        error = value if isinstance(value, BaseException) else AnibenchError("no result")
                        result.errors[name] = _error_json(_scrubbed(error, scratch, result.id))
                result.reward = self._reward(outcome.scores, result)
        return RewardBatch(results, self.provenance_id(), time.perf_counter() - started)

    def _reward(self, scores: Mapping[str, Any], result: ItemResult) -> float | None:
        missing = [h for h in self.reward_spec.heads if h not in scores]
        if missing:
            result.errors.setdefault("reward", {"type": "InputError",
                                                "message": f"the reward needs {missing}, not scored in this call"})
            return None
        try:
            reward = self.reward_spec.reward(scores)
        except AnibenchError as exc:
            result.errors["reward"] = _error_json(exc)
            return None
        if reward is None:
            failed = [h for h in self.reward_spec.heads if h in result.errors] or list(self.reward_spec.heads)
            result.errors.setdefault("reward", {"type": "InputError",
                                                "message": f"no reward: head(s) {failed} have no value for this item"})
        return reward

    # -- inputs ----------------------------------------------------------------------------------
    def _source(self, item: RewardItem, scratch: Path) -> Any:
        from anibench.frames import ArrayFrames, FileFrames

        video = item.video
        if isinstance(video, ClipData):
            video = video.value if video.kind != "path" else Path(video.value)
        if isinstance(video, (bytes, bytearray, memoryview)):
            if len(video) == 0:
                raise InputError("empty video bytes")
            scratch.parent.mkdir(parents=True, exist_ok=True)
            path = scratch.with_suffix(".video")
            path.write_bytes(video)
            source = FileFrames(path)
        elif isinstance(video, (str, Path)):
            source = FileFrames(video)
        else:
            frames = _frames_array(video, item.layout)
            fps = DEFAULT_FPS if item.fps is None else float(item.fps)
            source = ArrayFrames(frames, fps)
        if self.limits is not None:
            info = source.info
            if info.num_frames > self.limits.max_frames:
                raise InputError(f"clip has {info.num_frames} frames; the limit is {self.limits.max_frames} per clip")
            if info.height * info.width > self.limits.max_pixels:
                raise InputError(f"clip frames of {info.height}x{info.width} exceed the limit of "
                                 f"{self.limits.max_pixels} pixels per frame")
        return source

    def _guidance(self, item: RewardItem, info: Any, scratch: Path) -> Any:
        from anibench.conditions import GuideFrame, Guidance, place_guides
        from anibench.images import fit_image

        guides = list(item.guides or ())
        if not guides:
            return None
        positions = item.guide_positions
        if positions is None:
            positions = [0.0] if len(guides) == 1 else list(np.linspace(0.0, 1.0, len(guides)))
        if len(positions) != len(guides):
            raise InputError(f"{len(positions)} guide positions for {len(guides)} guide images")
        if not all(isinstance(p, (int, float)) and 0.0 <= float(p) <= 1.0 for p in positions):
            raise InputError(f"guide positions must be numbers in [0, 1], got {list(positions)}")
        indices = place_guides([float(p) for p in positions], info.num_frames)
        frames = []
        for k, (guide, position, index) in enumerate(zip(guides, positions, indices)):
            image = _guide_image(guide, scratch.with_name(f"{scratch.name}-{k}"))
            if self.limits is not None and image.shape[0] * image.shape[1] > self.limits.max_pixels:
                raise InputError(f"guide image {k} of {image.shape[0]}x{image.shape[1]} exceeds the limit of "
                                 f"{self.limits.max_pixels} pixels")
            fitted = fit_image(image, info.height, info.width, "center-crop")
            frames.append(GuideFrame(float(position), int(index), fitted, f"request guide {k}"))
        return Guidance("reward-request", tuple(frames), info.num_frames, info.fps, info.height, info.width)


def _frames_array(video: Any, layout: str | None) -> np.ndarray:
    """A (T, H, W, 3) uint8 array of frames given as numpy or torch, THWC or TCHW (a view when possible)."""
    if type(video).__module__.startswith("torch"):
        video = video.detach().cpu().numpy()
    if not isinstance(video, np.ndarray):
        raise InputError(f"cannot score a {type(video).__name__}: give a file path, encoded bytes or uint8 frames "
                         "(T, H, W, 3) / (T, 3, H, W)")
    if video.dtype != np.uint8:
        raise InputError(f"frames must be uint8, got {video.dtype} (scale float frames to 0-255 and convert)")
    try:
        order = video_layout(video.shape, layout)
    except PayloadError as exc:
        raise InputError(exc.message) from None
    if order == "TCHW":
        video = np.ascontiguousarray(video.transpose(0, 2, 3, 1))
    return video


def _guide_image(guide: Any, scratch: Path) -> np.ndarray:
    from anibench.images import load_image

    if isinstance(guide, ClipData):
        guide = guide.value if guide.kind != "path" else Path(guide.value)
    if isinstance(guide, (bytes, bytearray, memoryview)):
        if len(guide) == 0:
            raise InputError("empty guide image bytes")
        scratch.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_bytes(guide)
        return load_image(scratch)
    if isinstance(guide, (str, Path)):
        return load_image(guide)
    if type(guide).__module__.startswith("torch"):
        guide = guide.detach().cpu().numpy()
    if not isinstance(guide, np.ndarray):
        raise InputError(f"cannot read a guide image from a {type(guide).__name__}")
    if guide.dtype != np.uint8:
        raise InputError(f"guide images must be uint8, got {guide.dtype}")
    try:
        order = image_layout(guide.shape)
    except PayloadError as exc:
        raise InputError(exc.message) from None
    return np.ascontiguousarray(guide.transpose(1, 2, 0) if order == "CHW" else guide)


def _scrubbed(error: BaseException, scratch: str, item_id: str) -> BaseException:
    """The error without the service's scratch paths (the item's bytes were written there)."""
    text = str(error)
    if scratch not in text:
        return error
    return _Message(type(error).__name__, text.replace(scratch, f"<request {item_id}>"))


class _Message(Exception):
    """An error reported by type name and message only."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _error_json(error: BaseException) -> dict[str, str]:
    kind = error.kind if isinstance(error, _Message) else type(error).__name__
    return {"type": kind, "message": str(error)}


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist()) if value.size <= 4096 else f"<array {value.shape} {value.dtype}>"
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _resolve(specs: Sequence[Any]) -> tuple[list[Any], dict[str, str]]:
    """Scorer instances for names, groups or instances; {skipped member: why}."""
    from anibench.engine import resolve_scorers
    from anibench.runspec import PluginSpec
    from anibench.scoring import Scorer

    instances = [s for s in specs if isinstance(s, Scorer)]
    names: list[str] = []
    for spec in specs:
        if isinstance(spec, str):
            names += [part.strip() for part in (spec.split(",") if ":" not in spec else [spec]) if part.strip()]
        elif not isinstance(spec, Scorer):
            raise InputError(f"a scorer is a name, a group or a Scorer instance, not {type(spec).__name__}")
    if not names:
        return instances, {}
    resolved, skipped = resolve_scorers([PluginSpec.parse(n) for n in names])
    return instances + resolved, skipped


# -- batching across callers -------------------------------------------------------------------
class Busy(Exception):
    """The batcher's queue is full; try again later."""


class Batcher:
    """Serialises scoring across threads and scores what is waiting together (one session batch).

    :meth:`submit` queues a request's items and returns a :class:`~concurrent.futures.Future`
    of its :class:`RewardBatch`. One worker thread takes the first waiting request and every
    other one already waiting, up to ``max_items`` items, scores them in one call (model
    features batch across them) and splits the results. A request that fails as a whole
    fails only its own future. ``max_pending`` bounds the queue (:class:`Busy` beyond).
    """

    def __init__(self, service: RewardService, *, max_items: int = 64, max_pending: int = 64):
        self.service = service
        self.max_items = max(1, max_items)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, max_pending))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="anibench-reward-batcher", daemon=True)
        self._thread.start()
        self.batches = 0

    def submit(self, items: Sequence[Any], *, scorers: Sequence[str] | None = None,
               details: bool = False) -> Future:
        future: Future = Future()
        try:
            self._queue.put_nowait((list(items), scorers, details, future))
        except queue.Full:
            raise Busy(f"{self._queue.maxsize} requests are already waiting") from None
        return future

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            count = len(first[0])
            while count < self.max_items:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._stop.set()
                    break
                if len(nxt[0]) + count > self.max_items or (nxt[1], nxt[2]) != (first[1], first[2]):
                    self._run_group(group)  # differs or too many: this one starts the next group
                    group, count = [nxt], len(nxt[0])
                    first = nxt
                    continue
                group.append(nxt)
                count += len(nxt[0])
            self._run_group(group)

    def _run_group(self, group: list) -> None:
        live = [g for g in group if g[3].set_running_or_notify_cancel()]
        if not live:
            return
        items = [item for g in live for item in g[0]]
        try:
            batch = self.service.score(items, scorers=live[0][1], details=live[0][2])
        except BaseException as exc:  # noqa: BLE001 - fails these requests only; the worker goes on
            if len(live) == 1:
                live[0][3].set_exception(exc)
                return
            for g in live:  # score each alone so one request's fault does not fail the others
                self._run_single(g)
            return
        self.batches += 1
        start = 0
        for items_, _, _, future in live:
            part = RewardBatch(batch.items[start:start + len(items_)], batch.provenance_id, batch.seconds)
            start += len(items_)
            future.set_result(part)

    def _run_single(self, entry: tuple) -> None:
        items, scorers, details, future = entry
        try:
            future.set_result(self.service.score(items, scorers=scorers, details=details))
        except BaseException as exc:  # noqa: BLE001
            future.set_exception(exc)
