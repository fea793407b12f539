"""RAFT optical flow (Teed & Deng, ECCV 2020) as torchvision's ``raft_large``, from the published checkpoints.

VBench's dynamic degree (``vbench/dynamic_degree.py`` at Vchitect/VBench 45e79ec) runs the RAFT
network vendored in ``vbench/third_party/RAFT/core`` (princeton-vl/RAFT) with ``small=False``,
``mixed_precision=False``, ``alternate_corr=False``, 20 iterations, ``test_mode=True``, on
``raft-things.pth``. torchvision's ``raft_large`` is the same network (its ``C_T_V1`` weights were
ported from that very file):

* feature encoder: instance norm (no parameters), conv7x7/2 → 2×2 residual blocks (64, 96/2,
  128/2) → conv1x1 256; context encoder: the same with batch norm; both with conv biases;
* correlation: all-pairs dot products / sqrt(256), a 4-level average-pooled pyramid, radius-4
  bilinear look-ups (``align_corners=True``) around ``coords / 2**level``;
* update block: motion encoder (corr 1x1 256, 3x3 192; flow 7x7 128, 3x3 64; 3x3 126 + the
  flow), separable ConvGRU (1x5 then 5x1, hidden 128, input 256), flow head (3x3 256, 3x3 2),
  upsampling mask ``0.25 · conv1x1(relu(conv3x3(h)))`` → convex 8x upsampling;
* ``tanh``/``relu`` split of the context output, flow = coords1 − coords0.

The two codes differ only in names and in where the input is scaled: princeton-vl's ``forward``
maps 0..255 to ``2·(x/255) − 1`` itself, torchvision expects that already done
(:func:`raft_input` does it). The parity test (``tests/test_models_raft.py``) shows the flows of
VBench's own RAFT, on the same random weights converted here, are reproduced.

The published file (``models/raft-things.pth`` inside RAFT's ``models.zip``) is a state dict
saved from ``nn.DataParallel``: every key starts with ``module.``, which VBench strips with
``k.replace('module.', '')`` (dynamic_degree.py L36). The residual blocks' ``norm3`` is
registered twice in princeton-vl's code (as ``norm3`` and as ``downsample.1``), so its
tensors appear under both names; the converter checks the two copies are equal and keeps one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from anibench.errors import InputError, MissingWeightsError
from anibench.runtime.torchvision_compat import ensure_torchvision

ensure_torchvision()  # before transformers (imported by checkpoints) or torchvision load torchvision

from anibench.models.checkpoints import read_torch_state_dict  # noqa: E402

WHAT = "RAFT (raft-things)"
WEIGHTS_ENTRY = "raft_things"
CONVERTER_VERSION = "1"
CONVERTED_FILE = "raft_large.safetensors"
# vbench/dynamic_degree.py L77: self.model(image1, image2, iters=20, test_mode=True).
ITERATIONS = 20
# RAFT works at 1/8 resolution: InputPadder pads H and W to multiples of 8 (utils_core/utils.py L7-19).
PAD_MULTIPLE = 8
# torchvision refuses feature maps under 2·2**3 = 16 cells (its 4-level pyramid would reach 1 cell,
# where princeton-vl's bilinear_sampler divides by H−1 = 0): padded frames need 128 px a side.
MIN_PADDED_SIDE = 128
# vbench/dynamic_degree.py L52: cut_index = int(h*w*0.05), the top 5 % of the padded flow's magnitudes.
TOP_FRACTION = 0.05

_PREFIX = "module."
_BATCH_NORM_BUFFERS = ("weight", "bias", "running_mean", "running_var")


def _block_renames(src: str, dst: str, batch_norm: bool) -> dict[str, str]:
    """princeton-vl ``ResidualBlock`` key stems → torchvision ``ResidualBlock`` stems, for one block."""
    names = {f"{src}.conv1": f"{dst}.convnormrelu1.0", f"{src}.conv2": f"{dst}.convnormrelu2.0",
             f"{src}.downsample.0": f"{dst}.downsample.0"}
    if batch_norm:
        names.update({f"{src}.norm1": f"{dst}.convnormrelu1.1", f"{src}.norm2": f"{dst}.convnormrelu2.1",
                      f"{src}.downsample.1": f"{dst}.downsample.1"})
    return names


def _module_renames() -> dict[str, str]:
    """Every module of princeton-vl's ``RAFT`` (small=False) → its torchvision ``raft_large`` counterpart."""
    names: dict[str, str] = {}
    for src, dst, batch_norm in (("fnet", "feature_encoder", False), ("cnet", "context_encoder", True)):
        names[f"{src}.conv1"] = f"{dst}.convnormrelu.0"
        if batch_norm:
            names[f"{src}.norm1"] = f"{dst}.convnormrelu.1"
        for layer in (1, 2, 3):
            for block in (0, 1):
                names.update(_block_renames(f"{src}.layer{layer}.{block}", f"{dst}.layer{layer}.{block}", batch_norm))
        names[f"{src}.conv2"] = f"{dst}.conv"
    motion = "update_block.motion_encoder"
    names.update({
        "update_block.encoder.convc1": f"{motion}.convcorr1.0", "update_block.encoder.convc2": f"{motion}.convcorr2.0",
        "update_block.encoder.convf1": f"{motion}.convflow1.0", "update_block.encoder.convf2": f"{motion}.convflow2.0",
        "update_block.encoder.conv": f"{motion}.conv.0",
        "update_block.flow_head.conv1": "update_block.flow_head.conv1",
        "update_block.flow_head.conv2": "update_block.flow_head.conv2",
        "update_block.mask.0": "mask_predictor.convrelu.0", "update_block.mask.2": "mask_predictor.conv",
    })  # fmt: skip
    for gate in ("z", "r", "q"):
        for half in (1, 2):
            names[f"update_block.gru.conv{gate}{half}"] = f"update_block.recurrent_block.convgru{half}.conv{gate}"
    return names


