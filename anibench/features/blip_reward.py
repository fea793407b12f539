"""AnimeReward's BLIP consistency heads as model families, and the features the two scorers read.

Families (loaded once per process through the runtime; :mod:`anibench.models.blip_reward`):

* ``anime_reward_blip_text_video`` — weights ``anime_reward_text_video_blip`` (``checkpoint_05.pth``) and the
  tokenizer folder ``anime_reward_bert_base_uncased_tokenizer``: ViT-B/16 + BERT-base + head.
* ``anime_reward_blip_image_video`` — weights ``anime_reward_image_video_blip`` (``checkpoint_06.pth``):
  ViT-B/16 + head.

The published head is ``sigmoid(head_diff([img_proj(video), img_key_proj(key)]))``; a linear layer on a
concatenation is the sum of its two halves, so each feature carries its own half of the logit and the
scorer adds them (exact up to float rounding, ~1e-7):

* ``anime_reward.blip_tv_video`` / ``anime_reward.blip_iv_video`` — the 24 sampled frames
  (:data:`~anibench.features.anime_reward_inputs.SAMPLING`), each squashed to 224×224 in the decoding thread
  (:func:`~anibench.features.anime_reward_inputs.squashed_frame`, memoised per clip so the two heads and the
  motion head squash a frame once), through the family's ViT; value ``[head_diff.weight[:, :P] · img_proj(mean_t CLS_t), *mean_t CLS_t]``.
* ``anime_reward.blip_tv_text`` (params ``prompt``, ``truncate``) — the prompt's BERT [CLS] row; value
  ``[head_diff.weight[:, P:] · img_key_proj(CLS) + head_diff.bias, prompt tokens, cut (0/1), *CLS]``.
  Reads no frames.
* ``anime_reward.blip_iv_image`` (param ``image``: the reference image's digest) — the case's conditioning
  image (first guide, from its file: :func:`anibench.features.backbones.conditioning_image`) squashed like
  the frames; value ``[head_diff.weight[:, P:] · img_key_proj(CLS) + head_diff.bias, *CLS]``. Reads no frames.

Values are float32 vectors, persisted keyed by the clip's sha256 and the spec's digest (family version,
weights' sha256, precision, parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from anibench.features.base import Deferred, FrameFeature, ModelFamily

VIDEO, TEXT, IMAGE = "video", "text", "image"
# Layout of the feature vectors.
LOGIT = 0  # this input's half of the head's logit (the key half includes the bias)
TEXT_TOKENS, TEXT_CUT, TEXT_CLS = 1, 2, 3  # text: prompt token count, 1.0 when cut at 30, then the CLS row
VECTOR = 1  # video and image: the CLS row (the frame mean for videos) starts here


@dataclass(frozen=True)
class BlipInput:
    """One input of a BLIP family: ``video`` ((N, 3, 224, 224) pixels), ``image`` ((1, 3, 224, 224)) or
    ``text`` (:class:`~anibench.models.blip_reward.Tokens`)."""

    kind: str
    payload: Any


class _BlipFamily(ModelFamily):
    kind: str = ""
    entry: str = ""

    def load(self) -> None:
        from anibench.models.blip_reward import load_blip

        resolved = self.runtime.resolve_weights(self.entry)
        self._digests = {self.entry: resolved.sha256}
        self.model = load_blip(resolved.path, self.kind, self.runtime.torch_device, self.runtime.torch_dtype)

    def weight_digests(self) -> dict[str, str]:
        return dict(self._digests)

    def release(self) -> None:
        self.model = None

    def forward(self, batch: Sequence[BlipInput]) -> list[np.ndarray]:
        from anibench.models import blip_reward as B

        out = []
        for item in batch:
            if item.kind == VIDEO:
                cls = B.video_cls(self.model, item.payload)
                out.append(_row(B.video_half(self.model, cls), cls))
            elif item.kind == IMAGE:
                cls = B.image_cls(self.model, item.payload)[0]
                out.append(_row(B.key_half(self.model, cls), cls))
            elif item.kind == TEXT:
                cls = B.text_cls(self.model, item.payload)
                tokens = item.payload
                out.append(_row(B.key_half(self.model, cls), cls, tokens.length, float(tokens.truncated)))
            else:
                raise ValueError(f"unknown input kind {item.kind!r} for {self.name}")
        return out


def _row(logit: float, cls: Any, *extra: float) -> np.ndarray:
    head = np.asarray([logit, *extra], dtype=np.float32)
    return np.concatenate([head, np.asarray(cls, dtype=np.float32).reshape(-1)])


class BlipTextVideo(_BlipFamily):
    """AnimeReward text-video consistency: BLIP ViT-B/16 + BERT-base + head (``checkpoint_05.pth``)."""

    name = "anime_reward_blip_text_video"
    version = "1"
    kind = "text_video"
    entry = "anime_reward_text_video_blip"
    tokenizer_entry = "anime_reward_bert_base_uncased_tokenizer"
    weights = (entry, tokenizer_entry)

    def load(self) -> None:
        from anibench.models.blip_reward import load_tokenizer

        super().load()
        resolved = self.runtime.resolve_weights(self.tokenizer_entry)
        self._digests[self.tokenizer_entry] = resolved.sha256
        self.tokenizer = load_tokenizer(resolved.path)
        vocab = self.model.arch.bert.vocab_size
        if len(self.tokenizer) != vocab:
            from anibench.errors import MissingWeightsError

            raise MissingWeightsError(
                f"the tokenizer of {self.tokenizer_entry} has {len(self.tokenizer)} tokens with [DEC] and [ENC], "
                f"the text encoder of {self.entry} {vocab}: not the bert-base-uncased vocabulary the head was "
                f"trained with",
                path=resolved.path,
            )


class BlipImageVideo(_BlipFamily):
    """AnimeReward image-video consistency: BLIP ViT-B/16 + head (``checkpoint_06.pth``)."""

    name = "anime_reward_blip_image_video"
    version = "1"
    kind = "image_video"
    entry = "anime_reward_image_video_blip"
    weights = (entry,)


def _single_row(rows: list[np.ndarray]) -> np.ndarray:
    return np.asarray(rows[0], dtype=np.float32)


class _BlipVideo(FrameFeature):
    """The 24 sampled frames, squashed to 224×224, through the family's ViT; frame-mean CLS + its logit half."""

    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        from anibench.features.anime_reward_inputs import SAMPLING

        self.indices = [int(i) for i in SAMPLING.indices(clip.info.num_frames, clip.info.fps)]
        self.wanted = np.unique(np.asarray(self.indices, dtype=np.int64))
        self._pixels: dict[int, np.ndarray] = {}
        self.deferred = Deferred(_single_row)

    def step(self, t: int) -> None:
        from anibench.features.anime_reward_inputs import squashed_frame

        self._pixels[t] = squashed_frame(self.clip, t)  # memoised per clip: shared with the other heads

    def finish(self) -> Deferred:
        import torch

        from anibench.errors import InputError

        missing = [t for t in self.indices if t not in self._pixels]
        if missing:
            raise InputError(f"frames {missing[:5]} of the {len(self.indices)} sampled could not be read")
        video = torch.from_numpy(np.stack([self._pixels[t] for t in self.indices]))
        self._pixels.clear()
        self.clip.family(self.family).submit(BlipInput(VIDEO, video), self.deferred, (VIDEO, tuple(video.shape)))
        return self.deferred.seal()


