"""Weights files: structure checks without torch, format detection, safe loading of state dicts."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

from anibench.errors import InputError
from anibench.provenance import sha256_file
from anibench.runtime.devices import NEURAL_EXTRA_HINT, MissingDependencyError, require_torch
from anibench.runtime.weights.manifest import WeightsError

CHUNK = 1 << 20
FOLDER_FORMATS = frozenset({"hf-folder"})  # an entry whose `file` is a directory (a Hugging Face checkpoint folder)


class WeightFileError(WeightsError, InputError):
    """A weights file cannot be read in its declared format (truncated, corrupt, another format)."""


def link_or_copy(source: Path, target: Path, *, link: bool) -> tuple[str, int]:
    """Hard-link (if ``link`` and possible) or copy ``source`` to ``target``; return the bytes' (sha256, size).

    A copy is hashed while it is written (one read of a large file) and made read-only.
    """
    if link:
        try:
            os.link(source, target)
        except OSError:  # another file system, or links refused (protected_hardlinks)
            pass
        else:
            return sha256_file(target), target.stat().st_size
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(target, "xb") as out:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(target, stat.S_IMODE(os.stat(target).st_mode) & ~0o222)
    return digest.hexdigest(), size


def installed(path: Path, fmt: str) -> bool:
    """Whether an entry's file (a directory for folder formats) is there."""
    return path.is_dir() if fmt in FOLDER_FORMATS else path.is_file()


def installed_size(path: Path, fmt: str) -> int:
    """Bytes of a file, or of every file under a folder entry (no hashing)."""
    if fmt not in FOLDER_FORMATS:
        return path.stat().st_size
    return sum(f.stat().st_size for f in _tree_files(path))


def _tree_files(folder: Path) -> list[Path]:
    """Regular files under ``folder``, sorted by relative path; symlinks are refused (nothing outside is read)."""
    files = []
    for item in sorted(folder.rglob("*")):
        if item.is_symlink():
            raise WeightFileError(f"{item.relative_to(folder)} is a symbolic link; weights folders must hold "
                                  "the files themselves", path=folder)
        if item.is_file():
            files.append(item)
    return files


def tree_digest(folder: Path) -> tuple[str, int]:
    """sha256 of a folder entry: over the sorted lines ``<relative path> <sha256 of the file>``; and its bytes."""
    digest, size = hashlib.sha256(), 0
    for item in _tree_files(folder):
        digest.update(f"{item.relative_to(folder).as_posix()} {sha256_file(item)}\n".encode())
        size += item.stat().st_size
    return digest.hexdigest(), size


def link_or_copy_entry(source: Path, target: Path, fmt: str, *, link: bool) -> tuple[str, int]:
    """:func:`link_or_copy` for a file, or for every file of a folder entry; returns the entry's (sha256, size)."""
    if fmt not in FOLDER_FORMATS:
        return link_or_copy(source, target, link=link)
    target.mkdir()
    for item in _tree_files(source):
        relative = item.relative_to(source)
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(item, target / relative, link=link)
    return tree_digest(target)


def check_structure(path: Path, fmt: str) -> None:
    """Check a file is a complete archive of its format without torch: zip CRCs, safetensors header and length.

    Legacy (non-zip) torch pickles cannot be checked without unpickling; they are loaded
    with ``weights_only=True`` when torch is installed, and accepted unchecked otherwise.
    """
    if fmt == "safetensors":
        _check_safetensors(path)
        return
    if fmt in FOLDER_FORMATS:
        _check_folder(path)
        return
    if fmt == "tar":
        _check_tar(path)
        return
    if fmt == "json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise WeightFileError(f"not a valid JSON file ({exc})", path=path) from exc
        return
    if fmt == "torch-state-dict" and not _starts_like_zip(path):
        try:
            require_torch()
        except MissingDependencyError:
            return
        load_state_dict(path, fmt)
        return
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise WeightFileError(f"not a complete {fmt} file (the zip archive is truncated or corrupt: {exc})",
                              path=path) from exc
    if bad is not None:
        raise WeightFileError(f"corrupt {fmt} file: member {bad!r} fails its CRC check", path=path)
    if fmt == "torchscript" and not any("/code/" in n for n in names):
        raise WeightFileError("not a TorchScript archive (no code/ folder inside); check the entry's format", path=path)
    if fmt == "torch-state-dict" and not any(n.endswith("data.pkl") for n in names):
        raise WeightFileError("a zip file but not a torch.save archive (no data.pkl inside)", path=path)


