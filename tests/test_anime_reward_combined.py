"""AnimeReward as a user runs it: the six heads and their combined score, in one session and through the CLI.

Weights are each head's tiny seeded networks in their published formats (the recipes in tests/parity/),
imported through the real weights store as local entries that stand in for the published ones
(``$ANIBENCH_WEIGHT_ALIASES``). Random weights check the plumbing — the combined formula, what is shared,
what is recorded, the AniSora table — never the quality of a clip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import InputError, NotApplicable
from anibench.results import load_samples
from anibench.runtime.context import Runtime
from anibench.runtime.weights import WeightStore
from anibench.scoring import SCORERS, create_scorer
from anibench.session import ScoringSession

from conftest import moving_square
from parity.weights_anime_reward import install_all

HEADS = ("visual_smoothness", "visual_motion", "visual_appeal", "text_video_consistency",
         "image_video_consistency", "character_consistency")
GROUP = [f"anime_reward.{h}" for h in HEADS] + ["anime_reward.combined"]


@pytest.fixture(scope="module")
def tiny_aliases() -> dict[str, str]:
    """Tiny random weights for all six heads in the session's weights folder; the aliases that select them."""
    return install_all(WeightStore().root)  # $ANIBENCH_WEIGHTS (conftest): what the CLI subprocesses see too


def _clips() -> tuple[list[np.ndarray], list[str], list[Guidance | None]]:
    frames = [moving_square(num_frames=20, height=128, width=160, step=s, seed=i) for i, s in enumerate((1.0, 3.0))]
    prompts = ["A girl waves in a sunny park.", "A boy runs along the river at dusk."]
    guidance = [Guidance("i2v", (GuideFrame(0.0, 0, clip[0].copy()),), len(clip), 8.0, 128, 160) for clip in frames]
    return frames, prompts, guidance


def test_the_combined_score_is_the_weighted_mean_of_the_heads_it_records(tiny_aliases):
    frames, prompts, guidance = _clips()
    runtime = Runtime(device="cpu", dtype="fp32", weight_aliases=tiny_aliases)
    weighted = "anime_reward.combined:weight_visual_motion=3,weight_visual_appeal=0"
    with ScoringSession([*GROUP[:-1], "anime_reward.combined"], runtime) as session:
        scores = session.score(frames, prompts=prompts, guidance=guidance, fps=8)
        no_guides = session.score(frames[:1], prompts=prompts[:1], fps=8)[0]
    with ScoringSession([weighted], Runtime(device="cpu", dtype="fp32", weight_aliases=tiny_aliases)) as session:
        reweighted = session.score(frames, prompts=prompts, guidance=guidance, fps=8)
    for clip, again in zip(scores, reweighted):
        heads = {h: clip[f"anime_reward.{h}"] for h in HEADS}
        for head, result in heads.items():
            assert not isinstance(result, BaseException), (head, result)
            assert 0.0 <= result.value <= 1.0
        combined = clip["anime_reward.combined"]
        assert combined.details["heads"] == pytest.approx({h: r.value for h, r in heads.items()})
        assert combined.value == pytest.approx(np.mean([r.value for r in heads.values()]))
        weights = {h: 1.0 for h in HEADS} | {"visual_motion": 3.0}
        del weights["visual_appeal"]
        expected = sum(w * heads[h].value for h, w in weights.items()) / sum(weights.values())
        assert again["anime_reward.combined"].value == pytest.approx(expected)
        assert again["anime_reward.combined"].details["weights"] == weights
    # Without a guide image the heads that need one do not apply; the combined score says so and averages the rest.
    assert isinstance(no_guides["anime_reward.image_video_consistency"], NotApplicable)
    left_out = no_guides["anime_reward.combined"].details["not_applicable"]
    assert set(left_out) == {"image_video_consistency", "character_consistency"}
    used = [no_guides[f"anime_reward.{h}"].value for h in HEADS if h not in left_out]
    assert no_guides["anime_reward.combined"].value == pytest.approx(np.mean(used))


