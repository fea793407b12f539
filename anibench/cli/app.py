"""``anibench`` commands: suite, generators, scorers, generate, score, run, report."""

from __future__ import annotations

import json
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import click
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from anibench.conditions import BUILTIN_CONDITIONS
from anibench.errors import AnibenchError
from anibench.generation import GENERATORS
from anibench.runspec import RunSpec
from anibench.scoring import SCORERS, scorer_groups
from anibench.suites import SUITES, load_suite


class _Commands(TyperGroup):
    """Every command's :class:`AnibenchError` is printed as one line naming the case, file or option
    (exit status 2), in-process (tests, ``CliRunner``) as on the command line; never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AnibenchError as exc:
            _print_error(exc)
            raise typer.Exit(2) from None


def _print_error(exc: AnibenchError) -> None:
    err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True,
                  help="Benchmark and reward suite for anime video generation.")
suite_app = typer.Typer(no_args_is_help=True, help="List, inspect and build suites.")
scorers_app = typer.Typer(no_args_is_help=True, help="List scorers and check them with the perturbation battery.")
generators_app = typer.Typer(no_args_is_help=True, help="List generators.")
app.add_typer(suite_app, name="suite")
app.add_typer(scorers_app, name="scorers")
app.add_typer(generators_app, name="generators")
from anibench.cli.weights import weights_app  # noqa: E402  (anibench weights …)

app.add_typer(weights_app, name="weights")
from anibench.cli import reward_service, reward_training  # noqa: E402  (anibench reward …)

reward_app = typer.Typer(no_args_is_help=True, help="Train and evaluate reward heads, and serve rewards to RL trainers.")
reward_training.register(reward_app)
reward_service.register(reward_app)
app.add_typer(reward_app, name="reward")

# Piped output (logs, CI) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 200, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def main() -> None:
    try:
        app()
    except AnibenchError as exc:
        _print_error(exc)
        sys.exit(2)


def _options(pairs: Optional[List[str]]) -> dict:
    """``key=value`` pairs (values parsed as YAML scalars) into a dict."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected key=value, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


