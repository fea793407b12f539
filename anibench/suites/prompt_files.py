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
from anibench.suite import Case, Guide, MaskSemantics
from anibench.suites.common import CaseCollector, anisora_label, read_text, resolve_in_root

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
    if "@@" not in line:
        raise SuiteError(f"line {number}: expected 'prompt@@file' (AniSora prompt format), got {line[:60]!r}", path=source)
    prompt_text, _, rest = line.rpartition("@@")
    prompt, suffix = split_prompt_suffix(prompt_text)
    positions = None
    if "&&" in rest:
        files_part, _, pos_part = rest.partition("&&")
        try:
            positions = [float(p) for p in pos_part.split(",") if p.strip()]
        except ValueError:
            raise SuiteError(f"line {number}: positions after '&&' must be numbers: {pos_part!r}", path=source) from None
        files = [f.strip() for f in files_part.split(",") if f.strip()]
        if len(files) != len(positions):
            raise SuiteError(
                f"line {number}: {len(files)} image(s) but {len(positions)} position(s) after '&&'", path=source
            )
    else:
        files = [rest.strip()] if rest.strip() else []
    if not files:
        raise SuiteError(f"line {number}: no file after '@@'", path=source)
    return PromptLine(number, prompt, suffix, files, positions, line)


def case_id_for(line: PromptLine) -> str:
    """Id from the file names: the stem, or for several guides their common prefix."""
    stems = [Path(f.replace("\\", "/")).stem for f in line.files]
    if len(stems) == 1:
        return stems[0]
    prefix = os.path.commonprefix(stems).rstrip("_-.")
    return prefix or f"line{line.number}"


def load_prompt_file(path: Path, root: Path, guide_fit: GuideFit, into: CaseCollector) -> None:
    """Add the cases of an AniSora prompt file to ``into``; files resolve next to it, else under ``root``."""
    for number, text in enumerate(read_text(path).splitlines(), start=1):
        if text.strip():
            into.add(f"line{number}", lambda: _case_from_line(text.strip(), number, path, root, guide_fit), path)


def _case_from_line(text: str, number: int, path: Path, root: Path, guide_fit: GuideFit) -> Case:
    line = parse_line(text, number, path)
    case_id = case_id_for(line)
    try:
        files = [_locate(f, path.parent, root, case_id, path) for f in line.files]
    except SuiteError as exc:
        raise SuiteError(f"line {number}: {exc.message}", case_id=case_id, path=path) from None
    metadata = {"prompt_suffix": line.suffix, "prompt_line": number} if line.suffix else {"prompt_line": number}
    label = anisora_label(case_id)
    if len(files) == 1 and files[0].suffix.lower() in VIDEO_SUFFIXES:
        mask = files[0].with_name(f"{files[0].stem}_mask{files[0].suffix}")
        return Case(
            case_id, line.prompt, label, video=files[0], mask=mask if mask.exists() else None,
            mask_semantics=MaskSemantics.KEEP, metadata=metadata, source=path,
        )
    positions = line.positions if line.positions is not None else [0.0]
    for f in files:
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            raise SuiteError(f"line {number}: {f.name} is not an image", case_id=case_id, path=path)
    try:
        guides = tuple(Guide(p, f, guide_fit) for p, f in zip(positions, files))
    except SuiteError as exc:
        raise SuiteError(f"line {number}: {exc.message}", case_id=case_id, path=path) from None
    return Case(case_id, line.prompt, label, guides=guides, metadata=metadata, source=path)


def _locate(name: str, folder: Path, root: Path, case_id: str, source: Path) -> Path:
    """The file a prompt line names: next to the prompt file when that lies in the suite, else under root."""
    name = name.replace("\\", "/")
    if folder.resolve().is_relative_to(root.resolve()):
        beside = resolve_in_root(root, folder / name, case_id=case_id, source=source)
        if beside.exists():
            return beside
    return resolve_in_root(root, name, case_id=case_id, source=source)
