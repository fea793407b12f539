"""The ``folder`` suite: any folder of clips, with an optional prompts file and guide images.

* Every video in the folder (``.mp4 .mkv .mov .webm .avi``) is a case whose id is the
  file stem as it is (``a cat (1).mp4`` is case ``a cat (1)``; its files are stored
  under :attr:`anibench.suite.Case.key`).
* Prompts: ``prompts`` option or ``prompts.json`` / ``prompts.csv`` in the folder; a JSON
  ``{name: prompt}`` (name = file name or stem) or a list of manifest records.
* A guide image next to the clip (``<stem>.png`` / ``.jpg``) or in ``images/`` becomes
  the first-frame guide; records may define ``guides`` at other positions.
* Guides must match the video's size unless ``guide_fit`` says otherwise.

Refused case by case: a clip or guide symlinked from outside the folder, a clip that is
not a regular file, two clips with one stem (``a.mp4`` and ``a.mkv``: each is refused,
naming the other), two guide images for one clip, and any malformed record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anibench.errors import SuiteError
from anibench.images import GuideFit
from anibench.suite import Case, Suite, case_id_problem, printable
from anibench.suites.common import (
    CaseCollector, add_record, case_from_record, guide_fit_option, manifest_entries, prompts_file, resolve_in_root,
    suite_root,
)
from anibench.suites.prompt_files import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from anibench.suites.records import Entry

VERSION = "1"


def load(path: str | None = None, *, prompts: str | None = None, guide_fit: str = "exact", name: str | None = None) -> Suite:
    root = suite_root(path, "folder")
    fit = guide_fit_option(guide_fit)
    clips = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
    table = prompts_file(root, prompts, ("prompts.json", "prompts.csv"))
    records: dict[str, list[Entry]] = {}
    unmatched: list[Entry] = []
    for entry in manifest_entries(table) if table else []:
        key = _record_case_id(entry.record)
        (records.setdefault(key, []) if key else unmatched).append(entry)

    collected = CaseCollector()
    source = table or root
    for clip in clips:
        for entry in records.pop(clip.stem, None) or [None]:
            _add_clip(collected, clip, entry, root, source, fit)
    for entry in [*(e for group in records.values() for e in group), *unmatched]:  # records without a clip
        add_record(collected, entry, root, source, guide_fit=fit)
    if not collected.cases and not collected.invalid:
        raise SuiteError("no videos and no prompt records in the folder", path=root)
    options = {"prompts": str(table) if table else None, "guide_fit": fit.value}
    return Suite(str(name) if name else root.name, VERSION, tuple(collected.cases), root, loader_options=options,
                 invalid=tuple(collected.invalid))


def _record_case_id(record: Any) -> str | None:
    """The clip stem a record names (``id`` or ``video``: a file name or a stem), or None."""
    if not isinstance(record, dict):
        return None
    value = record.get("id") if record.get("id") not in (None, "") else record.get("video")
    if not isinstance(value, str) or not value:
        return None
    path = Path(value)
    return path.stem if path.suffix.lower() in VIDEO_SUFFIXES else value


def _add_clip(collected: CaseCollector, clip: Path, entry: Entry | None, root: Path, source: Path, fit: GuideFit) -> None:
    """The case of ``clip``, described by ``entry`` (a record) when the prompts file has one."""
    origin = entry.origin if entry else printable(clip.name)

    def build() -> Case:
        if entry is not None and entry.problem:
            raise SuiteError(entry.problem, path=source)
        video, image = _clip_files(clip, root)
        record = {**entry.record, "id": clip.stem} if entry else {"id": clip.stem}
        return case_from_record(record, root, source if entry else clip, guide_fit=fit, default_video=video,
                                default_image=image, origin=origin)

    collected.add(build, origin=origin, source=source if entry else clip,
                  fallback=entry.fallback if entry else f"file@{printable(clip.name)}",
                  where=entry.where if entry else "", declared_id=clip.stem)


def _clip_files(clip: Path, root: Path) -> tuple[Path, Path | None]:
    """(the clip, its guide image or None), checked: a usable id, files inside ``root``, a regular clip file."""
    problem = case_id_problem(clip.stem)
    if problem:
        raise SuiteError(f"the file name '{printable(clip.name)}' gives no usable case id: {problem}; rename the file")
    resolve_in_root(root, clip.relative_to(root), case_id=clip.stem)
    if not clip.is_file():
        raise SuiteError(f"{printable(clip.name)} is not a regular file", case_id=clip.stem)
    images = [
        folder / f"{clip.stem}{suffix}"
        for folder in (clip.parent, root / "images") for suffix in sorted(IMAGE_SUFFIXES)
        if (folder / f"{clip.stem}{suffix}").is_file() or (folder / f"{clip.stem}{suffix}").is_symlink()
    ]
    if len(images) > 1:
        names = " and ".join(printable(i.relative_to(root).as_posix()) for i in images)
        raise SuiteError(f"two guide images for {printable(clip.name)}: {names}; keep one", case_id=clip.stem)
    if images:
        resolve_in_root(root, images[0].relative_to(root), case_id=clip.stem)
    return clip, (images[0] if images else None)
