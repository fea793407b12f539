"""AnimeReward text-video and image-video consistency: BLIP regression heads trained on human scores.

Follows bilibili/Index-anisora at 171fe63, ``reward/reward_infer.py`` (lines 85-95, 136-203) with
``reward/models/blip_pretrain_text.py`` and ``reward/models/blip_pretrain.py`` (anisora.md §2.3):

- frames: the 24 AnimeReward frames (``arange(0, M, M/24)`` with ``M = min(T, 144)``, every frame when
  ``T <= 24``; :data:`anibench.features.anime_reward_inputs.SAMPLING`), each squashed to 224×224 (PIL bicubic,
  no crop) with the CLIP mean/std (``load_key_image``); clips shorter than 8 frames are refused, as by
  every AnimeReward head;
- video feature: every frame through the head's own BLIP ViT-B/16, the token maps averaged over frames
  and the CLS row taken;
- text-video (``anime_reward.text_video_consistency``): the case's prompt through the head's BERT-base
  (text mode, no cross-attention), tokenised by bert-base-uncased with ``max_length=30`` — **the prompt
  is cut at 30 tokens** ([CLS] and [SEP] included), as published; parameter ``truncate_prompt=false``
  feeds the whole prompt (up to BERT's 512 positions; longer is an input error). The [CLS] row goes
  through ``img_key_proj``;
- image-video (``anime_reward.image_video_consistency``): the case's conditioning image (its first guide,
  read from its file as the generator received it — published: ``asset/image/<name>.png``) squashed like
  the frames, its ViT CLS row through ``img_key_proj``; a case without a first-frame guide is not
  applicable;
- value: ``sigmoid(head_diff([img_proj(video CLS), img_key_proj(key CLS)]))``, a number in (0, 1) (exactly 0
  or 1 only where the logit, recorded in ``details``, saturates double precision). The
  heads were trained with an L1 loss against human consistency scores in [0, 1]: the value is the
  network's estimate of that human score, not a probability; higher is more consistent;
- aggregate: the mean over clips (the published script scores one clip).

``details`` per clip: the sampled frame indices, the head's logit (before the sigmoid); text-video: the
prompt's token count, whether it was cut, the ``truncate_prompt`` setting; image-video: the reference image
and its aspect ratio against the clip's (:func:`anibench.features.backbones.conditioning_image_record`).

Weights: ``anime_reward_text_video_blip`` (``checkpoint_05.pth``) + ``anime_reward_bert_base_uncased_tokenizer``;
``anime_reward_image_video_blip`` (``checkpoint_06.pth``); :mod:`anibench.models.blip_reward`.

Deliberate differences: frames are decoded by anibench's reader (PyAV, as the published script); frames go
through the ViT in batches (published: one at a time), which changes values by float rounding only; the
head's two halves are computed in separate features and added (same rounding order up to ~1e-7); an empty
prompt is an input error (the published code would score the empty token sequence).
"""

from __future__ import annotations

from anibench.features import FeatureSpec
from anibench.features.anime_reward_inputs import MIN_FRAMES, SAMPLING
from anibench.scoring import Expect, Input, Scorer, ScoreInput, ScoreResult

# Frame perturbations change which 24 frames are sampled (the first 144 frames at a fixed stride) or their
# look; the heads' response depends on the clip and on what the network learnt: no claim.
_FRAME_NO_CLAIM = {name: Expect.NO_CLAIM for name in (
    "freeze", "shuffle", "reverse", "splice", "hold_twos", "stutter", "speed_up", "low_fps", "channel_swap",
    "blur", "letterbox", "downscale", "reencode", "shake", "jitter", "flicker")}  # fmt: skip

# Declared for the published weights (trained on human consistency scores): a clip scored against another
# case's prompt / reference image should get a lower value. With random weights (the tests) the direction is
# chance: the tests check the plumbing (unread inputs change nothing, the read one reaches the network).
TEXT_EXPECTATIONS = {**_FRAME_NO_CLAIM, "swap_prompt": Expect.DOWN, "swap_guide": Expect.NONE,
                     "invert_mask": Expect.NONE}  # fmt: skip
IMAGE_EXPECTATIONS = {**_FRAME_NO_CLAIM, "swap_prompt": Expect.NONE, "swap_guide": Expect.DOWN,
                      "invert_mask": Expect.NONE}  # fmt: skip


def _indices(sample: ScoreInput) -> list[int]:
    return [int(i) for i in SAMPLING.indices(sample.num_frames, sample.fps)]


class TextVideoConsistency(Scorer):
    """AnimeReward text-video consistency: BLIP ViT-B/16 frames + BERT prompt → sigmoid head, in (0, 1)."""

    name = "anime_reward.text_video_consistency"
    version = "1"
    requires = frozenset({Input.PROMPT})
    families = ("anime_reward_blip_text_video",)
    sampling = SAMPLING
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    min_frames = MIN_FRAMES
    default_params = {"truncate_prompt": True}
    expectations = TEXT_EXPECTATIONS
    video_feature = FeatureSpec.of("anime_reward.blip_tv_video")

    def _text_spec(self, sample: ScoreInput) -> FeatureSpec:
        return FeatureSpec.of("anime_reward.blip_tv_text", prompt=sample.prompt,
                              truncate=bool(self.params["truncate_prompt"]))  # fmt: skip

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.video_feature, self._text_spec(sample)]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.features.blip_reward import LOGIT, TEXT_CUT, TEXT_TOKENS
        from anibench.models.blip_reward import sigmoid

        video = sample.feature(self.video_feature)
        text = sample.feature(self._text_spec(sample))
        logit = float(video[LOGIT]) + float(text[LOGIT])
        return self.result(
            sigmoid(logit),
            logit=logit,
            frame_indices=_indices(sample),
            prompt_tokens=int(text[TEXT_TOKENS]),
            prompt_truncated=bool(text[TEXT_CUT]),
            truncate_prompt=bool(self.params["truncate_prompt"]),
        )


class ImageVideoConsistency(Scorer):
    """AnimeReward image-video consistency: BLIP ViT-B/16 frames + the reference image → sigmoid head, in (0, 1)."""

    name = "anime_reward.image_video_consistency"
    version = "1"
    requires = frozenset({Input.GUIDES})
    families = ("anime_reward_blip_image_video",)
    sampling = SAMPLING
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    min_frames = MIN_FRAMES
    expectations = IMAGE_EXPECTATIONS
    video_feature = FeatureSpec.of("anime_reward.blip_iv_video")

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.video_feature, image_spec(sample)]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.features.backbones import conditioning_image, conditioning_image_record
        from anibench.features.blip_reward import LOGIT
        from anibench.models.blip_reward import sigmoid

        video = sample.feature(self.video_feature)
        image = sample.feature(image_spec(sample))
        logit = float(video[LOGIT]) + float(image[LOGIT])
        return self.result(sigmoid(logit), logit=logit, frame_indices=_indices(sample),
                           **conditioning_image_record(sample, conditioning_image(sample)))  # fmt: skip


def image_spec(sample: ScoreInput) -> FeatureSpec:
    """The reference image's feature, keyed by the image's content (NotApplicable without a first guide)."""
    import hashlib

    from anibench.features.backbones import conditioning_image

    image = conditioning_image(sample)
    return FeatureSpec.of("anime_reward.blip_iv_image",
                          image=hashlib.sha256(image.tobytes()).hexdigest() + str(image.shape))  # fmt: skip