MODULE_RENAMES = _module_renames()


def torchvision_key(key: str) -> str | None:
    """The torchvision ``raft_large`` key of a princeton-vl RAFT key (``module.`` already stripped), or None."""
    stem, _, leaf = key.rpartition(".")
    target = MODULE_RENAMES.get(stem)
    return f"{target}.{leaf}" if target is not None else None


def _duplicate_norm3(key: str) -> str | None:
    """``cnet.layerN.0.norm3.X`` is the same module as ``cnet.layerN.0.downsample.1``: that key, else None."""
    parts = key.split(".")
    if len(parts) == 5 and parts[0] in ("fnet", "cnet") and parts[3] == "norm3":
        return ".".join(parts[:3] + ["downsample", "1", parts[4]])
    return None


def build_raft_large() -> torch.nn.Module:
    """torchvision's ``raft_large`` architecture, untrained (weights come from :func:`convert_published`)."""
    from torchvision.models.optical_flow import raft_large

    return raft_large(weights=None, progress=False)


def expected_layout() -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """torchvision ``raft_large`` state-dict keys → (shape, dtype)."""
    return {key: (tuple(value.shape), value.dtype) for key, value in build_raft_large().state_dict().items()}


def convert_state_dict(loaded: Mapping[str, object], path: Path) -> dict[str, torch.Tensor]:
    """princeton-vl RAFT state dict (with or without ``module.``) → torchvision ``raft_large`` state dict.

    Refuses anything but exactly RAFT-large's tensors: unknown or missing keys, wrong shapes,
    non-tensors, ``norm3`` copies that differ from ``downsample.1``. BatchNorm's
    ``num_batches_tracked`` counters (unused in eval mode) may be absent, as in files saved
    before torch 0.4.1; they are then set to 0.
    """
    layout = expected_layout()
    state: dict[str, torch.Tensor] = {}
    unknown, duplicates = [], {}
    for raw_key, value in loaded.items():
        key = raw_key[len(_PREFIX):] if raw_key.startswith(_PREFIX) else raw_key
        if not isinstance(value, torch.Tensor):
            raise InputError(f"not a {WHAT} checkpoint: {raw_key!r} is a {type(value).__name__}, not a tensor",
                             path=path)
        twin = _duplicate_norm3(key)
        if twin is not None:
            duplicates[twin] = value
            continue
        target = torchvision_key(key)
        if target is None or target not in layout:
            unknown.append(raw_key)
            continue
        state[target] = value
    for key, (shape, dtype) in layout.items():
        if key not in state and key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=dtype)
    missing = [key for key in layout if key not in state]
    if unknown or missing:
        parts = ([f"unexpected {_listed(unknown)}"] if unknown else []) + \
                ([f"missing {_listed(missing)}"] if missing else [])
        raise InputError(f"not a {WHAT} checkpoint (RAFT-large, small=False): " + "; ".join(parts), path=path)
    wrong = [f"{key} {tuple(state[key].shape)} (expected {shape})" for key, (shape, _) in layout.items()
             if tuple(state[key].shape) != shape]
    if wrong:
        raise InputError(f"not a {WHAT} checkpoint: wrong shapes: {_listed(wrong)}", path=path)
    for twin_key, value in duplicates.items():
        target = torchvision_key(twin_key)
        if target is None or target not in state or not torch.equal(state[target].to(value.dtype), value):
            raise InputError(f"not a {WHAT} checkpoint: norm3 of {twin_key.rsplit('.', 3)[0]} differs from its "
                             "downsample.1 (princeton-vl registers one module under both names)", path=path)
    return {key: state[key].to(dtype).contiguous() for key, (_, dtype) in layout.items()}


def convert_published(source: Path, target_dir: Path) -> None:
    """Convert ``raft-things.pth`` (princeton-vl RAFT) into ``target_dir/raft_large.safetensors`` (torchvision keys)."""
    from safetensors.torch import save_file

    source = Path(source)
    state = convert_state_dict(read_torch_state_dict(source, WHAT), source)
    model = build_raft_large()
    model.load_state_dict(state, strict=True)  # the architecture accepts it before anything is written
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(target_dir / CONVERTED_FILE), metadata={"format": "pt", "source": source.name,
                                                                  "converter_version": CONVERTER_VERSION})


