"""Steps shared by the checkpoint converters: safe reading, layout checks, writing the folder.

A converter reads a published checkpoint (never with unrestricted unpickling), checks that
its tensors are exactly the architecture it expects, renames them into a transformers
module and writes that module as a Hugging Face folder (``config.json`` +
``model.safetensors``). Everything that can go wrong with the file is an
:class:`~anibench.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import PretrainedConfig, PreTrainedModel

from anibench.errors import InputError, MissingWeightsError

# How many offending keys an error message lists before "and N more".
SHOWN_KEYS = 5


def read_torch_state_dict(path: Path, what: str) -> dict[str, object]:
    """Load ``path`` with ``torch.load(weights_only=True)`` on the CPU: a dict of whatever it holds.

    A missing, truncated or non-torch file, or one that needs unrestricted unpickling (it
    holds Python objects besides tensors), is an :class:`InputError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} checkpoint not found", path=path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"cannot read the {what} checkpoint: not a complete torch file of tensors "
            f"(truncated, corrupt, or it holds Python objects that are not loaded for safety): {_first_line(exc)}",
            path=path,
        ) from exc
    if not isinstance(loaded, Mapping):
        raise InputError(f"the {what} checkpoint holds a {type(loaded).__name__}, not a state dict", path=path)
    return dict(loaded)


def is_torchscript_archive(path: Path) -> bool:
    """True when ``path`` is a TorchScript zip (it carries compiled code besides the tensors)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())


def tensors_only(state: Mapping[str, object], path: Path, what: str) -> dict[str, torch.Tensor]:
    """``state`` with every value checked to be a tensor (else an :class:`InputError`)."""
    bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise InputError(f"the {what} checkpoint is not a plain state dict: {_listed(bad)} are not tensors", path=path)
    return dict(state)  # type: ignore[arg-type]


def check_layout(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], path: Path, what: str
) -> None:
    """Refuse ``state`` unless its keys and shapes are exactly ``expected`` (missing, unexpected, shape)."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected {_listed(unexpected)}")
        raise InputError(f"not a {what} checkpoint: " + "; ".join(parts), path=path)
    wrong = [
        f"{key} {tuple(state[key].shape)} (expected {expected[key]})"
        for key in expected
        if tuple(state[key].shape) != tuple(expected[key])
    ]
    if wrong:
        raise InputError(f"not a {what} checkpoint: wrong shapes: {_listed(wrong)}", path=path)
    not_float = [key for key, value in state.items() if not value.is_floating_point()]
    if not_float:
        raise InputError(f"not a {what} checkpoint: non-float tensors {_listed(not_float)}", path=path)


def architecture_mismatch(found: Mapping[str, object], expected: Mapping[str, object]) -> str | None:
    """A sentence naming the differing fields of two architecture summaries, or None when equal."""
    diffs = [f"{name} {found[name]} (expected {want})" for name, want in expected.items() if found.get(name) != want]
    return ", ".join(diffs) if diffs else None


CONVERTED_CONFIG = "config.json"
CONVERTED_WEIGHTS = "model.safetensors"


def write_converted(target_dir: Path, tensors: Mapping[str, torch.Tensor], config: Mapping[str, object]) -> None:
    """A converted folder of anibench's own networks: the tensors as float32 ``model.safetensors`` and
    ``config.json`` (the architecture and what the conversion recorded)."""
    from safetensors.torch import save_file

    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    stored = {key: value.detach().to(torch.float32).contiguous() for key, value in tensors.items()}
    save_file(stored, str(target_dir / CONVERTED_WEIGHTS), metadata={"format": "pt"})
    (target_dir / CONVERTED_CONFIG).write_text(json.dumps(config, indent=2))


def read_converted(folder: str | Path, what: str, weights_entry: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config, tensors)`` of a folder :func:`write_converted` wrote; a missing or damaged folder is a
    :class:`MissingWeightsError` naming the entry and the command that converts the published file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / CONVERTED_CONFIG).read_text())
        state = load_file(str(folder / CONVERTED_WEIGHTS))
    except (OSError, ValueError, SafetensorError) as exc:
        raise MissingWeightsError(
            f"cannot load the {what} from {folder} ({type(exc).__name__}: {_first_line(exc)}); convert the "
            f"published checkpoint with `anibench weights import {weights_entry} FILE`",
            path=folder if folder.exists() else None,
        ) from exc
    return config, state


def write_hf_folder(
    model_class: type[PreTrainedModel],
    config: PretrainedConfig,
    state: Mapping[str, torch.Tensor],
    target_dir: Path,
    **model_kwargs: object,
) -> None:
    """Build ``model_class(config)`` without initialising it, load ``state`` strictly, save it to ``target_dir``.

    Tensors are stored as float32 (exact for the fp16 and fp32 files published); the loader
    picks the runtime precision.
    """
    state = {key: value.detach().to(torch.float32).contiguous() for key, value in state.items()}
    with torch.device("meta"):
        model = model_class(config, **model_kwargs)
    model.load_state_dict(state, strict=True, assign=True)
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target_dir, safe_serialization=True)


def load_pretrained(
    model_class: type[PreTrainedModel],
    source: str | Path,
    device: str | torch.device,
    dtype: torch.dtype,
    what: str,
    weights_entry: str,
    **model_kwargs: object,
) -> PreTrainedModel:
    """``model_class.from_pretrained(source)`` in eval mode on ``device``; a clear error when it cannot."""
    try:
        model = model_class.from_pretrained(str(source), dtype=dtype, **model_kwargs)
    except (OSError, ValueError) as exc:
        raise MissingWeightsError(
            f"cannot load the {what} from {source} ({_first_line(exc)}); convert the published checkpoint "
            f"with `anibench weights import {weights_entry} FILE` or point to a converted folder",
            path=source if Path(str(source)).exists() else None,
        ) from exc
    return model.to(device).eval()


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    more = len(keys) - SHOWN_KEYS
    return shown + (f" and {more} more" if more > 0 else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
