"""DreamSim's ensemble: the published archive converted and loaded, checked against an independent forward.

Small configuration (tests/parity/weights_dreamsim.py ``TINY``: width 128 = two heads, 2 blocks, the
published archive format) so the whole file runs in seconds; the full-size architecture is checked
against DreamSim's own code by the parity fixture (tests/test_vbench_i2v_background.py). The reference
below is written from DreamSim's description (dreamsim db4d16c: DINO-layout ViTs, ``pos_drop`` as a
LayerNorm for the CLIP towers, LoRA on ``qkv`` left unmerged, DINO's CLS before its final norm, the
towers' ``norm(x)[:, 0] @ proj``, concatenation, centring, unit norm), sharing no code with the
converter.
"""

from __future__ import annotations

import json
import math
import shutil
import zipfile

import pytest
import torch
import torch.nn.functional as F

from anibench.errors import InputError
from anibench.models import dino, dreamsim

from parity.weights_dreamsim import (
    BRANCHES, TINY, adapter_config, lora_scaling, lora_state_dict, tiny_dino_state_dict, tower_state_dict,
    write_dreamsim_archive, write_tiny_dino_checkpoint,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(archive, converted ensemble folder, converted DINO folder) of the tiny recipe."""
    folder = tmp_path_factory.mktemp("dreamsim-tiny")
    archive = folder / "dreamsim_ensemble_checkpoint.zip"
    write_dreamsim_archive(archive, TINY)
    dino.convert_checkpoint(write_tiny_dino_checkpoint(folder / "dino.pth"), folder / "dino_hf")
    dreamsim.convert_archive(archive, folder / "ensemble_hf")
    return archive, folder / "ensemble_hf", folder / "dino_hf"


def _layer_norm(x, state, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], state[f"{prefix}.weight"], state[f"{prefix}.bias"], eps)


def reference_vit(state, pixels, *, lora, scaling, activation, eps, tower):
    """DINO's VisionTransformer forward, with LoRA added to qkv as PEFT computes it (unmerged)."""
    width = state["cls_token"].shape[-1]
    heads = width // 64
    patch = state["patch_embed.proj.weight"].shape[-1]
    x = F.conv2d(pixels, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + state["pos_embed"]
    if tower:
        x = _layer_norm(x, state, "pos_drop", eps)
    depth = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("blocks."))
    for i in range(depth):
        b = f"blocks.{i}."
        h = _layer_norm(x, state, b + "norm1", eps)
        a_factor, b_factor = lora[i]
        qkv = F.linear(h, state[b + "attn.qkv.weight"], state[b + "attn.qkv.bias"])
        qkv = qkv + scaling * F.linear(F.linear(h, a_factor), b_factor)
        n, tokens, _ = qkv.shape
        q, k, v = qkv.reshape(n, tokens, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
        attention = ((q @ k.transpose(-2, -1)) * (width // heads) ** -0.5).softmax(dim=-1)
        y = (attention @ v).transpose(1, 2).reshape(n, tokens, width)
        x = x + F.linear(y, state[b + "attn.proj.weight"], state[b + "attn.proj.bias"])
        h = _layer_norm(x, state, b + "norm2", eps)
        h = activation(F.linear(h, state[b + "mlp.fc1.weight"], state[b + "mlp.fc1.bias"]))
        x = x + F.linear(h, state[b + "mlp.fc2.weight"], state[b + "mlp.fc2.bias"])
    if not tower:
        return x[:, 0]  # DreamSim's hook on the last block: before DINO's final norm
    return _layer_norm(x, state, "norm", eps)[:, 0] @ state["proj"]


def reference_embedding(pixels, *, with_lora=True):
    lora = lora_state_dict(TINY)
    scaling = lora_scaling(TINY) if with_lora else 0.0
    stats = {"dino": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
             "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))}
    stats["open_clip"] = stats["clip"]
    features = []
    for index, branch in enumerate(BRANCHES):
        factors = {i: (lora[f"base_model.model.extractor_list.{index}.model.blocks.{i}.attn.qkv.lora_A.weight"],
                       lora[f"base_model.model.extractor_list.{index}.model.blocks.{i}.attn.qkv.lora_B.weight"])
                   for i in range(TINY.depth)}
        mean, std = (torch.tensor(s).view(3, 1, 1) for s in stats[branch])
        normalised = (pixels - mean) / std
        if branch == "dino":
            features.append(reference_vit(tiny_dino_state_dict(TINY), normalised, lora=factors, scaling=scaling,
                                          activation=lambda t: F.gelu(t), eps=1e-6, tower=False))
        else:
            activation = (lambda t: t * torch.sigmoid(1.702 * t)) if branch == "clip" else (lambda t: F.gelu(t))
            features.append(reference_vit(tower_state_dict(branch, TINY), normalised, lora=factors, scaling=scaling,
                                          activation=activation, eps=1e-5, tower=True))
    embedding = torch.cat(features, dim=-1)
    embedding = embedding - embedding.mean(dim=-1, keepdim=True)
    return embedding / embedding.norm(dim=-1, keepdim=True)


@pytest.fixture(scope="module")
def pixels():
    generator = torch.Generator().manual_seed(3)
    return torch.rand(3, 3, 224, 224, generator=generator) * 1.1 - 0.05  # bicubic overshoot included


def test_the_ensemble_matches_an_independent_forward(tiny, pixels):
    _, ensemble_dir, dino_dir = tiny
    model = dreamsim.load_ensemble(ensemble_dir, dino_dir)
    ours = dreamsim.embed(model, pixels, batch_size=2)
    expected = reference_embedding(pixels)
    assert ours.shape == (3, 128 + 2 * TINY.output_dim)
    assert torch.allclose(ours, expected, atol=2e-6), (ours - expected).abs().max()
    assert torch.allclose(ours.norm(dim=-1), torch.ones(3)) and ours.mean(dim=-1).abs().max() < 1e-6
    # the LoRA matters: without it the embeddings are clearly different
    assert (ours - reference_embedding(pixels, with_lora=False)).abs().max() > 1e-2
    # each branch's piece sits where DreamSim concatenates it (dino, clip, open_clip)
    pieces = model.branch_features(pixels)
    assert [pieces[name].shape[-1] for name in BRANCHES] == [128, TINY.output_dim, TINY.output_dim]


def test_the_converter_records_lora_and_towers(tiny):
    _, ensemble_dir, _ = tiny
    recipe = json.loads((ensemble_dir / dreamsim.RECIPE_FILE).read_text())
    assert recipe["lora"]["scaling"] == pytest.approx(TINY.lora_alpha / TINY.lora_rank)
    assert recipe["branches"] == ["dino", "clip", "open_clip"]
    assert recipe["towers"]["clip"] == {"width": 128, "layers": 2, "patch": 16, "image_size": 224, "mlp": 256,
                                        "output_dim": TINY.output_dim}
    config = json.loads((ensemble_dir / "clip" / "config.json").read_text())
    open_config = json.loads((ensemble_dir / "open_clip" / "config.json").read_text())
    assert config["hidden_act"] == "quick_gelu" and open_config["hidden_act"] == "gelu"
    assert config["layer_norm_eps"] == open_config["layer_norm_eps"] == 1e-5


def test_adapter_weights_in_the_older_bin_format(tmp_path, tiny):
    """``adapter_model.bin`` (older PEFT) converts to exactly the tensors ``adapter_model.safetensors`` gives."""
    from safetensors.torch import load_file

    archive = tmp_path / "dreamsim_ensemble_checkpoint.zip"
    write_dreamsim_archive(archive, TINY, lora_weights="bin")
    dreamsim.convert_archive(archive, tmp_path / "converted")
    for relative in ("clip/model.safetensors", "open_clip/model.safetensors", dreamsim.DINO_LORA_FILE):
        first, second = load_file(str(tiny[1] / relative)), load_file(str(tmp_path / "converted" / relative))
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first), relative


def test_distance_is_one_minus_cosine():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    assert dreamsim.dreamsim_distance(a, b).item() == pytest.approx(1 - 1 / math.sqrt(2))
    centred = dreamsim.normalize_embedding(torch.tensor([[1.0, 2.0, 6.0]]))
    assert torch.allclose(centred, torch.tensor([[-2.0, -1.0, 3.0]]) / math.sqrt(14))


# --- what the converter refuses -------------------------------------------------------------------


def _rewrite(source, target, *, drop=(), replace=None):
    """A copy of the archive without the members in ``drop`` and with ``replace`` {name: bytes}."""
    replace = replace or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            if item.filename in drop or item.filename in replace:
                continue
            new.writestr(item, old.read(item.filename))
        for name, data in replace.items():
            new.writestr(name, data)
    return target


def test_a_missing_member_is_named(tiny, tmp_path):
    archive = _rewrite(tiny[0], tmp_path / "a.zip", drop={"open_clip_vitb16_pretrain.pth.tar"})
    with pytest.raises(InputError, match="missing open_clip_vitb16_pretrain.pth.tar") as caught:
        dreamsim.convert_archive(archive, tmp_path / "out")
    assert str(archive) in str(caught.value)


def test_a_truncated_archive_is_refused(tiny, tmp_path):
    truncated = tmp_path / "dreamsim_ensemble_checkpoint.zip"
    truncated.write_bytes(tiny[0].read_bytes()[: 100_000])
    with pytest.raises(InputError, match="not a complete zip file") as caught:
        dreamsim.convert_archive(truncated, tmp_path / "out")
    assert str(truncated) in str(caught.value)


def test_another_architecture_is_refused_by_the_published_converter(tiny, tmp_path):
    with pytest.raises(InputError, match="another architecture: width 128 \\(expected 768\\)"):
        dreamsim.convert_published(tiny[0], tmp_path / "out")


def test_unsupported_lora_settings_are_refused(tiny, tmp_path):
    config = {**adapter_config(TINY), "target_modules": ["qkv", "proj"]}
    archive = _rewrite(tiny[0], tmp_path / "a.zip", replace={"ensemble_lora/adapter_config.json": json.dumps(config)})
    with pytest.raises(InputError, match="target_modules"):
        dreamsim.convert_archive(archive, tmp_path / "out")
    dora = {**adapter_config(TINY), "use_dora": True}
    archive = _rewrite(tiny[0], tmp_path / "b.zip", replace={"ensemble_lora/adapter_config.json": json.dumps(dora)})
    with pytest.raises(InputError, match="use_dora"):
        dreamsim.convert_archive(archive, tmp_path / "out2")


def test_adapter_keys_must_cover_every_qkv(tiny, tmp_path):
    from safetensors.torch import save

    lora = lora_state_dict(TINY)
    lora.pop("base_model.model.extractor_list.2.model.blocks.1.attn.qkv.lora_B.weight")
    archive = _rewrite(tiny[0], tmp_path / "a.zip", replace={"ensemble_lora/adapter_model.safetensors": save(lora)})
    with pytest.raises(InputError, match="extractor_list.2.model.blocks.1.attn.qkv.lora_B"):
        dreamsim.convert_archive(archive, tmp_path / "out")


def test_the_dino_weights_must_fit_the_lora(tiny, tmp_path):
    """The ensemble's LoRA over a DINO backbone of another depth: refused, naming both."""
    _, ensemble_dir, _ = tiny
    deeper = {**tiny_dino_state_dict(TINY)}
    for key in [k for k in deeper if k.startswith("blocks.1.")]:
        deeper[key.replace("blocks.1.", "blocks.2.")] = deeper[key].clone()
    torch.save(deeper, tmp_path / "dino.pth")
    dino.convert_checkpoint(tmp_path / "dino.pth", tmp_path / "dino_hf")
    with pytest.raises(InputError, match="another depth"):
        dreamsim.load_ensemble(ensemble_dir, tmp_path / "dino_hf")


def test_an_unconverted_folder_says_how_to_import(tmp_path, tiny):
    from anibench.errors import MissingWeightsError

    shutil.copytree(tiny[2], tmp_path / "dino_hf")
    with pytest.raises(MissingWeightsError, match="anibench weights import dreamsim_ensemble"):
        dreamsim.load_ensemble(tmp_path / "nothing", tmp_path / "dino_hf")
