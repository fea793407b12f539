"""Helpers shared by suite loaders: safe paths, text decoding, manifests, labels, per-case collection."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from anibench.errors import AnibenchError, SuiteError
from anibench.images import GuideFit
from anibench.resources import load_yaml
from anibench.suite import Case, Guide, InvalidCase, MaskSemantics, case_id_problem, invalid_identity, printable
from anibench.suites.records import Entry, read_entries, validate_record

# AniSora-Benchmark clip ids: <source>_<action pinyin>_<index>[_<suffix>], e.g. cartoon_films_da_dou_1.
_ANISORA_ID = re.compile(r"^(cartoon_films|motion_comics)_(?P<label>[a-z]+(?:_[a-z]+)*?)_\d+(?:_.*)?$")
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
# What a case build may raise about its input; anything else is a bug and propagates.
_BUILD_ERRORS = (AnibenchError, OSError, ValueError, TypeError, RuntimeError)


def safe_id(stem: str) -> str:
    """Deprecated: loaders keep ids as given and store them under :attr:`anibench.suite.Case.key`.

    Kept only for callers not yet switched; characters outside ``[A-Za-z0-9._-]`` become ``_``.
    """
    return _UNSAFE_ID_CHARS.sub("_", stem).strip("._-") or "clip"


class CaseCollector:
    """Builds cases one by one; a case that fails to build is kept as an :class:`InvalidCase`
    with its own identity (``<id>@<origin>``, or ``fallback`` when it declared no usable id)."""

    def __init__(self) -> None:
        self.cases: list[Case] = []
        self.invalid: list[InvalidCase] = []

    def add(
        self,
        build: Callable[[], Case],
        *,
        origin: str,
        source: Path,
        fallback: str,
        where: str = "",
        declared_id: str | None = None,
    ) -> None:
        """Build a case defined at ``origin`` (``prompts.txt:7``) in ``source``; ``where`` (``line 7``)
        prefixes error messages."""
        try:
            case = build()
        except _BUILD_ERRORS as exc:
            self.fail(exc, origin=origin, source=source, fallback=fallback, where=where, declared_id=declared_id)
        else:
            self.cases.append(case if case.origin else replace(case, origin=origin))

    def fail(
        self,
        error: BaseException | str,
        *,
        origin: str,
        source: Path,
        fallback: str,
        where: str = "",
        declared_id: str | None = None,
    ) -> None:
        """Record an entry that cannot be built."""
        if isinstance(error, AnibenchError):
            message, path = error.message, error.path
            declared_id = declared_id or (error.case_id if isinstance(error.case_id, str) else None)
        else:
            message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            path = None
        if where and not message.startswith(where):
            message = f"{where}: {message}"
        if declared_id is not None and case_id_problem(declared_id) is not None:
            declared_id = None  # not an id anything can match
        identity = invalid_identity(declared_id, origin, fallback)
        self.invalid.append(InvalidCase(identity, message, Path(path) if path else source, declared_id, origin))

    def take(self, case_id: str, error: SuiteError) -> None:
        """Move the valid cases with ``case_id`` to the invalid ones, failed with ``error``."""
        for case in [c for c in self.cases if c.id == case_id]:
            self.cases.remove(case)
            self.fail(error, origin=case.origin or case_id, source=case.source or Path(case_id),
                      fallback=case_id, declared_id=case_id)

    def known(self) -> set[str]:
        """Ids declared so far, by valid and invalid entries."""
        return {c.id for c in self.cases} | {c.case_id for c in self.invalid if c.case_id}


def suite_root(path: str | None, loader: str) -> Path:
    """The existing folder a ``loader:PATH`` suite spec names."""
    if not path:
        raise SuiteError(f"the {loader} suite needs a folder: {loader}:PATH")
    root = Path(str(path)).expanduser().resolve()
    if not root.is_dir():
        raise SuiteError("suite folder not found", path=root)
    return root


def guide_fit_option(value: Any) -> GuideFit:
    """The ``guide_fit`` loader option."""
    try:
        return GuideFit(value)
    except ValueError:
        choices = ", ".join(f.value for f in GuideFit)
        raise SuiteError(f"guide_fit must be one of {choices}, got {value!r}") from None


def prompts_file(root: Path, prompts: Any, defaults: tuple[str, ...]) -> Path | None:
    """The prompts/manifest file: ``prompts`` (as given, else relative to ``root``) or the first default present."""
    if prompts not in (None, ""):
        given = Path(str(prompts)).expanduser()
        if not given.is_absolute() and not given.exists():
            given = root / given
        if not given.is_file():
            raise SuiteError("prompts file not found", path=given)
        return given
    return next((root / name for name in defaults if (root / name).is_file()), None)


def resolve_in_root(root: Path, relative: str | Path, *, case_id: str | None = None, source: Path | None = None) -> Path:
    """``root / relative``, refusing paths that resolve outside ``root`` (``..``, absolute, symlinks)."""
    root = root.resolve()
    try:
        candidate = (root / relative).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise SuiteError(f"path {printable(str(relative))!r} cannot be resolved ({exc})", case_id=case_id, path=source) from None
    if not candidate.is_relative_to(root):
        raise SuiteError(
            f"path {printable(str(relative))!r} resolves to {printable(str(candidate))}, outside the suite root {root}; "
            "paths and symlinks must stay inside the suite folder",
            case_id=case_id,
            path=source,
        )
    return candidate


def read_text(path: Path) -> str:
    """Read a prompt or manifest file as UTF-8, or GBK/GB18030 as AniSora's published files are."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError(f"cannot read the file ({exc.strerror or exc})", path=path) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as utf8_error:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            line = raw[: utf8_error.start].count(b"\n") + 1
            raise SuiteError(f"text is neither UTF-8 nor GBK (undecodable bytes on line {line})", path=path) from None


