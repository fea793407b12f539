"""Cases and suites: what a benchmark is made of.

A :class:`Case` is one benchmark item: a prompt, its action label and style, guide
frames at positions in [0, 1] (0 = first frame, 1 = last), an optional motion mask and
an optional ground-truth video. A :class:`Suite` is a named, versioned list of cases.
Suites are built by loaders (``anibench.suites``); files are referenced, not loaded,
so a bad file fails only the cases that use it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Mapping

from anibench.errors import SuiteError
from anibench.images import GuideFit

CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
STYLES = ("2d", "3d")


class MaskSemantics(str, Enum):
    """What the white pixels of a case's mask video mean.

    ``motion``: white marks where motion should happen (AniSora's motion-area guidance).
    ``keep``: white marks pixels kept from the source, black the region the model
    generates (the anymask convention, ``anisora_anymask``). anibench converts both to a
    motion region: True where the video may move.
    """

    MOTION = "motion"
    KEEP = "keep"


@dataclass(frozen=True)
class Guide:
    """A guide frame: an image file and where it belongs in the clip (0 = first, 1 = last).

    ``frame_index`` optionally pins the guide to a frame of the case's own ground-truth
    video (a reference image taken from frame 3, say); clips of another length place it
    by ``position``.
    """

    position: float
    path: Path
    fit: GuideFit = GuideFit.EXACT
    frame_index: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.position) <= 1.0:
            raise SuiteError(f"guide position {self.position} is outside [0, 1]", path=self.path)
        object.__setattr__(self, "position", float(self.position))
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "fit", GuideFit(self.fit))


@dataclass(frozen=True)
class Case:
    """One benchmark item.

    ``source`` is the file the case was defined in (manifest or prompt file), named in
    error messages about the case's own fields (an empty prompt, say).
    """

    id: str
    prompt: str = ""
    label: str | None = None
    style: str | None = None
    guides: tuple[Guide, ...] = ()
    mask: Path | None = None
    mask_semantics: MaskSemantics = MaskSemantics.MOTION
    video: Path | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def __post_init__(self) -> None:
        if not CASE_ID_PATTERN.match(self.id or ""):
            raise SuiteError(
                f"case id {self.id!r} must start with a letter or digit and use only letters, digits, '.', '_', '-'",
                path=self.source,
            )
        if self.style is not None and self.style not in STYLES:
            raise SuiteError(f"style {self.style!r} is not one of {STYLES}", case_id=self.id, path=self.source)
        object.__setattr__(self, "guides", tuple(sorted(self.guides, key=lambda g: g.position)))
        object.__setattr__(self, "mask_semantics", MaskSemantics(self.mask_semantics))
        for name in ("mask", "video", "source"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))

    def describe(self, root: Path | None = None) -> dict[str, Any]:
        """JSON-able description; paths are relative to ``root`` when they lie under it."""

        def show(path: Path | None) -> str | None:
            if path is None:
                return None
            if root is not None and path.is_relative_to(root):
                return path.relative_to(root).as_posix()
            return str(path)

        return {
            "id": self.id,
            "prompt": self.prompt,
            "label": self.label,
            "style": self.style,
            "guides": [
                {"position": g.position, "path": show(g.path), "fit": g.fit.value, "frame_index": g.frame_index}
                for g in self.guides
            ],
            "mask": show(self.mask),
            "mask_semantics": self.mask_semantics.value,
            "video": show(self.video),
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class InvalidCase:
    """A case its loader could not build (a path outside the suite, a malformed line).

    Loading goes on without it; runs record it as a failed case with :meth:`error`.
    """

    id: str
    message: str
    source: Path | None = None

    def error(self) -> SuiteError:
        return SuiteError(self.message, case_id=self.id, path=self.source)


@dataclass(frozen=True)
class GenerationDefaults:
    """Clip shape asked of generators for cases without a ground-truth video."""

    num_frames: int = 49
    fps: float = 16.0


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of cases; ``root`` is the folder the files live in."""

    name: str
    version: str
    cases: tuple[Case, ...]
    root: Path | None = None
    description: str = ""
    defaults: GenerationDefaults = GenerationDefaults()
    loader_options: Mapping[str, Any] = field(default_factory=dict)
    invalid: tuple[InvalidCase, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for case in self.cases:
            if case.id in seen:
                raise SuiteError(f"duplicate case id in suite {self.name!r}", case_id=case.id, path=case.source)
            seen.add(case.id)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.id == case_id:
                return case
        raise KeyError(f"suite {self.name!r} has no case {case_id!r}")

    def fingerprint(self) -> str:
        """sha256 of the case definitions (ids, prompts, labels, positions, file names)."""
        payload = json.dumps([c.describe(self.root) for c in self.cases], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "root": str(self.root) if self.root else None,
            "cases": len(self.cases),
            "invalid_cases": [{"id": c.id, "error": str(c.error())} for c in self.invalid],
            "fingerprint": self.fingerprint(),
            "defaults": {"num_frames": self.defaults.num_frames, "fps": self.defaults.fps},
            "loader_options": dict(self.loader_options),
        }
