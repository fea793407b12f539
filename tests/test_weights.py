"""The weights manifest and folder: import, resolve, verify, fetch (real HTTP on 127.0.0.1), load, CLI.

Entries under test are registered through an extra manifest file, with tiny converters
defined in this module (referenced as ``test_weights:<function>``, importable because
pytest puts tests/ on sys.path; CLI subprocesses get it through PYTHONPATH).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from anibench.errors import InputError, MissingWeightsError
from anibench.runtime.weights import (
    CONVERTED_DIR, RECORD_FILE, FetchError, ManifestError, WeightConversionError, WeightFileError,
    WeightIntegrityError, WeightStatus, WeightStore, check_structure, detect_format, hash_prefix_from_name,
    load_state_dict,
)

from conftest import REPO

CONVERTER_VERSION = "test-2"


# -- converters referenced by the test manifests ----------------------------------------------------
def convert_to_safetensors(source: Path, target_dir: Path) -> None:
    """A real conversion: the published .pth → an HF-style folder (config.json + model.safetensors)."""
    state = load_state_dict(source)
    save_file({k: v.contiguous() for k, v in state.items()}, str(target_dir / "model.safetensors"))
    (target_dir / "config.json").write_text(json.dumps({"in_features": 4, "out_features": 2}))


def convert_half_then_fail(source: Path, target_dir: Path) -> None:
    (target_dir / "model.safetensors").write_bytes(b"half-written")
    raise ValueError("unexpected key layout in checkpoint")


# -- helpers ----------------------------------------------------------------------------------------
def tiny_checkpoint(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    state = torch.nn.Linear(4, 2).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_store(tmp_path: Path, entries: list[dict], **kwargs) -> WeightStore:
    manifest = tmp_path / "test-weights.yaml"
    manifest.write_text(yaml.safe_dump({"weights": entries}))
    return WeightStore(tmp_path / "weights", [manifest], **kwargs)


def leftovers(root: Path) -> list[str]:
    """Everything under the weights folder except the local manifest (should be nothing after a failure)."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name != "manifest.local.yaml")


@pytest.fixture(autouse=True)
def _no_env_manifests(monkeypatch):
    monkeypatch.delenv("ANIBENCH_WEIGHTS_MANIFEST", raising=False)


class FileServer:
    """A real HTTP server on 127.0.0.1 serving ``files`` (path → bytes), with Range and hub-style headers."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bool) -> None:
                owner.requests.append((self.command, self.path, self.headers.get("Range")))
                data = owner.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                if match and int(match.group(1)) < len(data):
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", "0" * 40)
                self.end_headers()
                if body:
                    self.wfile.write(data[start:])

            def do_GET(self):
                self._answer(body=True)

            def do_HEAD(self):
                self._answer(body=False)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_files():
    server = FileServer()
    yield server
    server.close()


# -- the shipped manifest -------------------------------------------------------------------------
def test_shipped_manifest_entries():
    store = WeightStore(Path("/nonexistent-weights"))
    entries = store.entries()
    vbench_i2v = {"dino_vitb16", "clip_vit_b32", "clip_vit_l14", "laion_aesthetic_vit_l14", "raft_things", "amt_s",
                  "musiq_spaq", "dreamsim_ensemble", "cotracker2", "viclip_internvid_10m_flt"}
    assert vbench_i2v <= set(entries)
    for entry in entries.values():
        assert entry.source and entry.licence and entry.used_by and entry.description and entry.reference, entry.name
        # OpenAI-style URLs carry the file's sha256 in their path: it must be the entry's.
        in_url = re.search(r"/([0-9a-f]{64})/", entry.source.url or "")
        if in_url:
            assert entry.sha256 == in_url.group(1), entry.name
    dino, clip = entries["dino_vitb16"], entries["clip_vit_b32"]
    assert dino.converter == "anibench.models.dino:convert_published" and dino.hub_id == "facebook/dino-vitb16"
    assert clip.converter == "anibench.models.clip:convert_openai" and clip.format == "torchscript"
    assert entries["musiq_spaq"].sha256_prefix == "358bb6af" and entries["musiq_spaq"].sha256 is None


def test_manifest_used_by_is_what_the_scorers_load():
    """Each entry's ``used_by`` lists exactly the registered scorers and generators that load it."""
    from anibench.features.base import MODEL_FAMILIES
    from anibench.generation import GENERATORS
    from anibench.scoring import SCORERS

    loaded_by: dict[str, set[str]] = {}
    for name in SCORERS.names():
        for family in SCORERS.get(name).families:
            for entry in MODEL_FAMILIES.get(family).weights:
                loaded_by.setdefault(entry, set()).add(name)
    for name in GENERATORS.names():
        for entry in GENERATORS.get(name).weight_entries():
            loaded_by.setdefault(entry, set()).add(name)
    entries = WeightStore(Path("/nonexistent-weights")).entries()
    assert loaded_by.keys() <= entries.keys()
    for entry in entries.values():
        assert set(entry.used_by) == loaded_by.get(entry.name, set()), entry.name
    assert loaded_by["dino_vitb16"] == {"vbench.subject_consistency", "vbench.i2v_subject", "vbench.i2v_background"}
    assert loaded_by["wan22_i2v_a14b_diffusers"] == {"anisora-v3.2"}


