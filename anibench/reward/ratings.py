"""Human ratings files for training and evaluating reward heads.

A ratings file is CSV (header row) or JSONL (one JSON object per line; a ``.json`` file holding a
list of objects is read too). Each row rates one video:

* ``video`` — the clip, relative to the ratings file's folder or absolute (required);
* ``prompt`` — its prompt (required, non-blank);
* ``guide_image`` — the image it was generated from (optional; relative like ``video``);
* ``rater`` — who rated (optional; text or integer id);
* one or more of the six AnimeReward dimensions :data:`DIMENSIONS`, each a number in [1, 5]
  (an empty CSV cell or JSON ``null`` = not rated on that dimension).

A rating ``r`` becomes the training target ``(r − 1) / 4`` in [0, 1] (:func:`to_unit`), the range
every AnimeReward head reports. Several raters of one video: the mean of their ratings is the
target, and each rater's value is kept for inter-rater agreement.

Bad rows never stop a run: each is reported (:class:`RowProblem`: row number, ``line N`` /
``record N``, the reason) and the others are used. A row is refused when a field is invalid
(pydantic schema, messages as for suite manifests: ``field 'visual_motion': must be a rating
in [1, 5], got 7``), when its prompt is blank, when it rates no dimension, when its video or
guide image file is missing, when it repeats an earlier row's (video, rater) — rows without a
rater count as one anonymous rater —, or when it gives the same video another prompt or guide
image than an earlier row. Videos that cannot be decoded are found when features are computed
and their rows are reported the same way (:meth:`RatingsFile.reject_video`). Unknown columns are
listed once (``ignored_columns``), so a misspelt dimension does not pass unnoticed.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterator

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from anibench.errors import InputError
from anibench.suites.records import describe_errors

DIMENSIONS = ("visual_smoothness", "visual_motion", "visual_appeal", "text_video_consistency",
              "image_video_consistency", "character_consistency")
RATING_MIN, RATING_MAX = 1.0, 5.0
KNOWN_COLUMNS = ("video", "prompt", "guide_image", "rater", *DIMENSIONS)


def to_unit(rating: float) -> float:
    """A 1–5 rating as a target in [0, 1]: ``(r − 1) / 4``."""
    return (float(rating) - RATING_MIN) / (RATING_MAX - RATING_MIN)


def from_unit(value: float) -> float:
    """The inverse of :func:`to_unit`."""
    return RATING_MIN + float(value) * (RATING_MAX - RATING_MIN)


def _blank_is_absent(value: Any) -> Any:
    return None if value == "" else value


def _rating(value: Any) -> float | None:
    value = _blank_is_absent(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"must be a rating in [1, 5], got {json.dumps(value) if not isinstance(value, bool) else value}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a rating in [1, 5], got {value!r}") from None
    if not math.isfinite(number) or not RATING_MIN <= number <= RATING_MAX:
        raise ValueError(f"must be a rating in [1, 5], got {value}")
    return number


def _text(value: Any) -> str | None:
    value = _blank_is_absent(value)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {json.dumps(value)}")
    if "\x00" in value:
        raise ValueError("cannot contain a NUL character")
    return value


def _rater(value: Any) -> str | None:
    value = _blank_is_absent(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


Rating = Annotated[float | None, BeforeValidator(_rating)]
Text = Annotated[str | None, BeforeValidator(_text)]


class RatingRecord(BaseModel):
    """One row's schema (see the module docstring)."""

    model_config = ConfigDict(extra="ignore")

    video: Text = None
    prompt: Text = None
    guide_image: Text = None
    rater: Annotated[str | None, BeforeValidator(_rater)] = None
    visual_smoothness: Rating = None
    visual_motion: Rating = None
    visual_appeal: Rating = None
    text_video_consistency: Rating = None
    image_video_consistency: Rating = None
    character_consistency: Rating = None


@dataclass(frozen=True)
class RowProblem:
    """A row that was not used: its number (file line, or record number of a JSON list), where, why."""

    row: int
    where: str
    reason: str
    video: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "where": self.where, "reason": self.reason, "video": self.video}

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class RatingRow:
    """A usable row: resolved files, prompt, rater (None = anonymous), ratings (1–5) by dimension."""

    row: int
    where: str
    video: Path
    prompt: str
    guide_image: Path | None
    rater: str | None
    ratings: dict[str, float]


@dataclass
class RatedVideo:
    """One video with every usable row rating it.

    ``ratings[dim][rater]`` are the raw 1–5 values (rater None = anonymous); :meth:`target` is the
    mean over raters mapped to [0, 1].
    """

    key: str
    video: Path
    prompt: str
    guide_image: Path | None
    rows: list[int] = field(default_factory=list)
    ratings: dict[str, dict[str | None, float]] = field(default_factory=dict)
    sha256: str | None = None

    def mean_rating(self, dimension: str) -> float | None:
        values = self.ratings.get(dimension)
        return float(sum(values.values()) / len(values)) if values else None

    def target(self, dimension: str) -> float | None:
        mean = self.mean_rating(dimension)
        return None if mean is None else to_unit(mean)


