"""DINO ViT: tiny checkpoints in DINO's published format, converted, reloaded, compared with DINO's math."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import ViTModel

from anibench.errors import InputError, MissingWeightsError
from anibench.models import dino

WIDTH, DEPTH, PATCH, GRID, HEADS = 64, 2, 8, 4, 1  # heads: DINO's 64-dimensional heads
MLP = 4 * WIDTH


def dino_checkpoint(seed: int = 0, width: int = WIDTH, depth: int = DEPTH) -> dict[str, torch.Tensor]:
    """A random state dict with the keys of DINO's VisionTransformer (vision_transformer.py), no head."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.3, mean=0.0):
        return mean + scale * torch.randn(*shape, generator=g)

    mlp = 4 * width
    state = {
        "cls_token": rand(1, 1, width, scale=1.0),
        "pos_embed": rand(1, GRID * GRID + 1, width, scale=1.0),
        "patch_embed.proj.weight": rand(width, 3, PATCH, PATCH, scale=0.1),
        "patch_embed.proj.bias": rand(width, scale=0.05),
    }
    for i in range(depth):
        b = f"blocks.{i}."
        state.update({
            b + "norm1.weight": rand(width, scale=0.1, mean=1.0), b + "norm1.bias": rand(width, scale=0.05),
            b + "attn.qkv.weight": rand(3 * width, width, scale=width**-0.5),
            b + "attn.qkv.bias": rand(3 * width, scale=0.05),
            b + "attn.proj.weight": rand(width, width, scale=width**-0.5),
            b + "attn.proj.bias": rand(width, scale=0.05),
            b + "norm2.weight": rand(width, scale=0.1, mean=1.0), b + "norm2.bias": rand(width, scale=0.05),
            b + "mlp.fc1.weight": rand(mlp, width, scale=width**-0.5), b + "mlp.fc1.bias": rand(mlp, scale=0.05),
            b + "mlp.fc2.weight": rand(width, mlp, scale=mlp**-0.5), b + "mlp.fc2.bias": rand(width, scale=0.05),
        })  # fmt: skip
    state["norm.weight"] = rand(width, scale=0.1, mean=1.0)
    state["norm.bias"] = rand(width, scale=0.05)
    return state


