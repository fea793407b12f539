"""Fixed random weights in the published ``cotracker2.pth`` format (CoTracker2, VBench-I2V camera motion).

Recipe shared by the reference side (scripts/parity/vbench_camera_motion_reference.py, VBench's and
co-tracker's own code in the parity venv) and anibench's tests; numpy + torch only.

``cotracker2.pth`` (``https://huggingface.co/facebook/cotracker/resolve/main/cotracker2.pth``, loaded by
co-tracker's ``hubconf.cotracker2`` with ``predictor.model.load_state_dict(state_dict)``, strict) is a
plain state dict of ``CoTracker2(stride=4, window_len=8)`` (cotracker/models/core/cotracker/cotracker.py
at facebookresearch/co-tracker 82e02e8): 321 tensors, 45.5 M parameters, including the two sin-cos
buffers ``time_emb`` (1, 8, 456) and ``pos_emb`` (1, 456, 96, 128). :func:`cotracker2_recipe` lists
every tensor of that layout for a given size (the published one by default; smaller ones for cheap
tests), in ``state_dict()`` order.

Values: learned tensors as in ``weights.py`` (one generator per tensor,
``numpy.random.default_rng([seed, crc32(name)])``, uniform with the given mean and standard deviation,
float32); the buffers hold the sin-cos embeddings co-tracker computes (``embeddings.py``, float64 then
float32), as the published file does. Scales: fan-in scaled convolutions and linear layers, LayerNorm
weights 1 ± 0.1, small biases. Two choices keep a random tracker well-behaved:

* ``flow_head`` (coordinate and feature deltas) at a tenth of the fan-in scale: random deltas of
  ~0.1 feature cells per iteration, so tracks drift by pixels, not off the frame;
* the input columns of ``updateformer.input_transform`` that read the flow embedding (the first
  2 + 2·64) at a hundredth: that embedding is sin/cos of up to 984x the displacement, and at full
  scale a random network amplifies a last-bit difference (another BLAS thread count) into visibly
  different tracks within a few iterations.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from pathlib import Path

import numpy as np
import torch

TensorRecipe = tuple[str, tuple[int, ...], float, float]

BIAS_STD = 0.02
LN_WEIGHT_STD = 0.1
LN_BIAS_STD = 0.05
FLOW_HEAD_GAIN = 0.1
FLOW_EMBEDDING_INPUT_GAIN = 0.01
FLOW_EMBED_DIM = 64
CORR_FEATURES = 4 * 7 * 7
HEAD_DIM = 48
STRIDE = 4


def _conv(prefix: str, out_channels: int, in_channels: int, kernel: int) -> list[TensorRecipe]:
    fan_in = in_channels * kernel * kernel
    return [(f"{prefix}.weight", (out_channels, in_channels, kernel, kernel), 0.0, 1 / math.sqrt(fan_in)),
            (f"{prefix}.bias", (out_channels,), 0.0, BIAS_STD)]


def _linear(prefix: str, out_features: int, in_features: int, gain: float = 1.0) -> list[TensorRecipe]:
    return [(f"{prefix}.weight", (out_features, in_features), 0.0, gain / math.sqrt(in_features)),
            (f"{prefix}.bias", (out_features,), 0.0, BIAS_STD)]


def _residual(prefix: str, in_channels: int, channels: int, stride: int) -> list[TensorRecipe]:
    recipe = _conv(f"{prefix}.conv1", channels, in_channels, 3) + _conv(f"{prefix}.conv2", channels, channels, 3)
    if stride != 1:
        recipe += _conv(f"{prefix}.downsample.0", channels, in_channels, 1)
    return recipe


def _attention(prefix: str, hidden: int) -> list[TensorRecipe]:
    return (_linear(f"{prefix}.to_q", hidden, hidden) + _linear(f"{prefix}.to_kv", 2 * hidden, hidden)
            + _linear(f"{prefix}.to_out", hidden, hidden))


def _mlp(prefix: str, hidden: int) -> list[TensorRecipe]:
    return _linear(f"{prefix}.fc1", 4 * hidden, hidden) + _linear(f"{prefix}.fc2", hidden, 4 * hidden)


def input_dim(latent: int) -> int:
    return 2 * FLOW_EMBED_DIM + 2 + CORR_FEATURES + latent + 2


def cotracker2_recipe(latent: int = 128, hidden: int = 384, depth: int = 6, virtual: int = 64,
                      window: int = 8, resolution: tuple[int, int] = (384, 512)) -> list[TensorRecipe]:
    """Every learned tensor of a CoTracker2 state dict (buffers excluded), in ``state_dict()`` order."""
    half, three_quarters = latent // 2, latent // 4 * 3
    recipe: list[TensorRecipe] = _conv("fnet.conv1", half, 3, 7)
    for name, cin, cout, stride in (("layer1", half, half, 1), ("layer2", half, three_quarters, 2),
                                    ("layer3", three_quarters, latent, 2), ("layer4", latent, latent, 2)):
        recipe += _residual(f"fnet.{name}.0", cin, cout, stride) + _residual(f"fnet.{name}.1", cout, cout, 1)
    recipe += _conv("fnet.conv2", 2 * latent, half + three_quarters + 2 * latent, 3)
    recipe += _conv("fnet.conv3", latent, 2 * latent, 1)
    dim = input_dim(latent)
    recipe += [("updateformer.virual_tracks", (1, virtual, 1, hidden), 0.0, 1.0)]
    recipe += _linear("updateformer.input_transform", hidden, dim)
    recipe += _linear("updateformer.flow_head", latent + 2, hidden, gain=FLOW_HEAD_GAIN)
    for i in range(depth):
        prefix = f"updateformer.time_blocks.{i}"
        recipe += _attention(f"{prefix}.attn", hidden) + _mlp(f"{prefix}.mlp", hidden)
    for i in range(depth):
        prefix = f"updateformer.space_virtual_blocks.{i}"
        recipe += _attention(f"{prefix}.attn", hidden) + _mlp(f"{prefix}.mlp", hidden)
    for kind in ("space_point2virtual_blocks", "space_virtual2point_blocks"):
        for i in range(depth):
            prefix = f"updateformer.{kind}.{i}"
            recipe += [(f"{prefix}.norm_context.weight", (hidden,), 1.0, LN_WEIGHT_STD),
                       (f"{prefix}.norm_context.bias", (hidden,), 0.0, LN_BIAS_STD)]
            recipe += _attention(f"{prefix}.cross_attn", hidden) + _mlp(f"{prefix}.mlp", hidden)
    recipe += [("norm.weight", (latent,), 1.0, LN_WEIGHT_STD), ("norm.bias", (latent,), 0.0, LN_BIAS_STD)]
    recipe += _linear("track_feat_updater.0", latent, latent) + _linear("vis_predictor.0", 1, latent)
    return recipe


def _values(name: str, shape: tuple[int, ...], mean: float, std: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    half_width = std * math.sqrt(3.0)
    values = mean + half_width * (2.0 * rng.random(shape, dtype=np.float64) - 1.0)
    return np.asarray(values, dtype=np.float32)


def sincos_1d(embed_dim: int, positions: np.ndarray) -> np.ndarray:
    """(M, D) ``get_1d_sincos_pos_embed_from_grid``: [sin(p·ω), cos(p·ω)], ω_k = 10000^(-k/(D/2)), float64."""
    omega = np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", positions.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def time_embedding(embed_dim: int, window: int) -> np.ndarray:
    """``time_emb`` (1, window, D) float32: positions 0..window-1 (``torch.linspace(0, S-1, S)``)."""
    positions = np.linspace(0, window - 1, window, dtype=np.float32)
    return sincos_1d(embed_dim, positions)[None].astype(np.float32)


def position_embedding(embed_dim: int, height: int, width: int) -> np.ndarray:
    """``pos_emb`` (1, D, h, w) float32: ``get_2d_sincos_pos_embed``, first half from the x (column)
    index, second half from the y (row) index (its ``meshgrid(w, h, indexing="xy")``)."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32), indexing="xy")
    emb = np.concatenate([sincos_1d(embed_dim // 2, xs), sincos_1d(embed_dim // 2, ys)], axis=1).astype(np.float32)
    return emb.reshape(1, height, width, embed_dim).transpose(0, 3, 1, 2).copy()


def cotracker2_state_dict(seed: int = 0, **sizes) -> dict[str, torch.Tensor]:
    """A CoTracker2 state dict (float32): buffers first, then the learned tensors, as ``state_dict()`` orders them."""
    latent = sizes.get("latent", 128)
    window = sizes.get("window", 8)
    height, width = sizes.get("resolution", (384, 512))
    dim = input_dim(latent)
    state = {
        "time_emb": torch.from_numpy(time_embedding(dim, window)),
        "pos_emb": torch.from_numpy(position_embedding(dim, height // STRIDE, width // STRIDE)),
    }
    for name, shape, mean, std in cotracker2_recipe(**sizes):
        values = _values(name, shape, mean, std, seed)
        if name == "updateformer.input_transform.weight":
            values[:, : 2 * FLOW_EMBED_DIM + 2] *= FLOW_EMBEDDING_INPUT_GAIN
        state[name] = torch.from_numpy(values)
    return state


# A CoTracker2 small enough for per-test runs: 32 channels, 96-wide transformer (2 heads), 2 blocks,
# 8 virtual tracks, a 64x96 model resolution. Same code path, same checkpoint format.
TINY_SIZES = {"latent": 32, "hidden": 2 * HEAD_DIM, "depth": 2, "virtual": 8, "resolution": (64, 96)}


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """Digest of names, dtypes, shapes and values in key order (independent of the file container)."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def write_cotracker2_checkpoint(path: str | Path, seed: int = 0, **sizes) -> Path:
    """Write ``cotracker2.pth``-format weights (torch.save of a flat dict of tensors) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(cotracker2_state_dict(seed, **sizes), path)
    return path
