"""The ``anisora`` suite: the official AniSora-Benchmark layout.

Layout (implied by ``bilibili/Index-anisora``'s reward code)::

    ROOT/image/<id>.png     first-frame guide (about 1920x1080 in the published samples)
    ROOT/video/<id>.mp4     ground-truth clip

Prompts come from, in order: the ``prompts`` option (a JSON or CSV manifest, or an
AniSora prompt file with ``prompt@@image`` / ``prompt@@img1,img2&&pos1,pos2`` lines in
UTF-8 or GBK), else ``ROOT/manifest.json`` when present. Manifest records may also name
their own files (see :func:`anibench.suites.common.case_from_record`). Action labels are
parsed from ids such as ``cartoon_films_da_dou_1`` when not given.

Guides are fitted to the video with ``guide_fit`` (default ``center-crop``: AniSora
centre-crops and resizes its conditioning images to the output size).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from anibench.errors import SuiteError
from anibench.images import GuideFit
from anibench.suite import Case, Suite
from anibench.suites.common import CaseCollector, case_from_record, prompts_file, read_table, suite_root
from anibench.suites.prompt_files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, load_prompt_file

VERSION = "1"


def load(path: str | None = None, *, prompts: str | None = None, guide_fit: str = "center-crop", name: str = "anisora") -> Suite:
    root = suite_root(path, "anisora")
    fit = GuideFit(guide_fit)
    layout = _scan_layout(root)

    manifest = prompts_file(root, prompts, ("manifest.json",))
    collected = CaseCollector()
    if manifest is not None and manifest.suffix.lower() == ".txt":
        load_prompt_file(manifest, root, fit, collected)
        collected.cases = [
            replace(c, video=layout[c.id]["video"]) if c.video is None and "video" in layout.get(c.id, {}) else c
            for c in collected.cases
        ]
    elif manifest is not None:
        for number, record in enumerate(read_table(manifest), start=1):
            if str(record.get("kind", "")).lower() == "motion mask":
                continue  # a mask entry describes a file of another case, not a case
            files = layout.get(str(record.get("id")), {})
            collected.add(
                str(record.get("id") or f"record{number}"),
                lambda: case_from_record(record, root, manifest, guide_fit=fit,
                                         default_video=files.get("video"), default_image=files.get("image")),
                manifest,
            )
    known = collected.known()
    for case_id, files in layout.items():
        if case_id not in known:
            collected.add(case_id, lambda: _layout_case(case_id, files, root, fit), root)
    if not collected.cases and not collected.invalid:
        raise SuiteError("no cases: expected image/ and video/ folders, a manifest.json or a prompts file", path=root)
    options = {"prompts": str(manifest) if manifest else None, "guide_fit": fit.value}
    return Suite(
        name, VERSION, tuple(sorted(collected.cases, key=lambda c: c.id)), root,
        loader_options=options, invalid=tuple(collected.invalid),
    )


def _scan_layout(root: Path) -> dict[str, dict[str, Path]]:
    found: dict[str, dict[str, Path]] = {}
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("video", VIDEO_SUFFIXES)):
        folder = root / kind
        if not folder.is_dir():
            continue
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in suffixes and not file.name.startswith("."):
                found.setdefault(file.stem, {})[kind] = file
    return found


def _layout_case(case_id: str, files: dict[str, Path], root: Path, fit: GuideFit) -> Case:
    record = {"id": case_id}
    return case_from_record(
        record, root, root, guide_fit=fit, default_video=files.get("video"), default_image=files.get("image")
    )