def test_require_all_and_bad_weights():
    strict = create_scorer("anime_reward.combined", require_all=True)
    assert strict.params["require_all"] is True and set(strict.heads) == set(HEADS)
    only_motion = create_scorer("anime_reward.combined", **{f"weight_{h}": 0 for h in HEADS if h != "visual_motion"})
    assert list(only_motion.heads) == ["visual_motion"] and only_motion.families == ("actionclip_vit_b16",)
    for bad in (-1, "heavy", float("nan")):
        with pytest.raises(InputError, match="weight_visual_motion must be a finite number"):
            create_scorer("anime_reward.combined", weight_visual_motion=bad)
    with pytest.raises(InputError, match="every head weight is 0"):
        create_scorer("anime_reward.combined", **{f"weight_{h}": 0 for h in HEADS})
    # Forwarded to the heads that have it, recorded in the combined score's parameters.
    cut = create_scorer("anime_reward.combined", truncate_prompt=False)
    assert cut.heads["text_video_consistency"].params["truncate_prompt"] is False


def test_without_weights_the_combined_score_names_every_missing_head():
    reason = SCORERS.get("anime_reward.combined").unavailable_reason()
    assert reason and "6 cannot run" in reason
    for head in HEADS:
        assert f"anime_reward.{head}:" in reason
    assert "sam2.1_hiera_base_plus.pt" in reason and "checkpoint_05.pth" in reason  # every file, not the first


def cli(*args, env=None, check=True):
    done = subprocess.run([sys.executable, "-m", "anibench", *map(str, args)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})})
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_anime_reward_group_through_the_cli_fills_the_anisora_table(tiny_aliases, tmp_path):
    """``anibench run --scorers anime-reward`` on the smoke suite, then ``anibench report``: six heads, the
    combined score, and the AniSora-Benchmark table; without weights every member is skipped with its files."""
    args = ("run", "--suite", "smoke", "--opt", "per_action=1", "--limit", "2", "--generator", "reference",
            "--condition", "i2v", "--scorers", "anime-reward", "--device", "cpu", "--dtype", "fp32")
    bare = cli(*args, "--out", tmp_path / "bare", env={"ANIBENCH_WEIGHT_ALIASES": ""}, check=False)
    assert bare.returncode == 2 and not (tmp_path / "bare").exists()  # refused before generating anything
    assert "none of the scorers asked for can run here" in bare.stderr
    for name in GROUP:
        assert f"  {name}: " in bare.stderr
    for file in ("animate_recoginzer.pth", "checkpoint-final", "testvl-pre76-top187-rec69.pth", "checkpoint_06.pth"):
        assert file in bare.stderr
    # With another scorer beside the group, the group's members are skipped with their reasons and the rest runs.
    partial = cli(*args[:-6], "--scorers", "anime-reward,temporal_flickering", "--out", tmp_path / "partial",
                  env={"ANIBENCH_WEIGHT_ALIASES": ""})
    skipped = json.loads((tmp_path / "partial" / "results.json").read_text())["skipped_scorers"]
    assert set(skipped) == set(GROUP) and "skipped anime_reward.visual_motion:" in partial.stdout

    aliases = ",".join(f"{k}={v}" for k, v in tiny_aliases.items())
    done = cli(*args, "--out", tmp_path / "run", env={"ANIBENCH_WEIGHT_ALIASES": aliases})
    samples = load_samples(tmp_path / "run")
    by_case: dict[str, dict[str, dict]] = {}
    for record in samples:
        by_case.setdefault(record["case_id"], {})[record["scorer"]] = record
    assert len(by_case) == 2
    for records in by_case.values():
        assert set(records) == set(GROUP)
        assert all(r["status"] == "ok" for r in records.values()), [r["message"] for r in records.values()]
        heads = [records[f"anime_reward.{h}"]["value"] for h in HEADS]
        assert records["anime_reward.combined"]["value"] == pytest.approx(np.mean(heads))
        tv = records["anime_reward.text_video_consistency"]["details"]
        assert tv["truncate_prompt"] is True and tv["prompt_truncated"] is (tv["prompt_tokens"] > 30)  # the published cut
    assert "AniSora-Benchmark" in done.stdout
    report = cli("report", tmp_path / "run").stdout
    header = next(line for line in report.splitlines() if "anime_reward.visual_smoothness" in line)
    assert all(name in header for name in GROUP)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    weights = {w["name"] for w in results["scorers"]["anime_reward.combined"]["weights"]}
    assert weights == set(tiny_aliases.values())  # provenance names the stand-ins that really ran
