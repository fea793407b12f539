"""AnimeReward's Mantis-8B-Idefics2 regression heads (visual smoothness, visual appeal) on transformers' Idefics2.

Reference: bilibili/Index-anisora at 171fe63, ``reward/reward_infer.py`` (prompt lines 52-63, loading 72-83,
frames and prompt 164-175, processor / forward / rounding 213-237) and the vendored
``reward/mantis/models/idefics2/modeling_idefics2.py`` (``Idefics2ForSequenceClassification``, written for
transformers 4.45.1). file:line references below are there.

**Network.** ``Idefics2ForSequenceClassification`` (modeling_idefics2.py:2017-2214) is ``self.model =
Idefics2Model(config)`` (SigLIP vision tower, ``connector`` = modality projection + perceiver resampler,
Mistral ``text_model``) plus ``self.score = nn.Linear(text hidden, num_labels)`` **with a bias**. Its
forward applies ``score`` to every position's last hidden state and pools one position per row
(lines 2167-2187): with ``config.pad_token_id`` None the last position; otherwise ``(first index where
input_ids == pad_token_id) - 1`` modulo the length — the last position when the row holds no pad token.
:class:`MantisRegression` is that module on transformers 5.x's ``Idefics2Model`` (same submodule names, so
the published keys ``model.vision_model.*``, ``model.connector.*``, ``model.text_model.*``, ``score.*`` load
as they are; no conversion, no second copy of 16 GB on disk). :func:`pooled_position` is the pooling rule.

Differences of transformers 5.x that matter and how they are neutralised here:

- ``Idefics2Config`` 5.x copies the text model's ``hidden_size`` and ``rms_norm_eps`` into the perceiver
  config only when the hidden sizes differ; its perceiver default ``rms_norm_eps`` is 1e-6 and its default
  hidden size 4096 — the 8B model's. The published perceiver reads ``text_config.rms_norm_eps`` (1e-5 for
  Mistral-7B), so :func:`build_config` sets both from the text config always.
- The patch mask: 4.45 counts a 14-px patch as valid when any of its pixels is (``> 0``,
  modeling_idefics2.py:1658), 5.x only when all are. They differ only for images padded inside a batch;
  frames of one clip share their size and batches here only group clips whose frames have the same size,
  so no image is ever padded.
- Tokenisation: transformers 5.x rebuilds a ``LlamaTokenizer`` from the vocabulary with its own
  ``Metaspace`` pre-tokeniser, while 4.45 uses ``tokenizer.json`` as saved (Mistral's legacy normaliser
  ``Prepend('▁') + Replace(' ', '▁')``, applied to every text segment between special tokens: the single
  space between two frames' ``<fake_token_around_image>`` becomes ``▁▁``, not ``▁``). The ids are
  therefore computed here with the ``tokenizers`` library straight from ``tokenizer.json``, plus 4.45's
  ``LlamaTokenizerFast.update_post_processor`` template (``<s>`` when ``add_bos_token``, ``</s>`` when
  ``add_eos_token``, from ``tokenizer_config.json``). The image tokens follow 4.45's ``Idefics2Processor``:
  each ``<image>`` becomes ``<fake_token_around_image>`` + ``image_seq_len`` × ``<image>`` +
  ``<fake_token_around_image>``, then doubled fake tokens are merged.
- Pixels follow 4.45's ``Idefics2ImageProcessor`` (numpy + PIL, not 5.x's torchvision backend): RGB, the
  longest-edge / shortest-edge size rule, PIL resize with the configured filter (bilinear), ``x.astype(float64)
  * rescale_factor`` cast to float32, ``(x - mean) / std`` in float32, channels first.
  ``do_image_splitting`` must be false (Mantis trains with it off, train_idefics2.py:108; with it on 24 frames
  would need 7,680 image tokens, beyond the 4,096 the heads were trained on).

**Prompt** (reward_infer.py:52-63, 172-175): :data:`REGRESSION_QUERY_PROMPT` formatted with the case prompt,
then ``"<image> "`` once per frame. The published script gives the **same "quality" prompt to both heads**
(quirk 4 of the checklist); reproduced. It counts ``<image>`` already in the text before appending; a case
prompt holding a special token's text is refused here instead (it would move frames into the prompt).

**Value** (lines 224-237): ``round(logits[0, 0].item(), 3) / 100`` — a regression onto 0-100 human scores, not
clamped. The logit is read in the model's dtype (bf16 as published on GPU: coarse, steps of 0.25-0.5 near 50-100).

**Limits.** The heads were trained on sequences of at most 4,096 tokens (``_4096_regression`` in the folder
names; the training metadata's max length); the published code never truncates the prompt. A sequence longer
than :data:`TRAINING_SEQUENCE_LENGTH` (or the text model's position limit) is an input error.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from anibench.errors import InputError, MissingWeightsError

WHAT = "Mantis-Idefics2 regression head"
ARCHITECTURE = "Idefics2ForSequenceClassification"
MODEL_TYPE = "idefics2"
ROUND_DIGITS = 3  # ROUND_DIGIT, reward_infer.py:65
TRAINING_SEQUENCE_LENGTH = 4096  # "..._4096_regression"; max length in the vendored wandb metadata
DEFAULT_IMAGE_SEQ_LEN = 64  # transformers 4.45 Idefics2Processor default

# reward_infer.py:52-63, character for character: it starts and ends with a newline and the "sub-score," line
# ends with a space.
REGRESSION_QUERY_PROMPT = """
Suppose you are an expert in judging and evaluating the quality of AI-generated videos,
please watch the following frames of a given video and see the text prompt for generating the video,
then give scores from quality dimensions: the quality of the video in terms of clearness, resolution, brightness, and color