def load_raft(folder: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """torchvision ``raft_large`` in eval mode, float32, from a folder written by :func:`convert_published`.

    Always float32: VBench runs RAFT with ``mixed_precision=False``, and flow coordinates
    accumulated over 20 iterations in bfloat16 would be off by tenths of a pixel.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder) / CONVERTED_FILE
    if not path.is_file():
        raise MissingWeightsError(
            f"no converted {WHAT} weights ({CONVERTED_FILE}) in {folder}; convert the published checkpoint "
            f"with `anibench weights import {WEIGHTS_ENTRY} raft-things.pth`", path=path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise InputError(f"cannot read the converted {WHAT} weights: {exc}", path=path) from exc
    model = build_raft_large()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"the converted {WHAT} weights do not fit raft_large: {str(exc).splitlines()[0]}",
                         path=path) from exc
    return model.to(device=device, dtype=torch.float32).eval()


# ----------------------------------------------------------------------------- VBench's pre- and post-processing


def padding(height: int, width: int) -> tuple[int, int, int, int]:
    """InputPadder's ``sintel`` mode (utils_core/utils.py L9-16): (left, right, top, bottom) up to multiples of 8."""
    pad_height = (((height // PAD_MULTIPLE) + 1) * PAD_MULTIPLE - height) % PAD_MULTIPLE
    pad_width = (((width // PAD_MULTIPLE) + 1) * PAD_MULTIPLE - width) % PAD_MULTIPLE
    return pad_width // 2, pad_width - pad_width // 2, pad_height // 2, pad_height - pad_height // 2


def padded_size(height: int, width: int) -> tuple[int, int]:
    left, right, top, bottom = padding(height, width)
    return height + top + bottom, width + left + right


def check_frame_size(height: int, width: int) -> None:
    """Refuse frames RAFT cannot process: padded to multiples of 8, both sides must reach 128 px."""
    padded = padded_size(height, width)
    if min(padded) < MIN_PADDED_SIDE:
        raise InputError(
            f"frames are {width}x{height} (padded {padded[1]}x{padded[0]}); RAFT needs at least {MIN_PADDED_SIDE} px "
            f"on each side after padding to a multiple of {PAD_MULTIPLE} (its 4-level correlation pyramid would shrink "
            "to one cell, where VBench's RAFT divides by zero)")


def pad_frames(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float frames padded with ``F.pad(mode='replicate')`` as InputPadder.pad (L18-19)."""
    return F.pad(frames, list(padding(*frames.shape[-2:])), mode="replicate")


def raft_input(frames: torch.Tensor) -> torch.Tensor:
    """0..255 frames → RAFT's input range ``2·(x/255) − 1`` (princeton-vl raft.py L89-90)."""
    return 2 * (frames / 255.0) - 1.0


def flow(
    model: torch.nn.Module, first: torch.Tensor, second: torch.Tensor, iterations: int = ITERATIONS
) -> torch.Tensor:
    """Flow from ``first`` to ``second``: (N, 2, H', W') at the padded size, float32 on the model's device.

    ``first``/``second``: (N, 3, H, W) RGB in 0..255 (uint8 or float). Padded, scaled and run
    for ``iterations`` updates; the last (convex-upsampled) prediction is VBench's ``flow_up``.
    """
    device = next(model.parameters()).device
    with torch.inference_mode():
        image1 = raft_input(pad_frames(first.to(device=device, dtype=torch.float32)))
        image2 = raft_input(pad_frames(second.to(device=device, dtype=torch.float32)))
        return model(image1, image2, num_flow_updates=iterations)[-1]


def peak_magnitude(flow_field: np.ndarray) -> float:
    """VBench ``get_score`` (dynamic_degree.py L42-56) for one (2, H, W) flow at the padded size.

    ``rad = sqrt(u² + v²)`` in float32; the mean of the ``int(H·W·0.05)`` largest values, summed
    in float32 in descending order exactly as ``np.mean(abs(np.sort(-rad_flat))[:cut_index])``.
    """
    u, v = np.asarray(flow_field[0], np.float32), np.asarray(flow_field[1], np.float32)
    magnitudes = np.sqrt(np.square(u) + np.square(v)).ravel()
    count = int(magnitudes.size * TOP_FRACTION)
    if count < 1:
        raise InputError(f"a {flow_field.shape[2]}x{flow_field.shape[1]} flow has no top 5 % to average")
    top = np.partition(magnitudes, magnitudes.size - count)[magnitudes.size - count:]
    return float(np.mean(np.abs(np.sort(-top))))  # descending and contiguous, as VBench's array


def _listed(keys: list[str], shown: int = 5) -> str:
    more = len(keys) - shown
    return ", ".join(keys[:shown]) + (f" and {more} more" if more > 0 else "")