def test_shipped_converters_exist_with_the_converter_signature():
    import importlib
    import inspect

    for entry in WeightStore(Path("/nonexistent-weights")).entries().values():
        if entry.converter:
            module, _, function = entry.converter.partition(":")
            convert = getattr(importlib.import_module(module), function)
            assert list(inspect.signature(convert).parameters) == ["source", "target_dir"], entry.converter


def test_hash_prefix_from_torch_hub_names():
    assert hash_prefix_from_name("musiq_spaq_ckpt-358bb6af.pth") == "358bb6af"
    assert hash_prefix_from_name("ViT-B-32.pt") is None          # "-32." is not a hash
    assert hash_prefix_from_name("dino_vitbase16_pretrain.pth") is None


# -- missing weights ------------------------------------------------------------------------------
def test_missing_weights_name_file_entry_folder_and_commands(tmp_path):
    store = make_store(tmp_path, [
        {"name": "tiny_url", "file": "tiny-url.pth", "format": "torch-state-dict", "description": "a test head",
         "source": {"url": "http://127.0.0.1:9/tiny-url.pth"}},
        {"name": "tiny_local", "file": "tiny-local.safetensors", "format": "safetensors"},
    ])
    with pytest.raises(MissingWeightsError) as caught:
        store.resolve("tiny_url")
    message = str(caught.value)
    for part in ("tiny-url.pth", "'tiny_url'", str(tmp_path / "test-weights.yaml"), str(tmp_path / "weights" / "tiny_url"),
                 "anibench weights fetch tiny_url", "anibench weights import tiny_url /path/to/tiny-url.pth",
                 "http://127.0.0.1:9/tiny-url.pth"):
        assert part in message
    assert caught.value.path == str(tmp_path / "weights" / "tiny_url" / "tiny-url.pth")
    with pytest.raises(MissingWeightsError) as caught:
        store.resolve("tiny_local")
    assert "fetch" not in str(caught.value) and "anibench weights import tiny_local" in str(caught.value)
    assert store.status("tiny_local") is WeightStatus.MISSING
    with pytest.raises(ManifestError, match="did you mean tiny_url"):
        store.resolve("tiny_ur")


