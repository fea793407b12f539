"""Fixed random AMT-S weights in the published ``amt-s.pth`` format, and the motion-smoothness parity clips.

Recipe shared by the reference side (scripts/parity/vbench_motion_smoothness_reference.py, VBench's
own code in the parity venv) and anibench's tests (tests/test_vbench_motion_smoothness.py);
numpy + torch only (plus :mod:`parity.clips` for the clips).

Weights: every tensor of AMT-S (``networks/AMT-S.py`` with ``cfgs/AMT-S.yaml`` in VBench 45e79ec's
``vbench/third_party/amt``: 213 tensors, 2,990,543 parameters) from its own generator,
``numpy.random.default_rng([seed, crc32(name)])`` drawing ``random()`` mapped to a uniform
distribution with the tensor's mean and standard deviation, cast to float32 (the rule of
``parity/weights.py``). Scales: convolutions ``gain/sqrt(fan_in)`` (transposed ones with fan-in
``in·k²/4``, stride 2), biases 0.02, PReLU slopes 0.25 ± 0.05; the layers producing the final
flows/masks/residuals and the candidate correction get a small gain, so the random network blends
warped frames (mean errors of a few grey levels) instead of saturating at 0 or 1.

The file is ``torch.save({"state_dict": ...})``: VBench reads ``ckpt['state_dict']``
(motion_smoothness.py L87-88). AMT's trainer also stores ``epoch`` and ``optim``
(trainers/base_trainer.py L219-227); the published file's size (12.0 MB for 3.0 M float32
parameters) leaves no room for optimiser state.

Clips: 128 px or more on the short side, so AMT-S's coarsest correlation level is at least 2 px
(at 64 px it is 1 px and the reference's ``2x/(W−1)`` divides by zero), one clip whose sides are not
multiples of 16 (replicate padding), odd and even frame counts, a scene cut, and
``downscale_320x240`` from ``parity/clips.py``.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from parity.clips import PARITY_CLIPS, ClipSpec

# (name, shape, mean, std)
TensorRecipe = tuple[str, tuple[int, ...], float, float]

CHANNELS = (20, 32, 44, 56)
SKIP = 20
NUM_FLOWS = 3
CORR_PLANES = 4 * (2 * 3 + 1) ** 2  # corr_lvls 4, radius 3
BIAS_STD = 0.02
PRELU_MEAN, PRELU_STD = 0.25, 0.05
# Small gains on the layers whose outputs reach the frame directly (residuals, masks, final flows).
OUTPUT_GAIN = 0.1
FLOW_HEAD_GAIN = 0.3

MOTION_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("ms_landscape_192x128", 192, 128, 9, seed=31, image_width=64, image_height=64),
    ClipSpec("ms_pad_200x136_cut", 200, 136, 10, seed=32, scene_cut_at=5, image_width=64, image_height=64),
    ClipSpec("ms_portrait_128x160", 128, 160, 7, seed=33, image_width=64, image_height=64),
    next(spec for spec in PARITY_CLIPS if spec.name == "downscale_320x240"),
)


def _conv(name: str, out_channels: int, in_channels: int, kernel: int, gain: float = 1.0) -> list[TensorRecipe]:
    std = gain / math.sqrt(in_channels * kernel * kernel)
    return [(f"{name}.weight", (out_channels, in_channels, kernel, kernel), 0.0, std),
            (f"{name}.bias", (out_channels,), 0.0, BIAS_STD)]


def _transposed(name: str, in_channels: int, out_channels: int, gain: float = 1.0) -> list[TensorRecipe]:
    std = gain / math.sqrt(in_channels * 4 * 4 / 4)
    return [(f"{name}.weight", (in_channels, out_channels, 4, 4), 0.0, std),
            (f"{name}.bias", (out_channels,), 0.0, BIAS_STD)]


def _prelu(name: str, channels: int) -> list[TensorRecipe]:
    return [(f"{name}.weight", (channels,), PRELU_MEAN, PRELU_STD)]


def _conv_prelu(name: str, out_channels: int, in_channels: int) -> list[TensorRecipe]:
    return _conv(f"{name}.0", out_channels, in_channels, 3) + _prelu(f"{name}.1", out_channels)


def _bottleneck(name: str, in_channels: int, channels: int, stride: int) -> list[TensorRecipe]:
    quarter = channels // 4
    recipe = (_conv(f"{name}.conv1", quarter, in_channels, 1) + _conv(f"{name}.conv2", quarter, quarter, 3)
              + _conv(f"{name}.conv3", channels, quarter, 1))
    if stride != 1:
        recipe += _conv(f"{name}.downsample.0", channels, in_channels, 1)
    return recipe


def _side_residual(name: str, channels: int) -> list[TensorRecipe]:
    recipe: list[TensorRecipe] = []
    for index, width in ((1, channels), (2, SKIP), (3, channels), (4, SKIP)):
        recipe += _conv_prelu(f"{name}.conv{index}", width, width)
    return recipe + _conv(f"{name}.conv5", channels, channels, 3) + _prelu(f"{name}.prelu", channels)


def _decoder(name: str, in_channels: int, out_channels: int, gain: float = 1.0) -> list[TensorRecipe]:
    width = _decoder_width(name)
    return (_conv_prelu(f"{name}.convblock.0", width, in_channels) + _side_residual(f"{name}.convblock.1", width)
            + _transposed(f"{name}.convblock.2", width, out_channels, gain))


def _decoder_width(name: str) -> int:
    level = int(name[-1])
    return CHANNELS[level - 1] * (2 if level == 4 else 3)


def _update(name: str, feature_channels: int) -> list[TensorRecipe]:
    hidden = 76
    return (_conv(f"{name}.convc1", 64, 2 * CORR_PLANES, 1) + _conv(f"{name}.convf1", 40, 4, 7)
            + _conv(f"{name}.convf2", 20, 40, 3) + _conv(f"{name}.conv", 68, 84, 3)
            + _conv(f"{name}.gru.0", hidden, 68 + 4 + feature_channels, 3) + _conv(f"{name}.gru.2", hidden, hidden, 3)
            + _conv(f"{name}.feat_head.0", hidden, hidden, 3)
            + _conv(f"{name}.feat_head.2", feature_channels, hidden, 3)
            + _conv(f"{name}.flow_head.0", hidden, hidden, 3)
            + _conv(f"{name}.flow_head.2", 4, hidden, 3, FLOW_HEAD_GAIN))


def amt_s_recipe() -> list[TensorRecipe]:
    """Every tensor of ``amt-s.pth['state_dict']`` (names and shapes of VBench's AMT-S ``Model``)."""
    recipe = _conv("feat_encoder.conv1", 32, 3, 7)
    for layer, (in_channels, channels, stride) in enumerate(((32, 32, 1), (32, 64, 2), (64, 96, 2)), 1):
        recipe += _bottleneck(f"feat_encoder.layer{layer}.0", in_channels, channels, stride)
        recipe += _bottleneck(f"feat_encoder.layer{layer}.1", channels, channels, 1)
    recipe += _conv("feat_encoder.conv2", 84, 96, 1)
    previous = 3
    for level, width in enumerate(CHANNELS, 1):
        recipe += _conv_prelu(f"encoder.pyramid{level}.0", width, previous)
        recipe += _conv_prelu(f"encoder.pyramid{level}.1", width, width)
        previous = width
    recipe += _decoder("decoder4", 2 * CHANNELS[3] + 1, CHANNELS[2] + 4)
    recipe += _decoder("decoder3", 3 * CHANNELS[2] + 4, CHANNELS[1] + 4)
    recipe += _decoder("decoder2", 3 * CHANNELS[1] + 4, CHANNELS[0] + 4)
    recipe += _decoder("decoder1", 3 * CHANNELS[0] + 4, 8 * NUM_FLOWS, OUTPUT_GAIN)
    for name, feature_channels in (("update4", CHANNELS[2]), ("update3", CHANNELS[1]), ("update2", CHANNELS[0])):
        recipe += _update(name, feature_channels)
    recipe += _conv("comb_block.0", 6 * NUM_FLOWS, 3 * NUM_FLOWS, 3) + _prelu("comb_block.1", 6 * NUM_FLOWS)
    recipe += _conv("comb_block.2", 3, 6 * NUM_FLOWS, 3, OUTPUT_GAIN)
    return recipe


def _values(name: str, shape: tuple[int, ...], mean: float, std: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    half_width = std * math.sqrt(3.0)
    return np.asarray(mean + half_width * (2.0 * rng.random(shape, dtype=np.float64) - 1.0), dtype=np.float32)


def amt_s_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """The recipe's AMT-S tensors (float32), in recipe order."""
    return {name: torch.from_numpy(_values(name, shape, mean, std, seed)) for name, shape, mean, std in amt_s_recipe()}


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over sorted names, dtypes, shapes and little-endian values."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().astype(tensor.numpy().dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def write_amt_s_checkpoint(path: str | Path, seed: int = 0, **extra: object) -> Path:
    """``torch.save({"state_dict": ..., **extra}, path)``: the published layout (``extra``: e.g. ``epoch``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": amt_s_state_dict(seed), **extra}, path)
    return path
