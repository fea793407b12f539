"""Every hostile input of the corpus (tests/hostile_inputs.py) through the real command line.

For each corpus suite: ``suite show``, ``run`` (static and reference, i2v and first-last),
the same ``run`` again (a resume must change nothing), ``score`` on the suite's clips and
``report``, in-process through typer's runner, each under a deadline. Each malformed case
must be reported with its fragment, its case and its file; each good case must be scored;
no output may hold a traceback. One command runs as a subprocess to show stderr stays clean.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anibench.cli import app
from anibench.suite import printable

from hostile_inputs import LOAD, NA, RUN, RUN_SCORERS, SCORE, SCORE_SCORERS, CorpusSuite, build_corpus

SUITES = ("folder", "manifest", "prompts", "gbk")
DEADLINE_S = 120


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, CorpusSuite]:
    return build_corpus(tmp_path_factory.mktemp("hostile"))


@contextmanager
def deadline(seconds: int):
    """Raise TimeoutError in this thread if the block runs longer than ``seconds`` (a hang fails, not blocks)."""

    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def anibench(*args) -> str:
    """``anibench ARGS`` in-process: its output; fails on a non-zero exit, an exception or a traceback."""
    with deadline(DEADLINE_S):
        result = CliRunner().invoke(app, [str(a) for a in args])
    shown = f"anibench {' '.join(map(str, args))}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{shown}\n{result.exception!r}"
    assert result.exit_code == 0, shown
    assert "Traceback" not in result.output, shown
    return result.output


def _samples(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()]


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text(encoding="utf-8"))


def _scorer_flags(scorers) -> list[str]:
    return [arg for name in scorers for arg in ("-s", name)]


def _why(what, records: list[dict]) -> str:
    return f"{what}\n" + "\n".join(f"    {r['item_id']} · {r['scorer']}: {r['status']} {r['message']}" for r in records)


class Problems(list):
    """Every failed check of a test, so one run lists them all; ``phase`` records an aborted step."""

    def check(self, ok: bool, what) -> None:
        if not ok:
            self.append(str(what))

    @contextmanager
    def phase(self, name: str):
        try:
            yield
        except AssertionError as exc:
            self.append(f"{name} aborted: {exc}")


def check_show(suite: CorpusSuite, problems: Problems) -> None:
    shown = json.loads(anibench("suite", "show", suite.spec, *suite.opt_args(), "--json"))
    invalid = {c["id"]: c["error"] for c in shown["suite"]["invalid_cases"]}
    refused = [b for b in suite.bad if b.stage == LOAD]
    problems.check(set(invalid) == {b.case for b in refused},
                   f"show: refused {sorted(set(invalid) ^ {b.case for b in refused})} unlike the corpus")
    for bad in refused:
        error = invalid.get(bad.case, "")
        problems.check(bad.fragment in error and bad.file in error and f"case {bad.case!r}" in error,
                       f"show: {bad}\n    {error}")
    problems.check(set(suite.good) <= {c["id"] for c in shown["cases"]}, "show: a good case is missing")
    table = anibench("suite", "show", suite.spec, *suite.opt_args())
    for name in [*suite.good, *(b.case for b in refused)]:
        problems.check(name in table, f"show: {name!r} is not shown as it is")
    for bad in refused:
        problems.check(bad.fragment in table, f"show: the table lacks {bad.fragment!r}")


def check_run(suite: CorpusSuite, samples: list[dict], problems: Problems) -> None:
    by_case: dict[str, list[dict]] = {}
    for record in samples:
        by_case.setdefault(record["case_id"], []).append(record)
        problems.check("Traceback" not in (record["message"] or ""), f"run: a traceback in {record['item_id']}")
    per_case = 2 * 2 * len(RUN_SCORERS)  # generators x conditions x scorers
    for case in suite.good:
        records = by_case.get(case, [])
        problems.check(len(records) == per_case and all(r["status"] == "ok" for r in records),
                       _why(f"run: good case {case!r} not scored", records))
    for bad in suite.bad:
        records = by_case.get(bad.case, [])
        failed = [r for r in records if r["status"] == "failed"]
        if bad.stage == LOAD:
            problems.check(len(records) == per_case == len(failed)
                           and all(bad.fragment in r["message"] and bad.file in r["message"] for r in failed),
                           _why(f"run: {bad}", records))
        elif bad.stage == RUN:
            problems.check(any(bad.fragment in r["message"] and bad.file in r["message"] for r in failed)
                           and all(f"case {bad.case!r}" in r["message"] for r in failed), _why(f"run: {bad}", records))
        elif bad.stage == NA:
            problems.check(any(r["status"] == NA and bad.fragment in r["message"] for r in records),
                           _why(f"run: {bad}", records))


def check_score(suite: CorpusSuite, samples: list[dict], problems: Problems) -> None:
    recorded: dict[str, list[dict]] = {}
    for record in samples:
        recorded.setdefault(Path(record["video"]).name, []).append(record)
        problems.check("Traceback" not in (record["message"] or ""), f"score: a traceback in {record['item_id']}")
    # a clip is recorded under its name or, for a symlink, its target's; names that are not text, escaped
    given = {printable(p.name): printable(Path(os.path.realpath(p)).name)
             for p in suite.clips.iterdir() if p.suffix in (".mp4", ".mkv")}
    by_clip = {name: recorded.get(name) or recorded.get(target, []) for name, target in given.items()}
    problems.check(all(by_clip.values()), f"score: clips given but not recorded: {[n for n, r in by_clip.items() if not r]}")
    for case, clip in suite.good.items():
        records = by_clip.get(clip, [])
        statuses = {r["scorer"]: r["status"] for r in records}
        problems.check(len(records) == len(SCORE_SCORERS) and statuses.get("temporal_flickering") == "ok"
                       and set(statuses.values()) <= {"ok", NA} and all(r["case_id"] == case for r in records),
                       _why(f"score: good case {case!r} ({clip}) not scored as its case", records))
    for bad in suite.bad:
        if bad.clip is None or bad.stage == NA:
            continue
        records = by_clip.get(bad.clip, [])
        failed = [r for r in records if r["status"] == "failed"]
        if bad.stage == LOAD:
            problems.check(records and len(failed) == len(records) and all(bad.fragment in r["message"] for r in failed),
                           _why(f"score: {bad}", records))
        else:
            problems.check(any(bad.fragment in r["message"] and bad.file in r["message"] for r in failed),
                           _why(f"score: {bad}", records))


@pytest.mark.parametrize("name", SUITES)
def test_every_hostile_case_is_reported_and_every_good_case_scored(corpus, tmp_path, name):
    suite, problems = corpus[name], Problems()
    with problems.phase("suite show"):
        check_show(suite, problems)

    run_dir = tmp_path / "run"
    command = ["run", "--suite", suite.spec, *suite.opt_args(), "-g", "static", "-g", "reference",
               "-c", "i2v", "-c", "first-last", *_scorer_flags(RUN_SCORERS), "--out", run_dir, "--no-report"]
    with problems.phase("run"):
        anibench(*command)
        samples, results = _samples(run_dir), _results(run_dir)
        check_run(suite, samples, problems)
        anibench(*command)  # a resume over the same suite changes nothing
        problems.check(_results(run_dir)["results"] == results["results"], "resume: results.json 'results' changed")
        problems.check(_samples(run_dir) == samples, "resume: samples.jsonl changed")

    score_dir = tmp_path / "score"
    with problems.phase("score"):
        anibench("score", suite.clips, "--suite", suite.spec, *suite.opt_args(), "--model", "given",
                 *_scorer_flags(SCORE_SCORERS), "--out", score_dir, "--no-report")
        check_score(suite, _samples(score_dir), problems)

    for folder in (run_dir, score_dir):
        with problems.phase(f"report {folder.name}"):
            page = tmp_path / f"{folder.name}.html"
            report = anibench("report", folder, "--resamples", "50", "--html", page)
            problems.check("Scores by model and condition" in report and page.stat().st_size > 0,
                           f"report {folder.name}: no table or page")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


def test_no_traceback_reaches_stderr_of_a_real_process(corpus, tmp_path):
    suite = corpus["folder"]
    done = subprocess.run(
        [sys.executable, "-m", "anibench", "run", "--suite", suite.spec, "-g", "static", "-c", "i2v",
         "-s", "temporal_flickering", "--out", str(tmp_path / "run"), "--no-report"],
        capture_output=True, text=True, timeout=DEADLINE_S,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    good = [r for r in _samples(tmp_path / "run") if r["case_id"] in suite.good]
    assert len(good) == len(suite.good) and all(r["status"] == "ok" for r in good), good


def test_the_corpus_covers_at_least_45_distinct_malformed_cases(corpus):
    malformed = {(name, bad.case, bad.fragment) for name, suite in corpus.items() for bad in suite.bad}
    assert len(malformed) >= 45
    stages = {bad.stage for suite in corpus.values() for bad in suite.bad}
    assert stages == {LOAD, RUN, SCORE, NA}
