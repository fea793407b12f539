"""The combined AnimeReward score: a weighted mean of the six AnimeReward heads, in [0, 1].

The published AnimeReward script (bilibili/Index-anisora 171fe63, ``reward/reward_infer.py``) reports the
six scores side by side and never combines them (anisora.md §2.1). A trainer needs one bounded reward —
GAPO's gap weight ``α^r`` assumes ``r ∈ [0, 1]`` (alignment.md §1.4) — so anibench adds one:

    combined = Σ_h w_h · v_h / Σ_h w_h   over the heads h that apply to the case,

with ``v_h`` each head's calibrated value in [0, 1] (its own docstring states the meaning) and ``w_h``
the parameter ``weight_<head>`` (default 1 for all six: the plain mean). The weights are parameters, so
they enter the score's identity and are recorded with every result. A head that does not apply to a
case (no guide image for image–video and character consistency, no character detected) is left out and
named in ``details["not_applicable"]``; ``require_all=true`` makes that case not applicable instead, for
users who want every combined value to mean the same six things. Any other head error fails the case.

The heads are the registered scorers ``anime_reward.<head>``; their features are the same specs they ask
for on their own, so running the combined score next to the heads computes each model once.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping

from anibench.errors import InputError, NotApplicable
from anibench.features import FeatureSpec
from anibench.features.anime_reward_inputs import MIN_FRAMES, SAMPLING
from anibench.scoring import SCORERS, Expect, Input, Scorer, ScoreInput, ScoreResult

HEADS = ("visual_smoothness", "visual_motion", "visual_appeal", "text_video_consistency",
         "image_video_consistency", "character_consistency")
# Head parameters the combined score passes on to every head that has them.
FORWARDED = ("truncate_prompt",)


def head_name(head: str) -> str:
    return f"anime_reward.{head}"


class CombinedAnimeReward(Scorer):
    """Weighted mean of the six AnimeReward heads (default: the plain mean), in [0, 1]."""

    name = "anime_reward.combined"
    version = "1"
    requires = frozenset({Input.PROMPT})
    sampling = SAMPLING
    min_frames = MIN_FRAMES
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    default_params: ClassVar[Mapping[str, Any]] = {
        **{f"weight_{head}": 1.0 for head in HEADS}, "require_all": False, "truncate_prompt": True,
    }
    # A mixture of six heads: how it moves under a perturbation is each head's business (their own
    # expectations are checked one by one); only inputs the heads never read must change nothing.
    expectations = {"invert_mask": Expect.NONE}

    def __init__(self, **params: Any):
        super().__init__(**params)
        weights = {head: self._weight(head) for head in HEADS}
        self.head_weights = {head: w for head, w in weights.items() if w > 0}
        if not self.head_weights:
            raise InputError(f"{self.name}: every head weight is 0; give at least one positive weight_<head>")
        self.heads: dict[str, Scorer] = {}
        for head in self.head_weights:
            cls = SCORERS.get(head_name(head))
            forwarded = {k: self.params[k] for k in FORWARDED if k in cls.default_params}
            self.heads[head] = cls(**forwarded)
        self.families = tuple(dict.fromkeys(f for s in self.heads.values() for f in s.families))

    def _weight(self, head: str) -> float:
        raw = self.params[f"weight_{head}"]
        try:
            weight = float(raw)
        except (TypeError, ValueError):
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            raise InputError(f"{self.name}: weight_{head} must be a finite number ≥ 0, got {raw!r}")
        return weight

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """With the default weights every head is needed: why any of them cannot run, all at once."""
        reasons = []
        for head in HEADS:
            try:
                reason = SCORERS.get(head_name(head)).unavailable_reason()
            except Exception as exc:  # noqa: BLE001 - an unimportable head plugin is a reason, not a crash
                reason = str(exc)
            if reason:
                reasons.append(f"{head_name(head)}: {reason}")
        if not reasons:
            return None
        return (f"{cls.name} needs all six heads (or name it with weight_<head>=0 for the missing ones); "
                f"{len(reasons)} cannot run:\n" + "\n".join(reasons))

    # -- lifecycle: the heads share the runtime -------------------------------------------------
    def setup(self, runtime) -> None:
        super().setup(runtime)
        for head in self.heads.values():
            head.setup(runtime)

    def release(self) -> None:
        for head in self.heads.values():
            head.release()

    # -- scoring ------------------------------------------------------------------------------------
    def _applicable(self, sample: ScoreInput) -> tuple[dict[str, Scorer], dict[str, str]]:
        applicable, skipped = {}, {}
        for head, scorer in self.heads.items():
            try:
                scorer.check(sample)
            except NotApplicable as exc:
                skipped[head] = exc.message
            else:
                applicable[head] = scorer
        return applicable, skipped

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        applicable, _ = self._applicable(sample)
        specs = [spec for scorer in applicable.values() for spec in scorer.features(sample)]
        return list(dict.fromkeys(specs))

    def compute(self, sample: ScoreInput) -> ScoreResult:
        applicable, skipped = self._applicable(sample)
        values: dict[str, float] = {}
        for head, scorer in applicable.items():
            try:
                values[head] = scorer.compute(sample).value
            except NotApplicable as exc:  # e.g. no character detected: recorded, the others still count
                skipped[head] = exc.message
        if skipped and self.params["require_all"]:
            raise NotApplicable(f"{self.name} with require_all: " + "; ".join(f"{h}: {m}" for h, m in skipped.items()))
        if not values:
            raise NotApplicable("no AnimeReward head applies: " + "; ".join(f"{h}: {m}" for h, m in skipped.items()))
        used = {head: self.head_weights[head] for head in values}
        combined = sum(used[h] * values[h] for h in values) / sum(used.values())
        return self.result(combined, heads=values, weights=used, not_applicable=skipped)
