"""The ``anisora`` suite: the official AniSora-Benchmark layout.

Layout (implied by ``bilibili/Index-anisora``'s reward code)::

    ROOT/image/<id>.png     first-frame guide (about 1920x1080 in the published samples)
    ROOT/video/<id>.mp4     ground-truth clip

Prompts come from, in order: the ``prompts`` option (a JSON or CSV manifest, or an
AniSora prompt file with ``prompt@@image`` / ``prompt@@img1,img2&&pos1,pos2`` lines in
UTF-8 or GBK), else ``ROOT/manifest.json`` when present. Manifest records may also name
their own files (see :func:`anibench.suites.common.case_from_record`). Action labels are
parsed from ids such as ``cartoon_films_da_dou_1`` when not given. Ids are the file
stems as they are (``image/a cat (1).png`` is case ``a cat (1)``).

Guides are fitted to the video with ``guide_fit`` (default ``center-crop``: AniSora
centre-crops and resizes its conditioning images to the output size).

Each record, line or layout file is a case of its own: one that cannot be built (a
wrong-typed field, a malformed line, a file symlinked from outside ``ROOT``, two images
for one id) is an invalid case and the others load.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from anibench.errors import SuiteError
from anibench.images import GuideFit
from anibench.suite import Case, Suite, case_id_problem, printable
from anibench.suites.common import (
    CaseCollector, add_record, case_from_record, guide_fit_option, manifest_entries, prompts_file, resolve_in_root,
    suite_root,
)
from anibench.suites.prompt_files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, load_prompt_file

VERSION = "1"


@dataclass
class _LayoutEntry:
    """The ``image/`` and ``video/`` files of one stem, or why they cannot be used."""

    files: dict[str, Path]
    problem: SuiteError | None = None

    @property
    def file(self) -> Path:
        return self.files.get("video") or self.files.get("image") or Path("layout")

    @property
    def origin(self) -> str:
        return printable(self.file.name)


def load(path: str | None = None, *, prompts: str | None = None, guide_fit: str = "center-crop", name: str = "anisora") -> Suite:
    root = suite_root(path, "anisora")
    fit = guide_fit_option(guide_fit)
    layout = _scan_layout(root)
    usable = {stem: entry.files for stem, entry in layout.items() if entry.problem is None}

    manifest = prompts_file(root, prompts, ("manifest.json",))
    collected = CaseCollector()
    if manifest is not None and manifest.suffix.lower() == ".txt":
        load_prompt_file(manifest, root, fit, collected)
        collected.cases = [
            replace(c, video=usable[c.id]["video"]) if c.video is None and "video" in usable.get(c.id, {}) else c
            for c in collected.cases
        ]
    elif manifest is not None:
        for entry in manifest_entries(manifest):
            record = entry.record
            if isinstance(record, dict) and str(record.get("kind", "")).lower() == "motion mask":
                continue  # a mask entry describes a file of another case, not a case
            files = usable.get(entry.declared_id or "", {})
            add_record(collected, entry, root, manifest, guide_fit=fit,
                       default_video=files.get("video"), default_image=files.get("image"))
    known = collected.known()
    for stem, entry in layout.items():
        if entry.problem is not None:
            _refuse_layout(collected, stem, entry, known, root)
        elif stem not in known:
            collected.add(lambda: _layout_case(stem, entry.files, root, fit), origin=entry.origin, source=entry.file,
                          fallback=f"file@{entry.origin}", declared_id=stem)
    if not collected.cases and not collected.invalid:
        raise SuiteError("no cases: expected image/ and video/ folders, a manifest.json or a prompts file", path=root)
    options = {"prompts": str(manifest) if manifest else None, "guide_fit": fit.value}
    return Suite(
        name, VERSION, tuple(sorted(collected.cases, key=lambda c: c.id)), root,
        loader_options=options, invalid=tuple(collected.invalid),
    )


def _refuse_layout(collected: CaseCollector, stem: str, entry: _LayoutEntry, known: set[str], root: Path) -> None:
    """A layout stem with unusable files fails the cases that would use them, or stands as an invalid case."""
    if any(c.id == stem for c in collected.cases):
        collected.take(stem, entry.problem)
    elif stem not in known:
        collected.fail(entry.problem, origin=entry.origin, source=entry.file, fallback=f"file@{entry.origin}",
                       declared_id=stem)


def _scan_layout(root: Path) -> dict[str, _LayoutEntry]:
    found: dict[str, _LayoutEntry] = {}
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("video", VIDEO_SUFFIXES)):
        folder = root / kind
        if not folder.is_dir():
            continue
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in suffixes or file.name.startswith("."):
                continue
            entry = found.setdefault(file.stem, _LayoutEntry({}))
            if kind in entry.files:
                entry.problem = entry.problem or SuiteError(
                    f"two {kind} files for case {file.stem!r}: {printable(entry.files[kind].name)} and "
                    f"{printable(file.name)}; keep one", case_id=file.stem, path=file)
                continue
            entry.files[kind] = file
            try:
                resolve_in_root(root, file.relative_to(root), case_id=file.stem, source=file)
                if not file.is_file():
                    raise SuiteError(f"{printable(file.name)} is not a regular file", case_id=file.stem, path=file)
            except SuiteError as exc:
                entry.problem = entry.problem or exc
    return found


def _layout_case(case_id: str, files: dict[str, Path], root: Path, fit: GuideFit) -> Case:
    source = files.get("video") or files["image"]
    problem = case_id_problem(case_id)
    if problem:
        raise SuiteError(f"the file name '{printable(source.name)}' gives no usable case id: {problem}; rename the file")
    return case_from_record(
        {"id": case_id}, root, source, guide_fit=fit, default_video=files.get("video"), default_image=files.get("image")
    )
