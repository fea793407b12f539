"""Folder entries (``hf-folder``: a Hugging Face checkpoint folder) and ``tar`` archives in the weights store.

AnimeReward publishes checkpoint folders (Mantis, GroundingDINO, the BERT tokenizer) and a gallery
archive; these are imported, hashed as a tree, resolved, verified and fetched from a hub endpoint
(a real HTTP server on 127.0.0.1 speaking the Hub's API) like single files.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from anibench.errors import InputError
from anibench.runtime.weights import WeightFileError, WeightStatus
from anibench.runtime.weights.files import tree_digest
from test_weights import _no_env_manifests, http_files, make_store  # noqa: F401  (fixtures)


def checkpoint_folder(folder: Path, *, seed: int = 0, sharded: bool = True) -> Path:
    """A published-style checkpoint folder: config, tokenizer file, safetensors shards and their index."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["Tiny"], "hidden_size": 4}))
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    a, b = {"a.weight": torch.randn(4, 4)}, {"b.weight": torch.randn(2, 4)}
    if sharded:
        save_file(a, str(folder / "model-00001-of-00002.safetensors"))
        save_file(b, str(folder / "model-00002-of-00002.safetensors"))
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
            "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}))
    else:
        save_file({**a, **b}, str(folder / "model.safetensors"))
    return folder


def folder_entry(**extra) -> dict:
    return {"name": "tiny_folder", "file": "checkpoint-final", "format": "hf-folder", **extra}


def test_a_folder_is_imported_hashed_as_a_tree_and_resolved(tmp_path):
    published = checkpoint_folder(tmp_path / "published" / "checkpoint-final")
    store = make_store(tmp_path, [folder_entry()])
    assert store.status("tiny_folder") is WeightStatus.MISSING
    missing = str(pytest.raises(Exception, store.resolve, "tiny_folder").value)
    assert "anibench weights import tiny_folder /path/to/checkpoint-final    (the folder)" in missing

    resolved = store.import_file("tiny_folder", published)
    digest, size = tree_digest(published)
    assert resolved.sha256 == digest and resolved.record["size"] == size
    assert resolved.path.is_dir() and (resolved.path / "tokenizer" / "vocab.txt").read_text().startswith("[PAD]")
    assert store.status("tiny_folder") is WeightStatus.PRESENT and store.verify("tiny_folder").ok
    # The tree hash covers names as well as bytes.
    renamed = checkpoint_folder(tmp_path / "other" / "checkpoint-final")
    (renamed / "tokenizer" / "vocab.txt").rename(renamed / "tokenizer" / "vocab2.txt")
    assert tree_digest(renamed)[0] != digest


def test_a_changed_file_inside_an_imported_folder_is_noticed(tmp_path):
    published = checkpoint_folder(tmp_path / "published" / "checkpoint-final", sharded=False)
    store = make_store(tmp_path, [folder_entry()])
    installed = store.import_file("tiny_folder", published).file
    config = installed / "config.json"
    config.chmod(0o644)
    config.write_text(json.dumps({"architectures": ["Tiny"], "hidden_size": 5}))  # same size, other bytes
    result = store.verify("tiny_folder")
    assert result.status == "mismatch"
    config.write_text("{}")  # another size: even the cheap status check sees it
    assert store.status("tiny_folder") is WeightStatus.DAMAGED


def test_broken_folders_are_refused_with_the_reason(tmp_path):
    store = make_store(tmp_path, [folder_entry()])
    missing_shard = checkpoint_folder(tmp_path / "a" / "checkpoint-final")
    (missing_shard / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(WeightFileError, match="model-00002-of-00002.safetensors"):
        store.import_file("tiny_folder", missing_shard)
    truncated = checkpoint_folder(tmp_path / "b" / "checkpoint-final", sharded=False)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[:-7])
    with pytest.raises(WeightFileError, match="truncated"):
        store.import_file("tiny_folder", truncated)
    with pytest.raises(InputError, match="no such folder"):
        store.import_file("tiny_folder", tmp_path / "nowhere")
    assert store.status("tiny_folder") is WeightStatus.MISSING