def test_a_file_copied_in_by_hand_is_not_used_until_imported(tmp_path):
    store = make_store(tmp_path, [{"name": "tiny", "file": "tiny.pth", "format": "torch-state-dict"}])
    tiny_checkpoint(store.file_path("tiny"))
    assert store.status("tiny") is WeightStatus.UNVERIFIED
    with pytest.raises(MissingWeightsError, match="never imported"):
        store.resolve("tiny")
    store.import_file("tiny", store.file_path("tiny"))  # importing in place works
    assert store.status("tiny") is WeightStatus.PRESENT


# -- import, resolve, verify ----------------------------------------------------------------------
def test_import_converts_resolves_and_verifies(tmp_path):
    published = tmp_path / "download" / "tiny-linear.pth"
    state = tiny_checkpoint(published)
    digest = sha256(published)
    store = make_store(tmp_path, [{
        "name": "tiny_linear", "file": "tiny-linear.pth", "format": "torch-state-dict", "sha256": digest,
        "size": published.stat().st_size, "converter": "test_weights:convert_to_safetensors", "used_by": ["test.scorer"],
        "source": {"url": "http://127.0.0.1:9/tiny-linear.pth"}, "licence": "MIT",
    }])
    weight = store.import_file("tiny_linear", published)
    assert weight.path == tmp_path / "weights" / "tiny_linear" / CONVERTED_DIR and weight.sha256 == digest
    assert not os.path.samefile(weight.file, published) and weight.file.stat().st_mode & 0o222 == 0  # read-only copy
    linked = store.import_file("tiny_linear", published, link=True)
    assert os.path.samefile(linked.file, published)  # hard-linked on request: same file system
    converted = load_state_dict(weight.path / "model.safetensors")
    assert converted.keys() == state.keys() and all(torch.equal(converted[k], state[k]) for k in state)

    again = WeightStore(tmp_path / "weights", [tmp_path / "test-weights.yaml"]).resolve("tiny_linear")  # a new process
    assert again.identity() == {"name": "tiny_linear", "sha256": digest, "converter": "test_weights:convert_to_safetensors",
                                "converter_version": "test-2"}
    provenance = again.provenance()
    assert provenance["file"] == "tiny-linear.pth" and provenance["sha256"] == digest
    assert provenance["source"] == "http://127.0.0.1:9/tiny-linear.pth" and provenance["converter_version"] == "test-2"
    record = json.loads((tmp_path / "weights" / "tiny_linear" / RECORD_FILE).read_text())
    assert record["size"] == published.stat().st_size and record["origin"] == str(published.resolve())
    assert store.verify("tiny_linear").ok and store.status("tiny_linear") is WeightStatus.PRESENT


def test_verify_detects_a_changed_file_and_resolve_a_truncated_one(tmp_path):
    published = tmp_path / "tiny.pth"
    tiny_checkpoint(published)
    store = make_store(tmp_path, [{"name": "tiny", "file": "tiny.pth", "format": "torch-state-dict"}])
    weight = store.import_file("tiny", published)
    recorded = weight.sha256
    weight.file.chmod(0o644)
    data = bytearray(weight.file.read_bytes())
    data[-30] ^= 0xFF  # same size, other bytes
    weight.file.write_bytes(bytes(data))
    result = store.verify("tiny")
    assert result.status == "mismatch" and recorded in result.message and result.sha256 in result.message
    weight.file.write_bytes(bytes(data[:-10]))
    assert store.status("tiny") is WeightStatus.DAMAGED
    with pytest.raises(MissingWeightsError, match="changed since"):
        store.resolve("tiny")


def test_wrong_sha256_is_refused_and_leaves_nothing(tmp_path):
    published = tmp_path / "tiny.pth"
    tiny_checkpoint(published)
    wrong = "0" * 64
    store = make_store(tmp_path, [{"name": "tiny", "file": "tiny.pth", "format": "torch-state-dict", "sha256": wrong}])
    with pytest.raises(WeightIntegrityError) as caught:
        store.import_file("tiny", published)
    assert wrong in str(caught.value) and sha256(published) in str(caught.value) and str(published) in str(caught.value)
    assert leftovers(tmp_path / "weights") == []
    assert published.is_file()


