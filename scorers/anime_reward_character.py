"""AnimeReward character consistency: are the characters of the reference image still themselves in the clip.

Follows AnimeReward (bilibili/Index-anisora at 171fe63, ``reward/character/``; anisora.md §2.3 and the
quirks checklist §2.5), through :mod:`anibench.models.character_tracking` and
:mod:`anibench.models.character_gallery`:

1. the case's reference image (its first-frame guide) is resized and centre-cropped to the frame size;
   GroundingDINO-base finds ``character.`` in it (box and text thresholds 0.5, at most the 5 largest);
2. each box is tracked from frame 0 through **every frame** of the clip by SAM2.1 base+ (one track per box;
   later tracks overwrite earlier ones where they overlap);
3. per object, 8 frames strided over the frames where it is visible (``visible[::n//8][:8]``; an object
   visible in fewer than 8 frames is dropped): mask box, background zeroed, square zero padding, 224
   bilinear, CLIP mean/std (with the published code's two JPEG round trips, ``jpeg_roundtrip=true``);
4. the BLIP ViT-L recogniser embeds the crops (256-d ``vision_proj`` of the CLS token, unnormalised).

Value (``mode``):

- ``gallery`` (default; the published score): per object, the softmax over the gallery's identities of the
  unnormalised dot products averaged per identity, averaged over the 8 frames; the top-1 probability; the
  mean over objects. Meaning: the recogniser's confidence that the clip's characters are **some**
  character of the published gallery (1,680 crops of 874 captions = 846 identities once lower-cased, as the
  published grouping does) — it never compares the clip with the reference image, and a character outside
  the gallery has no correct class (a uniform softmax gives 1/846). ``details``: each object's top
  identities with probabilities.
- ``open_set`` (anibench's): the characters detected in the reference image are segmented there by the
  same tracker and cropped the same way; per object, the mean over its 8 crops of the cosine between its
  embedding and the embedding of the reference character it was tracked from, mapped to ``(1 + cos) / 2``;
  the mean over objects. Meaning: 1 = the tracked character embeds exactly like the reference character in
  every frame, 0.5 = unrelated (orthogonal), 0 = opposite. Works for characters outside the gallery.
  ``details["matching"]`` records for each object the reference character it resembles most and whether
  that is the one it was tracked from.

Both lie in [0, 1], higher is better. ``details`` also record the reference fit (sizes, crop offset), the
detections (boxes, scores, the integer prompt boxes), each object's id, visible-frame count, crop frames
and boxes, and which objects were dropped.

Outcomes that are not a score: no reference image (no first-frame guide) → not applicable, with a message
naming what is missing (the published script crashes); no character detected in the reference image, or
every object visible in fewer than 8 frames → not applicable, the message saying which (the published code
crashes on an empty query). A clip shorter than 8 frames is an input error.

Deliberate differences from the published code: SAMURAI's motion-aware (Kalman-filter) memory is not
reproduced — the upstream ``sam2`` package runs, with the fork's object-score threshold, and equals SAMURAI's
predictor with ``samurai_mode: false`` (see :mod:`anibench.models.character_tracking`); the tracker's frames
are resized from the decoded frames with PIL bicubic (the published tracker decodes the ``.mp4`` again with
decord at 1024×1024); frames come from anibench's decoder (PyAV) instead of cv2's; everything runs in memory
(the published code goes through ``character_save/<video>/`` folders, a ``mask.npy`` and cached crop files, so
a rerun on a changed video with the same name reuses stale crops — anibench never does).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from anibench.errors import InputError, NotApplicable
from anibench.features import FeatureSpec
from anibench.features.anime_reward_inputs import MIN_FRAMES
from anibench.sanity import no_claim_but
from anibench.scoring import Expect, FrameSampling, Input, Scorer, ScoreInput, ScoreResult

MODES = ("gallery", "open_set")

# Declared for the published weights. The score reads the reference image and the clip's characters; with
# random weights (the tests) directions are chance and the battery checks plumbing only.
_EXPECTATIONS = no_claim_but({
    "swap_prompt": Expect.NONE,  # the prompt is not read
    "invert_mask": Expect.NONE,  # the motion mask is not read
    # Another case's reference image: other characters are detected and tracked (or none). Order and timing
    # changes move which frames the 8 crops come from and what the tracker sees from frame 0; how appearance
    # changes move the detector, tracker and recogniser depends on the network and content: no claim.
    "swap_guide": Expect.NO_CLAIM,
})


class CharacterConsistency(Scorer):
    """AnimeReward character consistency: GroundingDINO → SAM2 → BLIP ViT-L; gallery or open-set value."""

    name = "anime_reward.character_consistency"
    version = "1"
    requires = frozenset({Input.GUIDES})
    families = ("anime_reward_character", "anime_reward_character_gallery")
    sampling = FrameSampling()  # every frame: the published tracker runs over the whole clip
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    min_frames = MIN_FRAMES
    expectations = _EXPECTATIONS
    default_params: ClassVar[Mapping[str, Any]] = {"mode": "gallery", "jpeg_roundtrip": True}

    def __init__(self, **params: Any):
        super().__init__(**params)
        mode = self.params["mode"]
        if mode not in MODES:
            raise InputError(f"{self.name}: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not isinstance(self.params["jpeg_roundtrip"], bool):
            raise InputError(f"{self.name}: jpeg_roundtrip must be true or false, "
                             f"got {self.params['jpeg_roundtrip']!r}")
        # open_set does not read the gallery: its identity and availability do not depend on it
        self.families = ("anime_reward_character",) if mode == "open_set" else type(self).families

    def check(self, sample: ScoreInput) -> None:
        if sample.guidance is None or not any(g.position == 0.0 for g in sample.guides):
            if sample.num_frames >= self.min_frames:
                raise NotApplicable(
                    f"{self.name} needs the case's reference image (a first-frame guide image): the characters "
                    "to follow are detected in it; this case has none", case_id=sample.case_id)
        super().check(sample)

    def objects_spec(self) -> FeatureSpec:
        return FeatureSpec.of("anime_reward.character_objects", jpeg_roundtrip=self.params["jpeg_roundtrip"])

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        specs = [self.objects_spec()]
        if self.params["mode"] == "gallery":
            specs.append(FeatureSpec.of("anime_reward.character_gallery"))
        return specs

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.models.character_gallery import gallery_scores, open_set_scores

        found = sample.feature(self.objects_spec())
        details: dict[str, Any] = {
            "mode": self.params["mode"], "jpeg_roundtrip": self.params["jpeg_roundtrip"],
            "reference": found["reference"], "detections": found["detections"], "objects": found["objects"],
            "tracked_frames": found["tracked_frames"],
        }
        if not found["detections"]:
            raise NotApplicable(
                f"{self.name}: no character detected in the reference image (GroundingDINO, text 'character.', "
                "box and text thresholds 0.5), so there is nothing to follow", case_id=sample.case_id)
        if not found["tracked_from"]:
            seen = ", ".join(f"object {o['object_id']}: {o['visible_frames']} frame(s)" for o in found["objects"])
            raise NotApplicable(
                f"{self.name}: {len(found['detections'])} character(s) detected in the reference image, but none "
                f"stays visible in the 8 frames the recogniser needs ({seen})", case_id=sample.case_id)
        if self.params["mode"] == "gallery":
            gallery = sample.feature(FeatureSpec.of("anime_reward.character_gallery"))
            result = gallery_scores(found["embeddings"], gallery)
            details["identities"] = len(gallery.names)
        else:
            result = open_set_scores(found["embeddings"], found["guide_embeddings"], found["tracked_from"])
            details["matching"] = result.matching
            details["guide_characters"] = found["guide_characters"]
        details["per_object"] = result.per_object
        return self.result(result.value, **details)
