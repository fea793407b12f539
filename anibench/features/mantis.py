"""The two AnimeReward Mantis-Idefics2 regression families and the logit features read from them.

Families (one per published checkpoint, one class; loaded once per process through the runtime; weights are
the published ``checkpoint-final`` folders, manifest format ``hf-folder``, loaded as they are by
:func:`anibench.models.mantis_idefics2.load_head` — no converter):

* ``mantis_idefics2_smoothness`` — ``mantis-8b-idefics2-video-eval-24frame-benchmark-1epoch_4096_regression``
  (entry ``anime_reward_mantis_smoothness``), AnimeReward's visual smoothness;
* ``mantis_idefics2_appeal`` — ``mantis-8b-idefics2-video-eval-24frame-quality_4096_regression``
  (entry ``anime_reward_mantis_appeal``), AnimeReward's visual appeal ("visual_quality" in the script).

Runtime precision follows the runtime (``--dtype auto``: bf16 on CUDA with native bfloat16 — what the
published script uses —, fp32 on CPU). A batch holds clips whose sampled frames share one size (the
family's shape key), so no frame is padded; token rows are right-padded and each row is pooled at its own
position (see the model module).

Features (parameter ``prompt``; both read the same 24 frames, :data:`~anibench.features.anime_reward_inputs.SAMPLING`):

* ``anime_reward.mantis_smoothness_logit`` and ``anime_reward.mantis_appeal_logit`` — float64 vector
  ``[logit, sequence_tokens, prompt_tokens, pooled_position]`` of the head on the published "quality"
  prompt (both heads get it: quirk 4) and the frames at native size through the checkpoint's image settings.
  The per-frame pixels are computed in the decoding thread and shared by the two features through the clip's
  memo when the two checkpoints' processors agree. A sequence over the head's 4,096-token limit is an input
  error recorded as the feature's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from anibench.errors import InputError
from anibench.features.base import Deferred, FrameFeature, ModelFamily
from anibench.features.anime_reward_inputs import MIN_FRAMES, SAMPLING


@dataclass(frozen=True)
class MantisInput:
    """One clip for a Mantis head: token ids, the pooled position, (N, 3, H, W) float32 pixels."""

    ids: np.ndarray
    pooled: int
    pixels: np.ndarray


class MantisRegressionFamily(ModelFamily):
    """A Mantis-8B-Idefics2 regression head from a published checkpoint-final folder."""

    version = "1"
    entry: ClassVar[str]
    head_name: ClassVar[str]
    vision_chunk: ClassVar[int] = 8  # frames per vision-tower call (the published eval loop uses 2)

    def load(self) -> None:
        from transformers.utils import logging as transformers_logging

        from anibench.models.mantis_idefics2 import load_head

        transformers_logging.disable_progress_bar()  # per-tensor loading bars would flood the run's output
        resolved = self.runtime.resolve_weights(self.entry)
        self._sha256 = resolved.sha256
        self.head = load_head(resolved.path, self.runtime.torch_device, self.runtime.torch_dtype,
                              what=f"AnimeReward {self.head_name} head (Mantis-Idefics2)", entry=self.entry)

    def weight_digests(self) -> dict[str, str]:
        return {self.entry: self._sha256}

    def release(self) -> None:
        self.head = None

    def forward(self, batch: Sequence[MantisInput]) -> list[float]:
        return self.head.logits([item.ids for item in batch], [item.pooled for item in batch],
                                [item.pixels for item in batch], chunk=self.vision_chunk)


class MantisSmoothness(MantisRegressionFamily):
    """AnimeReward visual smoothness (``...-24frame-benchmark-1epoch_4096_regression``)."""

    name = "mantis_idefics2_smoothness"
    entry = "anime_reward_mantis_smoothness"
    weights = (entry,)
    head_name = "visual smoothness"


class MantisAppeal(MantisRegressionFamily):
    """AnimeReward visual appeal (``...-24frame-quality_4096_regression``)."""

    name = "mantis_idefics2_appeal"
    entry = "anime_reward_mantis_appeal"
    weights = (entry,)
    head_name = "visual appeal"


class MantisLogit(FrameFeature):
    """The head's logit on the clip's 24 sampled frames and the prompt ``prompt``."""

    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        family = clip.family(self.family)
        self.settings = family.head.images
        self.indices = [int(i) for i in SAMPLING.indices(clip.info.num_frames, clip.info.fps)]
        if len(self.indices) < MIN_FRAMES:  # the scorers refuse such clips; do not run the 8B model for them
            raise InputError(f"video has {len(self.indices)} frame(s); the AnimeReward {family.head_name} head "
                             f"needs at least {MIN_FRAMES}")
        self.wanted = np.unique(np.asarray(self.indices, dtype=np.int64))
        self.encoded = family.head.prompts.encode(str(spec.get("prompt", "")), len(self.indices))
        self._pixels: dict[int, np.ndarray] = {}
        encoded = self.encoded
        self.deferred = Deferred(lambda rows: np.array([rows[0], len(encoded.ids), encoded.prompt_tokens,
                                                        encoded.pooled], dtype=np.float64))

    def step(self, t: int) -> None:
        frame = self.clip.frame(t)
        self._pixels[t] = self.clip.memo(("mantis_pixels", self.settings, t), (t,),
                                         lambda: self.settings.pixels(frame))

    def finish(self) -> Deferred:
        pixels = np.stack([self._pixels[t] for t in self.indices])
        self._pixels.clear()
        item = MantisInput(self.encoded.ids, self.encoded.pooled, pixels)
        self.clip.family(self.family).submit(item, self.deferred, ("mantis", tuple(pixels.shape)))
        return self.deferred.seal()


class MantisSmoothnessLogit(MantisLogit):
    """``anime_reward.mantis_smoothness_logit``."""

    name = "anime_reward.mantis_smoothness_logit"
    family = "mantis_idefics2_smoothness"


class MantisAppealLogit(MantisLogit):
    """``anime_reward.mantis_appeal_logit``."""

    name = "anime_reward.mantis_appeal_logit"
    family = "mantis_idefics2_appeal"


def logit_row(value: Any) -> tuple[float, int, int, int]:
    """(logit, sequence tokens, prompt tokens, pooled position) from a feature value."""
    row = np.asarray(value, dtype=np.float64).reshape(-1)
    return float(row[0]), int(row[1]), int(row[2]), int(row[3])