def test_size_and_hash_prefix_checks(tmp_path):
    published = tmp_path / "head.pth"
    tiny_checkpoint(published)
    prefix = sha256(published)[:8]
    store = make_store(tmp_path, [
        {"name": "good", "file": f"head-{prefix}.pth", "format": "torch-state-dict"},
        {"name": "bad", "file": "head-deadbeef.pth", "format": "torch-state-dict"},
        {"name": "sized", "file": "head.pth", "format": "torch-state-dict", "size": published.stat().st_size + 1},
    ])
    assert store.get("good").sha256_prefix == prefix
    assert store.import_file("good", published).sha256.startswith(prefix)
    with pytest.raises(WeightIntegrityError, match="starting with deadbeef"):
        store.import_file("bad", published)
    with pytest.raises(WeightIntegrityError, match=f"{published.stat().st_size} bytes .* expects {published.stat().st_size + 1}"):
        store.import_file("sized", published)
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["good"]


def test_reimporting_another_file_needs_replace_and_keeps_the_old_one_on_failure(tmp_path):
    first, second = tmp_path / "a" / "tiny.pth", tmp_path / "b" / "tiny.pth"
    tiny_checkpoint(first, seed=0)
    tiny_checkpoint(second, seed=1)
    store = make_store(tmp_path, [{"name": "tiny", "file": "tiny.pth", "format": "torch-state-dict"}])
    store.import_file("tiny", first)
    with pytest.raises(WeightIntegrityError, match="--replace") as caught:
        store.import_file("tiny", second)
    assert sha256(first) in str(caught.value) and sha256(second) in str(caught.value)
    assert store.resolve("tiny").sha256 == sha256(first)
    assert store.import_file("tiny", second, replace=True).sha256 == sha256(second)
    assert leftovers(tmp_path / "weights") == ["tiny", "tiny/record.json", "tiny/tiny.pth"]


def test_a_failing_converter_leaves_nothing(tmp_path):
    published = tmp_path / "tiny.pth"
    tiny_checkpoint(published)
    store = make_store(tmp_path, [
        {"name": "tiny", "file": "tiny.pth", "format": "torch-state-dict", "converter": "test_weights:convert_half_then_fail"},
        {"name": "lost", "file": "tiny.pth", "format": "torch-state-dict", "converter": "test_weights:no_such_function"},
    ])
    with pytest.raises(WeightConversionError) as caught:
        store.import_file("tiny", published)
    assert "test_weights:convert_half_then_fail" in str(caught.value) and "unexpected key layout" in str(caught.value)
    assert caught.value.path == str(published)
    with pytest.raises(WeightConversionError, match="cannot be imported"):
        store.import_file("lost", published)
    assert leftovers(tmp_path / "weights") == []
    assert store.status("tiny") is WeightStatus.MISSING


# -- file formats -----------------------------------------------------------------------------------
def test_truncated_and_corrupt_files_are_named(tmp_path):
    good = tmp_path / "good.pth"
    tiny_checkpoint(good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightFileError) as caught:
        load_state_dict(truncated)
    assert caught.value.path == str(truncated) and isinstance(caught.value, InputError)
    store = make_store(tmp_path, [{"name": "tiny", "file": "tiny.pth", "format": "torch-state-dict"},
                                  {"name": "st", "file": "tiny.safetensors", "format": "safetensors"}])
    with pytest.raises(WeightFileError, match="truncated or corrupt") as caught:
        store.import_file("tiny", truncated)  # no published hash: the structure check catches it
    assert caught.value.path == str(truncated)

    tensors = tmp_path / "tiny.safetensors"
    save_file({"w": torch.arange(12.0).reshape(3, 4)}, str(tensors))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(tensors.read_bytes()[:-8])
    with pytest.raises(WeightFileError, match="truncated") as caught:
        store.import_file("st", cut)
    assert caught.value.path == str(cut)  # the user's file, not the staged copy
    with pytest.raises(WeightFileError) as caught:
        load_state_dict(cut)
    assert caught.value.path == str(cut)
    assert leftovers(tmp_path / "weights") == []
    assert torch.equal(load_state_dict(store.import_file("st", tensors).path)["w"], torch.arange(12.0).reshape(3, 4))


