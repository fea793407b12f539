"""The weights folder: import (all or nothing), resolve, verify, fetch, and weights registered locally."""

from __future__ import annotations

import datetime as _dt
import difflib
import importlib
import json
import os
import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

import anibench
from anibench.errors import InputError, MissingWeightsError
from anibench.fsutil import fsync_dir, make_temporary_dir, temporary_name, write_json, write_text
from anibench.provenance import sha256_file
from anibench.resources import datasets_dir, load_yaml
from anibench.runtime.devices import MissingDependencyError
from anibench.runtime.weights.download import FetchError, download_hub, download_url, extract_member
from anibench.runtime.weights.files import (
    FOLDER_FORMATS, WeightFileError, check_structure, installed, installed_size, link_or_copy_entry, tree_digest,
)
from anibench.runtime.weights.manifest import (
    BUILTIN_MANIFEST, CONVERTED_DIR, DOWNLOADS_DIR, LOCAL_MANIFEST, RECORD_FILE, ROOT_ENV, ManifestError, WeightEntry,
    WeightsError, read_manifest_file, default_root, extra_manifests_from_env, parse_entry, parse_manifest,
)


class WeightIntegrityError(WeightsError):
    """A file's size or sha256 differs from the manifest or from what was recorded at import."""


class WeightConversionError(WeightsError):
    """An entry's converter failed; nothing was installed."""


@dataclass(frozen=True)
class ResolvedWeight:
    """Installed weights: ``path`` is what a model loads (``converted/`` folder, or the file without converter)."""

    name: str
    path: Path
    file: Path
    sha256: str
    entry: WeightEntry
    record: Mapping[str, Any] = field(repr=False)

    def identity(self) -> dict[str, Any]:
        """What determines the loaded values: the file's sha256 and the converter (with its version)."""
        return {"name": self.name, "sha256": self.sha256, "converter": self.record.get("converter"),
                "converter_version": self.record.get("converter_version")}

    def provenance(self) -> dict[str, Any]:
        """For results.json: name, file, sha256, source, format, converter and the versions that converted it."""
        return {
            "name": self.name, "file": self.entry.file, "sha256": self.sha256, "size": self.record.get("size"),
            "source": self.entry.source.describe() if self.entry.source else None, "format": self.entry.format,
            "converter": self.record.get("converter"), "converter_version": self.record.get("converter_version"),
            "converted_by_anibench": self.record.get("anibench_version"), "imported_at": self.record.get("imported_at"),
            "licence": self.entry.licence,
        }


class WeightStatus(str, Enum):
    """What ``anibench weights list`` shows (a cheap check: no hashing)."""

    PRESENT = "present"          # imported, size as recorded, converted if the entry has a converter
    MISSING = "missing"          # no file
    UNVERIFIED = "unverified"    # a file is there but was never imported (no record of its hash)
    DAMAGED = "damaged"          # the file's size or the record no longer match
    UNCONVERTED = "unconverted"  # imported, but the converted folder is absent or from another converter


@dataclass(frozen=True)
class VerifyResult:
    """One entry's ``verify`` outcome; ``ok`` is False for mismatches and unusable files."""

    name: str
    status: str  # ok | missing | unrecorded | mismatch | unconverted
    sha256: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# -- the store ------------------------------------------------------------------------------------
