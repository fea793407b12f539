"""Leaderboard tables, statistics, compare and gate, from real smoke runs and a few broken ones."""

from __future__ import annotations

import json
import math

import pandas as pd
import shutil

import numpy as np
import pytest

from anibench.errors import InputError
from anibench.features import FeatureSpec
from anibench.features.pixel import sampling_params
from anibench.leaderboard.compare import compare_runs, gate, parse_max_drop
from anibench.leaderboard.data import load_board
from anibench.leaderboard.formats import latex_escape, render, to_csv, to_latex, to_markdown
from anibench.leaderboard.options import OptionError
from anibench.leaderboard.stats import bootstrap_ci, holm, paired_comparison, tied_ranks
from anibench.leaderboard.tables import ALL, Cell, Table, all_tables, grouped_table, named_table
from anibench.runner import run
from anibench.runspec import RunSpec
from anibench.scoring import Expect, FrameSampling, Scorer
from anibench.store import RunLock

from conftest import SMALL_SMOKE


# -- statistics ------------------------------------------------------------------------
def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.5, 0.1, 20), rng.normal(0.5, 0.1, 2000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4
    assert bootstrap_ci(np.array([3.0, 3.0, 3.0])) == (3.0, 3.0)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([1.0])))
    assert bootstrap_ci(small) == bootstrap_ci(small)  # seeded: tables are reproducible


def test_holm_matches_the_textbook_example():
    # Holm (1979): sorted p 0.01, 0.02, 0.03, 0.04 with m = 4 → 0.04, 0.06, 0.06, 0.06
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert math.isnan(holm([float("nan"), 0.5])[0]) and holm([float("nan"), 0.5])[1] == 0.5


def test_paired_comparison_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, 60)
    shifted = paired_comparison(a, a + 0.5 + rng.normal(0, 0.1, 60))
    assert shifted.p_value < 1e-6 and shifted.low > 0.4 and shifted.n == 60
    same = paired_comparison(a, a)
    assert same.p_value == 1.0 and same.delta == 0.0


def test_ranks_tie_where_not_significant():
    values = {"a": 0.9, "b": 0.89, "c": 0.5}
    better = {("a", "c"), ("b", "c")}
    ranks = tied_ranks(["a", "b", "c"], values, True, lambda x, y: (x, y) in better)
    assert ranks == {"a": 1, "b": 1, "c": 3}


# -- tables from real runs ----------------------------------------------------------------
def _row(table, **keys):
    return next(cells for k, cells in table.rows if all(k[name] == value for name, value in keys.items()))


def test_condition_table_has_intervals_counts_and_tied_ranks(smoke_run):
    _, out = smoke_run
    board = load_board([out])
    table = grouped_table(board, "condition")
    assert {k["condition"] for k, _ in table.rows} == {"i2v", "first-last", ALL}
    reference = _row(table, model="reference", condition=ALL)["dynamic_degree"]
    static = _row(table, model="static", condition=ALL)["dynamic_degree"]
    assert reference.low < reference.value < reference.high and reference.n == 36 and reference.n_ok == 36
    assert (reference.rank, static.rank) == (1, 2)
    flicker = {m: _row(table, model=m, condition="i2v")["temporal_flickering"].rank for m in board.models}
    assert flicker["static"] == flicker["crossfade"] == 1  # identical clips under i2v: a tie
    assert "mask_precision" not in _row(table, model="static", condition=ALL)  # applies to no clip here


def test_breakdowns_by_label_and_style(smoke_run):
    _, out = smoke_run
    board = load_board([out])
    by_label = grouped_table(board, "label")
    assert {k["label"] for k, _ in by_label.rows} == {"idle", "talking", "waving", "walking", "running", "jumping",
                                                       "turning", "camera_zoom", "camera_pan"}
    running = _row(by_label, model="reference", label="running")["dynamic_degree"]
    idle = _row(by_label, model="reference", label="idle")["dynamic_degree"]
    assert running.value == 1.0 and idle.value == 0.0 and running.n == 4  # 2 styles × 2 conditions
    by_style = grouped_table(board, "style")
    assert {k["style"] for k, _ in by_style.rows} == {"2d", "3d"}