Output a float number from 0 to 100,
the higher the number is, the better the video performs in that sub-score, 
the lowest 0 means Bad, the highest 100 means Perfect/Real (the video is like a real video)

For this video, the text prompt is "{text_prompt}",
all the frames of video are as follows:
"""

IMAGE_TOKEN = "<image>"
FAKE_IMAGE_TOKEN = "<fake_token_around_image>"

# Files of a published checkpoint-final folder besides the weights.
CONFIG_FILE = "config.json"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
PROCESSOR_FILE = "processor_config.json"


def published_value(logit: float) -> float:
    """``round(logit, 3) / 100`` (reward_infer.py:224-237): the published score, not clamped."""
    return round(float(logit), ROUND_DIGITS) / 100


def eval_prompt(prompt: str, num_frames: int) -> str:
    """The text the published script gives both Mantis heads for ``num_frames`` frames."""
    text = REGRESSION_QUERY_PROMPT.format(text_prompt=prompt)
    return text + "<image> " * max(0, num_frames - text.count(IMAGE_TOKEN))


def pooled_position(ids: Sequence[int], pad_token_id: int | None) -> int:
    """The position whose hidden state the published head scores (modeling_idefics2.py:2176-2187)."""
    length = len(ids)
    if pad_token_id is None:
        return length - 1
    hits = np.flatnonzero(np.asarray(ids) == pad_token_id)
    first = int(hits[0]) if len(hits) else 0  # torch.eq(...).int().argmax(-1): 0 when there is no pad
    return (first - 1) % length


# --- the checkpoint folder ------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"not a complete {what} checkpoint folder: {path.name} is missing", path=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path.name} of the {what} checkpoint: {exc}", path=path) from exc
    if not isinstance(data, dict):
        raise InputError(f"{path.name} of the {what} checkpoint is not a JSON object", path=path)
    return data


def check_folder(folder: str | Path, what: str = WHAT) -> dict[str, Any]:
    """Check a published checkpoint-final folder before loading it; returns its config.json.

    Refused with an :class:`InputError` naming the file: a folder that is not there, a config.json that is not
    an Idefics2 sequence classifier (another architecture), a weight shard listed in the index but absent (or
    no weights at all), a missing tokenizer or image-processor file, image splitting switched on.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingWeightsError(f"the {what} checkpoint folder is not there", path=folder)
    config = _read_json(folder / CONFIG_FILE, what)
    architectures = config.get("architectures") or []
    if ARCHITECTURE not in architectures or config.get("model_type") != MODEL_TYPE:
        raise InputError(
            f"not a {what} checkpoint: config.json names architectures {architectures} and model_type "
            f"{config.get('model_type')!r}; expected {ARCHITECTURE} with model_type {MODEL_TYPE!r} "
            "(a Mantis-Idefics2 regression checkpoint-final folder)", path=folder / CONFIG_FILE)
    index = folder / INDEX_FILE
    if index.is_file():
        weight_map = _read_json(index, what).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise InputError(f"{INDEX_FILE} of the {what} checkpoint has no weight_map", path=index)
        for shard in sorted(set(weight_map.values())):
            if not (folder / shard).is_file():
                raise InputError(f"the {what} checkpoint is incomplete: weight shard {shard} listed in {INDEX_FILE} "
                                 "is missing", path=folder / shard)
    elif not (folder / SINGLE_WEIGHTS_FILE).is_file():
        raise InputError(f"the {what} checkpoint has no weights ({INDEX_FILE} or {SINGLE_WEIGHTS_FILE})", path=folder)
    for name in (TOKENIZER_FILE, PREPROCESSOR_FILE):
        if not (folder / name).is_file():
            raise InputError(f"the {what} checkpoint lacks {name} (the processor saved with it)", path=folder / name)
    if _read_json(folder / PREPROCESSOR_FILE, what).get("do_image_splitting", False):
        raise InputError(f"the {what} checkpoint's processor splits images (do_image_splitting: true); the "
                         "AnimeReward heads were trained without splitting and it is not supported",
                         path=folder / PREPROCESSOR_FILE)
    return config