class WeightStore:
    """The weights folder and the manifests describing what may live in it.

    ``root``: the weights folder (default :func:`default_root`). ``manifests``: extra manifest
    files on top of the built-in one and ``$ANIBENCH_WEIGHTS_MANIFEST`` (tests register
    entries this way). ``hub_endpoint``: a Hugging Face Hub endpoint for ``fetch`` (default:
    huggingface_hub's, i.e. ``$HF_ENDPOINT`` or huggingface.co).
    """

    def __init__(self, root: str | Path | None = None, manifests: Sequence[str | Path] = (), *,
                 hub_endpoint: str | None = None):
        from_env = f"${ROOT_ENV}" if os.environ.get(ROOT_ENV) else "default"
        self.root_origin = "argument" if root is not None else from_env
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.hub_endpoint = hub_endpoint
        self._extra = [Path(p).expanduser() for p in (*extra_manifests_from_env(), *manifests)]
        self._entries: dict[str, WeightEntry] | None = None

    # manifest ---------------------------------------------------------------------------------
    def manifest_files(self) -> list[Path]:
        """Every manifest read, in order: built-in, extra ones, the weights folder's local manifest (if any)."""
        files = [datasets_dir() / BUILTIN_MANIFEST, *self._extra]
        local = self.root / LOCAL_MANIFEST
        return files + [local] if local.is_file() else files

    def entries(self) -> dict[str, WeightEntry]:
        """Name → entry over every manifest; a name defined in two files is a :class:`ManifestError`."""
        if self._entries is None:
            merged: dict[str, WeightEntry] = {}
            for path in self.manifest_files():
                builtin = path == datasets_dir() / BUILTIN_MANIFEST
                data = load_yaml(BUILTIN_MANIFEST) if builtin else read_manifest_file(path)
                for entry in parse_manifest(data, path):
                    if entry.name in merged:
                        raise ManifestError(f"entry {entry.name!r} is defined in both {merged[entry.name].manifest} "
                                            f"and {path}; rename one", path=path)
                    merged[entry.name] = entry
            self._entries = merged
        return self._entries

    def names(self) -> list[str]:
        return sorted(self.entries())

    def get(self, name: str) -> WeightEntry:
        """The entry called ``name``; an unknown name is a :class:`ManifestError` with close matches."""
        entries = self.entries()
        if name not in entries:
            close = difflib.get_close_matches(name, entries, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(entries))}"
            raise ManifestError(f"no weights entry {name!r} in {', '.join(map(str, self.manifest_files()))}{hint}")
        return entries[name]

    def folder(self, name: str) -> Path:
        return self.root / name

    def file_path(self, name: str) -> Path:
        """Where the entry's published file lives once imported."""
        return self.folder(name) / self.get(name).file

    # status and resolution --------------------------------------------------------------------
    def status(self, name: str) -> WeightStatus:
        """A cheap check (sizes and records, no hashing); see :class:`WeightStatus`."""
        try:
            self.resolve(name)
        except MissingWeightsError:
            entry, file = self.get(name), self.file_path(name)
            if not installed(file, entry.format):
                return WeightStatus.MISSING
            record = self._read_record(name)
            if record is None:
                return WeightStatus.UNVERIFIED
            if self._record_problem(entry, record, file):
                return WeightStatus.DAMAGED
            return WeightStatus.UNCONVERTED
        return WeightStatus.PRESENT

    def resolve(self, name: str) -> ResolvedWeight:
        """The installed weights of ``name``, or :class:`MissingWeightsError` saying why and how to provide them.

        Cheap: checks the file, its recorded size and the converted folder, without hashing
        (``verify`` re-hashes). Never downloads and never imports a converter.
        """
        entry = self.get(name)
        file = self.file_path(name)
        if not installed(file, entry.format):
            raise self.missing_error(name, "not installed")
        record = self._read_record(name)
        if record is None:
            raise self.missing_error(name, f"{file} is there but was never imported (no valid {RECORD_FILE} with its "
                                           "sha256), so it is not used")
        problem = self._record_problem(entry, record, file)
        if problem:
            raise self.missing_error(name, problem)
        path = file
        if entry.converter:
            converted = self.folder(name) / CONVERTED_DIR
            if record.get("converter") != entry.converter or not converted.is_dir():
                raise self.missing_error(name, f"the file is imported but not converted with {entry.converter} "
                                               f"(re-import it: anibench weights import {name} {file})")
            path = converted
        return ResolvedWeight(name=name, path=path, file=file, sha256=record["sha256"], entry=entry, record=record)

    def missing_error(self, name: str, reason: str) -> MissingWeightsError:
        """The error a scorer raises for absent weights: the file, the entry, where it looked, the commands."""
        entry = self.get(name)
        commands = []
        if entry.source:
            commands.append(f"anibench weights fetch {name}    (downloads {entry.source.describe()})")
        commands.append(f"anibench weights import {name} /path/to/{entry.file}"
                        + ("    (the folder)" if entry.format in FOLDER_FORMATS else ""))
        what = f" — {entry.description}" if entry.description else ""
        message = (
            f"weights {name!r} are missing: {reason}.\n"
            f"  needs: {entry.file} (manifest entry {name!r} in {entry.manifest}{what})\n"
            f"  looked in: {self.folder(name)} (weights folder from {self.root_origin}; "
            f"set ${ROOT_ENV} to use another)\n"
            "  provide it with:\n" + "".join(f"    {c}\n" for c in commands)
        )
        return MissingWeightsError(message.rstrip("\n"), path=self.file_path(name))

    def _read_record(self, name: str) -> dict[str, Any] | None:
        path = self.folder(name) / RECORD_FILE
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and isinstance(record.get("sha256"), str) else None

    @staticmethod
    def _record_problem(entry: WeightEntry, record: Mapping[str, Any], file: Path) -> str | None:
        actual = installed_size(file, entry.format)
        if record.get("file") != entry.file:
            return f"{RECORD_FILE} describes {record.get('file')!r}, not {entry.file!r}"
        if record.get("size") != actual:
            return (f"{file} is {actual} bytes but {record.get('size')} were imported; it changed since "
                    f"(check with: anibench weights verify {entry.name})")
        for expected in (entry.sha256, entry.sha256_prefix):
            if expected and not record["sha256"].startswith(expected):
                return (f"the imported file has sha256 {record['sha256']} but manifest entry {entry.name!r} "
                        f"({entry.manifest}) expects {expected}")
        return None

    # import -----------------------------------------------------------------------------------
    def import_file(self, name: str, source: str | Path, *, replace: bool = False, link: bool = False,
                    origin: str | None = None) -> ResolvedWeight:
        """Install ``source`` as the file of entry ``name`` and run its converter; all or nothing.

        The file is copied (and made read-only), or with ``link=True`` hard-linked when on
        the same file system as the weights folder — no second copy of a large file, but
        then rewriting the original in place (``wget -O`` over it) changes the installed
        file too, which only ``verify`` notices. ``fetch`` links its own downloads, which
        have no other name afterwards. Size and sha256 are checked against the manifest
        (full hash or hash prefix, when known) and against an earlier import's record — a
        different file replaces an imported one only with ``replace=True``. Without a
        published hash, the file's structure is checked (zip CRCs, safetensors header) so
        a truncated download is not recorded as the reference. ``origin`` (a URL) is stored
        in the record.
        """
        entry = self.get(name)
        source = Path(source).expanduser()
        if not installed(source, entry.format):
            kind = "folder" if entry.format in FOLDER_FORMATS else "file"
            raise InputError(f"cannot import weights {name!r}: no such {kind} (entry format {entry.format})", path=source)
        previous = self._read_record(name)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = make_temporary_dir(self.folder(name))
        try:
            staged = staging / entry.file
            digest, size = link_or_copy_entry(source, staged, entry.format, link=link)
            _check_integrity(entry, digest, size, source)
            if previous and previous.get("sha256") != digest and not replace:
                raise WeightIntegrityError(
                    f"{source} has sha256 {digest}, but {name!r} was imported earlier with sha256 "
                    f"{previous['sha256']}; "
                    "pass --replace to install a different file", path=source)
            try:
                check_structure(staged, entry.format)
            except WeightFileError as exc:  # name the user's file, not the staged copy
                raise WeightFileError(exc.message, path=source) from exc
            conversion = _run_converter(entry, staged, staging / CONVERTED_DIR, source)
            record = {
                "name": name, "file": entry.file, "sha256": digest, "size": size, "format": entry.format,
                "imported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "origin": origin or str(source.resolve()), "source": entry.source.to_dict() if entry.source else None,
                "anibench_version": anibench.__version__, **conversion,
            }
            write_json(staging / RECORD_FILE, record)
            _swap_into_place(staging, self.folder(name))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.resolve(name)

    def add_local(self, name: str, source: str | Path, *, format: str, description: str = "",
                  converter: str | None = None, used_by: Iterable[str] = (), licence: str | None = None,
                  replace: bool = False) -> ResolvedWeight:
        """Register weights anibench produced itself (e.g. a trained head) and import ``source`` for them.

        The entry goes to ``<root>/manifest.local.yaml`` (source null: nothing to fetch; its
        sha256 is recorded at import), so ``anibench weights list`` shows it and
        ``resolve(name)`` finds it in every later process using this weights folder.
        ``replace=True`` installs a new version over an existing local entry.
        """
        source = Path(source)
        existing = self.entries().get(name)
        local_path = self.root / LOCAL_MANIFEST
        if existing is not None and (existing.manifest != local_path or not replace):
            raise ManifestError(f"entry {name!r} already exists in {existing.manifest}"
                                + ("" if existing.manifest != local_path else "; pass replace=True for a new version"))
        entry = parse_entry({"name": name, "file": source.name, "format": format, "description": description,
                             "converter": converter, "used_by": list(used_by), "licence": licence}, local_path)
        data = read_manifest_file(local_path) if local_path.is_file() else None
        kept = [e.to_dict() for e in parse_manifest(data, local_path) if e.name != name]
        self.root.mkdir(parents=True, exist_ok=True)
        write_text(local_path, yaml.safe_dump({"weights": [*kept, entry.to_dict()]}, sort_keys=False,
                                              allow_unicode=True))
        self._entries = None
        try:
            return self.import_file(name, source, replace=replace)
        except BaseException:
            if existing is None:  # a first registration that failed leaves no entry behind
                write_text(local_path, yaml.safe_dump({"weights": kept}, sort_keys=False, allow_unicode=True))
                self._entries = None
            raise

    # verify -----------------------------------------------------------------------------------
    def verify(self, name: str) -> VerifyResult:
        """Re-hash the installed file and compare it with its record and the manifest."""
        entry, file = self.get(name), self.file_path(name)
        if not installed(file, entry.format):
            return VerifyResult(name, "missing", None, f"{file} not found")
        digest = tree_digest(file)[0] if entry.format in FOLDER_FORMATS else sha256_file(file)
        record = self._read_record(name)
        if record is None:
            return VerifyResult(name, "unrecorded", digest,
                                f"sha256 {digest}, never imported: anibench weights import {name} {file}")
        if record["sha256"] != digest:
            return VerifyResult(name, "mismatch", digest, f"{file} has sha256 {digest}, {record['sha256']} was "
                                                          f"recorded at import ({record.get('imported_at')})")
        for expected in (entry.sha256, entry.sha256_prefix):
            if expected and not digest.startswith(expected):
                return VerifyResult(name, "mismatch", digest, f"{file} has sha256 {digest}, manifest entry {name!r} "
                                                              f"({entry.manifest}) expects {expected}")
        size = installed_size(file, entry.format)
        if entry.size is not None and size != entry.size:
            return VerifyResult(name, "mismatch", digest, f"{file} is {size} bytes, the manifest says {entry.size}")
        if entry.converter and (record.get("converter") != entry.converter
                                or not (self.folder(name) / CONVERTED_DIR).is_dir()):
            return VerifyResult(name, "unconverted", digest, f"not converted with {entry.converter}: "
                                                             f"anibench weights import {name} {file}")
        also = " and the manifest" if entry.sha256 else ""
        return VerifyResult(name, "ok", digest, f"sha256 matches the record{also}")

    # fetch ------------------------------------------------------------------------------------
    def fetch(self, name: str, *, force: bool = False,
              progress: Callable[[int, int | None], None] | None = None) -> ResolvedWeight:
        """Download the entry's published file and import it; the only network access in anibench's weights.

        Hub sources go through ``huggingface_hub.hf_hub_download`` (refused while
        ``HF_HUB_OFFLINE`` is set); URL sources stream through httpx2 into
        ``<root>/.downloads/<name>/``, resuming a partial file with an HTTP range request.
        Present weights are kept unless ``force``. ``progress(done_bytes, total_bytes)``
        is called while a URL downloads.
        """
        entry = self.get(name)
        if not force and self.status(name) is WeightStatus.PRESENT:
            return self.resolve(name)
        if entry.source is None:
            raise FetchError(f"entry {name!r} ({entry.manifest}) has no public source to download; install the file "
                             f"with: anibench weights import {name} /path/to/{entry.file}")
        downloads = self.root / DOWNLOADS_DIR / name
        downloads.mkdir(parents=True, exist_ok=True)
        try:
            if entry.source.hub:
                downloaded = download_hub(entry, downloads, self.hub_endpoint)
            else:
                downloaded = download_url(entry, downloads, progress)
        except BaseException:
            _remove_empty_dirs(downloads, stop=self.root)
            raise
        try:
            if entry.source.archive_member:
                downloaded = extract_member(downloaded, entry.source.archive_member, downloads / entry.file)
            result = self.import_file(name, downloaded, replace=force, link=True, origin=entry.source.describe())
        except (WeightIntegrityError, WeightFileError):
            shutil.rmtree(downloads, ignore_errors=True)  # a wrong or corrupt download is not resumed
            _remove_empty_dirs(downloads.parent, stop=self.root)
            raise
        shutil.rmtree(downloads, ignore_errors=True)
        _remove_empty_dirs(downloads.parent, stop=self.root)
        return result


