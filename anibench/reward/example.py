"""An example ratings file on the smoke suite's clips, to try ``anibench reward train`` / ``eval`` end to end.

The ratings are **synthetic, not human**: the smoke renderer records each clip's true motion amplitude
(``metadata.motion_amplitude``), and three simulated raters rate ``visual_motion`` from it — the clip's
amplitude rank mapped to 1–5, each rater off by one point now and then (seeded). A head trained on
them should recover the ranking from the weight-free features; it says nothing about real preferences.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

RATERS = ("r1", "r2", "r3")


def example_ratings(out: str | Path, *, suite: str = "smoke", guides: bool = True, seed: int = 0,
                    **suite_options: Any) -> tuple[Path, Path, int]:
    """Write the ratings CSV; returns (file, the suite's video folder, number of clips rated)."""
    from anibench.errors import InputError
    from anibench.suites import load_suite

    loaded = load_suite(suite, **suite_options)
    cases = [c for c in loaded.cases if c.video is not None and "motion_amplitude" in (c.metadata or {})]
    if len(cases) < 4:
        raise InputError(f"suite {suite!r} has {len(cases)} clip(s) with a recorded motion amplitude; "
                         "the example needs the smoke suite (at least 4)")
    amplitude = np.array([float(c.metadata["motion_amplitude"]) for c in cases])
    ranks = amplitude.argsort().argsort() / max(1, len(cases) - 1)  # 0 … 1
    rng = np.random.default_rng(seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video", "prompt", "guide_image", "rater", "visual_motion"])
        for case, rank in zip(cases, ranks):
            guide = case.guides[0].path if guides and case.guides and case.guides[0].path else None
            for rater in RATERS:
                rating = int(np.clip(np.rint(1 + 4 * rank + rng.choice([-1, 0, 0, 0, 1])), 1, 5))
                writer.writerow([str(case.video), case.prompt, str(guide) if guide else "", rater, rating])
    return out, Path(cases[0].video).parent, len(cases)
