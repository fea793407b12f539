"""The generator interface: a plugin turns :class:`GenerationRequest` s into clips.

Lifecycle (driven by the executor, diffusers-style: components loaded once):

1. ``load(runtime)`` once per process, before the first batch (a diffusion pipeline
   goes to the runtime's device and dtype here);
2. ``generate_batch(requests)`` on requests grouped by :meth:`Generator.batch_key`
   (requests with different guide counts or clip shapes never share a batch);
3. ``unload()`` when the generator's pass ends, so its memory is free before any scorer
   loads.

Every request carries ``rng_seed``, derived from (seed, case, condition) alone
(:func:`request_seed`): a model seeds its own ``torch.Generator`` per request from it,
so a clip never depends on what else was in its batch. A generator's
:meth:`~Generator.identity` (name, version, parameters, weights, LoRA) is part of every
item key: a clip made with other parameters is never reused.

Remote APIs implement :class:`AsyncGenerator` (submit / poll / fetch); the executor keeps
their job ids in the run store, so a crashed run polls its jobs instead of paying for
them twice.

Generators are registered in :data:`GENERATORS` (entry-point group
``anibench.generators``); heavy backends import their libraries inside the plugin module,
which the registry imports only when the generator is selected.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Hashable, Sequence

import numpy as np

from anibench.conditions import Guidance, GuideFrame, GuidePlacement, fit_guidance
from anibench.errors import InputError
from anibench.plugin import Configurable
from anibench.registry import Registry
from anibench.video import Video

if TYPE_CHECKING:
    from anibench.errors import MissingWeightsError
    from anibench.runtime.context import Runtime


def request_seed(seed: int, case_id: str, condition: str) -> int:
    """A 63-bit seed from (run seed, case, condition): the same clip whatever the batch or the order."""
    digest = hashlib.sha256(f"{seed}\0{case_id}\0{condition}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a generator gets for one clip.

    ``guidance`` holds the guide frames (RGB, fitted to the clip size, at the frame
    indices this generator places them: :meth:`Generator.place_guides`), the clip shape
    and the motion region (True where motion is wanted); the properties below read it.
    ``rng_seed`` seeds the request's own random generator. ``ground_truth`` is set for
    oracle baselines only (the ``reference`` generator).
    """

    case_id: str
    prompt: str
    guidance: Guidance
    seed: int = 0
    rng_seed: int = 0
    label: str | None = None
    style: str | None = None
    ground_truth: Path | None = None

    @property
    def condition(self) -> str:
        return self.guidance.condition

    @property
    def guides(self) -> tuple[GuideFrame, ...]:
        return self.guidance.guides

    @property
    def num_frames(self) -> int:
        return self.guidance.num_frames

    @property
    def fps(self) -> float:
        return self.guidance.fps

    @property
    def height(self) -> int:
        return self.guidance.height

    @property
    def width(self) -> int:
        return self.guidance.width

    @property
    def motion_region(self) -> np.ndarray | None:
        return self.guidance.motion_region

    def rng(self) -> np.random.Generator:
        """A NumPy generator seeded with ``rng_seed`` (torch models use ``torch.Generator().manual_seed``)."""
        return np.random.default_rng(self.rng_seed)


