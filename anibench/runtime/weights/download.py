"""Downloading published weights: URLs (streamed with httpx2, resumable) and Hugging Face Hub files."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import Callable

from anibench.runtime.devices import NEURAL_EXTRA_HINT, MissingDependencyError
from anibench.runtime.weights.files import CHUNK, WeightFileError
from anibench.runtime.weights.manifest import WeightEntry, WeightsError


class FetchError(WeightsError):
    """Downloading a weights file failed (network, HTTP status, offline mode)."""


def download_url(entry: WeightEntry, folder: Path, progress: Callable[[int, int | None], None] | None) -> Path:
    """Stream the entry's URL to ``folder``; a ``.part`` file left by an interrupted run is resumed."""
    try:
        import httpx2
    except ImportError as exc:
        raise MissingDependencyError(f"downloading weights needs httpx2 ({exc}); {NEURAL_EXTRA_HINT}") from exc
    assert entry.source is not None and entry.source.url is not None
    url = entry.source.url
    name = Path(httpx2.URL(url).path).name or entry.file
    part, final = folder / f"{name}.part", folder / name
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with httpx2.Client(follow_redirects=True, timeout=httpx2.Timeout(30.0, read=120.0)) as client:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code == 416 and have:  # the partial file is not a prefix of this one
                    part.unlink()
                    raise FetchError(f"GET {url}: the server refused to resume a partial download; rerun "
                                     f"`anibench weights fetch {entry.name}` to start over")
                if response.status_code not in (200, 206):
                    part.unlink(missing_ok=True)
                    raise FetchError(f"GET {url} answered HTTP {response.status_code} {response.reason_phrase} "
                                     f"(weights {entry.name!r}, manifest {entry.manifest})")
                resumed = response.status_code == 206 and response.headers.get("content-range", "").startswith(
                    f"bytes {have}-")
                done = have if resumed else 0
                length = response.headers.get("content-length")
                total = done + int(length) if length and length.isdigit() else entry.size
                with open(part, "ab" if resumed else "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
    except httpx2.HTTPError as exc:
        raise FetchError(f"downloading {url} for {entry.name!r} failed ({type(exc).__name__}: {exc}); rerun "
                         f"`anibench weights fetch {entry.name}` to resume") from exc
    os.replace(part, final)
    return final


def download_hub(entry: WeightEntry, folder: Path, endpoint: str | None = None) -> Path:
    """Download a hub source into ``folder`` with ``hf_hub_download`` (a folder entry: ``snapshot_download`` of
    the files under ``hub_file``); refused while HF_HUB_OFFLINE is set."""
    assert entry.source is not None and entry.source.hub_file is not None
    try:
        import huggingface_hub
        from huggingface_hub import constants, errors
    except ImportError as exc:
        raise MissingDependencyError(f"fetching {entry.name!r} from the Hugging Face Hub needs huggingface_hub "
                                     f"({exc}); {NEURAL_EXTRA_HINT}") from exc
    offline_message = (
        f"HF_HUB_OFFLINE is set, so {entry.file} for {entry.name!r} is not downloaded from "
        f"{entry.source.describe()}. Unset HF_HUB_OFFLINE (or set it to 0) and rerun "
        f"`anibench weights fetch {entry.name}`, or download the file elsewhere and run "
        f"`anibench weights import {entry.name} /path/to/{entry.file}`"
    )
    if constants.HF_HUB_OFFLINE or _env_true("HF_HUB_OFFLINE"):
        raise FetchError(offline_message)
    try:
        if entry.format == "hf-folder":  # a checkpoint folder inside the repo (file "." = the whole repo)
            inside = entry.source.hub_file.strip("/").removeprefix(".").strip("/")
            patterns = [f"{inside}/{p}" if inside else p for p in entry.source.include or ("*",)]
            huggingface_hub.snapshot_download(
                entry.source.hub, revision=entry.source.revision, local_dir=folder, endpoint=endpoint,
                allow_patterns=patterns,
            )
            path = folder / inside if inside else folder
            if not path.is_dir():
                raise errors.EntryNotFoundError(f"no folder {entry.source.hub_file!r} in {entry.source.hub}")
        else:
            path = huggingface_hub.hf_hub_download(
                entry.source.hub, entry.source.hub_file, revision=entry.source.revision, local_dir=folder,
                endpoint=endpoint,
            )
    except errors.OfflineModeIsEnabled as exc:
        raise FetchError(offline_message) from exc
    except (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, errors.EntryNotFoundError, OSError) as exc:
        raise FetchError(f"downloading {entry.source.hub_file} from hub repo {entry.source.hub} for "
                         f"{entry.name!r} failed: {type(exc).__name__}: {exc}") from exc
    return Path(path)


def extract_member(archive: Path, member: str, target: Path) -> Path:
    """Copy ``member`` of the zip ``archive`` to ``target``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            if member not in zf.namelist():
                raise WeightFileError(f"the downloaded archive has no member {member!r} (it holds: "
                                      f"{', '.join(zf.namelist()[:20])})", path=archive)
            with zf.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
    except zipfile.BadZipFile as exc:
        raise WeightFileError(f"the download is not a zip archive ({exc})", path=archive) from exc
    return target


def _env_true(name: str) -> bool:
    """huggingface_hub's reading of a boolean environment variable."""
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
