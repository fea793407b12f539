"""Checking the options of ``report``, ``compare`` and ``gate`` before they are used.

Every check raises :class:`OptionError`, which names the option (the command line shows
it as that option's error); nothing is silently ignored or clamped.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from anibench.errors import InputError


class OptionError(InputError):
    """An option value that cannot be used; ``option`` is its command-line name (``--alpha``)."""

    def __init__(self, option: str, message: str):
        self.option = option
        self.reason = message
        super().__init__(f"{option}: {message}")


def check_alpha(alpha: float) -> float:
    """A significance level strictly between 0 and 1."""
    if not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or not 0 < alpha < 1:
        raise OptionError("--alpha", f"the significance level must be between 0 and 1 (exclusive), not {alpha!r}")
    return float(alpha)


def check_choice(option: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise OptionError(option, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def check_choices(option: str, values: Iterable[str], choices: Sequence[str]) -> list[str]:
    values = list(values)
    unknown = [v for v in values if v not in choices]
    if unknown:
        raise OptionError(option, f"takes {', '.join(choices)}; not {', '.join(map(repr, unknown))}")
    return values


def check_resamples(resamples: int) -> int:
    if not isinstance(resamples, int) or resamples < 1:
        raise OptionError("--resamples", f"the number of bootstrap resamples must be 1 or more, not {resamples!r}")
    return resamples


def check_drop(option: str, text: str, amount: float) -> float:
    """An allowed drop: a finite number, 0 or more (NaN would make every comparison pass)."""
    if not math.isfinite(amount) or amount < 0:
        raise OptionError(option, f"an allowed drop must be a finite number, 0 or more; got {text!r}")
    return amount


def check_scorers(option: str, names: Iterable[str], available: Iterable[str]) -> None:
    """Every name in ``names`` must be a scorer the runs have."""
    available = sorted(set(available))
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise OptionError(option, f"no scorer {', '.join(map(repr, unknown))} among the compared runs' scorers "
                                  f"({', '.join(available) or 'none'})")


def output_file(option: str, path: str | Path) -> Path:
    """Check a file to write before any work: not a folder, and under a folder that exists or can be created.

    Missing parent folders are created when the file is written (:mod:`anibench.fsutil`).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise OptionError(option, f"{path} is a folder; give a file name")
    ancestor = path.parent.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OptionError(option, f"cannot create {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OptionError(option, f"cannot write {path}: no write permission in {ancestor}")
    return path