# -- import helpers ---------------------------------------------------------------------------------
def _check_integrity(entry: WeightEntry, digest: str, size: int, source: Path) -> None:
    where = f"manifest entry {entry.name!r} ({entry.manifest})"
    if entry.size is not None and size != entry.size:
        raise WeightIntegrityError(f"{source} is {size} bytes but {where} expects {entry.size} bytes "
                                   "(truncated download or another file?)", path=source)
    if entry.sha256 and digest != entry.sha256:
        raise WeightIntegrityError(f"sha256 mismatch: {source} has {digest}, {where} expects {entry.sha256}",
                                   path=source)
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix):
        raise WeightIntegrityError(f"sha256 mismatch: {source} has {digest}, {where} expects a hash starting with "
                                   f"{entry.sha256_prefix}", path=source)


def _run_converter(entry: WeightEntry, staged: Path, target: Path, source: Path) -> dict[str, Any]:
    if not entry.converter:
        return {"converter": None, "converter_version": None}
    module_name, _, function_name = entry.converter.partition(":")
    try:
        module = importlib.import_module(module_name)
        convert = getattr(module, function_name)
    except (ImportError, AttributeError) as exc:
        raise WeightConversionError(f"converter {entry.converter} of entry {entry.name!r} ({entry.manifest}) cannot "
                                    f"be imported: {exc}", path=source) from exc
    target.mkdir()
    try:
        convert(staged, target)
    except MissingDependencyError:
        raise
    except Exception as exc:  # a converter's failure is reported, never half-installed
        raise WeightConversionError(f"converter {entry.converter} failed on {source} for entry {entry.name!r}: "
                                    f"{type(exc).__name__}: {exc}", path=source) from exc
    if not any(target.iterdir()):
        raise WeightConversionError(f"converter {entry.converter} wrote nothing for entry {entry.name!r}", path=source)
    return {"converter": entry.converter,
            "converter_version": str(getattr(module, "CONVERTER_VERSION", getattr(convert, "version", "1")))}


def _swap_into_place(staging: Path, final: Path) -> None:
    """Rename the staged folder to ``final``; an existing one is moved aside first and removed after."""
    if final.exists():
        old = temporary_name(final)
        os.rename(final, old)
        try:
            os.rename(staging, final)
        except BaseException:
            os.rename(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, final)
    fsync_dir(final.parent)


def _remove_empty_dirs(folder: Path, *, stop: Path) -> None:
    """Remove ``folder`` and its parents up to (not including) ``stop`` while they are empty."""
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
