"""The ``anibench`` command line (typer + rich)."""

from anibench.cli.app import app, main

__all__ = ["app", "main"]
