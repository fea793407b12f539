"""The ``smoke`` suite: procedurally rendered anime-style clips, built in seconds on a CPU.

The embedded default suite. Every action label is rendered in both styles (flat-cel
"2d", shaded "3d"), ``per_action`` times with different characters and backgrounds, and
written in the AniSora layout (``video/``, ``image/`` first frames, ``mask/`` motion
masks, ``manifest.json``). Each case's metadata holds the renderer's ground truth
(motion amplitude, character identity, camera motion) for metric tests.

Built suites are cached under ``$ANIBENCH_CACHE`` (default ``~/.cache/anibench``) keyed
by the parameters and the renderer's code and data, so loading twice renders once and
editing the renderer rebuilds; building is atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from PIL import Image

from anibench.errors import SuiteError
from anibench.fsutil import exclusive_lock, make_temporary_dir, temporaries_of
from anibench.images import GuideFit
from anibench.resources import datasets_dir, load_yaml
from anibench.smoke import render as render_module
from anibench.smoke.render import ACTIONS, STYLES, ClipSpec, backgrounds, characters, describe_clip, render_clip
from anibench.suite import GenerationDefaults, Suite
from anibench.suites.common import case_from_record, read_table
from anibench.video import X264_PARAMS, Video

VERSION = "2"
MANIFEST = "manifest.json"


def cache_root() -> Path:
    """``$ANIBENCH_CACHE`` (unset or empty: ``~/.cache/anibench``)."""
    configured = os.environ.get("ANIBENCH_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "anibench"


def load(
    path: str | None = None,
    *,
    per_action: int | None = None,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
    seed: int = 0,
) -> Suite:
    """Load (building first if needed) the smoke suite in ``path`` or in the cache."""
    params = _params(per_action, width, height, num_frames, fps, seed)
    folder = Path(path).expanduser().resolve() if path else cache_root() / "suites" / f"smoke-v{VERSION}-{_key(params)}"
    manifest = folder / MANIFEST
    if manifest.is_file():
        built = json.loads(manifest.read_text(encoding="utf-8")).get("params")
        if path and built != params and any(v is not None for v in (per_action, width, height, num_frames, fps)):
            raise SuiteError(f"{folder} holds a smoke suite built with {built}, not {params}", path=manifest)
    else:
        build(folder, **params)
    records = read_table(manifest)
    cases = tuple(case_from_record(r, folder, manifest, guide_fit=GuideFit.EXACT) for r in records)
    built = json.loads(manifest.read_text(encoding="utf-8"))["params"]
    return Suite(
        "smoke", VERSION, cases, folder,
        description="procedurally rendered anime-style clips (anibench built-in)",
        defaults=GenerationDefaults(built["num_frames"], built["fps"]),
        loader_options=built,
    )


def _params(per_action, width, height, num_frames, fps, seed) -> dict:
    defaults = load_yaml("smoke.yaml")["defaults"]
    return {
        "per_action": int(per_action if per_action is not None else defaults.get("per_action", 2)),
        "width": int(width or defaults["width"]),
        "height": int(height or defaults["height"]),
        "num_frames": int(num_frames or defaults["num_frames"]),
        "fps": float(fps or defaults["fps"]),
        "seed": int(seed),
    }


def _key(params: dict) -> str:
    """Cache key: the parameters, the renderer's code and data, and the encoder settings."""
    digest = hashlib.sha256(json.dumps([params, X264_PARAMS], sort_keys=True).encode())
    for source in [*sorted(Path(render_module.__file__).parent.glob("*.py")), datasets_dir() / "smoke.yaml"]:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:10]


def plan(per_action: int, width: int, height: int, num_frames: int, fps: float, seed: int) -> list[tuple[str, ClipSpec]]:
    """(case id, clip spec) for every case; characters, backgrounds and cadences rotate so all appear."""
    cast, scenes = characters(), backgrounds()
    cadences = [int(c) for c in load_yaml("smoke.yaml")["timing"]["cadences"]]
    if not 1 <= per_action <= len(cast):
        raise SuiteError(f"per_action must be between 1 and {len(cast)} (one character per repeat)")
    specs = []
    for a, action in enumerate(ACTIONS):
        for s, style in enumerate(STYLES):
            for k in range(per_action):
                character = cast[(a + s * 3 + k * 2) % len(cast)]
                background = scenes[(a + s + k) % len(scenes)]
                case_id = f"{style}_{action}_{character.name.lower()}"
                cadence = cadences[(a + s + k) % len(cadences)]
                spec = ClipSpec(character.name, action, style, background, num_frames, fps, width, height,
                                seed + len(specs), cadence)
                specs.append((case_id, spec))
    return specs


def build(folder: str | Path, **params) -> Path:
    """Render every case into ``folder`` atomically: a killed build leaves no half-built suite.

    Cases are rendered into a staging folder beside ``folder`` (permissions from the
    umask), which is renamed to ``folder`` when complete. Builds of one suite folder are
    serialised by a file lock beside it (``.<name>.lock``): a second build waits, then
    finds the suite built. Under that lock no other build of this suite can be running,
    so any staging folder of it is what a killed build left, and it is removed.
    """
    folder = Path(folder)
    with exclusive_lock(folder.with_name(f".{folder.name}.lock")):
        if (folder / MANIFEST).is_file():
            return folder  # a concurrent build finished first
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise SuiteError(f"{folder} exists and is not a smoke suite (no {MANIFEST}); build into a new or empty "
                             "folder", path=folder)
        _remove_stale_staging(folder)
        staging = make_temporary_dir(folder)
        try:
            records = [_render_case(staging, case_id, spec) for case_id, spec in plan(**params)]
            manifest = {"name": "smoke", "version": VERSION, "params": params, "cases": records}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
            os.replace(staging, folder)  # replaces an empty folder of that name too
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return folder


def _remove_stale_staging(folder: Path) -> None:
    """Staging folders of killed builds of ``folder`` (call under the build lock)."""
    legacy = re.compile(rf"\.{re.escape(folder.name)}\.[a-z0-9_]{{8}}")  # tempfile.mkdtemp's names before fsutil
    stale = temporaries_of(folder) + [p for p in folder.parent.iterdir() if legacy.fullmatch(p.name)]
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def _render_case(root: Path, case_id: str, spec: ClipSpec) -> dict:
    clip = render_clip(spec)
    video = Video(clip.frames, spec.fps).write(root / "video" / f"{case_id}.mp4")
    (root / "image").mkdir(exist_ok=True)
    # The first-frame guide is the clip's own decoded frame 0, so the ground truth matches it exactly.
    Image.fromarray(Video.read(video, max_frames=1).frames[0]).save(root / "image" / f"{case_id}.png")
    record = {
        "id": case_id,
        "prompt": describe_clip(spec),
        "label": spec.action,
        "style": spec.style,
        "video": f"video/{case_id}.mp4",
        "image": f"image/{case_id}.png",
        "metadata": clip.facts,
    }
    if clip.motion_mask is not None:
        mask_frames = (clip.motion_mask[..., None] * 255).repeat(3, axis=-1).astype("uint8")
        Video(mask_frames, spec.fps).write(root / "mask" / f"{case_id}.mp4")
        record["mask"] = f"mask/{case_id}.mp4"
        record["mask_semantics"] = "motion"
    return record