def test_interpolated_average_over_interpolation_conditions(tmp_path):
    spec = RunSpec(suite=SMALL_SMOKE, generators=["crossfade"], conditions=["i2v", "first-last", "first-mid-last"],
                   scorers=["guide_psnr"], limit=3)
    run(spec, tmp_path / "interp")
    table = grouped_table(load_board([tmp_path / "interp"]), "condition")
    rows = {k["condition"]: cells["guide_psnr"] for k, cells in table.rows}
    assert "interp-avg" in rows and rows["interp-avg"].n == 6  # first-last + first-mid-last, 3 cases each
    expected = (rows["first-last"].value + rows["first-mid-last"].value) / 2
    assert rows["interp-avg"].value == pytest.approx(expected)


def test_published_tables_say_what_is_missing(smoke_run):
    _, out = smoke_run
    board = load_board([out])
    anisora = named_table(board, "anisora")
    assert anisora.empty and any("visual_smoothness" in n for n in anisora.notes)
    assert any("human ratings" in n for n in anisora.notes)
    vbench = named_table(board, "vbench")  # the weight-free stand-ins never fill VBench's columns
    assert vbench.empty and any("not in these runs: vbench.i2v_subject" in n for n in vbench.notes)
    assert any(n.startswith("i2v_quality, i2v_score, i2v_total not computed") for n in vbench.notes)


def test_vbench_totals_follow_the_normalisation(smoke_run, tmp_path):
    """With every dimension present the totals are VBench's weighted, normalised means."""
    from anibench.leaderboard.tables import Cell, Table, _add_vbench_totals
    from anibench.resources import load_yaml

    dims = load_yaml("vbench_constants.yaml")["dimensions"]
    cells = {d: Cell(0.9) for d in dims}
    table = Table("vbench", "t", ["model"], list(dims), rows=[({"model": "m"}, cells)])
    _add_vbench_totals(table)
    norm = {d: (0.9 - v["min"]) / (v["max"] - v["min"]) * v["weight"] for d, v in dims.items()}
    quality = sum(norm[f"vbench.{d}"] for d in ("subject_consistency", "background_consistency", "motion_smoothness",
                                                "aesthetic_quality", "imaging_quality", "dynamic_degree")) / 5.5
    i2v = (norm["vbench.camera_motion"] + norm["vbench.i2v_subject"] + norm["vbench.i2v_background"]) / 2.1
    assert cells["i2v_quality"].value == pytest.approx(quality)
    assert cells["i2v_total"].value == pytest.approx((quality + i2v) / 2)


def test_vbench_table_cells_are_vbench_aggregates():
    """Frame-weighted consistency and imaging quality / 100 as VBench aggregates them, per row and in `all`."""
    from anibench.leaderboard.data import Board

    rows = []
    for condition, clips in {"i2v": [(0.9, 9.0, 10), (0.5, 1.0, 2)], "first-last": [(0.7, 7.0, 10)]}.items():
        for i, (value, frame_sum, count) in enumerate(clips):
            common = {"model": "m", "condition": condition, "case_id": f"c{i}", "label": None, "style": None,
                      "seed": 0, "status": "ok", "run": "r"}
            rows.append({**common, "scorer": "vbench.subject_consistency", "value": value,
                         "details": {"frame_sum": frame_sum, "frame_count": count}})
            rows.append({**common, "scorer": "vbench.imaging_quality", "value": 100 * value, "details": {}})
    scorers = {"vbench.subject_consistency": {"aggregate": "frame_weighted", "higher_is_better": True},
               "vbench.imaging_quality": {"aggregate": "mean_of_percent", "higher_is_better": True}}
    table = named_table(Board(pd.DataFrame(rows), scorers, runs=[]), "vbench", resamples=50)
    i2v = _row(table, model="m", condition="i2v")
    assert i2v["vbench.subject_consistency"].value == pytest.approx(10 / 12)  # not the case mean 0.7
    assert i2v["vbench.imaging_quality"].value == pytest.approx(0.7)
    everything = _row(table, model="m", condition=ALL)
    assert everything["vbench.subject_consistency"].value == pytest.approx(17 / 22)
    assert any("frame_weighted" in n for n in table.notes)
    assert "i2v_total" not in everything  # seven dimensions are missing: no total
    total = next(n for n in table.notes if n.startswith("i2v_quality not computed"))
    assert "vbench.dynamic_degree" in total and "count a missing dimension as 0" in total