def test_tar_archives_are_read_to_the_end_before_import(tmp_path):
    archive = tmp_path / "videos.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        payload = os.urandom(200_000)
        info = tarfile.TarInfo("videos/a.mp4")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    store = make_store(tmp_path, [{"name": "gallery", "file": "videos.tar.gz", "format": "tar"}])
    truncated = tmp_path / "cut" / "videos.tar.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(archive.read_bytes()[:-5000])
    with pytest.raises(WeightFileError, match="not a complete tar archive"):
        store.import_file("gallery", truncated)
    assert store.import_file("gallery", archive).file.is_file()


def test_a_folder_is_fetched_from_a_hub_repository(tmp_path, http_files):
    """``snapshot_download`` of the files under the entry's folder, from a hub endpoint on 127.0.0.1."""
    published = checkpoint_folder(tmp_path / "published" / "checkpoint-final")
    revision = "a" * 40
    files = sorted(p for p in published.rglob("*") if p.is_file())
    siblings = [{"rfilename": f"reward/weights/checkpoint-final/{p.relative_to(published).as_posix()}"} for p in files]
    siblings.append({"rfilename": "reward/weights/other/unrelated.bin"})
    info = json.dumps({"id": "org/repo", "sha": revision, "siblings": siblings}).encode()
    http_files.files["/api/models/org/repo/revision/main"] = info
    tree = [{"type": "file", "path": s["rfilename"], "size": 1, "oid": "0" * 40} for s in siblings]
    http_files.files[f"/api/models/org/repo/tree/{revision}?recursive=true&expand=false"] = json.dumps(tree).encode()
    for p in files:
        http_files.files[f"/org/repo/resolve/{revision}/reward/weights/checkpoint-final/"
                         f"{p.relative_to(published).as_posix()}"] = p.read_bytes()
    store = make_store(tmp_path, [
        folder_entry(source={"hub": "org/repo", "file": "reward/weights/checkpoint-final"}),
        folder_entry(name="tokenizer_only", source={"hub": "org/repo", "file": "reward/weights/checkpoint-final",
                                                    "include": ["tokenizer/*"]}),
    ], hub_endpoint=http_files.base)
    os.environ["HF_HUB_OFFLINE"] = "0"
    try:
        from huggingface_hub import constants

        offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, False
        try:
            resolved = store.fetch("tiny_folder")
            assert not any("unrelated" in path for _, path, _ in http_files.requests)  # only the entry's folder
            http_files.requests.clear()
            tokenizer = store.fetch("tokenizer_only")
        finally:
            constants.HF_HUB_OFFLINE = offline
    finally:
        os.environ["HF_HUB_OFFLINE"] = "1"
    assert resolved.sha256 == tree_digest(published)[0]
    installed = sorted(p.relative_to(tokenizer.file).as_posix() for p in tokenizer.file.rglob("*") if p.is_file())
    assert installed == ["tokenizer/vocab.txt"]
    assert not any("safetensors" in path for _, path, _ in http_files.requests)  # only the included files


def test_json_data_files_are_parsed_before_import(tmp_path):
    store = make_store(tmp_path, [{"name": "gallery_list", "file": "gallerys.json", "format": "json"}])
    broken = tmp_path / "broken" / "gallerys.json"
    broken.parent.mkdir()
    broken.write_text('{"a": [1, 2')
    with pytest.raises(WeightFileError, match="not a valid JSON file"):
        store.import_file("gallery_list", broken)
    good = tmp_path / "gallerys.json"
    good.write_text(json.dumps({"aki": ["a.png"]}))
    assert json.loads(store.import_file("gallery_list", good).file.read_text()) == {"aki": ["a.png"]}