def build_config(raw: dict[str, Any]):
    """transformers 5.x ``Idefics2Config`` from a 4.45-era config.json, perceiver sizes tied to the text model."""
    from transformers import Idefics2Config

    raw = {k: v for k, v in raw.items() if k not in ("architectures", "transformers_version", "_name_or_path")}
    text = raw.get("text_config") or {}
    if isinstance(raw.get("perceiver_config"), dict) and "hidden_size" in text:
        raw["perceiver_config"] = {**raw["perceiver_config"], "hidden_size": text["hidden_size"],
                                   "rms_norm_eps": text.get("rms_norm_eps", 1e-5)}
    config = Idefics2Config(**raw)
    # The published perceiver reads text_config.hidden_size / rms_norm_eps (modeling_idefics2.py:1268-1272, 1190-1193).
    config.perceiver_config.hidden_size = config.text_config.hidden_size
    config.perceiver_config.rms_norm_eps = config.text_config.rms_norm_eps
    return config


# --- preprocessing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSettings:
    """4.45 ``Idefics2ImageProcessor`` settings of the checkpoint (``preprocessor_config.json``)."""

    longest_edge: int = 980
    shortest_edge: int = 378
    resample: int = 2
    rescale_factor: float = 1 / 255
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    do_resize: bool = True
    do_rescale: bool = True
    do_normalize: bool = True

    @classmethod
    def from_file(cls, path: Path) -> "ImageSettings":
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        size = raw.get("size") or {}
        return cls(
            longest_edge=int(size.get("longest_edge", cls.longest_edge)),
            shortest_edge=int(size.get("shortest_edge", cls.shortest_edge)),
            resample=int(raw.get("resample", cls.resample)),
            rescale_factor=float(raw.get("rescale_factor", cls.rescale_factor)),
            image_mean=tuple(float(v) for v in raw.get("image_mean", cls.image_mean)),
            image_std=tuple(float(v) for v in raw.get("image_std", cls.image_std)),
            do_resize=bool(raw.get("do_resize", True)),
            do_rescale=bool(raw.get("do_rescale", True)),
            do_normalize=bool(raw.get("do_normalize", True)),
        )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """4.45 ``get_resize_output_image_size``: shrink to the longest edge, then raise to the shortest."""
        if not self.do_resize:
            return height, width
        aspect = width / height
        if width >= height and width > self.longest_edge:
            width = self.longest_edge
            height = int(width / aspect)
        elif height > width and height > self.longest_edge:
            height = self.longest_edge
            width = int(height * aspect)
        return max(height, self.shortest_edge), max(width, self.shortest_edge)

    def pixels(self, frame: np.ndarray) -> np.ndarray:
        """One RGB uint8 (H, W, 3) frame → float32 (3, h, w) as the checkpoint's processor makes it."""
        from PIL import Image

        height, width = frame.shape[:2]
        size = self.output_size(height, width)
        image = np.asarray(frame, dtype=np.uint8)
        if size != (height, width):
            image = np.asarray(Image.fromarray(image).resize((size[1], size[0]), resample=self.resample))
        out = image.astype(np.float64) * self.rescale_factor if self.do_rescale else image
        out = np.asarray(out, dtype=np.float32)
        if self.do_normalize:
            out = (out - np.asarray(self.image_mean, dtype=np.float32)) / np.asarray(self.image_std, dtype=np.float32)
        return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)


@dataclass(frozen=True)
class EncodedPrompt:
    """Token ids of the whole sequence, the case prompt's own token count and the pooled position."""

    ids: np.ndarray
    prompt_tokens: int
    pooled: int


