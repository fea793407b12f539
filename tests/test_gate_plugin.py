"""`anibench gate` and the pytest plugin, as a user's CI would run them."""

from __future__ import annotations

import subprocess
import sys

ANIBENCH = [sys.executable, "-m", "anibench"]


def test_gate_cli_fails_on_a_degraded_candidate_and_passes_a_rerun(smoke_run, reference_rerun):
    _, out = smoke_run
    degraded = subprocess.run([*ANIBENCH, "gate", "--baseline", str(out), "--candidate", str(out),
                               "--baseline-model", "reference", "--candidate-model", "static", "--max-drop", "0.01"],
                              capture_output=True, text=True, timeout=120)
    assert degraded.returncode == 1, degraded.stderr
    assert "quality gate: FAILED" in degraded.stdout and "dynamic_degree · all: dropped by" in degraded.stdout
    rerun = subprocess.run([*ANIBENCH, "gate", "--baseline", str(out), "--candidate", str(reference_rerun),
                            "--baseline-model", "reference", "--candidate-model", "reference"],
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "quality gate: PASSED" in rerun.stdout


def test_compare_cli_prints_deltas_with_intervals_and_p_values(smoke_run):
    _, out = smoke_run
    done = subprocess.run([*ANIBENCH, "compare", str(out), str(out), "--model-a", "reference", "--model-b", "crossfade"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| A → B | condition | scorer |" in done.stdout and "p (Holm)" in done.stdout
    assert "| reference → crossfade | all | dynamic_degree |" in done.stdout


def test_pytest_plugin_gates_inside_a_users_test(pytester, smoke_run, reference_rerun):
    _, out = smoke_run
    pytester.makepyfile(f'''
        def test_rerun_keeps_quality(anibench_gate):
            anibench_gate({str(out)!r}, {str(reference_rerun)!r}, baseline_model="reference",
                          candidate_model="reference")

        def test_static_is_a_regression(anibench_gate):
            anibench_gate({str(out)!r}, {str(out)!r}, baseline_model="reference", candidate_model="static",
                          max_drop={{"*": 0.01}})
    ''')
    result = pytester.runpytest_subprocess()  # the plugin loads through its pytest11 entry point
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*quality gate: FAILED*", "*FAIL reference → static · dynamic_degree · all*"])


def test_the_fixture_refuses_drops_and_levels_that_would_hide_a_regression(smoke_run):
    import pytest

    from anibench.leaderboard.options import OptionError
    from anibench.leaderboard.pytest_plugin import check_quality

    _, out = smoke_run
    for options in ({"max_drop": {"*": float("nan")}}, {"max_drop": {"guide_psnr": -1}}, {"alpha": 1.5},
                    {"max_drop": {"guide_pnsr": 0.5}}):
        with pytest.raises(OptionError):
            check_quality(out, out, baseline_model="reference", candidate_model="static", **options)