class _NotATensor:
    pass


def test_pickles_with_python_objects_are_refused(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"model": _NotATensor()}, path)
    with pytest.raises(WeightFileError, match="Python objects beyond tensors") as caught:
        load_state_dict(path)
    assert caught.value.path == str(path)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_nested_checkpoints_and_torchscript_archives(tmp_path):
    state = torch.nn.Linear(3, 2).state_dict()
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": state, "epoch": 3}, nested)
    assert load_state_dict(nested, key="state_dict").keys() == state.keys()
    with pytest.raises(WeightFileError, match="no 'model'.*state_dict, epoch"):
        load_state_dict(nested, key="model")

    module = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()))
    scripted = tmp_path / "ViT-tiny.pt"
    module.save(str(scripted))
    assert detect_format(scripted) == "torchscript" and detect_format(nested) == "torch-state-dict"
    check_structure(scripted, "torchscript")
    loaded = load_state_dict(scripted)
    assert loaded.keys() == module.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in module.state_dict().items())
    with pytest.raises(WeightFileError, match="not a TorchScript archive"):
        check_structure(nested, "torchscript")


# -- local entries (trained heads) ------------------------------------------------------------------
def test_local_entries_register_themselves(tmp_path):
    head = tmp_path / "trained" / "style_head.safetensors"
    head.parent.mkdir()
    save_file({"weight": torch.ones(1, 8), "bias": torch.zeros(1)}, str(head))
    store = WeightStore(tmp_path / "weights")
    weight = store.add_local("anime_style_head", head, format="safetensors", description="trained here",
                             used_by=["anime.style"], licence="Apache-2.0")
    assert weight.sha256 == sha256(head)
    later = WeightStore(tmp_path / "weights")  # another process
    assert later.get("anime_style_head").used_by == ("anime.style",)
    assert torch.equal(load_state_dict(later.resolve("anime_style_head").path)["weight"], torch.ones(1, 8))
    with pytest.raises(ManifestError, match="replace=True"):
        later.add_local("anime_style_head", head, format="safetensors")
    with pytest.raises(ManifestError, match="already exists"):
        later.add_local("dino_vitb16", head, format="safetensors")

    broken = tmp_path / "trained" / "broken.safetensors"
    broken.write_bytes(head.read_bytes()[:-4])
    with pytest.raises(WeightFileError):
        later.add_local("broken_head", broken, format="safetensors")
    assert "broken_head" not in WeightStore(tmp_path / "weights").entries()


# -- manifests --------------------------------------------------------------------------------------
def test_manifest_errors_name_the_file_and_entry(tmp_path, monkeypatch):
    bad_hash = make_store(tmp_path, [{"name": "x", "file": "x.pth", "format": "torch-state-dict", "sha256": "abc"}])
    with pytest.raises(ManifestError, match="entry 'x': 'sha256' must be 64 hex digits") as caught:
        bad_hash.entries()
    assert caught.value.path == str(tmp_path / "test-weights.yaml")
    with pytest.raises(ManifestError, match="unknown field.*licencse"):
        make_store(tmp_path, [{"name": "x", "file": "x.pth", "format": "torch-state-dict", "licencse": "MIT"}]).entries()
    with pytest.raises(ManifestError, match="plain file name"):
        make_store(tmp_path, [{"name": "x", "file": "../x.pth", "format": "torch-state-dict"}]).entries()
    with pytest.raises(ManifestError, match="defined in both .*weights.yaml and .*test-weights.yaml"):
        make_store(tmp_path, [{"name": "dino_vitb16", "file": "x.pth", "format": "torch-state-dict"}]).entries()
    monkeypatch.setenv("ANIBENCH_WEIGHTS_MANIFEST", str(tmp_path / "absent.yaml"))
    with pytest.raises(ManifestError, match="not found") as caught:
        WeightStore(tmp_path / "weights").entries()
    assert caught.value.path == str(tmp_path / "absent.yaml")