class PromptEncoder:
    """The published prompt → token ids, from the checkpoint's ``tokenizer.json`` (see the module docstring)."""

    def __init__(self, folder: Path, image_seq_len: int, pad_token_id: int | None, max_length: int):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        settings = {}
        if (folder / TOKENIZER_CONFIG_FILE).is_file():
            settings = json.loads((folder / TOKENIZER_CONFIG_FILE).read_text(encoding="utf-8"))
        tokenizer_class = settings.get("tokenizer_class", "LlamaTokenizer")
        if settings.get("add_prefix_space") is not None:
            # transformers 4.45 would then rebuild the tokenizer from tokenizer.model (from_slow) instead of
            # reading tokenizer.json; not seen in Idefics2/Mantis folders, and not reproduced here.
            warnings.warn(f"{folder / TOKENIZER_CONFIG_FILE} sets add_prefix_space; the published code would rebuild "
                          "the tokenizer from tokenizer.model, anibench reads tokenizer.json: token ids may differ",
                          stacklevel=2)
        self.llama_template = tokenizer_class in ("LlamaTokenizer", "LlamaTokenizerFast")
        self.add_bos = bool(settings.get("add_bos_token", True))
        self.add_eos = bool(settings.get("add_eos_token", False))
        self.bos_id = self._id(_token_text(settings.get("bos_token", "<s>")))
        self.eos_id = self._id(_token_text(settings.get("eos_token", "</s>")))
        self.image_seq_len = image_seq_len
        self.pad_token_id = pad_token_id
        self.max_length = max_length
        self.special = sorted({t.content for t in self.tokenizer.get_added_tokens_decoder().values() if t.special})
        for token in (IMAGE_TOKEN, FAKE_IMAGE_TOKEN):
            self._id(token)

    def _id(self, token: str | None) -> int | None:
        if token is None:
            return None
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise InputError(f"the {WHAT}'s tokenizer has no {token!r} token")
        return found

    def _tokens(self, text: str) -> list[int]:
        if not self.llama_template:
            return list(self.tokenizer.encode(text, add_special_tokens=True).ids)
        ids = list(self.tokenizer.encode(text, add_special_tokens=False).ids)
        return ([self.bos_id] if self.add_bos else []) + ids + ([self.eos_id] if self.add_eos else [])

    def expand_images(self, text: str) -> str:
        """4.45 ``Idefics2Processor``: each ``<image>`` → fake + image × image_seq_len + fake; fakes de-doubled."""
        block = f"{FAKE_IMAGE_TOKEN}{IMAGE_TOKEN * self.image_seq_len}{FAKE_IMAGE_TOKEN}"
        return text.replace(IMAGE_TOKEN, block).replace(FAKE_IMAGE_TOKEN * 2, FAKE_IMAGE_TOKEN)

    def prompt_tokens(self, prompt: str) -> int:
        """How many tokens the case prompt itself takes (no special tokens)."""
        return len(self.tokenizer.encode(prompt, add_special_tokens=False).ids)

    def encode(self, prompt: str, num_frames: int) -> EncodedPrompt:
        """The sequence for ``prompt`` and ``num_frames`` frames; an :class:`InputError` beyond the limit."""
        inside = [token for token in self.special if token in prompt]
        if inside:
            raise InputError(f"the prompt contains the {WHAT}'s special token text {inside[0]!r}; the published "
                             "script would place video frames inside the prompt there, so it is refused")
        ids = self._tokens(self.expand_images(eval_prompt(prompt, num_frames)))
        if len(ids) > self.max_length:
            raise InputError(
                f"the prompt is too long for the {WHAT}: with {num_frames} frames the sequence has {len(ids)} "
                f"tokens, over the head's limit of {self.max_length} (the length it was trained on); "
                f"the prompt itself is {self.prompt_tokens(prompt)} tokens. The published code does not "
                "truncate, so neither does anibench: shorten the prompt")
        return EncodedPrompt(np.asarray(ids, dtype=np.int64), self.prompt_tokens(prompt),
                             pooled_position(ids, self.pad_token_id))


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value


