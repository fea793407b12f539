"""Fixed random weights in the published format of ``raft-things.pth`` (VBench's dynamic degree).

Recipe shared by the reference side (scripts/parity/vbench_dynamic_degree_reference.py, VBench's own
RAFT in the parity venv) and anibench's tests; numpy + torch only.

The published file is ``torch.save(model.state_dict())`` of ``nn.DataParallel(RAFT(args))`` with
``small=False`` (princeton-vl/RAFT ``core/raft.py``, ``extractor.py``, ``update.py``; vendored unchanged
in VBench ``vbench/third_party/RAFT/core`` at 45e79ec): every key starts with ``module.``; the feature
encoder (``fnet``) uses instance norm without parameters, the context encoder (``cnet``) batch norm
whose ``norm3`` is registered twice in each downsampling block (``norm3`` and ``downsample.1``: the
same tensors under two names); batch-norm layers carry ``running_mean``, ``running_var`` and an int64
``num_batches_tracked``. VBench loads it with ``load_state_dict`` (strict) after stripping ``module.``.

Values: every tensor has its own generator, ``numpy.random.default_rng([seed, crc32(name)])``, drawing
``random()`` mapped to a uniform distribution with the tensor's mean and standard deviation (as
tests/parity/weights.py). Convolutions are fan-in scaled (std ``1/sqrt(fan_in)``), biases small,
batch-norm weights 1 ± 0.1 and running variances 1 ± 0.2 around a small running mean. The flow head's
last convolution is scaled by ``FLOW_HEAD_GAIN`` so that 20 updates give flows of a few pixels to a few
tens of pixels whose size follows the content, rather than saturating.
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
BN_WEIGHT_STD = 0.1
BN_BIAS_STD = 0.05
BN_MEAN_STD = 0.05
BN_VAR_STD = 0.2
FLOW_HEAD_GAIN = 0.035
FLOW_HEAD_BIAS_STD = 0.001
CORR_PLANES = 4 * (2 * 4 + 1) ** 2  # corr_levels 4, radius 4
PREFIX = "module."


def _conv(name: str, out_channels: int, in_channels: int, kh: int, kw: int | None = None,
          gain: float = 1.0, bias_std: float = BIAS_STD) -> list[TensorRecipe]:
    kw = kh if kw is None else kw
    fan_in = in_channels * kh * kw
    return [(f"{name}.weight", (out_channels, in_channels, kh, kw), 0.0, gain / math.sqrt(fan_in)),
            (f"{name}.bias", (out_channels,), 0.0, bias_std)]


def _batch_norm(name: str, channels: int) -> list[TensorRecipe]:
    return [(f"{name}.weight", (channels,), 1.0, BN_WEIGHT_STD), (f"{name}.bias", (channels,), 0.0, BN_BIAS_STD),
            (f"{name}.running_mean", (channels,), 0.0, BN_MEAN_STD),
            (f"{name}.running_var", (channels,), 1.0, BN_VAR_STD)]


def _encoder(prefix: str, batch_norm: bool) -> list[TensorRecipe]:
    """``BasicEncoder(output_dim=256)`` entries in ``state_dict()`` order (norm3 copies added afterwards)."""
    recipe = _conv(f"{prefix}.conv1", 64, 3, 7)
    if batch_norm:
        recipe = _batch_norm(f"{prefix}.norm1", 64) + recipe
    in_planes = 64
    for layer, planes in ((1, 64), (2, 96), (3, 128)):
        for block in (0, 1):
            name = f"{prefix}.layer{layer}.{block}"
            source = in_planes if block == 0 else planes
            recipe += _conv(f"{name}.conv1", planes, source, 3) + _conv(f"{name}.conv2", planes, planes, 3)
            if batch_norm:
                recipe += _batch_norm(f"{name}.norm1", planes) + _batch_norm(f"{name}.norm2", planes)
            if block == 0 and layer > 1:
                recipe += _conv(f"{name}.downsample.0", planes, source, 1)
                if batch_norm:
                    recipe += _batch_norm(f"{name}.downsample.1", planes)
        in_planes = planes
    return recipe + _conv(f"{prefix}.conv2", 256, 128, 1)


def raft_things_recipe() -> list[TensorRecipe]:
    """Every float entry of princeton-vl ``RAFT(small=False)``'s state dict (without ``module.``)."""
    recipe = _encoder("fnet", batch_norm=False) + _encoder("cnet", batch_norm=True)
    encoder = "update_block.encoder"
    recipe += _conv(f"{encoder}.convc1", 256, CORR_PLANES, 1) + _conv(f"{encoder}.convc2", 192, 256, 3)
    recipe += _conv(f"{encoder}.convf1", 128, 2, 7) + _conv(f"{encoder}.convf2", 64, 128, 3)
    recipe += _conv(f"{encoder}.conv", 126, 256, 3)
    for half, (kh, kw) in ((1, (1, 5)), (2, (5, 1))):
        for gate in ("z", "r", "q"):
            recipe += _conv(f"update_block.gru.conv{gate}{half}", 128, 128 + 256, kh, kw)
    recipe += _conv("update_block.flow_head.conv1", 256, 128, 3)
    recipe += _conv("update_block.flow_head.conv2", 2, 256, 3, gain=FLOW_HEAD_GAIN, bias_std=FLOW_HEAD_BIAS_STD)
    recipe += _conv("update_block.mask.0", 256, 128, 3) + _conv("update_block.mask.2", 64 * 9, 256, 1)
    return recipe


def _values(name: str, shape: tuple[int, ...], mean: float, std: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    half_width = std * math.sqrt(3.0)
    return np.asarray(mean + half_width * (2.0 * rng.random(shape, dtype=np.float64) - 1.0), dtype=np.float32)


def raft_things_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """The published layout: ``module.``-prefixed keys, norm3 duplicates, int64 ``num_batches_tracked``."""
    state: dict[str, torch.Tensor] = {}
    for name, shape, mean, std in raft_things_recipe():
        state[PREFIX + name] = torch.from_numpy(_values(name, shape, mean, std, seed))
        if name.endswith(".running_var"):
            state[PREFIX + name.rsplit(".", 1)[0] + ".num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    for key in [k for k in state if ".downsample.1." in k and k.startswith(PREFIX + "cnet.")]:
        state[key.replace(".downsample.1.", ".norm3.")] = state[key]  # one module, two names
    return state


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """Digest of names, dtypes, shapes and values in key order (independent of the file container)."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def write_raft_things_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Write ``raft-things.pth``-format weights (``torch.save`` of the state dict) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(raft_things_state_dict(seed), path)
    return path