class TextVideoFrames(_BlipVideo):
    """``anime_reward.blip_tv_video``: the text-video head's video half (its own ViT-B/16)."""

    name = "anime_reward.blip_tv_video"
    family = "anime_reward_blip_text_video"


class ImageVideoFrames(_BlipVideo):
    """``anime_reward.blip_iv_video``: the image-video head's video half (its own ViT-B/16)."""

    name = "anime_reward.blip_iv_video"
    family = "anime_reward_blip_image_video"


class TextVideoPrompt(FrameFeature):
    """``anime_reward.blip_tv_text``: the prompt (``prompt``) through BERT; ``truncate`` (default true) = cut at 30."""

    name = "anime_reward.blip_tv_text"
    family = "anime_reward_blip_text_video"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        from anibench.models.blip_reward import tokenize

        self.wanted = np.array([], dtype=np.int64)
        family = clip.family(self.family)
        tokens = tokenize(family.tokenizer, str(spec.get("prompt", "")), truncate=bool(spec.get("truncate", True)),
                          max_positions=family.model.arch.bert.max_positions)  # fmt: skip
        self.deferred = Deferred(_single_row)
        family.submit(BlipInput(TEXT, tokens), self.deferred, (TEXT, len(tokens.ids)))

    def step(self, t: int) -> None:
        """Reads no frames."""

    def finish(self) -> Deferred:
        return self.deferred.seal()


class ImageVideoReference(FrameFeature):
    """``anime_reward.blip_iv_image``: the case's conditioning image through the image-video head's ViT."""

    name = "anime_reward.blip_iv_image"
    family = "anime_reward_blip_image_video"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        import torch

        from anibench.features.backbones import conditioning_image
        from anibench.features.anime_reward_inputs import squash_to_clip_tensor

        self.wanted = np.array([], dtype=np.int64)
        pixels = torch.from_numpy(squash_to_clip_tensor(conditioning_image(clip.sample)))
        self.deferred = Deferred(_single_row)
        clip.family(self.family).submit(BlipInput(IMAGE, pixels), self.deferred, (IMAGE, tuple(pixels.shape)))

    def step(self, t: int) -> None:
        """Reads no frames."""

    def finish(self) -> Deferred:
        return self.deferred.seal()
