"""Run folders as files on disk: permissions follow the umask, anyone who can read a run can report it
(read-only folder, read-only mount, another user), and what killed writes leave is cleaned up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from anibench.fsutil import exclusive_lock, make_temporary_dir, remove_stale_temporaries
from anibench.runner import run
from anibench.runspec import RunSpec
from anibench.store import RunStore
from anibench.suites import smoke

from conftest import REPO, SMALL_SMOKE

ANIBENCH = [sys.executable, "-m", "anibench"]
NOBODY = 65534
TINY_SMOKE = {"per_action": 1, "width": 64, "height": 48, "num_frames": 9, "fps": 8.0, "seed": 0}


def small_run(out: Path) -> Path:
    spec = RunSpec(suite=SMALL_SMOKE, generators=["reference", "static"], conditions=["i2v"],
                   scorers=["temporal_flickering", "guide_psnr"], limit=2)
    results = run(spec, out)
    assert results['failures'] == [] and results['counts']['items_by_status'] == {'generated': 4}, results['failures']
    return out


def modes(root: Path) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {"file": set(), "dir": set()}
    for path in root.rglob("*"):
        found["dir" if path.is_dir() else "file"].add(stat.S_IMODE(path.stat().st_mode))
    return found


# -- permissions -----------------------------------------------------------------------------
def test_every_file_and_folder_of_a_run_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        out = small_run(tmp_path / "run")
    finally:
        os.umask(old)
    names = {p.relative_to(out).parts[0] for p in out.rglob("*")}
    assert {"results.json", "samples.jsonl", "videos", "guides", "anibench.sqlite", "run.lock"} <= names
    assert any(out.glob("videos/*/i2v/seed0/*.mp4")) and any(out.glob("guides/i2v/*/0.jpg"))
    # 0o666 and 0o777 minus the umask, not tempfile's 0o600 / 0o700
    assert modes(out) == {"file": {0o640}, "dir": {0o750}}


def test_the_smoke_suite_is_built_with_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        folder = smoke.build(tmp_path / "suite", **TINY_SMOKE)
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # the staging folder renamed into place
    assert modes(folder) == {"file": {0o644}, "dir": {0o755}}
    assert len(json.loads((folder / "manifest.json").read_text())["cases"]) == 18


# -- reading as someone who cannot write -----------------------------------------------------
def _can(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _drop_write_capabilities() -> None:
    """Run as root without the capabilities that bypass file permissions (dac_override, dac_read_search, fowner)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


MOUNT_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