def test_human_ratings_column(smoke_run, tmp_path):
    _, out = smoke_run
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("model,case_id,rating\nreference,2d_idle_aki,4\nreference,3d_idle_ren,5\nstatic,2d_idle_aki,1\n")
    board = load_board([out], ratings=ratings)
    table = named_table(board, "anisora")
    assert _row(table, model="reference", condition=ALL)["human_evaluation"].value == 4.5
    bad = tmp_path / "bad.csv"
    bad.write_text("model,case_id,rating\nreference,x,great\n")
    with pytest.raises(InputError, match="not numbers"):
        load_board([out], ratings=bad)


def test_every_format_renders(smoke_run):
    _, out = smoke_run
    tables = all_tables(load_board([out]), resamples=200)
    main = tables[0]
    md = to_markdown(main)
    assert md.startswith("## Scores by model and condition") and "#1" in md and "[" in md
    csv_text = to_csv(main)
    head = csv_text.splitlines()[0]
    assert head.startswith("model,condition,") and head.endswith(",n,missing")
    assert ",dynamic_degree,dynamic_degree_low,dynamic_degree_high,dynamic_degree_n_ok,dynamic_degree_rank," in head
    latex = to_latex(main)
    assert r"\begin{tabular}" in latex and r"\textbf{" in latex and r"dynamic\_degree" in latex
    payload = json.loads(render(tables, "json"))
    assert payload["tables"][0]["id"] == "by-condition" and payload["tables"][0]["rows"]


# -- runs that cannot simply be put side by side ------------------------------------------
def test_runs_over_different_conditions_are_refused_or_intersected(smoke_run, tmp_path):
    _, out = smoke_run
    other = tmp_path / "i2v-only"
    run(RunSpec(suite=SMALL_SMOKE, generators=["static"], conditions=["i2v"], scorers=["temporal_flickering"]), other)
    with pytest.raises(InputError, match="different cases or conditions.*--intersect"):
        load_board([out, other])
    board = load_board([out, other], intersect=True)
    assert set(board.samples["condition"]) == {"i2v"}
    assert any("--intersect" in n and "dropped" in n for n in board.notes)
    assert "static@i2v-only" in board.models and "static@" + out.name in board.models
    assert any("run i2v-only has no" in n for n in board.notes)  # the second run lacks most scorers
    table = grouped_table(board, "condition")
    assert "dynamic_degree" not in _row(table, model="static@i2v-only", condition="i2v")


def test_unusable_runs_are_listed_and_the_rest_is_reported(smoke_run, tmp_path):
    _, out = smoke_run
    busy = tmp_path / "busy"
    shutil.copytree(out, busy)
    empty = tmp_path / "empty"
    shutil.copytree(out, empty)
    (empty / "samples.jsonl").write_text("")
    with RunLock(busy):
        board = load_board([out, busy, empty, tmp_path / "nothing"])
        reasons = dict(board.excluded)
        assert "still in progress" in reasons[str(busy)] and "--partial" in reasons[str(busy)]
        assert "has no clips" in reasons[str(empty)]
        assert "not a run directory" in reasons[str(tmp_path / "nothing")]
        assert [r.name for r in board.runs] == [out.name]
        partial = load_board([busy], partial=True)
        assert not partial.runs[0].complete and partial.runs[0].in_progress
    with pytest.raises(InputError, match="nothing to report"):
        load_board([empty])


