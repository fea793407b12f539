"""Hostile run folders and command-line options, through the real command line.

Each case damages a copy of a real run (or passes an option a user might get wrong) and runs
``report``, ``compare``, ``gate`` or a resuming ``score``, in-process through typer's runner
and, for a few, as a subprocess. Each must end with the expected exit status, a message that
names the file or the option and says what to do, no traceback, and files that anibench must
not touch left byte for byte as they were.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from typer.testing import CliRunner

from anibench.cli import app
from anibench.runner import run
from anibench.runspec import RunSpec
from anibench.store import RunStore
from anibench.video import Video

from conftest import REPO, SMALL_SMOKE, moving_square

ANIBENCH = [sys.executable, "-m", "anibench"]
SCORERS = ["temporal_flickering", "guide_psnr"]


@dataclass
class Runs:
    smoke: Path  # reference and static, i2v, 3 cases
    loose: Path  # one model, two clips scored without a suite
    clips: Path  # the loose run's clips
    locked: Callable[[Path], subprocess.Popen]


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process that holds ``run_dir``'s run lock until it is killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom anibench.store import RunLock\n"
         "with RunLock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)", str(run_dir)],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("hostile-runs")
    smoke = root / "smoke"
    run(RunSpec(suite=SMALL_SMOKE, generators=["reference", "static"], conditions=["i2v"], scorers=SCORERS, limit=3),
        smoke)
    clips = root / "clips"
    for i in range(2):
        Video(moving_square(9, 48, 64, step=1.0 + i, seed=i), 8.0).write(clips / f"clip{i}.mp4")
    loose = root / "loose"
    result = CliRunner().invoke(app, ["score", str(clips), "--out", str(loose), "--model", "solo",
                                      "--scorer", "temporal_flickering", "--no-report"])
    assert result.exit_code == 0, result.output
    return Runs(smoke, loose, clips, _hold_lock)


# -- damage ------------------------------------------------------------------------------------
def _store(run_dir: Path) -> Path:
    """The run's store alone: SQLite's companion files are dropped so the damage is what is read."""
    for companion in run_dir.glob(f"{RunStore.FILENAME}-*"):
        companion.unlink()
    return run_dir / RunStore.FILENAME


def truncate_store(run_dir: Path) -> None:
    path = _store(run_dir)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage_store(run_dir: Path) -> None:
    _store(run_dir).write_bytes(np.random.default_rng(3).bytes(20000))


def foreign_store(run_dir: Path) -> None:
    path = _store(run_dir)
    path.unlink()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, caption TEXT)")
        db.execute("INSERT INTO photos (caption) VALUES ('holiday')")
    db.close()


def empty_store(run_dir: Path) -> None:
    _store(run_dir).write_bytes(b"")


def scribbled_store(run_dir: Path) -> None:
    """Bytes scribbled over a b-tree page in the middle of an otherwise whole store."""
    store = RunStore.in_dir(run_dir)
    store.finish()
    store.close()
    path = _store(run_dir)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[2 * page: 2 * page + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def garbage_results(run_dir: Path) -> None:
    (run_dir / "results.json").write_text('{"config": {"kind": "run"}, "scorers": ', encoding="utf-8")


def list_results(run_dir: Path) -> None:
    (run_dir / "results.json").write_text("[1, 2, 3]\n", encoding="utf-8")


def bad_sample_line(run_dir: Path, number: int = 3) -> None:
    path = run_dir / "samples.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[number - 1] = lines[number - 1][: len(lines[number - 1]) // 2]  # cut in half, as by a full disk
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def foreign_sample_line(run_dir: Path) -> None:
    path = run_dir / "samples.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(4, '["not", "a", "record"]')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def latin1_samples(run_dir: Path) -> None:
    path = run_dir / "samples.jsonl"
    path.write_bytes(path.read_bytes() + '{"model": "caf\u00e9"}\n'.encode("latin-1"))


def lock_folder(run_dir: Path) -> None:
    (run_dir / "run.lock").unlink()
    (run_dir / "run.lock").mkdir()


def interrupted(run_dir: Path) -> None:
    (run_dir / "results.json").unlink()


def not_a_run(run_dir: Path) -> None:
    shutil.rmtree(run_dir)
    run_dir.mkdir()
    (run_dir / "holiday.jpg").write_bytes(b"\xff\xd8\xff")


def a_file(run_dir: Path) -> None:
    shutil.rmtree(run_dir)
    run_dir.write_text("not a folder")


# -- the cases ---------------------------------------------------------------------------------
@dataclass
class Case:
    """``args`` may hold ``{run}`` (the damaged copy), ``{smoke}``, ``{loose}``, ``{clips}``, ``{tmp}``."""

    id: str
    args: list[str]
    exit: int
    says: list[str]
    base: str = "smoke"  # which run the copy is of
    damage: Callable[[Path], None] | None = None
    untouched: list[str] = field(default_factory=list)  # files of the copy that must stay byte for byte
    locked: bool = False  # another process holds the copy's run lock meanwhile
    subprocess: bool = False


REPORT = ["report", "{run}", "--by", "condition", "--resamples", "20"]
RESUME = ["score", "{clips}", "--out", "{run}", "--model", "solo", "--scorer", "temporal_flickering", "--no-report"]
GATE = ["gate", "--baseline", "{smoke}", "--candidate", "{smoke}", "--baseline-model", "reference",
        "--candidate-model", "static"]
COMPARE = ["compare", "{smoke}", "{smoke}", "--model-a", "reference", "--model-b", "static"]
STORE = "anibench.sqlite"

CASES = [
    # damaged or foreign stores, read by report
    Case("report-truncated-store", REPORT, 2, ["anibench.sqlite", "truncated", "new --out"], damage=truncate_store,
         untouched=[STORE], subprocess=True),
    Case("report-garbage-store", REPORT, 2, ["anibench.sqlite", "is not an SQLite database"], damage=garbage_store,
         untouched=[STORE]),
    Case("report-foreign-sqlite", REPORT, 2, ["anibench.sqlite", "not an anibench store", "photos"],
         damage=foreign_store, untouched=[STORE]),
    Case("report-empty-store", REPORT, 2, ["anibench.sqlite", "empty (0 bytes)"], damage=empty_store,
         untouched=[STORE]),
    # ... and by a resuming score, which must refuse before writing anything
    Case("resume-garbage-store", RESUME, 2, ["anibench.sqlite", "is not an SQLite database"], base="loose",
         damage=garbage_store, untouched=[STORE], subprocess=True),
    Case("resume-truncated-store", RESUME, 2, ["anibench.sqlite", "truncated"], base="loose", damage=truncate_store,
         untouched=[STORE]),
    Case("resume-foreign-sqlite", RESUME, 2, ["not an anibench store", "never writes to it"], base="loose",
         damage=foreign_store, untouched=[STORE]),
    Case("resume-scribbled-store", RESUME, 2, ["anibench.sqlite", "the store is damaged", "SQLite"], base="loose",
         damage=scribbled_store, untouched=[STORE]),
    Case("resume-empty-store-beside-a-run", RESUME, 2, ["empty (0 bytes) but the folder holds a run's",
                                                        "results.json", "Delete anibench.sqlite"],
         base="loose", damage=empty_store, untouched=[STORE, "results.json"]),
    Case("resume-run-lock-folder", RESUME, 2, ["run.lock is a folder", "rmdir"], base="loose", damage=lock_folder),
    Case("resume-into-a-file", RESUME, 2, ["is a file, not a folder"], base="loose", damage=a_file),
    Case("resume-while-locked", RESUME, 2, ["another anibench process is running"], base="loose", locked=True,
         untouched=[STORE, "results.json", "samples.jsonl"]),
    # damaged result files
    Case("report-garbage-results", REPORT, 2, ["results.json", "not valid JSON (line 1", "rerun"],
         damage=garbage_results),
    Case("report-results-not-an-object", REPORT, 2, ["results.json", "holds a JSON list"], damage=list_results),
    Case("report-cut-sample-line", REPORT, 2, ["samples.jsonl", "line 3 is not valid JSON"], damage=bad_sample_line),
    Case("report-foreign-sample-line", REPORT, 2, ["samples.jsonl", "line 5 is not a sample record"],
         damage=foreign_sample_line),
    Case("report-samples-not-utf8", REPORT, 2, ["samples.jsonl", "not UTF-8"], damage=latin1_samples),
    Case("report-run-lock-folder", REPORT, 2, ["run.lock is a folder"], damage=lock_folder),
    # folders that are not (finished) runs
    Case("report-not-a-run", REPORT, 2, ["not a run directory (no anibench.sqlite)"], damage=not_a_run),
    Case("report-a-file", REPORT, 2, ["not a run directory (a file, not a folder)"], damage=a_file),
    Case("report-missing-folder", ["report", "{tmp}/nowhere"], 2, ["not a run directory (no such folder)"]),
    Case("report-interrupted", REPORT, 2, ["was interrupted", "--partial"], damage=interrupted),
    Case("report-locked-by-another-process", REPORT, 2, ["still in progress", "--partial"], locked=True,
         untouched=[STORE, "results.json"]),
    Case("report-partial-while-locked", [*REPORT, "--partial"], 0, ["incomplete", "| reference | i2v |"],
         locked=True, untouched=[STORE, "results.json"]),
    Case("gate-while-locked", ["gate", "--baseline", "{smoke}", "--candidate", "{run}"], 2,
         ["run B (candidate) cannot be compared", "still in progress"], locked=True),
    # report options
    Case("report-format", ["report", "{smoke}", "--format", "yaml"], 2, ["--format", "markdown, csv, latex, json",
                                                                        "'yaml'"]),
    Case("report-by", ["report", "{smoke}", "--by", "colour"], 2, ["--by", "condition, label, style", "'colour'"]),
    Case("report-media", ["report", "{smoke}", "--html", "{tmp}/p.html", "--media", "stream"], 2,
         ["--media", "link, embed", "'stream'"]),
    Case("report-resamples", ["report", "{smoke}", "--resamples", "0"], 2, ["--resamples", "1 or more"]),
    Case("report-csv-parent-is-a-file", ["report", "{smoke}", "--csv", "{smoke}/results.json/t.csv"], 2,
         ["--csv", "results.json is a file, not a folder"]),
    Case("report-html-is-a-folder", ["report", "{smoke}", "--html", "{tmp}"], 2, ["--html", "is a folder"]),
    Case("report-intersect-nothing-shared", ["report", "{smoke}", "{loose}", "--intersect"], 2,
         ["share no (case, condition) pair", "smoke has 3 case(s) (2d_idle_aki", "under i2v",
          "loose has 2 case(s) (clip0, clip1) under own"]),
    # gate and compare options
    Case("gate-max-drop-nan", [*GATE, "--max-drop", "nan"], 2, ["--max-drop", "finite number", "'nan'"],
         subprocess=True),
    Case("gate-max-drop-inf", [*GATE, "--max-drop", "guide_psnr=inf"], 2, ["--max-drop", "'guide_psnr=inf'"]),
    Case("gate-max-drop-negative", [*GATE, "--max-drop", "-0.1"], 2, ["--max-drop", "0 or more"]),
    Case("gate-max-drop-words", [*GATE, "--max-drop", "psnr=lots"], 2, ["--max-drop", "scorer=number"]),
    Case("gate-max-drop-no-name", [*GATE, "--max-drop", "=0.5"], 2, ["--max-drop", "names no scorer"]),
    Case("gate-max-drop-unknown-scorer", [*GATE, "--max-drop", "guide_pnsr=0.5"], 2,
         ["--max-drop", "no scorer 'guide_pnsr'", "guide_psnr, temporal_flickering"]),
    Case("gate-alpha-above-one", [*GATE, "--alpha", "2"], 2, ["--alpha", "between 0 and 1"]),
    Case("gate-alpha-nan", [*GATE, "--alpha", "nan"], 2, ["--alpha", "between 0 and 1"]),
    Case("compare-alpha-zero", [*COMPARE, "--alpha", "0"], 2, ["--alpha", "between 0 and 1"]),
    Case("compare-unknown-scorer", [*COMPARE, "--scorer", "dynamic_degree"], 2,
         ["--scorer", "no scorer 'dynamic_degree'"]),
    Case("compare-one-model-run-with-itself", ["compare", "{loose}", "{loose}"], 2,
         ["same run, which has one model (solo)", "--model-a/--model-b"]),
    Case("compare-with-a-non-run", ["compare", "{smoke}", "{tmp}/nowhere"], 2,
         ["run B (candidate) cannot be compared", "not a run directory"]),
    Case("compare-unknown-model", [*COMPARE[:3], "--model-a", "nope", "--model-b", "static"], 2,
         ["has no model 'nope'", "reference", "static"]),
]


def _format(args: list[str], **paths: Path) -> list[str]:
    return [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_run_folders_and_options(case: Case, runs: Runs, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(getattr(runs, case.base), target)
    if case.damage:
        case.damage(target)
    before = {name: _digest(target / name) for name in case.untouched}
    holder = runs.locked(target) if case.locked else None
    try:
        args = _format(case.args, run=target, smoke=runs.smoke, loose=runs.loose, clips=runs.clips, tmp=tmp_path)
        if case.subprocess:
            done = subprocess.run([*ANIBENCH, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)
            code, output = done.returncode, done.stdout + done.stderr
        else:
            result = CliRunner().invoke(app, args)
            assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
            code, output = result.exit_code, result.output
    finally:
        if holder:
            holder.kill()
            holder.wait()
    shown = f"anibench {' '.join(args)}\n{output}"
    assert code == case.exit, shown
    assert "Traceback" not in output, shown
    flat = " ".join(output.split())  # messages are matched whatever the terminal wrapped
    for phrase in case.says:
        assert phrase in flat, f"{phrase!r} not in:\n{shown}"
    assert {name: _digest(target / name) for name in case.untouched} == before, "a file anibench must not touch changed"


# -- repairs: what a rerun or an option fixes -----------------------------------------------------
def invoke(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result.output


def test_a_resume_rewrites_damaged_result_files(runs, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(runs.loose, target)
    garbage_results(target)
    bad_sample_line(target, 2)
    invoke("score", runs.clips, "--out", target, "--model", "solo", "--scorer", "temporal_flickering", "--no-report")
    assert "| solo | own |" in invoke("report", target, "--resamples", "20")


def test_an_empty_store_alone_is_a_run_killed_before_it_began_and_resumes(runs, tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / STORE).write_bytes(b"")
    invoke("score", runs.clips, "--out", target, "--model", "solo", "--scorer", "temporal_flickering", "--no-report")
    assert "| solo | own |" in invoke("report", target, "--resamples", "20")


def test_csv_into_a_missing_folder_creates_it(runs, tmp_path):
    target = tmp_path / "new" / "deeper" / "table.csv"
    invoke("report", runs.smoke, "--csv", target, "--resamples", "20")
    assert target.read_text().startswith("model,condition,") and (target.parent / "table-by-label.csv").is_file()


def test_runs_in_folders_of_the_same_name_are_told_apart(runs, tmp_path):
    first, second = tmp_path / "a" / "smoke", tmp_path / "b" / "smoke"
    shutil.copytree(runs.smoke, first)
    shutil.copytree(runs.smoke, second)
    text = invoke("report", first, second, "--by", "condition", "--resamples", "20")
    assert "| reference@a/smoke | i2v |" in text and "| reference@b/smoke | i2v |" in text
    assert "given twice" in invoke("report", first, first, "--by", "condition", "--resamples", "20")


def test_a_foreign_sqlite_file_is_never_changed_by_any_command(runs, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(runs.loose, target)
    foreign_store(target)
    before = _digest(target / STORE)
    for args in (RESUME, REPORT, ["report", "{run}", "--partial"], ["compare", "{run}", "{loose}"]):
        CliRunner().invoke(app, _format(args, run=target, clips=runs.clips, loose=runs.loose))
    assert _digest(target / STORE) == before
    assert sorted(p.name for p in target.glob(f"{STORE}*")) == [STORE]  # no -wal, -shm or -journal either