class Reader:
    """Runs commands as someone who can read a run folder but not write it, as far as this machine allows.

    As root: inside a private mount namespace where the folder is a read-only bind mount
    (when ``unshare`` may), as user 65534 when that user can run this Python (else as root
    without the capabilities that bypass permissions, the folder then owned by 65534).
    Not root: the folder made read-only, read by this user.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        root = os.geteuid() == 0
        self.as_nobody = root and _can(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                        sys.executable, "-c", "import anibench"])
        self.mounts = root and _can(["unshare", "-m", "sh", "-c", MOUNT_READ_ONLY, str(folder.parent), "true"])
        for path in [folder, *folder.rglob("*")]:
            if root:
                os.chown(path, 0 if self.as_nobody else NOBODY, 0 if self.as_nobody else NOBODY, follow_symlinks=False)
            path.chmod(0o555 if path.is_dir() else 0o444)
        self.describe = ("read-only mount, " if self.mounts else "") + (
            "user 65534, folder owned by root" if self.as_nobody else
            "root without permission-bypassing capabilities, folder owned by 65534" if root else "read-only folder")

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        prefix = ["unshare", "-m", "sh", "-c", MOUNT_READ_ONLY, str(self.folder)] if self.mounts else []
        if self.as_nobody:
            prefix += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        preexec = _drop_write_capabilities if os.geteuid() == 0 and not self.as_nobody else None
        env = {**os.environ, "HOME": str(self.folder.parent)}
        return subprocess.run(prefix + argv, preexec_fn=preexec, capture_output=True, text=True, timeout=300, env=env,
                              cwd=self.folder.parent, **kwargs)


def listing(root: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
            for p in [root, *root.rglob("*")]}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return small_run(tmp_path_factory.mktemp("finished") / "run")


@pytest.fixture
def shared_area():
    """A folder every user can reach (pytest's own temporary folders are private to their owner)."""
    area = Path(tempfile.mkdtemp(prefix="anibench-shared-", dir="/tmp"))
    area.chmod(0o755)
    (area / "out").mkdir(mode=0o777)
    (area / "out").chmod(0o777)
    yield area
    for path in [area, *area.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(area)


@pytest.mark.parametrize("store_state", ["settled", "as left by a run"])
def test_a_read_only_run_of_another_user_reports(finished_run, shared_area, store_state):
    folder = shared_area / "run"
    shutil.copytree(finished_run, folder)
    if store_state == "settled":  # what the runner leaves once it settles the store at the end of a run
        store = RunStore.in_dir(folder)
        store.finish()
        store.close()
        assert sorted(p.name for p in folder.glob("anibench.sqlite*")) == ["anibench.sqlite"]
    reader = Reader(folder)
    before = listing(folder)

    probe = reader.run([sys.executable, "-c", f"open({str(folder / 'probe')!r}, 'w')"])
    assert probe.returncode != 0 and ("Permission denied" in probe.stderr or "Read-only" in probe.stderr), \
        f"{reader.describe}: the reader could write in the run folder"

    done = reader.run([*ANIBENCH, "report", str(folder), "--resamples", "50", "--html", "out/index.html"])
    assert done.returncode == 0, f"{reader.describe}:\n{done.stderr}"
    assert "| reference | i2v |" in done.stdout and "temporal_flickering" in done.stdout
    assert (shared_area / "out" / "index.html").stat().st_size > 5000
    gate = reader.run([*ANIBENCH, "gate", "--baseline", str(folder), "--candidate", str(folder),
                       "--baseline-model", "reference", "--candidate-model", "static"])
    # two cases cannot make a difference significant: the gate reads both sides and passes
    assert gate.returncode == 0 and "quality gate: PASSED (2 check(s), 0 failure(s))" in gate.stdout, gate.stderr
    assert listing(folder) == before  # reading wrote nothing, not even SQLite's -shm


def test_a_killed_run_in_a_read_only_folder_reports_with_partial(finished_run, shared_area):
    """A kill -9 leaves the last scores in anibench.sqlite-wal: read from a private copy, never in place."""
    folder = shared_area / "run"
    shutil.copytree(finished_run, folder)
    (folder / "results.json").unlink()  # interrupted before it finished
    live = RunStore.in_dir(folder)  # an open writer keeps its newest write only in the -wal file
    live.put_item_score_status("extra", "temporal_flickering", "failed", "written last")
    assert (folder / "anibench.sqlite-wal").stat().st_size > 0
    try:
        reader = Reader(folder)
        before = listing(folder)
        refused = reader.run([*ANIBENCH, "report", str(folder)])
        assert refused.returncode == 2 and "was interrupted" in refused.stderr and "--partial" in refused.stderr
        done = reader.run([*ANIBENCH, "report", str(folder), "--partial", "--by", "condition", "--resamples", "20"])
        assert done.returncode == 0, f"{reader.describe}:\n{done.stderr}"
        assert "incomplete" in done.stdout and "| static | i2v |" in done.stdout
        assert "Traceback" not in done.stderr
        assert listing(folder) == before
    finally:
        live.close()


# -- temporaries left by kill -9 ---------------------------------------------------------------
def _kill_when(process: subprocess.Popen, condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None and time.monotonic() < deadline, "the writer ended before it could be killed"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


WRITE_LONG_CLIP = """
import sys
import numpy as np
from anibench.video import Video
frames = np.random.default_rng(0).integers(0, 255, (400, 240, 320, 3), dtype=np.uint8)
Video(frames, 16).write(sys.argv[1])
"""


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    run_dir = tmp_path / "run"
    clip_dir = run_dir / "videos" / "m" / "i2v" / "seed0"
    clip_dir.mkdir(parents=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITE_LONG_CLIP, str(clip_dir / "case.mp4")], cwd=REPO)
    _kill_when(writer, lambda: any(clip_dir.glob(".part-*")))
    assert not (clip_dir / "case.mp4").exists()
    left_by_kill = sorted(clip_dir.glob(".part-*-case.mp4"))
    assert len(left_by_kill) == 1
    # what earlier anibench versions left (tempfile.mkstemp names) and a staging folder
    legacy = [run_dir / ".samples.jsonl.k2j4h5l6", run_dir / ".results.json.a8b7c6d5",
              run_dir / "guides" / "i2v" / "c" / ".part-0.jpg"]
    for path in legacy:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial")
    staging = make_temporary_dir(run_dir / "videos" / "m" / "first-last")
    (staging / "x.mp4").write_bytes(b"partial")
    outside = tmp_path / "outside.txt"
    outside.write_text("not anibench's")
    (run_dir / ".part-link").symlink_to(outside)
    kept = [run_dir / "anibench.sqlite", run_dir / "anibench.sqlite-wal", run_dir / "notes.part-1.txt",
            clip_dir / "other.mp4", run_dir / ".hidden"]
    for path in kept:
        path.write_text("keep")

    removed = remove_stale_temporaries(run_dir)

    assert sorted(removed) == sorted(left_by_kill + legacy + [staging, run_dir / ".part-link"])
    assert all(path.exists() for path in kept) and outside.read_text() == "not anibench's"
    assert not any(p.name.startswith(".part-") for p in run_dir.rglob("*"))
    assert remove_stale_temporaries(run_dir) == [] and remove_stale_temporaries(tmp_path / "missing") == []


BUILD_SMOKE = """
import sys
from anibench.suites import smoke
smoke.build(sys.argv[1], per_action=1, width=96, height=64, num_frames=33, fps=8.0, seed=0)
"""


def test_a_smoke_build_removes_what_a_killed_build_left_but_never_a_live_build(tmp_path):
    folder = tmp_path / "cache" / "smoke-tiny"
    builder = subprocess.Popen([sys.executable, "-c", BUILD_SMOKE, str(folder)], cwd=REPO)
    _kill_when(builder, lambda: any((tmp_path / "cache").glob(".part-*-smoke-tiny/video/*.mp4")))
    (killed_staging,) = (tmp_path / "cache").glob(".part-*-smoke-tiny")
    legacy = tmp_path / "cache" / ".smoke-tiny.q1w2e3r4"  # tempfile.mkdtemp's name before fsutil
    legacy.mkdir()
    other_suite = make_temporary_dir(tmp_path / "cache" / "smoke-other")  # another suite's build: not ours to touch

    lock = folder.with_name(f".{folder.name}.lock")
    release = threading.Event()
    holding = threading.Event()

    def live_build_holds_the_lock():
        with exclusive_lock(lock):
            holding.set()
            release.wait(30)

    live = threading.Thread(target=live_build_holds_the_lock)
    live.start()
    holding.wait(10)
    build = threading.Thread(target=smoke.build, args=(folder,), kwargs=TINY_SMOKE)
    build.start()
    time.sleep(0.5)
    assert build.is_alive() and killed_staging.is_dir() and legacy.is_dir()  # waits; removes nothing meanwhile
    release.set()
    live.join()
    build.join(120)
    assert not build.is_alive() and (folder / "manifest.json").is_file()
    assert not killed_staging.exists() and not legacy.exists() and other_suite.is_dir()


def test_building_into_a_folder_that_holds_something_else_is_refused(tmp_path):
    from anibench.errors import SuiteError

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep")
    with pytest.raises(SuiteError, match="exists and is not a smoke suite"):
        smoke.build(tmp_path / "mine", **TINY_SMOKE)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep"
