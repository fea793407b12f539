"""``anibench reward train`` and ``anibench reward eval``; registered on the ``reward`` sub-app by :func:`register`.

Exit codes (both commands):

* 0 — done: every requested head trained (train) / every head or scorer evaluated on ≥ 3 videos (eval);
  rows that could not be used are reported, and do not change the exit code;
* 1 — ran, but a dimension could not be trained (too few rated videos, constant ratings) or
  evaluated (fewer than 3 usable held-out videos);
* 2 — nothing could be done: unreadable ratings file, unknown backbone/dimension/head, missing
  weights of a model backbone, a head name already taken without ``--replace``, no usable row.

Heavy imports (numpy, scipy, the backbones, the session) happen inside the commands, so
``anibench --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

DIMENSIONS_HELP = ("dimensions to train (repeat or comma-separate): visual_smoothness, visual_motion, visual_appeal, "
                   "text_video_consistency, image_video_consistency, character_consistency; default: every rated one")


def _consoles():
    from rich.console import Console

    return (Console(width=None if sys.stdout.isatty() else 200, soft_wrap=True),
            Console(stderr=True, soft_wrap=True))


def _runtime(device: str, dtype: str, batch_size: int):
    from anibench.runtime.context import Runtime

    return Runtime(device=device, dtype=dtype, batch_size=batch_size)


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _metric(block: dict[str, Any] | None, name: str) -> str:
    if not block or not block.get(name) or block[name].get("value") is None:
        return "–"
    cell = block[name]
    ci = cell.get("ci") or {}
    if ci.get("low") is None:
        return _fmt(cell["value"])
    return f"{cell['value']:.3f} [{ci['low']:.2f}, {ci['high']:.2f}]"


def _print_problems(console, problems: list, ignored: tuple | list, limit: int = 30) -> None:
    from rich.markup import escape

    for column in ignored:
        console.print(f"[yellow]ignored column {escape(repr(column))}[/yellow] (not video, prompt, guide_image, rater "
                      "or a dimension)")
    if not problems:
        return
    console.print(f"[yellow]{len(problems)} row(s) not used:[/yellow]")
    for problem in problems[:limit]:
        row = problem if isinstance(problem, dict) else problem.to_dict()
        console.print(f"  row {row['row']} ({row['where']}): {row['reason']}", markup=False, highlight=False)
    if len(problems) > limit:
        console.print(f"  … and {len(problems) - limit} more")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``anibench reward``."""
    _register_example(app)

    @app.command("train")
    def train_command(
        ratings: Path = typer.Argument(..., help="ratings file (.csv or .jsonl): video, prompt, [guide_image], "
                                                 "[rater], 1–5 per dimension"),
        name: str = typer.Option(..., "--name", help="head name; registered as weights <name>.<dimension>"),
        backbone: str = typer.Option("handcrafted", help="frozen features: handcrafted (weight-free), "
                                                         "clip_vit_b32, viclip_l14"),
        dimensions: Optional[List[str]] = typer.Option(None, "--dimensions", "--dimension", help=DIMENSIONS_HELP),
        holdout: float = typer.Option(0.2, help="share of videos held out for the metrics (split by video)"),
        seed: int = typer.Option(0, help="seed of the split and of the bootstrap"),
        n_boot: int = typer.Option(1000, "--n-boot", help="bootstrap resamples for the held-out intervals"),
        out: Optional[Path] = typer.Option(None, "--out", help="folder for the head files (default: "
                                                               "$ANIBENCH_CACHE/reward-heads/NAME)"),
        replace: bool = typer.Option(False, "--replace", help="replace heads of this name trained before"),
        workers: int = typer.Option(2, help="threads decoding and computing clip features"),
        device: str = typer.Option("auto", help="model backbones run on: auto, cpu, cuda[:N]"),
        dtype: str = typer.Option("auto", help="model precision: auto, fp32, bf16, fp16"),
        batch_size: int = typer.Option(16, help="inputs per model batch"),
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ) -> None:
        """Fit one head per dimension on frozen backbone features and register it in the weights store."""
        from rich.table import Table

        from anibench.reward.training import train_heads

        console, err = _consoles()
        report = train_heads(ratings, name=name, backbone=backbone, dimensions=dimensions, holdout=holdout, seed=seed,
                             out_dir=out, replace=replace, runtime=_runtime(device, dtype, batch_size),
                             workers=workers, n_boot=n_boot)
        if as_json:
            print(json.dumps({
                "name": report.name, "backbone": report.backbone, "videos": report.videos, "split": report.split,
                "rows": {"used": len(report.ratings.rows), "rejected": len(report.ratings.problems)},
                "problems": [p.to_dict() for p in report.ratings.problems],
                "ignored_columns": list(report.ratings.ignored_columns),
                "heads": [{"dimension": h.dimension, "entry": h.entry, "file": str(h.file) if h.file else None,
                           "sha256": h.sha256, "train_videos": h.train_videos, "heldout_videos": h.heldout_videos,
                           "alpha": h.alpha, "train_spearman": h.train_spearman, "heldout": h.heldout,
                           "skipped": h.skipped} for h in report.heads]}, indent=2, default=str))
        else:
            _print_problems(err, report.ratings.problems, report.ratings.ignored_columns)
            table = Table("dimension", "weights entry", "train", "held out", "alpha", "Spearman [CI]",
                          "Kendall [CI]", "pairwise acc [CI]",
                          title=f"reward heads {name} on {backbone} features ({report.videos} videos, "
                                f"{len(report.ratings.rows)} rows used)")
            for head in report.heads:
                if head.skipped:
                    table.add_row(head.dimension, f"[red]skipped[/red]: {head.skipped}", str(head.train_videos),
                                  str(head.heldout_videos), "–", "–", "–", "–")
                    continue
                table.add_row(head.dimension, head.entry, str(head.train_videos), str(head.heldout_videos),
                              f"{head.alpha:g}", _metric(head.heldout, "spearman"), _metric(head.heldout, "kendall"),
                              _metric(head.heldout, "pairwise_accuracy"))
            console.print(table)
            if report.trained:
                console.print(f"score with: anibench score CLIPS --out RUN -s anime_reward.trained:head="
                              f"{report.trained[0].entry}", highlight=False)
        if not report.heads:
            err.print("[red]error:[/red] no dimension is rated in any usable row")
            raise typer.Exit(2)
        raise typer.Exit(0 if all(h.entry for h in report.heads) else 1)

    @app.command("eval")
    def eval_command(
        ratings: Path = typer.Argument(..., help="ratings file (.csv or .jsonl) with human ratings"),
        head: Optional[str] = typer.Option(None, "--head", help="trained head: NAME (all its dimensions) or the "
                                                                "entry NAME.<dimension>"),
        scorer: Optional[str] = typer.Option(None, "--scorer", help="evaluate a scorer instead (name or name:k=v), "
                                                                    "against --dimension"),
        dimensions: Optional[List[str]] = typer.Option(None, "--dimensions", "--dimension",
                                                       help="dimensions to evaluate (default: every head's; for "
                                                            "--scorer: the name's last part)"),
        include_training: bool = typer.Option(False, "--include-training",
                                              help="also use videos the head was trained on (biased upward)"),
        n_boot: int = typer.Option(1000, "--n-boot", help="bootstrap resamples"),
        seed: int = typer.Option(0, help="bootstrap seed"),
        level: float = typer.Option(0.95, help="confidence level of the intervals"),
        out: Optional[Path] = typer.Option(None, "--out", help="JSON report file (default: "
                                                               "reward-eval-<head or scorer>.json)"),
        workers: int = typer.Option(2, help="threads decoding and computing clip features"),
        device: str = typer.Option("auto", help="models run on: auto, cpu, cuda[:N]"),
        dtype: str = typer.Option("auto", help="model precision: auto, fp32, bf16, fp16"),
        batch_size: int = typer.Option(16, help="inputs per model batch"),
    ) -> None:
        """Spearman, Kendall and pairwise accuracy against human ratings, with bootstrap intervals, per
        dimension; inter-rater agreement when rater ids exist."""
        from rich.table import Table

        from anibench.errors import InputError
        from anibench.reward.training import evaluate_heads, evaluate_scorer

        console, err = _consoles()
        if bool(head) == bool(scorer):
            raise InputError("give exactly one of --head NAME or --scorer NAME")
        if not 0 < level < 1:
            raise InputError(f"--level must be in (0, 1), got {level}")
        if n_boot < 0:
            raise InputError(f"--n-boot must be >= 0, got {n_boot}")
        runtime = _runtime(device, dtype, batch_size)
        if head:
            report = evaluate_heads(ratings, head, dimensions=dimensions, include_training=include_training,
                                    n_boot=n_boot, seed=seed, level=level, runtime=runtime, workers=workers)
        else:
            if dimensions and len([d for part in dimensions for d in part.split(",") if d.strip()]) > 1:
                raise InputError("--scorer is evaluated against one --dimension")
            report = evaluate_scorer(ratings, scorer, dimension=dimensions[0] if dimensions else None, n_boot=n_boot,
                                     seed=seed, level=level, runtime=runtime, workers=workers)
        label = (head or scorer).replace(":", "_").replace("/", "_")
        out = out or Path(f"reward-eval-{label}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        _print_problems(err, report["problems"], report["ignored_columns"])
        table = Table("dimension", "videos", "pairs", "Spearman [CI]", "Kendall [CI]", "pairwise acc [CI]",
                      "raters", "Krippendorff α (ordinal)", "mean rater ρ",
                      title=f"{head or scorer} vs human ratings ({int(level * 100)}% percentile bootstrap, "
                            f"{n_boot} resamples)")
        incomplete = False
        for dimension, block in report["dimensions"].items():
            metrics, agreement = block["metrics"], block["agreement"] or {}
            incomplete |= metrics["spearman"]["value"] is None
            table.add_row(dimension, str(metrics["n_videos"]), str(metrics.get("n_pairs", 0)),
                          _metric(metrics, "spearman"), _metric(metrics, "kendall"),
                          _metric(metrics, "pairwise_accuracy"), str(agreement.get("raters", "–")),
                          _fmt(agreement.get("krippendorff_alpha_ordinal")),
                          _fmt(agreement.get("mean_pairwise_spearman")))
        console.print(table)
        for dimension, block in report["dimensions"].items():
            if block.get("excluded_training_videos"):
                console.print(f"{dimension}: {block['excluded_training_videos']} video(s) the head was trained on "
                              "left out (--include-training to keep them)", highlight=False)
        console.print(f"report: {out}", highlight=False)
        raise typer.Exit(1 if incomplete else 0)


def _register_example(app: typer.Typer) -> None:
    @app.command("example-ratings")
    def example_command(
        out: Path = typer.Argument(Path("ratings.csv"), help="ratings CSV to write"),
        suite: str = typer.Option("smoke", help="suite whose clips are rated (the smoke suite records motion)"),
        guides: bool = typer.Option(True, "--guides/--no-guides", help="name each case's guide image"),
        seed: int = typer.Option(0, help="seed of the simulated raters"),
    ) -> None:
        """Write a ratings file of SYNTHETIC visual_motion ratings (3 simulated raters, from the smoke renderer's
        true motion amplitude) on the smoke suite's clips, to try reward train / eval end to end."""
        from anibench.reward.example import example_ratings

        console, _ = _consoles()
        path, videos, count = example_ratings(out, suite=suite, guides=guides, seed=seed)
        console.print(f"{path}: {count} clips × 3 simulated raters (synthetic ratings, not human); clips in {videos}",
                      highlight=False)
