"""AniSora prompt files: one case per line, UTF-8 or GBK.

Formats (``../shared/reference/anisora.md`` §4.1):

* V1/V2: ``prompt@@image_path`` (one first-frame guide);
* V3/V3.1/V3.2: ``prompt@@img1,img2,...&&pos1,pos2,...`` (guides at positions in [0, 1]);
* anymask: ``prompt@@video.mp4`` with ``video_mask.mp4`` alongside (white = kept pixels).

Generation-time suffixes (``aesthetic score: 5.5. motion score: 4.0.`` and V2/V3's
``There is no text in the video.``) are stripped from the prompt and kept in the
case's metadata, since each generator adds its own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from anibench.errors import SuiteError
from anibench.images import GuideFit
from anibench.suite import Case, Guide, MaskSemantics, printable
from anibench.suites.common import CaseCollector, anisora_label, read_text, resolve_in_root

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # universal newlines, as Python's text files read them
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".webm", ".avi"}
_SUFFIX_PATTERNS = (
    re.compile(r"\s*aesthetic score:\s*[\d.]+\.?", re.IGNORECASE),
    re.compile(r"\s*motion score:\s*[\d.]+\.?", re.IGNORECASE),
    re.compile(r"\s*There is no text in the video\.?", re.IGNORECASE),
)


@dataclass
class PromptLine:
    """One parsed line: the clean prompt, what was stripped, and the referenced files."""

    number: int
    prompt: str
    suffix: str
    files: list[str]
    positions: list[float] | None = None
    raw: str = field(repr=False, default="")


def split_prompt_suffix(text: str) -> tuple[str, str]:
    """(prompt without generation-time suffixes, the suffixes removed)."""
    removed: list[str] = []
    for pattern in _SUFFIX_PATTERNS:
        removed += [m.group(0).strip() for m in pattern.finditer(text)]
        text = pattern.sub("", text)
    return text.strip(), " ".join(removed)


def parse_line(line: str, number: int, source: Path) -> PromptLine:
    """One prompt line; :class:`SuiteError` (naming ``source``) when it is malformed."""
    if "@@" not in line:
        raise SuiteError(f"expected 'prompt@@file' (AniSora prompt format), got {printable(line[:60])!r}", path=source)
    prompt_text, _, rest = line.rpartition("@@")
    prompt, suffix = split_prompt_suffix(prompt_text)
    positions = None
    if "&&" in rest:
        files_part, _, pos_part = rest.partition("&&")
        try:
            positions = [float(p) for p in pos_part.split(",") if p.strip()]
        except ValueError:
            raise SuiteError(f"positions after '&&' must be numbers: {printable(pos_part)!r}", path=source) from None
        files = [f.strip() for f in files_part.split(",") if f.strip()]
        if len(files) != len(positions):
            raise SuiteError(f"{len(files)} image(s) but {len(positions)} position(s) after '&&'", path=source)
    else:
        files = [rest.strip()] if rest.strip() else []
    if not files:
        raise SuiteError("no file after '@@'", path=source)
    return PromptLine(number, prompt, suffix, files, positions, line)


def case_id_for(line: PromptLine) -> str:
    """Id from the file names: the stem, or for several guides their common prefix (kept as written)."""
    stems = [Path(f.replace("\\", "/")).stem for f in line.files]
    if len(stems) == 1:
        return stems[0]
    prefix = os.path.commonprefix(stems).rstrip("_-. ")
    return prefix or f"line{line.number}"


def load_prompt_file(path: Path, root: Path, guide_fit: GuideFit, into: CaseCollector) -> None:
    """Add the cases of an AniSora prompt file to ``into``; files resolve next to it, else under ``root``.

    A malformed line becomes an invalid case of its own, ``<id>@<file>:<line>`` or
    ``line<N>@<file>`` when no id can be read from it.
    """
    name = printable(path.name)
    for number, text in enumerate(_LINE_BREAK.split(read_text(path)), start=1):
        if text.strip():
            into.add(
                lambda: _case_from_line(text.strip(), number, path, root, guide_fit),
                origin=f"{name}:{number}", source=path, fallback=f"line{number}@{name}", where=f"line {number}",
            )


def _case_from_line(text: str, number: int, path: Path, root: Path, guide_fit: GuideFit) -> Case:
    line = parse_line(text, number, path)
    case_id = case_id_for(line)
    try:
        return _case(line, case_id, path, root, guide_fit)
    except SuiteError as exc:
        raise exc.with_context(case_id=case_id, path=path)


def _case(line: PromptLine, case_id: str, path: Path, root: Path, guide_fit: GuideFit) -> Case:
    files = [_locate(f, path.parent, root, case_id, path) for f in line.files]
    metadata = {"prompt_suffix": line.suffix, "prompt_line": line.number} if line.suffix else {"prompt_line": line.number}
    label = anisora_label(case_id)
    if len(files) == 1 and files[0].suffix.lower() in VIDEO_SUFFIXES and line.positions is None:
        return Case(
            case_id, line.prompt, label, video=files[0], mask=_mask_beside(files[0], root, case_id, path),
            mask_semantics=MaskSemantics.KEEP, metadata=metadata, source=path,
        )
    positions = line.positions if line.positions is not None else [0.0]
    for f in files:
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            raise SuiteError(f"{printable(f.name)} is not an image ({', '.join(sorted(IMAGE_SUFFIXES))})",
                             case_id=case_id, path=path)
    guides = []
    for position, file in zip(positions, files):
        try:
            guides.append(Guide(position, file, guide_fit))
        except SuiteError as exc:
            raise SuiteError(f"{exc.message} ({printable(file.name)})", case_id=case_id, path=path) from None
    return Case(case_id, line.prompt, label, guides=tuple(guides), metadata=metadata, source=path)


def _mask_beside(video: Path, root: Path, case_id: str, source: Path) -> Path | None:
    """The anymask convention: ``<video>_mask.<ext>`` beside the video (it must stay inside the suite too)."""
    mask = video.with_name(f"{video.stem}_mask{video.suffix}")
    if not (mask.exists() or mask.is_symlink()):
        return None
    return resolve_in_root(root, mask, case_id=case_id, source=source)


def _locate(name: str, folder: Path, root: Path, case_id: str, source: Path) -> Path:
    """The file a prompt line names: next to the prompt file when that lies in the suite, else under root."""
    name = name.replace("\\", "/")
    if folder.resolve().is_relative_to(root.resolve()):
        beside = resolve_in_root(root, folder / name, case_id=case_id, source=source)
        if beside.exists():
            return beside
    return resolve_in_root(root, name, case_id=case_id, source=source)