# -- fetch ------------------------------------------------------------------------------------------
def test_fetch_over_http_checks_the_hash_and_resumes(tmp_path, http_files):
    published = tmp_path / "published" / "tiny.pth"
    tiny_checkpoint(published)
    data = published.read_bytes()
    http_files.files["/models/tiny.pth"] = data
    store = make_store(tmp_path, [{
        "name": "tiny", "file": "tiny.pth", "format": "torch-state-dict", "sha256": sha256(published),
        "converter": "test_weights:convert_to_safetensors", "source": {"url": f"{http_files.base}/models/tiny.pth"},
    }])
    weight = store.fetch("tiny")
    assert weight.sha256 == sha256(published) and (weight.path / "model.safetensors").is_file()
    assert weight.record["origin"] == f"{http_files.base}/models/tiny.pth"
    assert leftovers(tmp_path / "weights") == sorted(
        ["tiny", "tiny/converted", "tiny/converted/config.json", "tiny/converted/model.safetensors",
         "tiny/record.json", "tiny/tiny.pth"])
    requests = len(http_files.requests)
    store.fetch("tiny")  # present: nothing downloaded
    assert len(http_files.requests) == requests

    # An interrupted download is resumed with a range request.
    partial = tmp_path / "weights" / ".downloads" / "tiny" / "tiny.pth.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:300])
    assert store.fetch("tiny", force=True).sha256 == sha256(published)
    assert http_files.requests[-1] == ("GET", "/models/tiny.pth", "bytes=300-")
    assert not (tmp_path / "weights" / ".downloads" / "tiny").exists()


def test_fetch_errors_404_and_wrong_bytes(tmp_path, http_files):
    published = tmp_path / "tiny.pth"
    tiny_checkpoint(published)
    http_files.files["/other.pth"] = b"not the weights"
    store = make_store(tmp_path, [
        {"name": "gone", "file": "tiny.pth", "format": "torch-state-dict", "source": {"url": f"{http_files.base}/gone.pth"}},
        {"name": "wrong", "file": "tiny.pth", "format": "torch-state-dict", "sha256": sha256(published),
         "source": {"url": f"{http_files.base}/other.pth"}},
        {"name": "nosource", "file": "tiny.pth", "format": "torch-state-dict"},
    ])
    with pytest.raises(FetchError, match="404") as caught:
        store.fetch("gone")
    assert f"{http_files.base}/gone.pth" in str(caught.value)
    with pytest.raises(WeightIntegrityError) as caught:
        store.fetch("wrong")
    assert sha256(published) in str(caught.value) and hashlib.sha256(b"not the weights").hexdigest() in str(caught.value)
    with pytest.raises(FetchError, match="anibench weights import nosource"):
        store.fetch("nosource")
    assert leftovers(tmp_path / "weights") == []


def test_fetch_extracts_a_member_of_a_zip_source(tmp_path, http_files):
    published = tmp_path / "raft-tiny.pth"
    tiny_checkpoint(published)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("models/other.pth", b"another checkpoint")
        zf.write(published, "models/raft-tiny.pth")
    http_files.files["/models.zip"] = archive.getvalue()
    store = make_store(tmp_path, [{
        "name": "raft_tiny", "file": "raft-tiny.pth", "format": "torch-state-dict", "sha256": sha256(published),
        "source": {"url": f"{http_files.base}/models.zip", "archive_member": "models/raft-tiny.pth"},
    }])
    assert store.fetch("raft_tiny").sha256 == sha256(published)
    assert not (tmp_path / "weights" / ".downloads").exists() or not any((tmp_path / "weights" / ".downloads").iterdir())


