"""Manifest records: reading them with their location, and the typed schema every record must pass.

A manifest is a JSON list of records, ``{"cases": [...]}``, ``{id: prompt}``, or a CSV
with a header row and an ``id`` column. Each record is read as an :class:`Entry` that
knows where it was defined (``manifest.json#3``: record 3; ``prompts.csv:4``: line 4),
then validated by :class:`CaseRecord` (pydantic). Any error becomes a message naming the
field (``field 'guides[0].position': expected a number in [0, 1], got null``); the
loaders turn it into an invalid case of its own, and the other records load.

Typing rules:

* JSON values are taken as typed, never converted: a number where text is expected,
  text where a number is expected, ``true`` as a position, a list as a prompt are errors.
  ``null`` and ``""`` mean an absent optional field.
* CSV cells are text. An empty cell is an absent field. CSV carries the flat fields
  only (``id``, ``prompt``, ``label``, ``style``, ``video``, ``image``, ``reference_image``,
  ``mask``, ``mask_semantics``); a non-empty ``guides``, ``metadata`` or ``files`` cell is
  an error (use a JSON manifest); other columns go to the case's metadata as text.
* Unknown fields of a record go to its metadata; unknown fields of a guide (``width``,
  ``height``) are ignored. A JSON object repeating a key is an error (JSON parsers keep
  the last one silently).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterable

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictInt, StrictStr,
    ValidationError, model_validator,
)

from anibench.errors import SuiteError
from anibench.suite import STYLES, MaskSemantics, case_id_problem, printable

KNOWN_FIELDS = (
    "id", "prompt", "label", "style", "video", "image", "reference_image", "guides", "mask",
    "mask_semantics", "metadata", "kind", "files",
)
STRUCTURED_FIELDS = ("guides", "metadata", "files")


def _blank_is_absent(value: Any) -> Any:
    return None if value == "" else value


def _check_case_id(value: str) -> str:
    problem = case_id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_position(value: float) -> float:
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"must be in [0, 1], got {value}")
    return float(value)


def _check_path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a file path cannot contain a NUL character")
    return value


def _check_style(value: str) -> str:
    if value.lower() not in STYLES:
        raise ValueError(f"must be one of {', '.join(STYLES)} (any case), got {value!r}")
    return value.lower()


def _check_semantics(value: str) -> MaskSemantics:
    try:
        return MaskSemantics(value)
    except ValueError:
        raise ValueError(f"must be 'motion' or 'keep', got {value!r}") from None


Text = Annotated[StrictStr | None, BeforeValidator(_blank_is_absent)]
FilePath = Annotated[StrictStr | None, BeforeValidator(_blank_is_absent), AfterValidator(lambda v: v and _check_path(v))]
Position = Annotated[StrictFloat, AfterValidator(_check_position)]


class GuideRecord(BaseModel):
    """``{"file", "position", "fit", "frame_index"}`` (``path`` is accepted for ``file``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    file: FilePath = None
    path: FilePath = None
    position: Position
    fit: Text = None
    frame_index: Annotated[StrictInt, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _one_file(self) -> "GuideRecord":
        if not (self.file or self.path):
            raise ValueError("a guide needs 'file' (the image) and 'position'")
        if self.file and self.path and self.file != self.path:
            raise ValueError("a guide takes 'file' or 'path', not both")
        return self

    @property
    def image(self) -> str:
        return self.file or self.path or ""


class CaseRecord(BaseModel):
    """The known fields of a manifest record (see :func:`anibench.suites.common.case_from_record`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[StrictStr, AfterValidator(_check_case_id)]
    prompt: Text = None
    label: Text = None
    style: Annotated[StrictStr | None, BeforeValidator(_blank_is_absent), AfterValidator(lambda v: v and _check_style(v))] = None
    video: FilePath = None
    image: FilePath = None
    reference_image: FilePath = None
    guides: list[GuideRecord] | None = None
    mask: FilePath = None
    mask_semantics: Annotated[StrictStr | None, BeforeValidator(_blank_is_absent),
                              AfterValidator(lambda v: v and _check_semantics(v))] = None
    metadata: dict[str, Any] | None = None
    kind: Text = None
    files: list[StrictStr] | None = None

    @model_validator(mode="after")
    def _distinct_positions(self) -> "CaseRecord":
        positions = [g.position for g in self.guides or []]
        repeated = sorted({p for p in positions if positions.count(p) > 1})
        if repeated:
            raise ValueError(f"field 'guides': two guides at position {repeated[0]:g}; give each position once")
        return self


def validate_record(record: Any, *, case_id: str | None, source: Path) -> tuple[CaseRecord, dict[str, Any]]:
    """(the typed known fields, the other fields) of ``record``; :class:`SuiteError` naming every bad field."""
    if not isinstance(record, dict):
        raise SuiteError(f"a record must be an object with an 'id', got {_show(record)}", path=source)
    duplicates = getattr(record, "duplicates", ())
    if duplicates:
        names = ", ".join(repr(k) for k in duplicates)
        raise SuiteError(f"the record repeats the key(s) {names}; give each field once", case_id=case_id, path=source)
    known = {k: v for k, v in record.items() if k in KNOWN_FIELDS}
    extra = {k: v for k, v in record.items() if k not in KNOWN_FIELDS}
    try:
        return CaseRecord.model_validate(known), extra
    except ValidationError as exc:
        raise SuiteError(describe_errors(exc), case_id=case_id, path=source) from None


_EXPECTED = {
    "string_type": "expected text",
    "float_type": "expected a number",
    "int_type": "expected a whole number",
    "list_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object such as {\"file\": ..., \"position\": ...}",
    "missing": "is required",
}


def describe_errors(exc: ValidationError) -> str:
    """One clause per error: ``field 'guides[0].position': expected a number, got null``."""
    clauses = []
    for error in exc.errors(include_url=False):
        field = _location(error["loc"])
        kind = error["type"]
        if kind == "value_error":
            what = str(error.get("ctx", {}).get("error", error["msg"]))
        elif kind == "greater_than_equal":
            what = f"must be >= {error['ctx']['ge']}"
        else:
            what = _EXPECTED.get(kind, error["msg"][:1].lower() + error["msg"][1:])
        got = "" if kind == "missing" or kind == "value_error" else f", got {_show(error['input'])}"
        clauses.append(f"field '{field}': {what}{got}" if field else f"{what}{got}")
    return "; ".join(clauses)


def _location(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any, limit: int = 60) -> str:
    """A value as JSON (null, true, [0]) for messages, shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- reading ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """A raw record and where it was defined.

    ``origin`` (``manifest.json#3``, ``prompts.csv:4``) goes into invalid identities,
    ``where`` (``record 3``, ``line 4``) into messages; ``problem`` is an error found
    while reading (a CSV row with too many cells, a structured CSV cell).
    """

    record: Any
    origin: str
    where: str
    fallback: str
    problem: str | None = None

    @property
    def declared_id(self) -> str | None:
        value = self.record.get("id") if isinstance(self.record, dict) else None
        return value if isinstance(value, str) and value else None


class _Object(dict):
    """A JSON object that remembers repeated keys and the order of its pairs."""

    duplicates: tuple[str, ...] = ()
    pairs: tuple[tuple[str, Any], ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    obj.pairs = tuple(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicates = tuple(sorted({k for k, _ in pairs if k in seen or seen.add(k)}))
    return obj


def read_entries(path: Path, text: str) -> list[Entry]:
    """The records of a JSON or CSV manifest (``text`` is its decoded content), with locations.

    Raises :class:`SuiteError` only for what no record can be blamed for: invalid JSON, a
    top level that is not a manifest, a CSV header without ``id`` or with a repeated column.
    """
    name = printable(path.name)
    if path.suffix.lower() == ".csv":
        return _csv_entries(path, name, text)
    try:
        data = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise SuiteError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", path=path) from None
    except RecursionError:
        raise SuiteError("JSON nested too deeply", path=path) from None
    if isinstance(data, dict) and "cases" in data:
        data = data["cases"]
        if not isinstance(data, list):
            raise SuiteError(f"'cases' must be a list of records, got {_show(data)}", path=path)
    elif isinstance(data, dict):  # {id: prompt}: repeated ids are kept, to be refused one by one
        data = [{"id": key, "prompt": value} for key, value in data.pairs]
    if not isinstance(data, list):
        raise SuiteError("manifest must be a list of cases, {'cases': [...]} or {id: prompt}", path=path)
    return [
        Entry(record, f"{name}#{number}", f"record {number}", f"record{number}@{name}")
        for number, record in enumerate(data, start=1)
    ]


def _csv_entries(path: Path, name: str, text: str) -> list[Entry]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        if "id" not in header:
            raise SuiteError("CSV manifest needs an 'id' column in its header", path=path)
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise SuiteError(f"CSV header repeats column(s) {repeated}", path=path)
        entries = []
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            record = {k: v for k, v in zip(header, row) if v != ""}
            entries.append(Entry(record, f"{name}:{line}", f"line {line}", f"line{line}@{name}", _csv_problem(header, row)))
        return entries
    except csv.Error as exc:
        raise SuiteError(f"invalid CSV at line {reader.line_num}: {exc}", path=path) from None


def _csv_problem(header: list[str], row: list[str]) -> str | None:
    if len(row) != len(header):
        return f"the row has {len(row)} cells and the header {len(header)} columns"
    structured = [c for c, v in zip(header, row) if c in STRUCTURED_FIELDS and v != ""]
    if structured:
        return (f"field '{structured[0]}': a CSV manifest carries flat text fields only; "
                "give guides, metadata and files in a JSON manifest")
    return None
