"""The weights manifest: entries (name, file, source, hashes, licence, format, converter), parsed and checked."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from anibench.errors import AnibenchError

ROOT_ENV = "ANIBENCH_WEIGHTS"
MANIFEST_ENV = "ANIBENCH_WEIGHTS_MANIFEST"
BUILTIN_MANIFEST = "weights.yaml"
LOCAL_MANIFEST = "manifest.local.yaml"
RECORD_FILE = "record.json"
CONVERTED_DIR = "converted"
DOWNLOADS_DIR = ".downloads"
# hf-folder: `file` names a directory (a Hugging Face checkpoint folder), hashed as a tree; json: a data file
# (e.g. AnimeReward's character gallery list).
FORMATS = ("torch-state-dict", "torchscript", "safetensors", "zip", "tar", "json", "hf-folder")
ENTRY_KEYS = frozenset({
    "name", "description", "file", "source", "sha256", "sha256_prefix", "size", "licence", "format", "converter",
    "used_by", "hub_id", "reference", "notes",
})
SOURCE_KEYS = frozenset({"url", "hub", "file", "revision", "archive_member", "include"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{4,64}$")
# torch.hub / BasicSR name checkpoints `<stem>-<first hex digits of the sha256>.<ext>`; at least 8
# digits, so names such as ViT-B-32.pt are not read as carrying a hash.
_NAME_HASH = re.compile(r"-([0-9a-f]{8,64})\.[^.]+$")


class WeightsError(AnibenchError):
    """Base class of the weights errors other than :class:`~anibench.errors.MissingWeightsError`."""


class ManifestError(WeightsError):
    """A weights manifest is malformed, conflicts with another one, or names an unknown entry."""


@dataclass(frozen=True)
class WeightSource:
    """Where a file is published: a URL, or a Hugging Face Hub repo + file (+ revision).

    ``archive_member``: the URL serves a zip archive and the entry's file is this member.
    ``include``: for a folder entry (``hf-folder``) on the hub, the glob patterns (relative to the folder) of
    the files to fetch, when the folder holds more than anibench reads (a tokenizer beside model weights).
    """

    url: str | None = None
    hub: str | None = None
    hub_file: str | None = None
    revision: str | None = None
    archive_member: str | None = None
    include: tuple[str, ...] = ()

    def describe(self) -> str:
        if not self.url and (self.hub_file or ".").strip("/") == ".":  # a whole repository
            return f"https://huggingface.co/{self.hub}/tree/{self.revision or 'main'}"
        where = self.url or f"https://huggingface.co/{self.hub}/resolve/{self.revision or 'main'}/{self.hub_file}"
        return f"{where} (member {self.archive_member})" if self.archive_member else where

    def to_dict(self) -> dict[str, str]:
        data = {"url": self.url, "hub": self.hub, "file": self.hub_file, "revision": self.revision,
                "archive_member": self.archive_member, "include": list(self.include) or None}
        return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class WeightEntry:
    """One manifest entry (see the module docstring for the fields); ``manifest`` is the file defining it."""

    name: str
    file: str
    format: str
    manifest: Path
    description: str = ""
    source: WeightSource | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None
    licence: str | None = None
    converter: str | None = None
    used_by: tuple[str, ...] = ()
    hub_id: str | None = None
    reference: str | None = None
    notes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as manifest YAML/JSON (without ``manifest``)."""
        data = {
            "name": self.name, "description": self.description, "file": self.file,
            "source": self.source.to_dict() if self.source else None, "sha256": self.sha256,
            "sha256_prefix": self.sha256_prefix, "size": self.size, "licence": self.licence, "format": self.format,
            "converter": self.converter, "used_by": list(self.used_by), "hub_id": self.hub_id,
            "reference": self.reference, "notes": self.notes,
        }
        return {k: v for k, v in data.items() if v not in (None, "", [])}


