"""Every weight-free score is identical before and after the core redesign.

The fixtures were recorded on the code just before it (tests/fixtures/pre_redesign/README.md):
the README's main job on the smaller smoke suite, and a motion-mask + keyframes run of the
reference. Values, statuses, details and the clips' sha256 must all match.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from anibench.results import load_samples
from anibench.runner import run
from anibench.runspec import RunSpec

from conftest import SMALL_SMOKE

FIXTURES = Path(__file__).parent / "fixtures" / "pre_redesign"
FIELDS = ("status", "value", "details", "video_sha256")


def _recorded(name: str) -> dict:
    with gzip.open(FIXTURES / f"smoke_{name}.jsonl.gz", "rt") as fh:
        return {(r["item_id"], r["scorer"]): r for r in map(json.loads, fh) if r}


def _compare(recorded: dict, run_dir: Path) -> None:
    now = {(r["item_id"], r["scorer"]): r for r in load_samples(run_dir)}
    missing = sorted(set(recorded) - set(now))
    assert not missing, f"{len(missing)} recorded (clip, scorer) pairs are gone, e.g. {missing[:3]}"
    changed = [(key, field, recorded[key][field], now[key].get(field))
               for key in sorted(recorded) for field in FIELDS if recorded[key][field] != now[key].get(field)]
    assert not changed, f"{len(changed)} differences, e.g. {changed[:3]}"


def test_the_smoke_run_is_identical(smoke_run):
    _, out = smoke_run
    _compare(_recorded("default"), out)


@pytest.mark.slow
def test_motion_mask_and_keyframe_runs_are_identical(tmp_path):
    spec = RunSpec(suite=SMALL_SMOKE, generators=["reference"], conditions=["motion-mask", "keyframes@0,0.33,1"])
    run(spec, tmp_path)
    _compare(_recorded("mask"), tmp_path)