def anisora_label(case_id: str) -> str | None:
    """The action stem of an AniSora clip id (``cartoon_films_da_dou_1`` → ``da_dou``), or None."""
    match = _ANISORA_ID.match(case_id)
    return match.group("label") if match else None


def label_meaning(label: str | None) -> str | None:
    """English meaning of an AniSora action stem, when known (``da_dou`` → ``fight``)."""
    if not label:
        return None
    return load_yaml("anisora_labels.yaml").get("labels", {}).get(label)


def parse_fit(value: Any, *, default: GuideFit, case_id: str | None, source: Path | None) -> GuideFit:
    """A guide's fit policy from a manifest: an anibench value or a phrase such as "3:2 centre crop"."""
    if value in (None, ""):
        return default
    text = str(value).lower()
    for fit in GuideFit:
        if text == fit.value:
            return fit
    if "crop" in text:
        return GuideFit.CENTER_CROP
    if "resize" in text or "squash" in text:
        return GuideFit.RESIZE
    raise SuiteError(f"unknown guide fit {value!r}; use exact, center-crop or resize", case_id=case_id, path=source)


def manifest_entries(path: Path) -> list[Entry]:
    """The records of a JSON or CSV manifest with their locations (see :mod:`anibench.suites.records`)."""
    return read_entries(path, read_text(path))


def read_table(path: Path) -> list[Any]:
    """The raw records of a JSON or CSV manifest (without locations)."""
    return [entry.record for entry in manifest_entries(path)]


def add_record(
    into: CaseCollector,
    entry: Entry,
    root: Path,
    source: Path,
    *,
    guide_fit: GuideFit,
    default_video: Path | None = None,
    default_image: Path | None = None,
) -> None:
    """Build the case of a manifest entry into ``into``; a failure becomes an invalid case of its own."""

    def build() -> Case:
        if entry.problem:
            raise SuiteError(entry.problem, path=source)
        return case_from_record(entry.record, root, source, guide_fit=guide_fit, default_video=default_video,
                                default_image=default_image, origin=entry.origin)

    into.add(build, origin=entry.origin, source=source, fallback=entry.fallback, where=entry.where,
             declared_id=entry.declared_id)


def case_from_record(
    record: Any,
    root: Path,
    source: Path,
    *,
    guide_fit: GuideFit,
    default_video: Path | None = None,
    default_image: Path | None = None,
    origin: str | None = None,
) -> Case:
    """A :class:`Case` from a manifest record, validated by :class:`~anibench.suites.records.CaseRecord`;
    every file path must stay inside ``root``.

    Fields: ``id`` (required), ``prompt``, ``label`` (parsed from an AniSora id when
    absent), ``style`` (2d/3d), ``video`` (ground truth), ``image`` (first-frame guide),
    ``guides`` (``[{"file", "position", "fit", "frame_index"}]``), ``mask`` and ``mask_semantics``
    (``motion``, the default: white marks where motion belongs; or ``keep``),
    ``reference_image``; other fields go to the case's metadata.
    """
    declared = record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else None
    fields, extra = validate_record(record, case_id=declared, source=source)
    case_id = fields.id

    def file(value: str | None, name: str) -> Path | None:
        if not value:
            return None
        try:
            return resolve_in_root(root, value, case_id=case_id, source=source)
        except SuiteError as exc:
            raise SuiteError(f"field '{name}': {exc.message}", case_id=case_id, path=source) from None

    guides: list[Guide] = []
    for number, spec in enumerate(fields.guides or []):
        name = f"guides[{number}]"
        try:
            fit = parse_fit(spec.fit, default=guide_fit, case_id=case_id, source=source)
        except SuiteError as exc:
            raise SuiteError(f"field '{name}.fit': {exc.message}", case_id=case_id, path=source) from None
        guides.append(Guide(spec.position, file(spec.image, f"{name}.file"), fit, spec.frame_index))
    image = file(fields.image, "image") or (None if guides else default_image)
    if image is not None and not guides:
        guides.append(Guide(0.0, image, guide_fit))
    metadata = dict(fields.metadata or {})
    metadata.update(extra)
    if fields.reference_image:
        metadata["reference_image"] = str(file(fields.reference_image, "reference_image"))
    try:
        return Case(
            case_id, fields.prompt or "", fields.label or anisora_label(case_id), fields.style, tuple(guides),
            file(fields.mask, "mask"), fields.mask_semantics or MaskSemantics.MOTION,
            file(fields.video, "video") or default_video, metadata, source, origin,
        )
    except SuiteError as exc:
        raise exc.with_context(case_id=case_id, path=source)
