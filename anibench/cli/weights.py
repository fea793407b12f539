"""``anibench weights``: list, path, fetch, import and verify model weights (see anibench/runtime/weights.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from anibench.runtime.weights import WeightStatus, WeightStore
from anibench.runtime.weights.files import installed, installed_size

weights_app = typer.Typer(no_args_is_help=True, help="Model weights: list, path, fetch, import, verify "
                                                     "(folder: $ANIBENCH_WEIGHTS, default ~/.cache/anibench/weights).")
console = Console(width=None if sys.stdout.isatty() else 200, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
_STATUS_STYLE = {
    WeightStatus.PRESENT: "green", WeightStatus.MISSING: "red", WeightStatus.UNVERIFIED: "yellow",
    WeightStatus.DAMAGED: "red", WeightStatus.UNCONVERTED: "yellow",
}


def _size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "–"
    value = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


@weights_app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="print the entries and their status as JSON"),
) -> None:
    """Every manifest entry: file, status (present / missing / unverified / damaged / unconverted), size, licence."""
    store = WeightStore()
    rows = []
    for name in store.names():
        entry = store.get(name)
        status = store.status(name)
        file = store.file_path(name)
        size = installed_size(file, entry.format) if installed(file, entry.format) else entry.size
        rows.append((entry, status, size))
    if as_json:
        print(json.dumps({"root": str(store.root), "weights": [
            {**entry.to_dict(), "manifest": str(entry.manifest), "status": status.value, "installed_size": size,
             "path": str(store.file_path(entry.name))} for entry, status, size in rows]}, indent=2))
        return
    table = Table("name", "file", "status", "size", "licence", "used by",
                  title=f"weights in {store.root} (from {store.root_origin})")
    for entry, status, size in rows:
        table.add_row(entry.name, entry.file, f"[{_STATUS_STYLE[status]}]{status.value}[/]", _size(size),
                      entry.licence or "–", ", ".join(entry.used_by) or "–")
    console.print(table)


@weights_app.command("path")
def path_command(name: str = typer.Argument(..., help="manifest entry")) -> None:
    """Print the path a model loads for NAME (its converted folder, or the file), or why it is missing."""
    print(WeightStore().resolve(name).path)


@weights_app.command("fetch")
def fetch_command(
    names: List[str] = typer.Argument(..., help="manifest entries to download"),
    force: bool = typer.Option(False, "--force", help="download again even when present"),
) -> None:
    """Download weights from their published source, check their hash and import them (the only online command)."""
    store = WeightStore()
    for name in names:
        columns = (TextColumn(f"[bold]{name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task(name, total=None)
            weight = store.fetch(name, force=force,
                                 progress=lambda done, total: progress.update(task, completed=done, total=total))
        console.print(f"{name}: {weight.path} (sha256 {weight.sha256})", highlight=False)


@weights_app.command("import")
def import_command(
    name: str = typer.Argument(..., help="manifest entry"),
    file: Path = typer.Argument(..., help="the published file, obtained elsewhere"),
    replace: bool = typer.Option(False, "--replace", help="install a file other than the one imported before"),
    link: bool = typer.Option(False, "--link", help="hard-link instead of copying (same file system; then do not "
                                                    "rewrite FILE in place)"),
) -> None:
    """Install FILE as NAME's weights: check size and sha256, record the hash, run the converter."""
    weight = WeightStore().import_file(name, file, replace=replace, link=link)
    console.print(f"{name}: {weight.path} (sha256 {weight.sha256})", highlight=False)


@weights_app.command("verify")
def verify_command(
    names: Optional[List[str]] = typer.Argument(None, help="entries (default: every installed one)"),
) -> None:
    """Re-hash installed weights and compare with the import record and the manifest; exit 1 on a mismatch."""
    store = WeightStore()
    chosen = names or [n for n in store.names() if installed(store.file_path(n), store.get(n).format)]
    results = [store.verify(name) for name in chosen]
    table = Table("name", "result", "sha256", "detail", title=f"weights in {store.root}")
    for result in results:
        style = "green" if result.ok else "red"
        table.add_row(result.name, f"[{style}]{result.status}[/]", result.sha256 or "–", result.message)
    console.print(table)
    if not results:
        console.print("no weights installed")
    raise typer.Exit(0 if all(r.ok for r in results) else 1)