def default_root() -> Path:
    """``$ANIBENCH_WEIGHTS``, else ``~/.cache/anibench/weights``."""
    configured = os.environ.get(ROOT_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "anibench" / "weights"


def extra_manifests_from_env() -> list[Path]:
    """The manifest files named in ``$ANIBENCH_WEIGHTS_MANIFEST`` (``os.pathsep``-separated)."""
    value = os.environ.get(MANIFEST_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def hash_prefix_from_name(file_name: str) -> str | None:
    """``musiq_spaq_ckpt-358bb6af.pth`` → ``358bb6af`` (torch.hub's naming rule, ≥ 8 hex digits), else None."""
    match = _NAME_HASH.search(file_name)
    return match.group(1) if match else None


def parse_manifest(data: Any, path: Path) -> list[WeightEntry]:
    """Entries of one parsed manifest file; every problem is a :class:`ManifestError` naming the file."""
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("weights", []), list):
        raise ManifestError("a weights manifest is a mapping with a list under 'weights'", path=path)
    entries, seen = [], set()
    for index, raw in enumerate(data.get("weights") or []):
        entry = parse_entry(raw, path, index)
        if entry.name in seen:
            raise ManifestError(f"entry {entry.name!r} is defined twice", path=path)
        seen.add(entry.name)
        entries.append(entry)
    return entries


def parse_entry(raw: Any, path: Path, index: int = 0) -> WeightEntry:
    """Validate one manifest entry (a mapping) into a :class:`WeightEntry`."""
    if not isinstance(raw, dict):
        raise ManifestError(f"entry #{index + 1} is not a mapping", path=path)
    name = raw.get("name")
    label = f"entry {name!r}" if name else f"entry #{index + 1}"

    def fail(message: str) -> ManifestError:
        return ManifestError(f"{label}: {message}", path=path)

    unknown = set(raw) - ENTRY_KEYS
    if unknown:
        raise fail(f"unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(ENTRY_KEYS))}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail("'name' must match [a-z0-9][a-z0-9_.-]*")
    file = raw.get("file")
    if not isinstance(file, str) or not file or file != Path(file).name or file in (".", "..") or file == RECORD_FILE \
            or file == CONVERTED_DIR:
        raise fail(f"'file' must be a plain file name (no folders), got {file!r}")
    fmt = raw.get("format")
    if fmt not in FORMATS:
        raise fail(f"'format' must be one of {', '.join(FORMATS)}, got {fmt!r}")
    sha256 = _optional_str(raw, "sha256", fail)
    if sha256 is not None:
        sha256 = sha256.lower()
        if not _HEX64.match(sha256):
            raise fail(f"'sha256' must be 64 hex digits, got {sha256!r}")
    prefix = _optional_str(raw, "sha256_prefix", fail) or hash_prefix_from_name(file)
    if prefix is not None:
        prefix = prefix.lower()
        if not _HEX_PREFIX.match(prefix):
            raise fail(f"'sha256_prefix' must be 4–64 hex digits, got {prefix!r}")
        if sha256 is not None and not sha256.startswith(prefix):
            raise fail(f"'sha256' {sha256} does not start with the hash prefix {prefix}")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise fail(f"'size' must be a positive number of bytes, got {size!r}")
    converter = _optional_str(raw, "converter", fail)
    if converter is not None and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", converter):
        raise fail(f"'converter' must be 'module:function', got {converter!r}")
    used_by = raw.get("used_by") or []
    if not isinstance(used_by, list) or not all(isinstance(u, str) for u in used_by):
        raise fail("'used_by' must be a list of scorer names")
    return WeightEntry(
        name=name, file=file, format=fmt, manifest=path, description=_optional_str(raw, "description", fail) or "",
        source=_parse_source(raw.get("source"), fail), sha256=sha256, sha256_prefix=prefix, size=size,
        licence=_optional_str(raw, "licence", fail), converter=converter, used_by=tuple(used_by),
        hub_id=_optional_str(raw, "hub_id", fail), reference=_optional_str(raw, "reference", fail),
        notes=_optional_str(raw, "notes", fail),
    )


def _optional_str(raw: Mapping[str, Any], key: str, fail: Callable[[str], ManifestError]) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise fail(f"{key!r} must be a string, got {value!r}")
    return value.strip() if isinstance(value, str) else None


def _parse_source(raw: Any, fail: Callable[[str], ManifestError]) -> WeightSource | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - SOURCE_KEYS:
        raise fail(f"'source' must be {{url: …}} or {{hub: org/repo, file: …, revision: …}}, got {raw!r}")
    include = raw.get("include", [])
    if not isinstance(include, list) or not all(isinstance(v, str) and v for v in include):
        raise fail("'source.include' must be a list of glob patterns inside the folder")
    if not all(isinstance(v, str) for k, v in raw.items() if k != "include"):
        raise fail("'source' values must be strings")
    url, hub = raw.get("url"), raw.get("hub")
    if bool(url) == bool(hub):
        raise fail("'source' needs exactly one of 'url' or 'hub'")
    if url and not re.match(r"^https?://", url):
        raise fail(f"'source.url' must be http(s), got {url!r}")
    if hub and not raw.get("file"):
        raise fail("'source.hub' needs 'file' (the file's path in the hub repo)")
    if url and raw.get("file"):
        raise fail("'source.file' belongs to hub sources; a URL names its file itself")
    if include and not hub:
        raise fail("'source.include' selects files of a hub folder; it needs 'hub'")
    return WeightSource(url=url, hub=hub, hub_file=raw.get("file"), revision=raw.get("revision"),
                        archive_member=raw.get("archive_member"), include=tuple(include))


def read_manifest_file(path: Path) -> Any:
    """The parsed YAML of a manifest file (ManifestError when absent or unparsable)."""
    if not path.is_file():
        raise ManifestError("weights manifest not found", path=path)
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot parse the weights manifest: {exc}", path=path) from exc