@contextmanager
def _progress(label: str) -> Iterator:
    columns = (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(label, total=None)

        def update(stage: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


# -- suite ------------------------------------------------------------------------------
@suite_app.command("list")
def suite_list() -> None:
    """Suite loaders available (built-in and from installed plugins)."""
    table = Table("name", "description")
    for name in SUITES.names():
        module = sys.modules.get(SUITES.get(name).__module__)
        table.add_row(name, _first_line(module.__doc__ if module else None))
    console.print(table)


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


@suite_app.command("show")
def suite_show(
    spec: str = typer.Argument("smoke", help="smoke | anisora:PATH | folder:PATH"),
    opt: Optional[List[str]] = typer.Option(None, "--opt", "-o", help="loader option key=value (e.g. prompts=p.txt)"),
    as_json: bool = typer.Option(False, "--json", help="print the cases as JSON"),
) -> None:
    """List a suite's cases: id, label, style, guides, files."""
    suite = load_suite(spec, **_options(opt))
    if as_json:
        console.print_json(json.dumps({"suite": suite.describe(), "cases": [c.describe(suite.root) for c in suite]}))
        return
    table = Table(title=f"{suite.name} v{suite.version} — {len(suite)} cases ({suite.root})")
    for column in ("id", "label", "style", "guides", "video", "mask", "prompt"):
        table.add_column(column, overflow="fold")
    for case in suite:
        guides = ", ".join(f"{g.position:g}" for g in case.guides) or "–"
        prompt = (case.prompt[:60] + "…") if len(case.prompt) > 60 else case.prompt or "(empty)"
        table.add_row(*(escape(str(v)) for v in (
            case.id, case.label or "–", case.style or "–", guides, "yes" if case.video else "–",
            case.mask_semantics.value if case.mask else "–", prompt)))
    console.print(table)
    for bad in suite.invalid:
        console.print(f"[red]invalid case[/red] {escape(str(bad.error()))}", highlight=False)


@suite_app.command("build")
def suite_build(
    name: str = typer.Argument("smoke", help="only the smoke suite is built; others are loaded from disk"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder to build into (default: the cache)"),
    per_action: Optional[int] = typer.Option(None, help="cases per action label and style"),
    width: Optional[int] = typer.Option(None),
    height: Optional[int] = typer.Option(None),
    frames: Optional[int] = typer.Option(None, help="frames per clip"),
    fps: Optional[float] = typer.Option(None),
) -> None:
    """Render the smoke suite (AniSora layout: video/, image/, mask/, manifest.json)."""
    if name != "smoke":
        raise typer.BadParameter("only 'smoke' is built; anisora and folder suites are read from disk")
    suite = load_suite("smoke" if out is None else f"smoke:{out}", per_action=per_action, width=width,
                       height=height, num_frames=frames, fps=fps)
    console.print(f"smoke suite: {len(suite)} cases in {suite.root}")


# -- plugins ----------------------------------------------------------------------------
@generators_app.command("list")
def generators_list() -> None:
    """Registered generators."""
    table = Table("name", "version", "description")
    for name in GENERATORS.names():
        cls = GENERATORS.get(name)
        table.add_row(name, cls.version, _first_line(cls.__doc__))
    console.print(table)


@generators_app.command("show")
def generators_show(spec: str = typer.Argument(..., help="name or name:key=value,... (as --generator)")) -> None:
    """A generator's parameters, resolved settings, presets, conditions and weights, as a run records them."""
    from anibench.generation import create_generator
    from anibench.runspec import PluginSpec

    plugin = PluginSpec.parse(spec)
    generator = create_generator(plugin.name, **plugin.params)
    described = generator.describe()
    presets = getattr(generator, "presets", {})
    if presets:
        described["presets"] = {name: preset.description for name, preset in presets.items()}
    console.print(escape(yaml.safe_dump(described, sort_keys=False, allow_unicode=True, width=110)), end="")


@scorers_app.command("list")
def scorers_list() -> None:
    """Registered scorers with their range, direction, inputs and sampling."""
    table = Table("name", "version", "range", "better", "inputs", "sampling", "available")
    for name in SCORERS.names():
        try:
            cls = SCORERS.get(name)
        except AnibenchError as exc:  # a registered plugin that cannot be imported here: say so, list the rest
            table.add_row(name, "", "", "", "", "", escape(_first_line(str(exc))))
            continue
        upper = "∞" if cls.upper == float("inf") else f"{cls.upper:g}"
        reason = cls.unavailable_reason()
        table.add_row(
            name, cls.version, escape(f"[{cls.lower:g}, {upper}] {cls.unit}".strip()),
            {True: "higher", False: "lower", None: "descriptive"}[cls.higher_is_better],
            ", ".join(sorted(i.value for i in cls.requires)) or "frames", cls.sampling.describe(),
            escape(_first_line(reason)) if reason else "yes",
        )
    console.print(table)
    for group, info in scorer_groups().items():
        console.print(f"group [bold]{group}[/bold] ({info['description']}): {', '.join(info['members'])}", markup=True)


@scorers_app.command("check")
def scorers_check(
    names: Optional[List[str]] = typer.Argument(None, help="scorer names (default: all available)"),
    suite: List[str] = typer.Option(["smoke"], "--suite", help="suite spec(s) to check on"),
    min_share: float = typer.Option(0.8, help="share of the informative cases that must move as declared"),
    min_informative: int = typer.Option(3, help="informative cases a check needs (and at least a quarter of its cases)"),
    max_side: int = typer.Option(320, help="shrink clips to this size first (directions do not depend on it)"),
    limit: Optional[int] = typer.Option(None, help="at most this many cases per suite"),
) -> None:
    """Run the perturbation battery: does each scorer move as it declares under controlled changes?

    A case informs a check when the perturbation visibly changed the clip and the value was not
    already at the bound it should move toward; a check with too few informative cases is
    inconclusive, and a scorer passes only if one of its up/down checks passes.
    """
    from anibench.engine import resolve_scorers
    from anibench.runspec import PluginSpec
    from anibench.sanity import battery_inputs, run_battery

    scorers, _ = resolve_scorers([PluginSpec(n) for n in names] if names else None)
    results = {"pass": "[green]pass[/green]", "fail": "[red]FAIL[/red]",
               "inconclusive": "[yellow]inconclusive[/yellow]"}
    failed = False
    for spec in suite:
        loaded = load_suite(spec)
        samples = battery_inputs(loaded, max_side=max_side, limit=limit)
        report = run_battery(scorers, samples, min_share=min_share, min_informative=min_informative)
        table = Table(title=f"perturbation battery on {spec} ({len(samples)} clips)")
        for column in ("scorer", "perturbation", "declared", "cases", "informative", "moved as declared", "errors",
                       "result"):
            table.add_column(column)
        for check in report.checks:
            if not check.cases and not check.errors:
                continue
            moved = f"{check.moved_as_declared}/{check.informative}"
            if check.informative:
                moved += f" ({check.share:.2f})"
            table.add_row(
                check.scorer, check.perturbation, check.expected.value, str(check.cases),
                f"{check.informative} (needs {check.required(min_informative)})", moved, str(check.errors),
                results[report.status(check)],
            )
        console.print(table)
        verdicts = {name: report.scorer_status(name) for name in report.scorers()}
        styles = {"pass": "green", "too few cases": "yellow"}
        console.print("scorers: " + ", ".join(
            f"{name} [{styles.get(v, 'red')}]{v}[/{styles.get(v, 'red')}]" for name, v in verdicts.items()))
        failed |= not report.passed
    raise typer.Exit(1 if failed else 0)


# -- runs -------------------------------------------------------------------------------
def _spec_from_flags(spec_file, suite, opt, generator, condition, seed, scorer, limit, case) -> RunSpec:
    """A run spec from a YAML file (if given) with command-line flags on top."""
    data = RunSpec.from_yaml(spec_file).to_dict() if spec_file else {}
    overrides = {
        "suite": suite, "generators": generator or None, "conditions": condition or None,
        "seeds": seed or None, "scorers": scorer or None, "limit": limit, "cases": case or None,
    }
    data.update({k: v for k, v in overrides.items() if v is not None})
    if opt:
        suite_spec = RunSpec(suite=data.get("suite", "smoke")).suite
        data["suite"] = {**suite_spec, **_options(opt)}
    return RunSpec.from_dict(data)


def _scorer_list(values: Optional[List[str]]) -> Optional[List[str]]:
    """``-s a -s b`` and ``--scorers a,b`` alike; a name with parameters (``a:k=v,k2=v``) stays whole."""
    if not values:
        return None
    out: list[str] = []
    for value in values:
        out += [value] if ":" in value else [v.strip() for v in value.split(",") if v.strip()]
    return out


def _runtime(device: str, dtype: str, batch_size: int):
    from anibench.runtime.context import Runtime
    from anibench.runtime.devices import parse_device, parse_dtype

    parse_device(device)  # a malformed value is refused before anything runs
    parse_dtype(dtype)
    if batch_size < 1:
        raise typer.BadParameter("--batch-size must be at least 1")
    runtime = Runtime(device=device, dtype=dtype, batch_size=batch_size)
    if (device, dtype) != ("auto", "auto"):
        runtime.selection  # a device asked for by name must exist here: say so now, not after generating
    return runtime


def _default_out(spec: RunSpec) -> Path:
    return Path("runs") / str(spec.suite.get("name", "run"))


@app.command("run")
def run_command(
    spec_file: Optional[Path] = typer.Argument(None, help="YAML run spec (flags override it)"),
    suite: Optional[str] = typer.Option(None, help="suite spec (default: smoke)"),
    opt: Optional[List[str]] = typer.Option(None, "--opt", "-o", help="suite loader option key=value"),
    generator: Optional[List[str]] = typer.Option(None, "--generator", "-g", help="name or name:key=value,..."),
    condition: Optional[List[str]] = typer.Option(None, "--condition", "-c", help=f"{', '.join(BUILTIN_CONDITIONS)}, keyframes@p,.."),
    seed: Optional[List[int]] = typer.Option(None, "--seed"),
    scorer: Optional[List[str]] = typer.Option(None, "--scorer", "--scorers", "-s",
                                               help="name, name:key=value or a comma-separated list; default: all available"),
    limit: Optional[int] = typer.Option(None, help="first N cases"),
    case: Optional[List[str]] = typer.Option(None, "--case", help="only these case ids"),
    out: Optional[Path] = typer.Option(None, "--out", help="run directory (default runs/<suite>); rerun to resume"),
    workers: int = typer.Option(2, help="threads decoding and computing clip features"),
    device: str = typer.Option("auto", help="models run on: auto, cpu, cuda[:N], npu[:N], mps"),
    dtype: str = typer.Option("auto", help="model precision: auto, fp32, bf16, fp16"),
    batch_size: int = typer.Option(16, help="inputs per model batch (never changes a score)"),
    report: bool = typer.Option(True, help="print the summary table at the end"),
) -> None:
    """Generate clips for suite × generators × conditions × seeds, score them, print the table."""
    from anibench.runner import run

    spec = _spec_from_flags(spec_file, suite, opt, generator, condition, seed, _scorer_list(scorer), limit, case)
    out = out or _default_out(spec)
    runtime = _runtime(device, dtype, batch_size)
    with _progress("clips") as update:
        results = run(spec, out, workers=workers, progress=update, command=shlex.join(sys.argv), runtime=runtime)
    _summarise(results, out, report, asked=spec.scorers is not None)


@app.command("generate")
def generate_command(
    spec_file: Optional[Path] = typer.Argument(None, help="YAML run spec (flags override it)"),
    suite: Optional[str] = typer.Option(None),
    opt: Optional[List[str]] = typer.Option(None, "--opt", "-o", help="suite loader option key=value"),
    generator: Optional[List[str]] = typer.Option(None, "--generator", "-g"),
    condition: Optional[List[str]] = typer.Option(None, "--condition", "-c"),
    seed: Optional[List[int]] = typer.Option(None, "--seed"),
    limit: Optional[int] = typer.Option(None),
    case: Optional[List[str]] = typer.Option(None, "--case"),
    out: Optional[Path] = typer.Option(None, "--out"),
) -> None:
    """Generate clips only (no scoring); ``anibench run`` on the same --out scores them later."""
    from anibench.runner import run

    spec = _spec_from_flags(spec_file, suite, opt, generator, condition, seed, None, limit, case)
    spec.scorers = []
    out = out or _default_out(spec)
    with _progress("clips") as update:
        results = run(spec, out, progress=update, command=shlex.join(sys.argv))
    _summarise(results, out, report=False)


@app.command("score")
def score_command(
    videos: List[Path] = typer.Argument(..., help="video files or folders of videos"),
    out: Path = typer.Option(..., "--out", help="run directory for scores (rerun to resume)"),
    suite: Optional[str] = typer.Option(None, help="match clips to this suite's cases by file stem"),
    opt: Optional[List[str]] = typer.Option(None, "--opt", "-o", help="suite loader option key=value"),
    condition: Optional[str] = typer.Option(None, help="guides to check against (default: the case's own)"),
    model: Optional[str] = typer.Option(None, help="model name for the table (default: the folder's name)"),
    scorer: Optional[List[str]] = typer.Option(None, "--scorer", "--scorers", "-s",
                                               help="name, name:key=value or a comma-separated list; default: all available"),
    workers: int = typer.Option(2, help="threads decoding and computing clip features"),
    device: str = typer.Option("auto", help="models run on: auto, cpu, cuda[:N], npu[:N], mps"),
    dtype: str = typer.Option("auto", help="model precision: auto, fp32, bf16, fp16"),
    batch_size: int = typer.Option(16, help="inputs per model batch (never changes a score)"),
    report: bool = typer.Option(True),
) -> None:
    """Score existing clips, with or without a suite."""
    from anibench.runner import score_videos

    loaded = load_suite(suite, **_options(opt)) if suite else None
    model = model or (videos[0].resolve().name if videos[0].is_dir() else videos[0].resolve().parent.name)
    runtime = _runtime(device, dtype, batch_size)
    with _progress("clips") as update:
        results = score_videos(videos, out, model=model, suite=loaded, condition=condition,
                               scorers=_scorer_list(scorer), runtime=runtime,
                               workers=workers, progress=update, command=shlex.join(sys.argv))
    _summarise(results, out, report, asked=bool(scorer))


def _summarise(results: dict, out: Path, report: bool, asked: bool = True) -> None:
    """The run's counts, skipped scorers and failures, then the tables. Scorers skipped from the default set
    ("every available scorer", ``asked=False``) are named on one line; those the user asked for (a group) each
    with the full reason."""
    counts = results["counts"]
    this = counts["this_invocation"]
    console.print(
        f"[bold]{out}[/bold]: {counts['items']} clips {counts['items_by_status']}; this run generated "
        f"{this['generated']}, scored {this['computed']}, reused {this['reused']} stored scores"
    )
    skipped = results.get("skipped_scorers", {})
    if skipped and not asked:
        console.print(f"[yellow]not available here ({len(skipped)}):[/yellow] {escape(', '.join(sorted(skipped)))} — "
                      "`anibench scorers list` says what each needs (most: model weights, `anibench weights list`)")
    for name, reason in skipped.items() if asked else ():
        console.print(f"[yellow]skipped {name}:[/yellow] {escape(reason)}")
    if results["failures"]:
        console.print(f"[yellow]{len(results['failures'])} failed score(s):[/yellow]")
        for failure in results["failures"][:20]:
            console.print(f"  {failure['item_id']} · {failure['scorer']}: {failure['message']}", markup=False)
        if len(results["failures"]) > 20:
            console.print(f"  … and {len(results['failures']) - 20} more in {out / 'results.json'}")
    if report:
        from anibench.leaderboard.report import summary

        print(summary(out))


@app.command("report")
def report_command(
    runs: List[Path] = typer.Argument(..., help="run directories"),
    fmt: str = typer.Option("markdown", "--format", "-f", help="markdown | csv | latex | json (to stdout)"),
    html: Optional[Path] = typer.Option(None, "--html", help="also write the HTML report to this file"),
    media: str = typer.Option("link", help="HTML clips: link (relative paths) or embed (one portable file)"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="also write every table as CSV to this file (and beside it)"),
    by: Optional[List[str]] = typer.Option(None, "--by", help="breakdowns: condition, label, style (default: all)"),
    ratings: Optional[Path] = typer.Option(None, help="human ratings CSV: model, case_id, rating [, condition]"),
    partial: bool = typer.Option(False, help="include runs still in progress or interrupted (what they hold)"),
    intersect: bool = typer.Option(False, help="runs over different cases/conditions: keep the shared pairs"),
    resamples: int = typer.Option(1000, help="bootstrap resamples per cell"),
) -> None:
    """Tables of one or more runs with 95 % intervals and tied ranks; --html writes a browsable page.

    Runs are only read (never locked or written), so read-only folders and other users' runs report.
    --csv and --html create missing parent folders.
    """
    from anibench.leaderboard.report import BREAKDOWNS, write_report

    print(write_report(runs, fmt=fmt, html=html, media=media, csv=csv, partial=partial, intersect=intersect,
                       ratings=ratings, breakdowns=by or list(BREAKDOWNS), resamples=resamples))
    if html:
        err.print(f"HTML report: {html}")


@app.command("compare")
def compare_command(
    run_a: Path = typer.Argument(..., help="baseline run directory"),
    run_b: Path = typer.Argument(..., help="candidate run directory (may be the same run, with two models)"),
    model_a: Optional[str] = typer.Option(None, help="model of run A (default: shared names, or its only model)"),
    model_b: Optional[str] = typer.Option(None, help="model of run B"),
    scorer: Optional[List[str]] = typer.Option(None, "--scorer", "-s", help="only these scorers"),
    alpha: float = typer.Option(0.05, help="significance level in (0, 1), after Holm correction"),
    partial: bool = typer.Option(False, help="include runs still in progress or interrupted"),
    intersect: bool = typer.Option(False, help="runs over different cases/conditions: compare the shared pairs"),
    as_json: bool = typer.Option(False, "--json", help="print the comparisons as JSON"),
) -> None:
    """Per-dimension deltas B − A on shared cases, with 95 % intervals and Wilcoxon p-values (Holm)."""
    from dataclasses import asdict

    from anibench.leaderboard.compare import compare_runs, format_comparisons

    result = compare_runs(run_a, run_b, model_a=model_a, model_b=model_b, scorers=scorer, alpha=alpha,
                          partial=partial, intersect=intersect)
    if as_json:
        print(json.dumps({"comparisons": [{**asdict(c), "verdict": c.verdict(alpha)} for c in result.comparisons],
                          "notes": result.notes}, indent=2))
    else:
        print(format_comparisons(result, alpha))


@app.command("gate")
def gate_command(
    baseline: Path = typer.Option(..., help="baseline run directory"),
    candidate: Path = typer.Option(..., help="candidate run directory"),
    baseline_model: Optional[str] = typer.Option(None, help="model of the baseline run"),
    candidate_model: Optional[str] = typer.Option(None, help="model of the candidate run"),
    max_drop: Optional[List[str]] = typer.Option(None, "--max-drop",
                                                 help="allowed drop, finite and ≥ 0: 0.02 for all, or scorer=0.1"),
    alpha: float = typer.Option(0.05, help="significance level in (0, 1), after Holm correction"),
    scorer: Optional[List[str]] = typer.Option(None, "--scorer", "-s", help="only these scorers"),
    per_condition: bool = typer.Option(False, help="gate every condition, not only the pooled result"),
    allow_missing: bool = typer.Option(False, help="pass when the candidate lacks a scorer the baseline has"),
) -> None:
    """Exit 1 when a dimension regresses significantly beyond the allowed drop, and say why.

    Descriptive scorers (no better or worse) are compared but not gated; the output says which.
    """
    from anibench.leaderboard.compare import compare_runs, format_comparisons, gate, parse_max_drop

    drops = parse_max_drop(max_drop)
    comparisons = compare_runs(baseline, candidate, model_a=baseline_model, model_b=candidate_model,
                               scorers=scorer, alpha=alpha, per_condition=per_condition)
    result = gate(comparisons, drops, alpha=alpha, per_condition=per_condition, allow_missing=allow_missing)
    print(format_comparisons(comparisons, alpha))
    print()
    print(result.report())
    raise typer.Exit(0 if result.passed else 1)
