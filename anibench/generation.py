"""The generator interface: a plugin turns a :class:`GenerationRequest` into a clip.

Generators are registered in :data:`GENERATORS` (entry-point group
``anibench.generators``); heavy backends import their libraries inside the plugin
module, which the registry imports only when the generator is selected.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from anibench.conditions import GuideFrame
from anibench.errors import InputError
from anibench.registry import Registry
from anibench.video import Video


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a generator gets for one clip.

    ``guides`` are RGB frames at their frame indices (already fitted to ``width`` x
    ``height``); ``motion_region`` is (T, H, W) bool, True where motion is wanted.
    ``ground_truth`` is set for oracle baselines only (the ``reference`` generator).
    """

    case_id: str
    prompt: str
    condition: str
    guides: tuple[GuideFrame, ...]
    num_frames: int
    fps: float
    height: int
    width: int
    seed: int = 0
    motion_region: np.ndarray | None = field(default=None, repr=False)
    label: str | None = None
    style: str | None = None
    ground_truth: Path | None = None


class Generator(ABC):
    """Base class of generator plugins.

    Class attributes: ``name``, ``version`` (bump when outputs change), ``requires_prompt``
    (an empty prompt is then an input error), ``default_params`` (tunable parameters,
    part of the output's identity).
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    requires_prompt: ClassVar[bool] = True
    default_params: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.default_params)
        if unknown:
            known = ", ".join(self.default_params) or "none"
            raise InputError(f"generator {self.name!r} has no parameter(s) {sorted(unknown)}; known: {known}")
        self._params = {**self.default_params, **params}

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def identity(self) -> str:
        """Short hash of name, version and parameters: which outputs belong together."""
        payload = json.dumps([self.name, self.version, self._params], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

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