def _starts_like_zip(path: Path) -> bool:
    """Zip archives (torch.save since 1.6, TorchScript) begin with a local file header, even when truncated."""
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _check_safetensors(path: Path) -> None:
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if header_len > size - 8:
                raise ValueError(f"header of {header_len} bytes in a {size}-byte file")
            header = json.loads(fh.read(header_len))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightFileError(f"not a valid safetensors file ({exc})", path=path) from exc
    if 8 + header_len + end != size:
        raise WeightFileError(f"truncated or padded safetensors file: {size} bytes, its header describes "
                              f"{8 + header_len + end}", path=path)


def _check_folder(folder: Path) -> None:
    """A Hugging Face checkpoint folder: not empty, every safetensors file whole, every indexed shard present."""
    files = _tree_files(folder)
    if not files:
        raise WeightFileError("the folder is empty", path=folder)
    for item in files:
        if item.suffix == ".safetensors":
            _check_safetensors(item)
    for index in folder.rglob("*.safetensors.index.json"):
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WeightFileError(f"unreadable shard index {index.name} ({exc})", path=index) from exc
        missing = sorted(s for s in shards if not (index.parent / s).is_file())
        if missing:
            raise WeightFileError(f"{index.name} lists shards that are not in the folder: {', '.join(missing)}",
                                  path=folder)


def _check_tar(path: Path) -> None:
    """Read a (compressed) tar archive to its end: a truncated download or a bad gzip CRC fails here."""
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                if member.isfile():
                    extracted = archive.extractfile(member)
                    while extracted is not None and extracted.read(CHUNK):
                        pass
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise WeightFileError(f"not a complete tar archive ({type(exc).__name__}: {exc})", path=path) from exc


def detect_format(path: str | Path) -> str:
    """The format of a weights file from its name and content: safetensors, torchscript or torch-state-dict."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return "safetensors"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                if any("/code/" in n for n in archive.namelist()):
                    return "torchscript"
        except zipfile.BadZipFile:
            pass
    return "torch-state-dict"


def load_state_dict(path: str | Path, format: str | None = None, *, key: str | None = None,
                    map_location: str = "cpu") -> dict[str, Any]:
    """Load a weights file's tensors safely; a truncated or corrupt file is a :class:`WeightFileError`.

    * ``safetensors``: ``safetensors.torch.load_file``.
    * ``torch-state-dict`` (``.pth``/``.pt``/``.bin``): ``torch.load(weights_only=True)``,
      which unpickles only tensors and plain containers; ``key`` picks a nested dict
      (``"state_dict"``, ``"model"``) from a training checkpoint.
    * ``torchscript`` (OpenAI's CLIP ``.pt`` files): ``torch.jit.load(...).state_dict()``.
      TorchScript archives are read by TorchScript's own deserializer, which rebuilds only
      TorchScript types and compiled TorchScript methods — it does not unpickle arbitrary
      Python objects or run Python code — and only the parameters are taken here; nothing
      in the archive is executed. The published CLIP files are also pinned by their full
      sha256 in the manifest. Converters read them once at import and write safetensors.
    """
    path = Path(path)
    fmt = format or detect_format(path)
    torch = require_torch()
    try:
        if fmt == "safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device=map_location)
        if fmt == "torchscript":
            with warnings.catch_warnings():  # torch 2.13 deprecates torch.jit; it remains the only TorchScript reader
                warnings.simplefilter("ignore", DeprecationWarning)
                return dict(torch.jit.load(str(path), map_location=map_location).state_dict())
        if fmt != "torch-state-dict":
            raise WeightFileError(f"cannot load a {fmt!r} file as a state dict", path=path)
        loaded = torch.load(path, map_location=map_location, weights_only=True)
    except WeightFileError:
        raise
    except ImportError as exc:
        raise MissingDependencyError(f"loading {path} needs {exc.name or 'safetensors'}; {NEURAL_EXTRA_HINT}") from exc
    except Exception as exc:  # torch/safetensors raise RuntimeError, UnpicklingError, EOFError, SafetensorError
        hint = ("it holds Python objects beyond tensors, which anibench does not unpickle (weights_only=True)"
                if "weights_only" in str(exc) or "Weights only load failed" in str(exc)
                else "truncated, corrupt or of another format")
        raise WeightFileError(f"cannot read this {fmt} file: {hint} ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})", path=path) from exc
    if key is not None:
        if not isinstance(loaded, Mapping) or key not in loaded:
            keys = ", ".join(map(str, list(loaded)[:10])) if isinstance(loaded, Mapping) else type(loaded).__name__
            raise WeightFileError(f"no {key!r} in this checkpoint (top-level keys: {keys})", path=path)
        loaded = loaded[key]
    if not isinstance(loaded, Mapping):
        raise WeightFileError(f"expected a mapping of tensors, found {type(loaded).__name__}", path=path)
    return dict(loaded)
