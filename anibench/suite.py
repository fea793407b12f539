"""Cases and suites: what a benchmark is made of.

A :class:`Case` is one benchmark item: a prompt, its action label and style, guide
frames at positions in [0, 1] (0 = first frame, 1 = last), an optional motion mask and
an optional ground-truth video. A :class:`Suite` is a named, versioned list of cases.
Suites are built by loaders (``anibench.suites``); files are referenced, not loaded,
so a bad file fails only the cases that use it.

Case ids are kept exactly as given or derived (a file stem keeps its spaces and
parentheses); :func:`case_id_problem` states the rule. :attr:`Case.key` is the storage
name used for files and item ids. Every entry of a suite, valid or not, has an identity
of its own (:meth:`Suite.__post_init__` guarantees it).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Mapping

from anibench.errors import SuiteError
from anibench.images import GuideFit

# A storage key as is: also the rule for model names (anibench.runspec).
CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
KEY_PATTERN = CASE_ID_PATTERN
MAX_CASE_ID_LENGTH = 200
STYLES = ("2d", "3d")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SLUG_LENGTH = 60


def case_id_problem(case_id: Any) -> str | None:
    """Why ``case_id`` cannot be a case id, or None when it can.

    A case id is any string of 1 to 200 printable characters (``str.isprintable``:
    no control, NUL or separator characters other than the ASCII space) without
    ``/`` or ``\\``, that is not ``.`` or ``..`` and has no leading or trailing space.
    """
    if not isinstance(case_id, str):
        return f"a case id must be a string, got {type(case_id).__name__}"
    if not case_id:
        return "a case id cannot be empty"
    if len(case_id) > MAX_CASE_ID_LENGTH:
        return f"a case id has at most {MAX_CASE_ID_LENGTH} characters (this one has {len(case_id)})"
    if case_id in (".", ".."):
        return f"{case_id!r} cannot be a case id"
    if "/" in case_id or "\\" in case_id:
        return f"case id {case_id!r} contains '/' or '\\'"
    if not case_id.isprintable():
        return f"case id {case_id!r} contains control or non-printable characters"
    if case_id != case_id.strip():
        return f"case id {case_id!r} has leading or trailing spaces"
    return None


def case_key(case_id: str) -> str:
    """The storage name of a case id: the id itself when it matches ``[A-Za-z0-9][A-Za-z0-9._-]*``,
    otherwise an ASCII slug, ``-`` and the first 8 hex digits of sha256(id) (two ids never share a key)."""
    if CASE_ID_PATTERN.match(case_id):
        return case_id
    ascii_text = unicodedata.normalize("NFKD", case_id).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_UNSAFE.sub("_", ascii_text).strip("._-")[:_SLUG_LENGTH].rstrip("._-")
    digest = hashlib.sha256(case_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug or 'case'}-{digest}"


def printable(text: str) -> str:
    """``text`` with non-printable characters escaped (``\\n``, ``\\udcff``): safe to show and store."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def invalid_identity(declared_id: str | None, origin: str, fallback: str) -> str:
    """The identity of an entry that failed to load: ``<id>@<origin>`` (``c1@prompts.txt:7``), or
    ``fallback`` (``line7@prompts.txt``) when no usable id was declared. Characters a case id cannot
    hold become '?'; :class:`Suite` makes it unique."""
    tail = _id_safe(origin)
    if declared_id is not None and case_id_problem(declared_id) is None:
        head = declared_id[: max(1, MAX_CASE_ID_LENGTH - len(tail) - 1)]
        return f"{head}@{tail}"[:MAX_CASE_ID_LENGTH]
    return _id_safe(fallback)[:MAX_CASE_ID_LENGTH]