def reference_cls(state: dict[str, torch.Tensor], x: torch.Tensor, heads: int = HEADS) -> torch.Tensor:
    """DINO's VisionTransformer.forward written out from the paper's code path, on DINO's own keys."""
    batch, _, height, width = x.shape
    dim = state["cls_token"].shape[-1]
    tokens = F.conv2d(x, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=PATCH)
    tokens = torch.cat([state["cls_token"].expand(batch, -1, -1), tokens.flatten(2).transpose(1, 2)], dim=1)
    pos = state["pos_embed"]
    n = pos.shape[1] - 1
    if tokens.shape[1] - 1 != n or height != width:
        # vision_transformer.py interpolate_pos_encoding: scale factors (H//p + 0.1)/sqrt(N), (W//p + 0.1)/sqrt(N).
        grid = pos[:, 1:].reshape(1, int(math.sqrt(n)), int(math.sqrt(n)), dim).permute(0, 3, 1, 2)
        factors = ((height // PATCH + 0.1) / math.sqrt(n), (width // PATCH + 0.1) / math.sqrt(n))
        grid = F.interpolate(grid, scale_factor=factors, mode="bicubic")
        pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)
    t = tokens + pos
    layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    for i in range(layers):
        b = f"blocks.{i}."
        y = F.layer_norm(t, (dim,), state[b + "norm1.weight"], state[b + "norm1.bias"], eps=1e-6)
        qkv = F.linear(y, state[b + "attn.qkv.weight"], state[b + "attn.qkv.bias"])
        q, k, v = qkv.reshape(batch, -1, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        attention = ((q @ k.transpose(-2, -1)) * (dim // heads) ** -0.5).softmax(dim=-1)
        y = (attention @ v).transpose(1, 2).reshape(batch, -1, dim)
        t = t + F.linear(y, state[b + "attn.proj.weight"], state[b + "attn.proj.bias"])
        y = F.layer_norm(t, (dim,), state[b + "norm2.weight"], state[b + "norm2.bias"], eps=1e-6)
        y = F.linear(F.gelu(F.linear(y, state[b + "mlp.fc1.weight"], state[b + "mlp.fc1.bias"])),
                     state[b + "mlp.fc2.weight"], state[b + "mlp.fc2.bias"])  # fmt: skip
        t = t + y
    return F.layer_norm(t, (dim,), state["norm.weight"], state["norm.bias"], eps=1e-6)[:, 0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(state dict, checkpoint path, converted folder) of a tiny DINO-architecture model."""
    folder = tmp_path_factory.mktemp("dino")
    state = dino_checkpoint()
    path = folder / "dino_tiny_pretrain.pth"
    torch.save(state, path)
    dino.convert_checkpoint(path, folder / "hf", expect=dino.dino_config(WIDTH, PATCH, DEPTH, GRID * PATCH))
    return state, path, folder / "hf"


def test_converted_folder_is_a_transformers_vit_with_dinos_architecture(tiny):
    _, _, folder = tiny
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["ViTModel"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (WIDTH, DEPTH, HEADS)
    assert (config["patch_size"], config["image_size"], config["intermediate_size"]) == (PATCH, GRID * PATCH, MLP)
    assert config["layer_norm_eps"] == 1e-6 and config["hidden_act"] == "gelu" and config["qkv_bias"] is True


@pytest.mark.parametrize("size", [(32, 32), (32, 56), (56, 32), (36, 47), (40, 32)])
def test_cls_features_equal_dinos_forward(tiny, size):
    """Square (no interpolation), non-square and non-multiple-of-patch inputs, all through from_pretrained."""
    state, _, folder = tiny
    model = dino.load_dino(folder)
    assert not model.training and model.pooler is None
    x = torch.randn(3, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference_cls(state, x)
    assert torch.allclose(dino.cls_features(model, x), expected, atol=2e-5, rtol=0)


def test_transformers_own_interpolation_differs_from_dinos(tiny):
    """Why DinoViTEmbeddings exists: stock ViTModel resamples positions with size=, DINO with scale_factor=."""
    state, _, folder = tiny
    stock = ViTModel.from_pretrained(folder, add_pooling_layer=False).eval()
    x = torch.randn(2, 3, 32, 56, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        stock_cls = stock(pixel_values=x, interpolate_pos_encoding=True).last_hidden_state[:, 0]
        expected = reference_cls(state, x)
    assert (stock_cls - expected).abs().max() > 1e-3
    assert torch.allclose(dino.cls_features(dino.load_dino(folder), x), expected, atol=2e-5, rtol=0)


def test_batching_does_not_change_features(tiny):
    model = dino.load_dino(tiny[2])
    x = torch.randn(5, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    whole = dino.cls_features(model, x)
    assert whole.shape == (5, WIDTH)
    assert torch.allclose(dino.cls_features(model, x, batch_size=2), whole, atol=1e-6)


def test_round_trip_restores_every_key(tiny):
    state, _, folder = tiny
    model = ViTModel.from_pretrained(folder, add_pooling_layer=False)
    back = dino.hf_to_dino(model.state_dict(), DEPTH)
    assert set(back) == set(state)
    for key, value in state.items():
        assert torch.equal(back[key], value), key


def test_published_converter_refuses_another_architecture(tiny, tmp_path):
    _, path, _ = tiny
    with pytest.raises(InputError) as err:
        dino.convert_published(path, tmp_path / "out")
    assert "width 64 (expected 768)" in str(err.value) and str(path) in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda s: s.pop("blocks.1.norm2.weight"), ["missing", "blocks.1.norm2.weight"]),
        (lambda s: s.__setitem__("head.weight", torch.zeros(10, WIDTH)), ["unexpected", "head.weight"]),
        (
            lambda s: s.__setitem__("blocks.0.mlp.fc2.weight", torch.zeros(MLP, WIDTH)),
            ["wrong shapes", "blocks.0.mlp.fc2.weight"],
        ),
        (lambda s: s.pop("cls_token"), ["missing", "cls_token"]),
    ],
)
def test_wrong_layouts_are_refused_naming_keys_and_file(tmp_path, edit, words):
    state = dino_checkpoint()
    edit(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as err:
        dino.convert_checkpoint(path, tmp_path / "out")
    assert all(word in str(err.value) for word in words) and str(path) in str(err.value)


def test_full_training_checkpoint_points_to_the_backbone_file(tmp_path):
    path = tmp_path / "dino_full_checkpoint.pth"
    teacher = {"backbone." + k: v for k, v in dino_checkpoint().items()}
    torch.save({"teacher": teacher, "epoch": torch.tensor(100)}, path)
    with pytest.raises(InputError, match="full training checkpoint"):
        dino.convert_published(path, tmp_path / "out")


def test_truncated_and_foreign_files_are_refused(tiny, tmp_path):
    _, path, _ = tiny
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError) as err:
        dino.convert_published(truncated, tmp_path / "out")
    assert str(truncated) in str(err.value)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(InputError):
        dino.convert_published(text, tmp_path / "out")
    with pytest.raises(InputError, match="not found"):
        dino.convert_published(tmp_path / "absent.pth", tmp_path / "out")


def test_loading_a_missing_folder_names_it(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        dino.load_dino(tmp_path / "no-such-folder")
    assert "no-such-folder" in str(err.value) and "dino_vitb16" in str(err.value)


def test_published_variants_have_dinos_sizes():
    base = dino.variant_config("vitb16")
    assert (base.hidden_size, base.num_attention_heads, base.intermediate_size, base.patch_size) == (768, 12, 3072, 16)
    small8 = dino.variant_config("vits8")
    assert (small8.hidden_size, small8.num_attention_heads, small8.patch_size) == (384, 6, 8)
    assert base.layer_norm_eps == 1e-6 and base.qkv_bias and base.hidden_act == "gelu"


def test_lower_precision_runs_with_dinos_interpolation(tiny):
    state, _, folder = tiny
    model = dino.load_dino(folder, dtype=torch.bfloat16)
    x = torch.randn(2, 3, 32, 56, generator=torch.Generator().manual_seed(4))
    features = dino.cls_features(model, x)
    assert features.dtype == torch.bfloat16
    with torch.no_grad():
        assert torch.allclose(features.float(), reference_cls(state, x), atol=0.15)