@dataclass
class RatingsFile:
    """A parsed ratings file: usable rows, the problems of the others, columns that were ignored."""

    path: Path
    rows: list[RatingRow]
    problems: list[RowProblem]
    ignored_columns: tuple[str, ...] = ()

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The dimensions rated in at least one usable row, in :data:`DIMENSIONS` order."""
        rated = {d for row in self.rows for d in row.ratings}
        return tuple(d for d in DIMENSIONS if d in rated)

    @property
    def has_raters(self) -> bool:
        return any(row.rater is not None for row in self.rows)

    def videos(self) -> list[RatedVideo]:
        """The usable rows grouped by video (in order of first appearance)."""
        grouped: dict[str, RatedVideo] = {}
        for row in self.rows:
            key = str(row.video)
            video = grouped.setdefault(key, RatedVideo(key, row.video, row.prompt, row.guide_image))
            video.rows.append(row.row)
            for dimension, value in row.ratings.items():
                video.ratings.setdefault(dimension, {})[row.rater] = value
        return list(grouped.values())

    def reject_video(self, video: Path, reason: str) -> list[RowProblem]:
        """Move every row of ``video`` to the problems with ``reason`` (an undecodable clip, say)."""
        moved = [r for r in self.rows if r.video == video]
        self.rows = [r for r in self.rows if r.video != video]
        problems = [RowProblem(r.row, r.where, reason, str(r.video)) for r in moved]
        self.problems = sorted(self.problems + problems, key=lambda p: p.row)
        return problems


def _entries(path: Path, text: str) -> Iterator[tuple[int, str, Any, str | None]]:
    """(row number, where, raw record, problem found while reading) for every data row."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            if "video" not in header:
                raise InputError("a ratings CSV needs a 'video' column in its header", path=path)
            repeated = sorted({c for c in header if header.count(c) > 1})
            if repeated:
                raise InputError(f"ratings CSV header repeats column(s) {repeated}", path=path)
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                line = reader.line_num
                problem = None if len(cells) == len(header) else \
                    f"the row has {len(cells)} cells and the header {len(header)} columns"
                yield line, f"line {line}", dict(zip(header, cells)), problem
        except csv.Error as exc:
            raise InputError(f"invalid CSV at line {reader.line_num}: {exc}", path=path) from None
        return
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", path=path) from None
        if not isinstance(data, list):
            raise InputError("a .json ratings file must hold a list of rows (or use JSONL: one object per line)",
                             path=path)
        for number, record in enumerate(data, start=1):
            yield number, f"record {number}", record, None
        return
    if suffix not in (".jsonl", ".ndjson"):
        raise InputError(f"ratings files are .csv, .jsonl (or .ndjson) or .json; got {path.suffix or 'no suffix'!r}",
                         path=path)
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as exc:
            yield line, f"line {line}", None, f"invalid JSON (column {exc.colno}: {exc.msg})"
            continue
        yield line, f"line {line}", record, None


def _resolve(folder: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def read_ratings(path: str | Path) -> RatingsFile:
    """Parse and check a ratings file; raises :class:`InputError` only when no row can be blamed
    (the file is missing, unreadable, of another format, or its CSV header lacks ``video``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError("ratings file not found", path=path)
    if path.suffix.lower() not in (".csv", ".json", ".jsonl", ".ndjson"):
        raise InputError(f"ratings files are .csv, .jsonl (or .ndjson) or .json; got {path.suffix or 'no suffix'!r}",
                         path=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the ratings file as UTF-8 text: {exc}", path=path) from None
    folder = path.resolve().parent
    rows: list[RatingRow] = []
    problems: list[RowProblem] = []
    ignored: dict[str, None] = {}
    seen: dict[tuple[str, str | None], int] = {}
    first: dict[str, RatingRow] = {}
    for number, where, raw, problem in _entries(path, text):
        video_text = raw.get("video") if isinstance(raw, dict) else None
        video_text = video_text if isinstance(video_text, str) else None

        def refuse(reason: str) -> None:
            problems.append(RowProblem(number, where, reason, video_text))

        if problem:
            refuse(problem)
            continue
        if not isinstance(raw, dict):
            refuse(f"expected an object with video, prompt and ratings, got {type(raw).__name__}")
            continue
        for column in raw:
            if column not in KNOWN_COLUMNS:
                ignored.setdefault(str(column), None)
        try:
            record = RatingRecord.model_validate(raw)
        except ValidationError as exc:
            refuse(describe_errors(exc))
            continue
        if not record.video:
            refuse("field 'video': is required")
            continue
        if not record.prompt or not record.prompt.strip():
            refuse("field 'prompt': is required (a non-blank prompt)")
            continue
        ratings = {d: getattr(record, d) for d in DIMENSIONS if getattr(record, d) is not None}
        if not ratings:
            refuse(f"rates no dimension (give one or more of {', '.join(DIMENSIONS)})")
            continue
        video = _resolve(folder, record.video)
        if not video.is_file():
            refuse(f"video file not found: {video}")
            continue
        guide = _resolve(folder, record.guide_image) if record.guide_image else None
        if guide is not None and not guide.is_file():
            refuse(f"guide image not found: {guide}")
            continue
        key = (str(video), record.rater)
        if key in seen:
            who = f"rater {record.rater!r}" if record.rater is not None else "no rater id"
            refuse(f"duplicate of row {seen[key]} (same video and {who}); give rater ids to rate a video several times")
            continue
        earlier = first.get(str(video))
        if earlier is not None and earlier.prompt != record.prompt:
            refuse(f"the same video has another prompt in row {earlier.row}")
            continue
        if earlier is not None and earlier.guide_image != guide:
            refuse(f"the same video has another guide image in row {earlier.row}")
            continue
        row = RatingRow(number, where, video, record.prompt, guide, record.rater, ratings)
        seen[key] = number
        first.setdefault(str(video), row)
        rows.append(row)
    return RatingsFile(path, rows, problems, tuple(ignored))