# --- the network ------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _model_class():
    import torch
    from torch import nn
    from transformers import Idefics2Model
    from transformers.models.idefics2.modeling_idefics2 import Idefics2PreTrainedModel

    class MantisRegression(Idefics2PreTrainedModel):
        """Mantis' ``Idefics2ForSequenceClassification``: ``model`` (Idefics2) + ``score`` (Linear with bias)."""

        def __init__(self, config):
            super().__init__(config)
            self.num_labels = config.num_labels
            self.model = Idefics2Model(config)
            self.score = nn.Linear(config.text_config.hidden_size, self.num_labels)
            self.post_init()

        def image_features(self, pixel_values: torch.Tensor, chunk: int) -> torch.Tensor:
            """(B, N, 3, H, W) unpadded frames → (B * N * latents, hidden), ``chunk`` frames at a time."""
            batch, frames = pixel_values.shape[:2]
            flat = pixel_values.reshape(batch * frames, 1, *pixel_values.shape[2:])
            parts = []
            for start in range(0, flat.shape[0], chunk):
                piece = flat[start:start + chunk].reshape(1, -1, *flat.shape[2:])
                mask = torch.ones((1, piece.shape[1], *piece.shape[3:]), dtype=torch.bool, device=piece.device)
                out = self.model.get_image_features(piece, mask, return_dict=True).pooler_output
                parts.append(torch.cat(list(out), dim=0) if isinstance(out, (list, tuple)) else out)
            return torch.cat(parts, dim=0)

        def forward(self, input_ids, attention_mask, pixel_values, pooled, chunk: int = 8):
            """Logits (B, num_labels) at the ``pooled`` position of each row, in the model's dtype."""
            embeddings = self.model.get_input_embeddings()(input_ids)
            images = self.image_features(pixel_values.to(self.dtype), chunk)
            embeddings = self.model.inputs_merger(input_ids, embeddings, images)
            hidden = self.model.text_model(inputs_embeds=embeddings, attention_mask=attention_mask,
                                           use_cache=False, return_dict=True).last_hidden_state
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            return self.score(hidden[rows, pooled])

    return MantisRegression


@dataclass
class MantisHead:
    """A loaded head: the network, its prompt encoder and pixel settings, and where it came from."""

    model: Any
    prompts: PromptEncoder
    images: ImageSettings
    folder: Path
    num_labels: int

    def logits(self, ids: Sequence[np.ndarray], pooled: Sequence[int], pixels: Sequence[np.ndarray],
               chunk: int = 8) -> list[float]:
        """Label-0 logits of several clips whose frames share one shape (rows right-padded, never images)."""
        import torch

        device = next(self.model.parameters()).device
        length = max(len(row) for row in ids)
        input_ids = torch.zeros((len(ids), length), dtype=torch.long)
        attention = torch.zeros((len(ids), length), dtype=torch.long)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = torch.from_numpy(np.asarray(row, dtype=np.int64))
            attention[i, : len(row)] = 1
        pixel_values = torch.from_numpy(np.stack([np.asarray(p, dtype=np.float32) for p in pixels]))
        with torch.inference_mode():
            out = self.model(input_ids.to(device), attention.to(device), pixel_values.to(device),
                             torch.as_tensor(list(pooled), dtype=torch.long, device=device), chunk=chunk)
        return [float(v) for v in out[:, 0].tolist()]


def load_head(folder: str | Path, device: Any = "cpu", dtype: Any = None, *, what: str = WHAT,
              entry: str | None = None) -> MantisHead:
    """Load a published checkpoint-final folder (checked first, see :func:`check_folder`) on ``device``/``dtype``."""
    import torch

    folder = Path(folder)
    raw = check_folder(folder, what)
    config = build_config(raw)
    config.use_cache = False
    dtype = dtype or torch.float32
    cls = _model_class()
    try:
        model, info = cls.from_pretrained(str(folder), config=config, dtype=dtype, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot load the {what} checkpoint{f' (weights entry {entry!r})' if entry else ''}: "
                         f"{text}", path=folder) from exc
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        listed = "; ".join(f"{k.replace('_', ' ')}: {', '.join(map(str, sorted(v)[:5]))}"
                           + (f" and {len(v) - 5} more" if len(v) > 5 else "") for k, v in problems.items())
        raise InputError(f"the {what} checkpoint does not match the Idefics2 sequence-classification layout "
                         f"({listed})", path=folder)
    model = model.to(device).eval()
    image_seq_len = DEFAULT_IMAGE_SEQ_LEN
    if (folder / PROCESSOR_FILE).is_file():
        image_seq_len = int(_read_json(folder / PROCESSOR_FILE, what).get("image_seq_len", DEFAULT_IMAGE_SEQ_LEN))
    latents = config.perceiver_config.resampler_n_latents
    if image_seq_len != latents:
        raise InputError(f"the {what} checkpoint's processor expands each frame to {image_seq_len} tokens but its "
                         f"perceiver produces {latents}", path=folder / PROCESSOR_FILE)
    limit = min(TRAINING_SEQUENCE_LENGTH, int(getattr(config.text_config, "max_position_embeddings", 1 << 30)))
    prompts = PromptEncoder(folder, image_seq_len, raw.get("pad_token_id"), limit)
    return MantisHead(model, prompts, ImageSettings.from_file(folder / PREPROCESSOR_FILE), folder, config.num_labels)
