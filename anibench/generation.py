"""The generator interface: a plugin turns a :class:`GenerationRequest` into a clip.

Generators are registered in :data:`GENERATORS` (entry-point group
``anibench.generators``); heavy backends import their libraries inside the plugin
module, which the registry imports only when the generator is selected.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import InputError
from anibench.plugin import Configurable
from anibench.registry import Registry
from anibench.video import Video


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a generator gets for one clip.

    ``guidance`` holds the guide frames (RGB, at their frame indices, fitted to the clip
    size), the clip shape and the motion region (True where motion is wanted); the
    properties below read it. ``ground_truth`` is set for oracle baselines only (the
    ``reference`` generator).
    """

    case_id: str
    prompt: str
    guidance: Guidance
    seed: int = 0
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


class Generator(Configurable, ABC):
    """Base class of generator plugins.

    Class attributes: ``name``, ``version`` (bump when outputs change), ``requires_prompt``
    (an empty prompt is then an input error), ``default_params`` (tunable parameters,
    part of the output's identity; see :class:`~anibench.plugin.Configurable`).
    """

    kind: ClassVar[str] = "generator"
    requires_prompt: ClassVar[bool] = True

    def identity(self) -> str:
        """Short hash of name, version and parameters: which outputs belong together."""
        return hashlib.sha256(f"{self.name}\0{self.version}\0{self.params_hash()}".encode()).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": self.params, "identity": self.identity()}

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
        """Several clips; one request's error is returned in its slot, not raised."""
        out: list[Video | Path | Exception] = []
        for request in requests:
            try:
                self.check(request)
                out.append(self.generate(request))
            except Exception as exc:  # noqa: BLE001 - one bad case must not lose the batch
                out.append(exc)
        return out


GENERATORS: Registry[type[Generator]] = Registry("generator", "anibench.generators")


def create_generator(name: str, **params: Any) -> Generator:
    return GENERATORS.get(name)(**params)
