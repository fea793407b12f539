"""The ``folder`` suite: any folder of clips, with an optional prompts file and guide images.

* Every video in the folder (``.mp4 .mkv .mov .webm .avi``) is a case whose id is the
  file stem (characters outside ``[A-Za-z0-9._-]`` become ``_``).
* Prompts: ``prompts`` option or ``prompts.json`` / ``prompts.csv`` in the folder; a JSON
  ``{name: prompt}`` (name = file name or stem) or a list of manifest records.
* A guide image next to the clip (``<stem>.png`` / ``.jpg``) or in ``images/`` becomes
  the first-frame guide; records may define ``guides`` at other positions.
* Guides must match the video's size unless ``guide_fit`` says otherwise.
"""

from __future__ import annotations

from pathlib import Path

from anibench.errors import SuiteError
from anibench.images import GuideFit
from anibench.suite import Suite
from anibench.suites.common import CaseCollector, case_from_record, prompts_file, read_table, safe_id, suite_root
from anibench.suites.prompt_files import IMAGE_SUFFIXES, VIDEO_SUFFIXES

VERSION = "1"


def load(path: str | None = None, *, prompts: str | None = None, guide_fit: str = "exact", name: str | None = None) -> Suite:
    root = suite_root(path, "folder")
    fit = GuideFit(guide_fit)
    videos = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
    by_id: dict[str, Path] = {}
    for video in videos:
        case_id = safe_id(video.stem)
        if case_id in by_id:
            raise SuiteError(f"{video.name} and {by_id[case_id].name} both map to case id {case_id!r}", path=video)
        by_id[case_id] = video

    table = prompts_file(root, prompts, ("prompts.json", "prompts.csv"))
    records = {}
    for record in read_table(table) if table else []:
        key = str(record.get("id") or record.get("video") or "")
        case_id = safe_id(Path(key).stem) if key else ""
        if case_id:
            records[case_id] = {**record, "id": case_id}
    collected = CaseCollector()
    source = table or root
    for case_id, video in by_id.items():
        record = records.pop(case_id, {"id": case_id})
        if video.stem != case_id:
            record = {**record, "metadata": {**(record.get("metadata") or {}), "file_name": video.name}}
        collected.add(
            case_id,
            lambda: case_from_record(record, root, source, guide_fit=fit, default_video=video,
                                     default_image=_guide_image(root, video)),
            source,
        )
    for case_id, record in records.items():  # records without a clip (guides only, for generation)
        collected.add(case_id, lambda: case_from_record(record, root, source, guide_fit=fit), source)
    if not collected.cases and not collected.invalid:
        raise SuiteError("no videos and no prompt records in the folder", path=root)
    options = {"prompts": str(table) if table else None, "guide_fit": fit.value}
    return Suite(name or root.name, VERSION, tuple(collected.cases), root, loader_options=options,
                 invalid=tuple(collected.invalid))


def _guide_image(root: Path, video: Path) -> Path | None:
    for folder in (video.parent, root / "images"):
        for suffix in sorted(IMAGE_SUFFIXES):
            candidate = folder / f"{video.stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None