def test_hub_fetch_while_offline_says_what_to_do(tmp_path):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by conftest, as in CI
    store = make_store(tmp_path, [{"name": "hubbed", "file": "w.pth", "format": "torch-state-dict",
                                   "source": {"hub": "org/repo", "file": "w.pth"}}])
    with pytest.raises(FetchError) as caught:
        store.fetch("hubbed")
    message = str(caught.value)
    assert "HF_HUB_OFFLINE" in message and "anibench weights import hubbed /path/to/w.pth" in message
    assert "https://huggingface.co/org/repo/resolve/main/w.pth" in message
    assert leftovers(tmp_path / "weights") == []


# -- the command line -------------------------------------------------------------------------------
def cli(*args, env, check=True):
    done = subprocess.run([sys.executable, "-m", "anibench", "weights", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env)
    if check:
        assert done.returncode == 0, f"anibench weights {' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done


def test_weights_commands(tmp_path, http_files):
    published = tmp_path / "published" / "tiny.pth"
    tiny_checkpoint(published)
    http_files.files["/org/repo/resolve/main/sub/tiny.pth"] = published.read_bytes()
    manifest = tmp_path / "extra.yaml"
    manifest.write_text(yaml.safe_dump({"weights": [
        {"name": "tiny", "file": "tiny.pth", "format": "torch-state-dict", "sha256": sha256(published),
         "converter": "test_weights:convert_to_safetensors", "used_by": ["test.scorer"], "licence": "MIT"},
        {"name": "tiny_hub", "file": "tiny.pth", "format": "torch-state-dict", "sha256": sha256(published),
         "source": {"hub": "org/repo", "file": "sub/tiny.pth"}},
    ]}))
    env = {**os.environ, "ANIBENCH_WEIGHTS": str(tmp_path / "weights"), "ANIBENCH_WEIGHTS_MANIFEST": str(manifest),
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}

    missing = cli("path", "tiny", env=env, check=False)
    assert missing.returncode == 2 and "anibench weights import tiny /path/to/tiny.pth" in missing.stderr
    assert "Traceback" not in missing.stderr

    imported = cli("import", "tiny", published, env=env)
    assert sha256(published) in imported.stdout
    path = cli("path", "tiny", env=env).stdout.strip()
    assert Path(path) == tmp_path / "weights" / "tiny" / "converted" and (Path(path) / "model.safetensors").is_file()

    # A hub source against a local hub endpoint (the real huggingface_hub client, online for this one command).
    fetched = cli("fetch", "tiny_hub", env={**env, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": http_files.base})
    assert sha256(published) in fetched.stdout
    assert ("GET", "/org/repo/resolve/main/sub/tiny.pth", None) in http_files.requests

    listed = json.loads(cli("list", "--json", env=env).stdout)
    status = {w["name"]: w["status"] for w in listed["weights"]}
    assert status["tiny"] == "present" and status["tiny_hub"] == "present" and status["dino_vitb16"] == "missing"
    table = cli("list", env=env).stdout
    assert "test.scorer" in table and "vbench.background_consistency" in table

    assert "ok" in cli("verify", env=env).stdout
    installed = tmp_path / "weights" / "tiny" / "tiny.pth"
    data = bytearray(published.read_bytes())
    data[-30] ^= 0xFF
    installed.chmod(0o644)  # imported copies are read-only
    installed.write_bytes(bytes(data))
    failed = cli("verify", "tiny", env=env, check=False)
    assert failed.returncode == 1 and "mismatch" in failed.stdout

    wrong = cli("import", "tiny_hub", tmp_path / "published" / "missing.pth", env=env, check=False)
    assert wrong.returncode == 2 and "no such file" in wrong.stderr
