"""AnimeReward visual smoothness and visual appeal: the two Mantis-8B-Idefics2 regression heads.

Follows bilibili/Index-anisora at 171fe63, ``reward/reward_infer.py`` (anisora.md §2.3; model and
preprocessing in :mod:`anibench.models.mantis_idefics2`, families and features in :mod:`anibench.features.mantis`):

- weights: the published ``checkpoint-final`` folders, HF ``IndexTeam/Index-anisora`` ``reward/weights/``
  ``mantis-8b-idefics2-video-eval-24frame-benchmark-1epoch_4096_regression`` (smoothness, entry
  ``anime_reward_mantis_smoothness``) and ``...-24frame-quality_4096_regression`` (appeal, entry
  ``anime_reward_mantis_appeal``);
- frames: the 24 AnimeReward frames (``arange(0, M, M/24)`` of the first ``M = min(T, 144)``, every frame when
  T <= 24; T is the container's declared count), at native size, through the checkpoint's Idefics2 image
  settings (longest edge 980, shortest 378, bilinear, mean/std 0.5); clips shorter than 8 frames are refused;
- text: ``REGRESSION_QUERY_PROMPT`` with the case prompt, then ``"<image> "`` per frame — the **"quality"
  prompt for both heads**, as published (quirk 4: the smoothness head is asked about clearness, resolution,
  brightness and colour too); the prompt is never truncated (the published code does not cut it; the 30-token
  cut of the BLIP heads does not apply, so these scorers have no ``truncate_prompt`` parameter and always record
  ``prompt_truncated: false``); a sequence over 4,096 tokens (the length the heads were trained on) is an input
  error naming the case;
- value: the published number is ``round(logit, 3) / 100`` of the 1-label regression head (trained on human
  scores mapped to 0-100), which is **not bounded** — it can leave [0, 1]. anibench reports it **clamped to
  [0, 1]** as the value (a bounded reward for GAPO-style weighting); ``details`` keep ``published`` (the raw
  published number), ``logit`` and ``clamped`` (whether clamping changed it). Meaning of the value: the head's
  predicted human rating of the dimension on a 0-1 scale (0 bad, 1 perfect), higher is better;
- aggregate: the plain mean over clips (the published script scores one clip; the AniSora benchmark averages).

Precision: bf16 on CUDA (as published), fp32 on CPU (``--dtype``); in bf16 the logit itself is rounded to
bf16 (steps of 0.25-0.5 near 50-100, i.e. 0.0025-0.005 on the published scale), as in the published script.
"""

from __future__ import annotations

import math
from typing import ClassVar

from anibench.errors import AnibenchError
from anibench.features import FeatureSpec
from anibench.features.anime_reward_inputs import MIN_FRAMES, REFERENCE, SAMPLING, clamp_unit
from anibench.sanity import no_claim_but
from anibench.scoring import Expect, Input, Scorer, ScoreInput, ScoreResult

# Declared for the published weights, which were trained on human 1-5 ratings of AI-generated videos; how a
# learned regressor reacts to each synthetic perturbation is not documented anywhere, so no direction is
# claimed for the frame perturbations (the tests run the battery as a plumbing check on random weights).
# Guides and masks are never read: NONE. The prompt is read (the case prompt is part of the text the head
# sees), but nothing says a mismatched prompt should lower a smoothness or appeal rating: NO_CLAIM.
_EXPECTATIONS = no_claim_but({
    "swap_prompt": Expect.NO_CLAIM,
    "swap_guide": Expect.NONE,
    "invert_mask": Expect.NONE,
})


class _MantisHeadScorer(Scorer):
    """One AnimeReward Mantis regression head: clamped ``round(logit, 3) / 100`` on the 24 sampled frames."""

    version = "1"
    requires = frozenset({Input.PROMPT})
    sampling = SAMPLING
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    min_frames = MIN_FRAMES
    expectations = _EXPECTATIONS
    feature_name: ClassVar[str]
    published_key: ClassVar[str]

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of(self.feature_name, prompt=sample.prompt)]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.features.mantis import logit_row
        from anibench.models.mantis_idefics2 import published_value

        logit, sequence_tokens, prompt_tokens, pooled = logit_row(sample.feature(self.features(sample)[0]))
        if not math.isfinite(logit):
            raise AnibenchError(f"{self.name}: the head returned a non-finite logit ({logit})")
        value, published = clamp_unit(published_value(logit))
        return self.result(
            value,
            published=published,
            published_key=self.published_key,
            logit=logit,
            clamped=value != published,
            frame_indices=[int(i) for i in SAMPLING.indices(sample.num_frames, sample.fps)],
            prompt_tokens=prompt_tokens,
            prompt_truncated=False,
            sequence_tokens=sequence_tokens,
            pooled_position=pooled,
            prompt_variant="quality",
            reference=REFERENCE,
        )


class VisualSmoothness(_MantisHeadScorer):
    """AnimeReward visual smoothness: the Mantis ``...-24frame-benchmark-1epoch_4096_regression`` head, clamped."""

    name = "anime_reward.visual_smoothness"
    families = ("mantis_idefics2_smoothness",)
    feature_name = "anime_reward.mantis_smoothness_logit"
    published_key = "visual_smooth"


class VisualAppeal(_MantisHeadScorer):
    """AnimeReward visual appeal: the Mantis ``...-24frame-quality_4096_regression`` head, clamped."""

    name = "anime_reward.visual_appeal"
    families = ("mantis_idefics2_appeal",)
    feature_name = "anime_reward.mantis_appeal_logit"
    published_key = "visual_quality"
