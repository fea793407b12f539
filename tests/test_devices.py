"""--device / --dtype: parsing, resolution on this machine, clear errors, and torch_npu never imported unasked."""

from __future__ import annotations

import dataclasses
import importlib.abc
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from anibench.runtime.devices import (
    DeviceError, DeviceRequest, available_devices, parse_device, parse_dtype, select_runtime,
)


@pytest.mark.parametrize("text, kind, index", [
    ("auto", "auto", None), ("cpu", "cpu", None), ("CUDA", "cuda", None), ("cuda:1", "cuda", 1),
    (" npu:0 ", "npu", 0), ("mps", "mps", None),
])
def test_device_flags_parse(text, kind, index):
    request = parse_device(text)
    assert request == DeviceRequest(kind, index)
    assert str(request) == (kind if index is None else f"{kind}:{index}")


@pytest.mark.parametrize("text", ["gpu", "cpu:0", "mps:1", "cuda:x", "cuda:-1", "cuda:", ""])
def test_malformed_device_flags_are_named(text):
    with pytest.raises(DeviceError, match="--device") as caught:
        parse_device(text)
    assert repr(text) in str(caught.value)


def test_dtype_flags_parse():
    assert [parse_dtype(t) for t in ("auto", "fp32", "BF16", "bfloat16", "float16", "half", "float32")] == [
        "auto", "fp32", "bf16", "bf16", "fp16", "fp16", "fp32"]
    with pytest.raises(DeviceError, match="--dtype 'int8'"):
        parse_dtype("int8")


def test_auto_on_this_machine():
    selection = select_runtime("auto", "auto")
    if torch.cuda.is_available():
        assert selection.kind == "cuda" and selection.index == torch.cuda.current_device()
        major = torch.cuda.get_device_capability()[0]
        assert selection.dtype == ("bf16" if major >= 8 else "fp32") and selection.capability.startswith(str(major))
    elif torch.backends.mps.is_available():
        assert (selection.device, selection.dtype) == ("mps", "fp32")
    else:
        assert (selection.device, selection.dtype) == ("cpu", "fp32")
    assert selection.torch_device() == torch.device(selection.device)
    assert selection.torch_version == torch.__version__
    assert selection.requested_device == "auto" and selection.requested_dtype == "auto"
    provenance = selection.provenance()
    assert json.loads(json.dumps(provenance)) == provenance and provenance["device"] == selection.device
    with pytest.raises(dataclasses.FrozenInstanceError):
        selection.dtype = "fp16"


def test_reduced_precision_on_cpu_only_when_asked():
    assert select_runtime("cpu").torch_dtype() is torch.float32
    assert select_runtime("cpu", "bf16").torch_dtype() is torch.bfloat16
    assert select_runtime("cpu", "fp16").torch_dtype() is torch.float16


def test_unavailable_devices_are_clear_errors():
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available") as caught:
            select_runtime("cuda")
        assert "available: cpu" in str(caught.value) and torch.__version__ in str(caught.value)
    with pytest.raises(DeviceError, match="cuda:99"):
        select_runtime("cuda:99")
    if not torch.backends.mps.is_available():
        with pytest.raises(DeviceError, match="MPS"):
            select_runtime("mps")
    assert available_devices()[0] == "cpu"


class _RecordingBlocker(importlib.abc.MetaPathFinder):
    """Makes ``torch_npu`` unimportable and records every attempt to import it."""

    def __init__(self):
        self.attempts: list[str] = []

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch_npu":
            self.attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_resolving_never_imports_torch_npu_unless_npu_is_asked():
    blocker = _RecordingBlocker()
    sys.meta_path.insert(0, blocker)
    try:
        for device in ("auto", "cpu", "cuda:99"):
            try:
                select_runtime(device)
            except DeviceError:
                pass
        available_devices()
        assert blocker.attempts == []
        with pytest.raises(DeviceError, match="torch_npu") as caught:
            select_runtime("npu:0")
        assert blocker.attempts == ["torch_npu"]
        assert "available: cpu" in str(caught.value)
    finally:
        sys.meta_path.remove(blocker)
    assert "torch_npu" not in sys.modules


def test_first_torch_import_disables_backend_autoload_and_missing_torch_is_explained():
    """In a fresh process: torch's device-backend autoload is switched off; without torch, the neural extra is named."""
    script = textwrap.dedent("""
        import importlib.abc, json, os, sys
        from anibench.runtime.devices import MissingDependencyError, select_runtime
        out = {"autoload_before": os.environ.get("TORCH_DEVICE_BACKEND_AUTOLOAD")}
        if sys.argv[1] == "block":
            class Block(importlib.abc.MetaPathFinder):
                def find_spec(self, name, path=None, target=None):
                    if name.partition(".")[0] == "torch":
                        raise ModuleNotFoundError("No module named 'torch'", name=name)
            sys.meta_path.insert(0, Block())
            try:
                select_runtime("cpu")
            except MissingDependencyError as exc:
                out["error"] = str(exc)
        else:
            out["device"] = select_runtime("auto").device
        out["autoload_after"] = os.environ.get("TORCH_DEVICE_BACKEND_AUTOLOAD")
        print(json.dumps(out))
    """)
    env = {k: v for k, v in os.environ.items() if k != "TORCH_DEVICE_BACKEND_AUTOLOAD"}
    runs = {mode: json.loads(subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                                            env=env, check=True, timeout=120).stdout)
            for mode in ("plain", "block")}
    assert runs["plain"]["autoload_before"] is None and runs["plain"]["autoload_after"] == "0"
    assert "anibench[neural]" in runs["block"]["error"] and "torch" in runs["block"]["error"]