def test_nan_scores_count_as_failed(smoke_run, tmp_path):
    _, out = smoke_run
    copy = tmp_path / "nan"
    shutil.copytree(out, copy)
    lines = (copy / "samples.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["value"] = float("nan")
    lines[0] = json.dumps(first)
    (copy / "samples.jsonl").write_text("\n".join(lines) + "\n")
    board = load_board([copy])
    assert any("NaN" in n for n in board.notes)
    table = grouped_table(board, "condition")
    cell = _row(table, model=first["model"], condition=first["condition"])[first["scorer"]]
    assert cell.n_missing == 1 and any("no value for 1 of" in n for n in table.notes)


# -- compare and gate ---------------------------------------------------------------------
def test_gate_fails_a_degraded_candidate_and_says_why(smoke_run):
    _, out = smoke_run
    comparisons = compare_runs(out, out, model_a="reference", model_b="static")
    result = gate(comparisons, 0.01)
    assert not result.passed
    failing = " ".join(result.failures)
    assert "dynamic_degree" in failing and "guide_psnr" in failing and "Holm-adjusted p" in failing
    assert "temporal_flickering" not in failing  # static is better there, not worse
    assert gate(comparisons, {"*": 100.0}).passed  # nothing drops by more than that


def test_gate_passes_a_rerun_of_the_same_model(smoke_run, reference_rerun):
    _, out = smoke_run
    comparisons = compare_runs(out, reference_rerun, model_a="reference", model_b="reference")
    result = gate(comparisons, 0.0)
    assert result.passed, result.report()
    pooled = [c for c in comparisons.comparisons if c.condition == ALL and c.delta is not None]
    assert pooled and all(c.delta == 0.0 and c.p_value == 1.0 for c in pooled)


def test_gate_fails_when_the_candidate_lacks_a_scorer(smoke_run, tmp_path):
    _, out = smoke_run
    thin = tmp_path / "thin"
    run(RunSpec(suite=SMALL_SMOKE, generators=["reference"], scorers=["temporal_flickering"]), thin)
    comparisons = compare_runs(out, thin, model_a="reference", model_b="reference")
    result = gate(comparisons)
    assert not result.passed and any("has no dynamic_degree" in f for f in result.failures)
    assert gate(comparisons, allow_missing=True).passed


def test_max_drop_parsing():
    assert parse_max_drop(["0.02", "guide_psnr=0.5"]) == {"*": 0.02, "guide_psnr": 0.5}
    with pytest.raises(InputError):
        parse_max_drop(["psnr=lots"])


def test_compare_needs_model_names_when_ambiguous(smoke_run, tmp_path):
    _, out = smoke_run
    with pytest.raises(InputError, match="comparing model 'static' of one run with itself"):
        compare_runs(out, out, model_a="static", model_b="static")
    with pytest.raises(InputError, match="has no model 'nope'"):
        compare_runs(out, out, model_a="nope", model_b="static")


# -- hardening: option checks, LaTeX, labels, descriptive scorers -----------------------------
def test_max_drop_refuses_values_that_would_pass_anything_or_fail_everything():
    for bad in (["nan"], ["inf"], ["-0.01"], ["guide_psnr=nan"], ["=0.2"], [float("nan")]):
        with pytest.raises(OptionError) as raised:
            parse_max_drop(bad)
        assert raised.value.option == "--max-drop"
    assert parse_max_drop([0, "guide_psnr=0"]) == {"*": 0.0, "guide_psnr": 0.0}


def test_the_gate_refuses_a_bad_alpha_and_drops_for_scorers_the_runs_lack(smoke_run):
    _, out = smoke_run
    comparisons = compare_runs(out, out, model_a="reference", model_b="static", resamples=50)
    with pytest.raises(OptionError, match="no scorer 'guide_pnsr'"):
        gate(comparisons, ["0.01", "guide_pnsr=0.5"])
    with pytest.raises(OptionError, match="between 0 and 1"):
        gate(comparisons, 0.01, alpha=1.0)
    with pytest.raises(OptionError, match="between 0 and 1"):
        compare_runs(out, out, model_a="reference", model_b="static", alpha=float("nan"))
    # the drop NaN used to let this regression through; 0.01 fails it, as the README says
    assert not gate(comparisons, 0.01).passed


def test_latex_escapes_every_special_character():
    hostile = r"m$1 {x} ~a^b & 50% #2 _c \d <e> |f|"
    table = Table("t", f"title {hostile}", ["model"], ["s_1"], rows=[({"model": hostile}, {"s_1": Cell(0.5)})])
    latex = to_latex(table)
    row = next(line for line in latex.splitlines() if "0.500" in line)
    assert row.startswith(r"m\$1 \{x\} \textasciitilde{}a\textasciicircum{}b \& 50\% \#2 \_c \textbackslash{}d "
                          r"\textless{}e\textgreater{} \textbar{}f\textbar{} & 0.500")
    assert latex_escape(r"\{") == r"\textbackslash{}\{"  # one pass: a replacement's braces are not escaped again
    caption = next(line for line in latex.splitlines() if line.startswith(r"\caption"))
    assert caption.count("{") == caption.count("}") and "$1" not in caption.replace(r"\$1", "")


def test_cases_without_a_label_or_style_group_as_none(smoke_run, tmp_path):
    _, out = smoke_run
    copy = tmp_path / "partly-labelled"
    shutil.copytree(out, copy)
    lines = [json.loads(line) for line in (copy / "samples.jsonl").read_text().splitlines()]
    for record in lines:
        if record["case_id"].startswith("2d_"):
            record["label"], record["style"] = None, float("nan")  # as a manifest without them gives
    (copy / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    board = load_board([copy])
    assert set(board.samples["style"].dropna()) == {"3d"} and board.samples["label"].isna().any()
    by_label = grouped_table(board, "label", resamples=50)
    by_style = grouped_table(board, "style", resamples=50)
    assert "(none)" in {k["label"] for k, _ in by_label.rows} and {k["style"] for k, _ in by_style.rows} == {"3d", "(none)"}
    none_row = _row(by_style, model="reference", style="(none)")["dynamic_degree"]
    assert none_row.n == 18  # 9 two-d cases × 2 conditions


class MeanLevel(Scorer):
    """Mean pixel value / 255: a measured property of a clip, neither better nor worse (descriptive)."""

    name = "mean_level_test"
    version = "1"
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, None
    expectations = {"reverse": Expect.NONE, "shuffle": Expect.NONE}

    def features(self, sample):
        return [FeatureSpec.of("frames.sampled", **sampling_params(self.sampling))]

    def compute(self, sample):
        _, frames = sample.frames(self.sampling)
        return self.result(float(frames.mean()) / 255.0)


@pytest.fixture(scope="module")
def descriptive_run(tmp_path_factory):
    from anibench.scoring import SCORERS

    SCORERS.register(MeanLevel.name, MeanLevel, replace=True)
    out = tmp_path_factory.mktemp("descriptive") / "run"
    run(RunSpec(suite=SMALL_SMOKE, generators=["reference", "static"], conditions=["i2v"],
                scorers=[MeanLevel.name, "dynamic_degree"]), out)
    yield out
    SCORERS.unregister(MeanLevel.name)  # other modules list every registered scorer


def test_a_descriptive_scorer_has_no_rank_and_no_arrow(descriptive_run):
    board = load_board([descriptive_run])
    assert board.scorers[MeanLevel.name]["higher_is_better"] is None
    table = grouped_table(board, "condition", resamples=50)
    cells = _row(table, model="reference", condition="i2v")
    assert cells[MeanLevel.name].value is not None and cells[MeanLevel.name].rank is None
    assert cells["dynamic_degree"].rank == 1
    header = to_markdown(table).splitlines()[2]
    assert "| dynamic_degree ↑ |" in header and f"| {MeanLevel.name} |" in header  # no arrow: no direction
    assert any(n.startswith("descriptive, no better or worse") and MeanLevel.name in n for n in table.notes)
    latex = to_latex(table)
    assert r"dynamic\_degree$\uparrow$ & mean\_level\_test & $n$" in latex


def test_compare_shows_a_descriptive_change_without_a_verdict_and_the_gate_skips_it(descriptive_run):
    comparisons = compare_runs(descriptive_run, descriptive_run, model_a="reference", model_b="static", resamples=50)
    level = next(c for c in comparisons.comparisons if c.scorer == MeanLevel.name and c.condition == ALL)
    assert level.delta is not None and level.delta != 0 and level.p_value is not None
    assert level.worsening is None and level.verdict() == "– (descriptive: no better or worse)"
    result = gate(comparisons, 0.0)
    assert not result.passed and all(MeanLevel.name not in f for f in result.failures)
    assert all(c.scorer != MeanLevel.name for c in result.checked)
    assert any(n.startswith(f"not gated: {MeanLevel.name} (descriptive") for n in result.notes)
    assert "not gated" in result.report()
    with pytest.raises(OptionError, match="descriptive"):
        gate(comparisons, {MeanLevel.name: 0.1})
