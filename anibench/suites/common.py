"""Helpers shared by suite loaders: safe paths, text decoding, manifests, labels."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Callable

from anibench.errors import SuiteError
from anibench.images import GuideFit
from anibench.suite import Case, Guide, InvalidCase, MaskSemantics
from anibench.resources import load_yaml

# AniSora-Benchmark clip ids: <source>_<action pinyin>_<index>[_<suffix>], e.g. cartoon_films_da_dou_1.
_ANISORA_ID = re.compile(r"^(cartoon_films|motion_comics)_(?P<label>[a-z]+(?:_[a-z]+)*?)_\d+(?:_.*)?$")


_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(stem: str) -> str:
    """A case id from a file stem: characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    return _UNSAFE_ID_CHARS.sub("_", stem).strip("._-") or "clip"


class CaseCollector:
    """Builds cases one by one; a case that fails to build is kept as an :class:`InvalidCase`."""

    def __init__(self) -> None:
        self.cases: list[Case] = []
        self.invalid: list[InvalidCase] = []

    def add(self, fallback_id: str, build: Callable[[], Case], source: Path | None = None) -> None:
        try:
            self.cases.append(build())
        except SuiteError as exc:
            self.invalid.append(InvalidCase(safe_id(exc.case_id or fallback_id), exc.message, exc.path or source))

    def known(self) -> set[str]:
        return {c.id for c in self.cases} | {c.id for c in self.invalid}


def suite_root(path: str | None, loader: str) -> Path:
    """The existing folder a ``loader:PATH`` suite spec names."""
    if not path:
        raise SuiteError(f"the {loader} suite needs a folder: {loader}:PATH")
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise SuiteError("suite folder not found", path=root)
    return root


def prompts_file(root: Path, prompts: str | None, defaults: tuple[str, ...]) -> Path | None:
    """The prompts/manifest file: ``prompts`` (as given, else relative to ``root``) or the first default present."""
    if prompts:
        given = Path(prompts).expanduser()
        if not given.is_absolute() and not given.exists():
            given = root / prompts
        if not given.is_file():
            raise SuiteError("prompts file not found", path=given)
        return given
    return next((root / name for name in defaults if (root / name).is_file()), None)


def resolve_in_root(root: Path, relative: str | Path, *, case_id: str | None = None, source: Path | None = None) -> Path:
    """``root / relative``, refusing paths that resolve outside ``root`` (``..``, absolute, symlinks)."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise SuiteError(
            f"path {str(relative)!r} resolves to {candidate}, outside the suite root {root}; "
            "manifest paths must stay inside the suite folder",
            case_id=case_id,
            path=source,
        )
    return candidate


def read_text(path: Path) -> str:
    """Read a prompt or manifest file as UTF-8, or GBK/GB18030 as AniSora's published files are."""
    raw = path.read_bytes()
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


def read_table(path: Path) -> list[dict[str, Any]]:
    """Records from a JSON manifest (list, ``{"cases": [...]}`` or ``{id: prompt}``) or a CSV with a header."""
    text = read_text(path)
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and "id" not in rows[0]:
            raise SuiteError("CSV manifest needs an 'id' column", path=path)
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SuiteError(f"invalid JSON ({exc})", path=path) from exc
    if isinstance(data, dict) and "cases" in data:
        data = data["cases"]
    if isinstance(data, dict):
        return [{"id": key, "prompt": value} for key, value in data.items()]
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return data
    raise SuiteError("manifest must be a list of cases, {'cases': [...]} or {id: prompt}", path=path)


_RECORD_FIELDS = {
    "id", "prompt", "label", "style", "video", "image", "reference_image", "guides", "mask",
    "mask_semantics", "metadata", "kind", "files",
}


def case_from_record(
    record: dict[str, Any],
    root: Path,
    source: Path,
    *,
    guide_fit: GuideFit,
    default_video: Path | None = None,
    default_image: Path | None = None,
) -> Case:
    """A :class:`Case` from a manifest record; every file path must stay inside ``root``.

    Fields: ``id`` (required), ``prompt``, ``label`` (parsed from an AniSora id when
    absent), ``style`` (2d/3d), ``video`` (ground truth), ``image`` (first-frame guide),
    ``guides`` (``[{"file", "position", "fit", "frame_index"}]``), ``mask`` and ``mask_semantics``
    (``motion``, the default: white marks where motion belongs; or ``keep``),
    ``reference_image``; other fields go to the case's metadata.
    """
    case_id = str(record.get("id") or "").strip()
    if not case_id:
        raise SuiteError("manifest record without an 'id'", path=source)

    def file(key: str, value: Any = None) -> Path | None:
        value = record.get(key) if value is None else value
        return resolve_in_root(root, str(value), case_id=case_id, source=source) if value else None

    video = file("video") or default_video
    guides: list[Guide] = []
    for spec in record.get("guides") or []:
        if not isinstance(spec, dict) or "position" not in spec or not (spec.get("file") or spec.get("path")):
            raise SuiteError("each guide needs 'file' and 'position'", case_id=case_id, path=source)
        fit = parse_fit(spec.get("fit"), default=guide_fit, case_id=case_id, source=source)
        index = spec.get("frame_index")
        try:
            guides.append(
                Guide(float(spec["position"]), file("guides", spec.get("file") or spec["path"]), fit,
                      int(index) if index is not None else None)
            )
        except (SuiteError, ValueError) as exc:
            raise SuiteError(f"bad guide: {exc}", case_id=case_id, path=source) from None
    image = file("image") or (None if guides else default_image)
    if image is not None and not guides:
        guides.append(Guide(0.0, image, guide_fit))
    mask = file("mask")
    semantics = record.get("mask_semantics") or MaskSemantics.MOTION
    try:
        semantics = MaskSemantics(semantics)
    except ValueError:
        raise SuiteError(f"mask_semantics must be 'motion' or 'keep', got {semantics!r}", case_id=case_id, path=source) from None
    metadata = dict(record.get("metadata") or {})
    metadata.update({k: v for k, v in record.items() if k not in _RECORD_FIELDS})
    if record.get("reference_image"):
        metadata["reference_image"] = str(file("reference_image"))
    label = record.get("label") or anisora_label(case_id)
    style = (str(record["style"]).lower() or None) if record.get("style") else None
    return Case(
        case_id, str(record.get("prompt") or ""), label, style, tuple(guides), mask, semantics, video,
        metadata, source,
    )
