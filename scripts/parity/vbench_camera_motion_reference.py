"""Run VBench-I2V's camera motion (its own code) on the parity recipe and write the fixture.

    # once: co-tracker's source at the commit torch.hub's "main" resolved to (see below)
    mkdir -p /work/parity-work/co-tracker && git -C /work/.mirror/facebookresearch+co-tracker/repo \
        archive 82e02e8029753ad4ef13cf06be7f4fc5facdda4d hubconf.py cotracker | tar -x -C /work/parity-work/co-tracker \
        && echo 82e02e8029753ad4ef13cf06be7f4fc5facdda4d > /work/parity-work/co-tracker/.commit
    flock /tmp/parity-pip.lock /work/parity-work/venv/bin/python -m pip install -c scripts/parity/constraints.txt \
        --build-constraint scripts/parity/constraints.txt -r scripts/parity/requirements-camera_motion.txt
    flock /tmp/anibench-heavy.lock /work/parity-work/venv/bin/python scripts/parity/vbench_camera_motion_reference.py

VBench (45e79ec) ``vbench2_beta_i2v/camera_motion.py`` builds its tracker with
``torch.hub.load("facebookresearch/co-tracker", "cotracker2")``: github source, no ref, so the repository's
default branch. Offline, torch.hub falls back to its cache folder ``$TORCH_HOME/hub/facebookresearch_co-tracker_main``
(``_parse_repo_info`` on URLError), which this script fills with co-tracker at 82e02e8 (main's head);
``hubconf.cotracker2`` then reads ``cotracker2.pth`` from ``$TORCH_HOME/hub/checkpoints/``
(``load_state_dict_from_url``), where the recipe's weights (tests/parity/weights_cotracker.py) are put.
Nothing of VBench or co-tracker is modified; ``compute_camera_motion`` is called on CPU with the
submodules ``init_submodules(["camera_motion"])`` returns.

The clips are tests/parity/clips.py's; VBench reads each clip's target motion from its file name, so each
is copied as ``"<name>, <camera phrase>.mp4"``. A forward hook on the predictor VBench built records the
float tracks it returns (an observer; VBench truncates them with ``.long()`` itself). Writes
tests/parity/fixtures/vbench_camera_motion.json: VBench's three return values, per video the value, the
target and predicted types, the decoded frames' sha256, the tracks of the four edge midpoints in every
frame and of every point in the last frame, and the margins that make the comparison robust (distance of
the edge midpoints to the next integer, which ``.long()`` truncates at, and of each edge shift to the
threshold). This script is never imported by anibench.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import vbench_env

FIXTURES = vbench_env.REPO / "tests" / "parity" / "fixtures"
CO_TRACKER_TREE = vbench_env.PARITY_HOME / "co-tracker"
CO_TRACKER_REPO_URL = "https://github.com/facebookresearch/co-tracker"
TOLERANCE = 1e-4
# The track tolerance (pixels): float32 coordinates of up to a few hundred pixels.
TRACK_TOLERANCE = 1e-3
GRID_SIZE = 10
# Flat indices of the edge midpoints in the row-major 10x10 grid (camera_motion.py get_edge_point).
EDGE_INDICES = {"top": 5, "down": 95, "left": 50, "right": 59}
# Target phrase per clip (VBench's seven phrases, get_type): a mix, so that 1s and 0s both occur.
TARGETS = {
    "short_96x64": "camera pans right",
    "landscape_96x64": "camera pans left",
    "portrait_64x96_cut": "camera static",
    "square_80x80": "camera zooms in",
    "downscale_320x240": "camera tilts down",
}


def prepare_hub(work: Path, seed: int) -> dict:
    """The torch.hub cache layout with co-tracker's source and the recipe's ``cotracker2.pth``."""
    from parity.weights_cotracker import cotracker2_state_dict, state_dict_sha256, write_cotracker2_checkpoint

    torch_home = work / "torch_home"
    os.environ["TORCH_HOME"] = str(torch_home)
    marker = CO_TRACKER_TREE / ".commit"
    if not marker.is_file():
        raise SystemExit(f"{CO_TRACKER_TREE} is missing: extract co-tracker (see this script's docstring)")
    repo = torch_home / "hub" / "facebookresearch_co-tracker_main"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(CO_TRACKER_TREE, repo)
    write_cotracker2_checkpoint(torch_home / "hub" / "checkpoints" / "cotracker2.pth", seed=seed)
    return {
        "cotracker2": {
            "writer": "tests/parity/weights_cotracker.py:write_cotracker2_checkpoint",
            "seed": seed,
            "format": "plain state dict (torch.save), as published",
            "state_dict_sha256": state_dict_sha256(cotracker2_state_dict(seed)),
            "placed_at": ["$TORCH_HOME/hub/checkpoints/cotracker2.pth (hubconf.cotracker2, load_state_dict_from_url)"],
        },
        "co_tracker": {"repo": CO_TRACKER_REPO_URL, "commit": marker.read_text().strip(),
                       "placed_at": "$TORCH_HOME/hub/facebookresearch_co-tracker_main (torch.hub's offline cache)"},
    }


class _TrackRecorder:
    """Adds a forward hook to the predictor each ``CameraPredict`` builds: records its (tracks, visibility)."""

    def __init__(self, module):
        self.module = module
        self.calls: list = []

    def __enter__(self):
        original = self.module.CameraPredict.__init__
        recorder = self

        def init(camera, *args, **kwargs):
            original(camera, *args, **kwargs)
            camera.model.register_forward_hook(lambda _m, _i, output: recorder.calls.append(
                (output[0].detach().clone(), output[1].detach().clone())))

        self._original = original
        self.module.CameraPredict.__init__ = init
        return self

    def __exit__(self, *exc):
        self.module.CameraPredict.__init__ = self._original


def _margins(tracks, height: int, width: int) -> dict:
    """How far the edge midpoints are from the next integer (where ``.long()`` steps; 0 for frame 0's exact
    query points is harmless, they are computed identically) and the edge shifts from the threshold."""
    first, last = tracks[0], tracks[-1]
    distances = []
    for index in EDGE_INDICES.values():
        for frame in (first, last):
            distances += [abs(value - round(value)) for value in frame[index].tolist()]
    threshold = 0.005 * min(height, width)
    shifts = []
    for index in EDGE_INDICES.values():
        shift = [math.trunc(b) - math.trunc(a) for a, b in zip(first[index].tolist(), last[index].tolist())]
        shifts += [abs(abs(s) - threshold) for s in shift]
    return {"truncation_min_distance": min(distances), "threshold_px": threshold,
            "threshold_min_distance": min(shifts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    command = "/work/parity-work/venv/bin/python scripts/parity/vbench_camera_motion_reference.py " + shlex.join(
        argv if argv is not None else sys.argv[1:])

    vbench_env.add_import_paths()
    from parity.clips import PARITY_CLIPS, ClipSpec, frames_sha256, write_parity_clips

    work = args.work or Path(tempfile.mkdtemp(prefix="vbench-camera-motion-"))
    work.mkdir(parents=True, exist_ok=True)
    weights = prepare_hub(work, args.seed)
    # A 6-frame clip (one tracker window) for the per-commit test; the parity clips (9-17 frames) need 2-4.
    short = ClipSpec("short_96x64", 96, 64, 6, seed=31, image_width=96, image_height=64)
    clips = write_parity_clips(work / "clips", (short, *PARITY_CLIPS))
    videos = work / "videos"
    videos.mkdir(exist_ok=True)
    entries, named = [], {}
    for name, clip in clips.items():
        prompt = f"{name}, {TARGETS[name]}"
        path = videos / f"{prompt}.mp4"
        shutil.copyfile(clip["video"], path)
        named[str(path)] = name
        entries.append({"prompt_en": prompt, "dimension": ["camera_motion"], "video_list": [str(path)]})
    info = work / "full_info.json"
    info.write_text(json.dumps(entries, indent=2))

    import vbench2_beta_i2v.camera_motion as camera_motion
    from vbench2_beta_i2v.utils import init_submodules, load_video

    submodules = init_submodules(["camera_motion"])["camera_motion"]
    with _TrackRecorder(camera_motion) as recorder:
        started = time.perf_counter()
        aggregate, per_type, results = camera_motion.compute_camera_motion(str(info), "cpu", submodules)
        seconds = time.perf_counter() - started
    assert len(recorder.calls) == len(results)

    out_videos = []
    for result, (tracks, visibility) in zip(results, recorder.calls):
        name = named[result["video_path"]]
        frames = load_video(result["video_path"], return_tensor=False)
        height, width = frames.shape[1:3]
        tracks = tracks[0]
        out_videos.append({
            "name": name,
            "prompt": Path(result["video_path"]).stem,
            "video_results": float(result["video_results"]),
            "prompt_type": result["prompt_type"],
            "predict_type": sorted(result["predict_type"]),
            "num_frames": int(frames.shape[0]),
            "height": int(height),
            "width": int(width),
            "decoded_sha256": frames_sha256(frames),
            "tracks_shape": list(tracks.shape),
            "edge_tracks": {edge: tracks[:, index].tolist() for edge, index in EDGE_INDICES.items()},
            "last_frame_tracks": tracks[-1].tolist(),
            "visible_last_frame": int(visibility[0, -1].sum()),
            "margins": _margins(tracks, int(height), int(width)),
        })
    fixture = {
        "dimension": "camera_motion",
        "vbench_call": "vbench2_beta_i2v.camera_motion.compute_camera_motion(full_info_json, 'cpu', "
                       "init_submodules(['camera_motion'])['camera_motion'])",
        "aggregate_rule": "np.mean over videos of 1.0 if the prompt's type is predicted else 0.0",
        "aggregate": float(aggregate),
        "per_type": {k: (None if (isinstance(v, float) and math.isnan(v)) else float(v)) for k, v in per_type.items()},
        "videos": out_videos,
        "seconds_compute_call": seconds,
        "recipe": {
            **vbench_env.environment(),
            "weights": weights,
            "clips": {
                "writer": "tests/parity/clips.py:write_parity_clips",
                "specs": [clip["spec"] for clip in clips.values()],
                "video_file_sha256": {name: clip["video_file_sha256"] for name, clip in clips.items()},
                "targets": TARGETS,
                "file_names": "'<name>, <target phrase>.mp4' (VBench reads the target from the file name)",
            },
            "command": command,
            "tolerance": TOLERANCE,
            "track_tolerance_px": TRACK_TOLERANCE,
        },
    }
    fixture["recipe"]["packages"]["matplotlib"] = vbench_env._version("matplotlib")
    fixture["recipe"]["packages"]["imageio"] = vbench_env._version("imageio")
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "vbench_camera_motion.json"
    target.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {target}: aggregate {aggregate}, per video "
          + ", ".join(f"{v['name']}={v['video_results']} {v['predict_type']}" for v in out_videos)
          + f" ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
