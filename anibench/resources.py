"""Where anibench's data files (``datasets/`` in the source tree) are on this machine."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml


@lru_cache(maxsize=1)
def datasets_dir() -> Path:
    """The folder holding suite specs and constants.

    A wheel installs it as package data at ``anibench/datasets``; an editable install or
    a source checkout reads the repository's top-level ``datasets/`` folder.
    """
    installed = Path(str(resources.files("anibench"))) / "datasets"
    if installed.is_dir():
        return installed
    source = Path(__file__).resolve().parent.parent / "datasets"
    if source.is_dir():
        return source
    raise FileNotFoundError(f"anibench data folder not found (looked in {installed} and {source})")


@lru_cache(maxsize=None)
def load_yaml(name: str) -> dict:
    """Parse ``datasets/<name>``."""
    with open(datasets_dir() / name, encoding="utf-8") as fh:
        return yaml.safe_load(fh)
