"""``anime_reward.trained``: a reward head trained with ``anibench reward train``, on its frozen backbone.

Parameter ``head``: the weights entry of the head (``<name>.<dimension>``, as ``anibench reward train
--name NAME`` registers them; see ``anibench weights list``). The head's config names its backbone
(:mod:`anibench.reward.backbones`: ``handcrafted`` is weight-free, ``clip_vit_b32`` and ``viclip_l14``
read model features), so the scorer reads exactly the features the head was trained on, through the
core's streaming pass (decoded once, shared with every other scorer of the run).

Value: the head's ridge prediction of the human rating mapped to [0, 1] (``(rating − 1) / 4``: 0 = a
rating of 1, 1 = a rating of 5), **clamped** to [0, 1]; the unclamped prediction is in details as
``raw`` (with ``clamped``: whether the clamp changed it) and the corresponding 1–5 rating as
``rating``. Higher is better. A head trained on clips with guide images reads the clip's first-frame
guide (cases without one are not applicable); a backbone that reads the prompt needs one.

Identity: the head file's sha256 and its backbone families' weights, so a retrained head under the
same name recomputes its scores. A missing head is the core's missing-weights error (which entry, where
it looked); a file that is not a head is a weights-file error naming it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Mapping

import numpy as np

from anibench.errors import AnibenchError, InputError
from anibench.features import FeatureSpec
from anibench.scoring import Expect, Input, ScoreInput, ScoreResult, Scorer


class TrainedRewardHead(Scorer):
    """A trained AnimeReward-style head (see the module docstring)."""

    name = "anime_reward.trained"
    version = "1"
    default_params: ClassVar[Mapping[str, Any]] = {"head": ""}
    lower, upper = 0.0, 1.0
    higher_is_better = True
    min_frames = 8  # as every AnimeReward head (anibench.features.anime_reward_inputs.MIN_FRAMES)
    # A learned head's reaction to a perturbation depends on what its raters rewarded: no claim.
    expectations: ClassVar[Mapping[str, Expect]] = {}

    def __init__(self, **params: Any):
        super().__init__(**params)
        if not str(self.params["head"]).strip():
            raise InputError("anime_reward.trained needs head=<weights entry> (a head trained with anibench reward "
                             "train; see anibench weights list)")
        self._loaded: tuple[Any, Any, Any] | None = None
        self._error: AnibenchError | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Never part of "every available scorer": it needs a head, named with ``anime_reward.trained:head=NAME``."""
        return ("needs a trained head: name it as anime_reward.trained:head=<weights entry> (anibench reward train; "
                "anibench weights list)")

    # -- the head ---------------------------------------------------------------------------------
    def _load(self) -> tuple[Any, Any, Any]:
        """(head, resolved weight, backbone); raises the loading error (kept for every clip)."""
        if self._loaded is None and self._error is None:
            from anibench.reward.backbones import get_backbone
            from anibench.reward.heads import load_registered

            try:
                head, resolved = load_registered(self.params["head"], runtime=self.runtime)
                backbone = get_backbone(head.backbone)
                if backbone.version != head.config["backbone"].get("version") or \
                        list(backbone.feature_names) != head.config["backbone"].get("feature_names"):
                    raise InputError(f"head {self.params['head']!r} was trained on backbone {backbone.name} version "
                                     f"{head.config['backbone'].get('version')!r} with other features than this "
                                     f"anibench's version {backbone.version!r}; retrain it", path=resolved.file)
                self._loaded = (head, resolved, backbone)
                self.families = backbone.families
                requires = set(backbone.requires)
                if head.config.get("training", {}).get("uses_guide"):
                    requires.add(Input.GUIDES)
                self.requires = frozenset(requires)
            except AnibenchError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._loaded

    def setup(self, runtime: Any) -> None:
        super().setup(runtime)
        try:
            self._load()
        except AnibenchError:
            pass  # reported for each clip by check()

    def identity(self, runtime: Any = None) -> str:
        self.runtime = self.runtime or runtime
        try:
            _, resolved, backbone = self._load()
        except AnibenchError:
            return self.params_hash()
        from anibench.runtime.context import family_digests

        payload = {"params": self.params, "head_sha256": resolved.sha256,
                   "families": family_digests(backbone.families, runtime or self.runtime) if backbone.families else {}}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def weights(self) -> list[dict[str, Any]]:
        try:
            _, resolved, backbone = self._load()
        except AnibenchError as exc:
            return [{"name": self.params["head"], "missing": str(exc)}]
        out = [resolved.provenance()]
        if backbone.families:
            from anibench.runtime.context import family_weights

            out += family_weights(backbone.families, self.runtime)
        return out

    # -- scoring ------------------------------------------------------------------------------------
    def check(self, sample: ScoreInput) -> None:
        self._load()
        super().check(sample)

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        _, _, backbone = self._load()
        return backbone.specs(sample)

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.reward.ratings import from_unit

        head, resolved, backbone = self._load()
        clamped, raw = head.predict(backbone.vector(sample))
        clamped, raw = float(clamped), float(raw)
        if not np.isfinite(raw):
            raise InputError(f"head {self.params['head']!r} gave a non-finite value for this clip")
        return self.result(clamped, raw=raw, clamped=clamped != raw, rating=from_unit(clamped),
                           head=self.params["head"], dimension=head.dimension, backbone=backbone.name,
                           head_sha256=resolved.sha256)