def _id_safe(text: str) -> str:
    """``text`` usable inside a case id: forbidden characters become '?'."""
    cleaned = "".join(c if c.isprintable() and c not in "/\\" else "?" for c in text).strip()
    return cleaned if cleaned not in ("", ".", "..") else "entry"


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
    by ``position``. A pinned index beyond that video's frames is an error when the guide
    is resolved (:func:`anibench.conditions.resolve`).
    """

    position: float
    path: Path
    fit: GuideFit = GuideFit.EXACT
    frame_index: int | None = None

    def __post_init__(self) -> None:
        position = self.position
        if isinstance(position, bool) or not isinstance(position, (int, float)) or math.isnan(position):
            raise SuiteError(f"guide position must be a number in [0, 1], got {position!r}", path=self.path)
        if not 0.0 <= position <= 1.0:
            raise SuiteError(f"guide position {position} is outside [0, 1]", path=self.path)
        index = self.frame_index
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise SuiteError(f"guide frame_index must be a whole number >= 0, got {index!r}", path=self.path)
        object.__setattr__(self, "position", float(position))
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "fit", GuideFit(self.fit))


@dataclass(frozen=True)
class Case:
    """One benchmark item.

    ``source`` is the file the case was defined in (manifest or prompt file), named in
    error messages about the case's own fields (an empty prompt, say). ``origin`` says
    where in it (``prompts.txt:7``, ``manifest.json#3``, ``clip.mp4``); it names the other
    copies when an id is defined twice and is not part of the suite's fingerprint.
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
    origin: str | None = None

    def __post_init__(self) -> None:
        problem = case_id_problem(self.id)
        if problem:
            raise SuiteError(problem, path=self.source)
        if not isinstance(self.prompt, str):
            raise SuiteError(f"prompt must be text, got {type(self.prompt).__name__}", case_id=self.id, path=self.source)
        if self.style is not None and self.style not in STYLES:
            raise SuiteError(f"style {self.style!r} is not one of {STYLES}", case_id=self.id, path=self.source)
        guides = tuple(sorted(self.guides, key=lambda g: g.position))
        for first, second in zip(guides, guides[1:]):
            if first.position == second.position:
                raise SuiteError(
                    f"two guides at position {first.position:g} ({first.path.name} and {second.path.name})",
                    case_id=self.id, path=self.source,
                )
        object.__setattr__(self, "guides", guides)
        object.__setattr__(self, "mask_semantics", MaskSemantics(self.mask_semantics))
        for name in ("mask", "video", "source"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))

    @property
    def key(self) -> str:
        """Storage name for files and item ids (:func:`case_key`)."""
        return case_key(self.id)

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
    """An entry its loader could not build (a path outside the suite, a malformed line, a duplicate id).

    ``id`` is its own identity, derived from where it was defined (``c1@prompts.txt:7``,
    ``line7@prompts.txt``) and never equal to a valid case's id; ``case_id`` is the id it
    declared, when one could be read. Loading goes on without it; runs record it as a
    failed case with :meth:`error`.
    """

    id: str
    message: str
    source: Path | None = None
    case_id: str | None = None
    origin: str | None = None

    @property
    def key(self) -> str:
        return case_key(self.id)

    def error(self) -> SuiteError:
        return SuiteError(self.message, case_id=self.id, path=printable(str(self.source)) if self.source else None)


@dataclass(frozen=True)
class GenerationDefaults:
    """Clip shape asked of generators for cases without a ground-truth video."""

    num_frames: int = 49
    fps: float = 16.0


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of cases; ``root`` is the folder the files live in.

    Identities are unique over ``cases`` and ``invalid`` together, ids and storage keys
    alike: cases sharing an id (or a key) are each moved to ``invalid`` under their own
    identity, with a message naming the other copies; an invalid entry whose identity is
    taken gets ``~2``, ``~3``, ... appended.
    """

    name: str
    version: str
    cases: tuple[Case, ...]
    root: Path | None = None
    description: str = ""
    defaults: GenerationDefaults = GenerationDefaults()
    loader_options: Mapping[str, Any] = field(default_factory=dict)
    invalid: tuple[InvalidCase, ...] = ()

    def __post_init__(self) -> None:
        cases, invalid = settle_identities(self.cases, self.invalid)
        object.__setattr__(self, "cases", cases)
        object.__setattr__(self, "invalid", invalid)

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
            "invalid_cases": [{"id": c.id, "case_id": c.case_id, "error": str(c.error())} for c in self.invalid],
            "fingerprint": self.fingerprint(),
            "defaults": {"num_frames": self.defaults.num_frames, "fps": self.defaults.fps},
            "loader_options": dict(self.loader_options),
        }


def settle_identities(
    cases: tuple[Case, ...] | list[Case], invalid: tuple[InvalidCase, ...] | list[InvalidCase]
) -> tuple[tuple[Case, ...], tuple[InvalidCase, ...]]:
    """(cases, invalid) with every identity unique (see :class:`Suite`); order is kept."""
    by_key: dict[str, list[int]] = {}
    for index, case in enumerate(cases):
        by_key.setdefault(case.key, []).append(index)
    clashing = {i for group in by_key.values() if len(group) > 1 for i in group}
    kept = tuple(c for i, c in enumerate(cases) if i not in clashing)
    refused = [_duplicate(cases[i], [cases[j] for j in by_key[cases[i].key] if j != i], i) for i in sorted(clashing)]

    taken = {c.id for c in kept} | {c.key for c in kept}
    settled = []
    for entry in [*invalid, *refused]:
        identity, n = entry.id, 2
        while identity in taken or case_key(identity) in taken:
            identity, n = f"{entry.id[: MAX_CASE_ID_LENGTH - 6]}~{n}", n + 1
        taken |= {identity, case_key(identity)}
        settled.append(entry if identity == entry.id else replace(entry, id=identity))
    return kept, tuple(settled)


def _duplicate(case: Case, others: list[Case], index: int) -> InvalidCase:
    def where(c: Case) -> str:
        return c.origin or (c.source.name if c.source else "the loader")

    same_id = all(o.id == case.id for o in others)
    elsewhere = ", ".join(where(o) for o in others)
    if same_id:
        message = f"case id {case.id!r} is defined {len(others) + 1} times: here ({where(case)}) and at {elsewhere}; give each case its own id"
    else:
        names = ", ".join(repr(o.id) for o in others)
        message = f"case id {case.id!r} has the same storage key {case.key!r} as {names} (at {elsewhere}); rename one"
    identity = invalid_identity(case.id, case.origin or f"copy{index + 1}", f"copy{index + 1}")
    return InvalidCase(identity, message, case.source, case.id, case.origin)