class Generator(Configurable, ABC):
    """Base class of generator plugins.

    Class attributes: ``name``, ``version`` (bump when outputs change), ``requires_prompt``
    (an empty prompt is then an input error), ``guide_placement`` (the rule mapping guide
    positions to the frames of its clips: nearest frame by default, AniSora V3's snapping
    for AniSora-compatible models; see :class:`~anibench.conditions.GuidePlacement`),
    ``default_params`` (tunable parameters, part of the output's identity; see
    :class:`~anibench.plugin.Configurable`).
    """

    kind: ClassVar[str] = "generator"
    requires_prompt: ClassVar[bool] = True
    guide_placement: ClassVar[GuidePlacement] = GuidePlacement.NEAREST
    max_batch: ClassVar[int] = 8

    runtime: "Runtime | None" = None

    # -- lifecycle ----------------------------------------------------------------------
    def load(self, runtime: "Runtime") -> None:
        """Load models onto the runtime's device (once per process, before the first batch)."""
        self.runtime = runtime

    def unload(self) -> None:
        """Free what :meth:`load` took (called when this generator's pass ends)."""

    @classmethod
    def weight_entries(cls) -> tuple[str, ...]:
        """The weights manifest entries :meth:`load` reads (each entry's ``used_by`` names this generator)."""
        return ()

    def missing_weights(self, runtime: "Runtime") -> "MissingWeightsError | None":
        """Every weight file :meth:`load` needs that is not installed, in one error (checked before a run starts)."""
        return None

    # -- identity -------------------------------------------------------------------------
    def weights(self) -> dict[str, str]:
        """Weights (and LoRA adapters) by name → sha256; part of :meth:`identity`."""
        return {}

    def identity(self) -> str:
        """Short hash of name, version, parameters and weights: which outputs belong together."""
        base = f"{self.name}\0{self.version}\0{self.params_hash()}"
        weights = self.weights()
        if weights:
            base += "\0" + json.dumps(weights, sort_keys=True)
        if self.guide_placement is not GuidePlacement.NEAREST:
            base += f"\0{GuidePlacement(self.guide_placement).value}"
        return hashlib.sha256(base.encode()).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": self.params, "identity": self.identity(),
                "guide_placement": GuidePlacement(self.guide_placement).value, "weights": self.weights()}

    def place(self, guidance: Guidance) -> Guidance:
        """``guidance`` with its guides at the frames this generator conditions on (its ``guide_placement``).

        Override when the model decides (an API that reports the frames it used).
        """
        return fit_guidance(guidance, guidance.num_frames, guidance.height, guidance.width, self.guide_placement)

    # -- requests -------------------------------------------------------------------------
    def batch_key(self, request: GenerationRequest) -> Hashable:
        """Requests with equal keys may share a batch (default: clip shape, guide count, mask or not)."""
        return (request.num_frames, request.height, request.width, len(request.guides),
                request.motion_region is not None)

    def check(self, request: GenerationRequest) -> None:
        if self.requires_prompt and not request.prompt.strip():
            raise InputError(f"empty prompt; generator {self.name!r} needs one", case_id=request.case_id)

    @abstractmethod
    def generate(self, request: GenerationRequest) -> Video | Path:
        """Produce one clip of ``request.num_frames`` frames at ``request.fps``.

        Return a :class:`Video`, or the path of an existing video file (an API's mp4, the
        ground truth), which the run copies unchanged.
        """

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Video | Path | Exception]:
        """Several clips (one batch key); one request's error is returned in its slot, not raised."""
        out: list[Video | Path | Exception] = []
        for request in requests:
            try:
                self.check(request)
                out.append(self.generate(request))
            except Exception as exc:  # noqa: BLE001 - one bad case must not lose the batch
                out.append(exc)
        return out


class JobState(str, Enum):
    """Where a remote job stands."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    message: str = ""


class AsyncGenerator(Generator):
    """A remote API: :meth:`submit` a request, :meth:`poll` its job, :meth:`fetch` the clip.

    The executor records each job id in the run store as soon as :meth:`submit` returns,
    so an interrupted run polls the jobs it already paid for instead of resubmitting.
    ``poll_interval`` is the seconds between polls of unfinished jobs; ``max_wait`` the
    seconds a job may take before it is recorded as failed (the next run polls it again).
    """

    poll_interval: ClassVar[float] = 5.0
    max_wait: ClassVar[float] = 3600.0

    @abstractmethod
    def submit(self, request: GenerationRequest) -> str:
        """Start a job; return its id (secrets come from the environment, never from the request)."""

    @abstractmethod
    def poll(self, job_id: str) -> JobStatus:
        """The job's state."""

    @abstractmethod
    def fetch(self, job_id: str, request: GenerationRequest) -> Video | Path:
        """The finished job's clip."""

    def generate(self, request: GenerationRequest) -> Video | Path:
        raise InputError(f"generator {self.name!r} is asynchronous: the executor submits, polls and fetches its jobs")


GENERATORS: Registry[type[Generator]] = Registry("generator", "anibench.generators")


def create_generator(name: str, **params: Any) -> Generator:
    return GENERATORS.get(name)(**params)
