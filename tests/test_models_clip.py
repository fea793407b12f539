"""OpenAI CLIP ViT image tower: tiny checkpoints in OpenAI's formats (plain and TorchScript), converted, reloaded."""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict

import pytest
import torch
from torch import nn

from anibench.errors import InputError, MissingWeightsError
from anibench.models import clip

WIDTH, LAYERS, PATCH, IMAGE, OUTPUT = 64, 2, 8, 32, 16  # heads = WIDTH // 64, as OpenAI's model.py


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualBlock(nn.Module):
    """OpenAI's ResidualAttentionBlock layout: ln_1, attn (packed in_proj), ln_2, mlp.c_fc / mlp.c_proj."""

    def __init__(self, width: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, width // 64)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * width, width))]))  # fmt: skip
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualBlock(width) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class Visual(nn.Module):
    """OpenAI's VisionTransformer: conv1, class/positional embeddings, ln_pre, transformer, ln_post, proj."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, WIDTH, kernel_size=PATCH, stride=PATCH, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(WIDTH))
        self.positional_embedding = nn.Parameter(torch.zeros((IMAGE // PATCH) ** 2 + 1, WIDTH))
        self.ln_pre = nn.LayerNorm(WIDTH)
        self.transformer = Transformer(WIDTH, LAYERS)
        self.ln_post = nn.LayerNorm(WIDTH)
        self.proj = nn.Parameter(torch.zeros(WIDTH, OUTPUT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        x = torch.cat([self.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x).permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class TinyOpenAIClip(nn.Module):
    """Both towers with OpenAI's parameter names (the text tower only has to be present in the file)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.visual = Visual()
        self.token_embedding = nn.Embedding(100, WIDTH)
        self.positional_embedding = nn.Parameter(torch.zeros(77, WIDTH))
        self.transformer = Transformer(WIDTH, 1)
        self.ln_final = nn.LayerNorm(WIDTH)
        self.text_projection = nn.Parameter(torch.zeros(WIDTH, OUTPUT))
        self.logit_scale = nn.Parameter(torch.tensor(4.6))
        for name, value in (("input_resolution", IMAGE), ("context_length", 77), ("vocab_size", 100)):
            self.register_buffer(name, torch.tensor(value))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                is_norm_weight = name.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight"))
                centre = 1.0 if is_norm_weight else 0.0
                scale = 1.0 if "embedding" in name else 0.15
                # float16-representable values, like OpenAI's float16 release files
                p.copy_((centre + scale * torch.randn(p.shape, generator=g)).half().float())
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image)


def images(n: int = 4, seed: int = 5) -> torch.Tensor:
    return torch.randn(n, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(seed))


TINY = {"width": WIDTH, "layers": LAYERS, "patch": PATCH, "image_size": IMAGE, "output_dim": OUTPUT}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The module, its plain float16 state-dict file, its TorchScript archive and both converted folders."""
    folder = tmp_path_factory.mktemp("clip")
    module = TinyOpenAIClip()
    plain = folder / "ViT-tiny-plain.pt"
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in module.state_dict().items()}, plain)
    archive = folder / "ViT-tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # nn.MultiheadAttention's shape checks
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, but it is OpenAI's format
        torch.jit.trace(module, images(2)).save(str(archive))
    for source in (plain, archive):
        clip.convert_openai_checkpoint(source, folder / f"hf-{source.stem}", expect=TINY)
    return module, plain, archive, folder


def test_converted_folder_is_a_transformers_clip_vision_tower(tiny):
    folder = tiny[3] / "hf-ViT-tiny"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["CLIPVisionModelWithProjection"]
    assert config["hidden_act"] == "quick_gelu" and config["layer_norm_eps"] == 1e-5
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (WIDTH, LAYERS, 1)
    assert (config["patch_size"], config["image_size"], config["projection_dim"]) == (PATCH, IMAGE, OUTPUT)


@pytest.mark.parametrize("form", ["ViT-tiny", "ViT-tiny-plain"])
def test_image_embeds_equal_openais_encode_image(tiny, form):
    """Both published forms load through from_pretrained and give what the TorchScript module itself gives."""
    module, _, archive, folder = tiny
    model = clip.load_clip(folder / f"hf-{form}")
    assert not model.training
    x = images()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = torch.jit.load(str(archive))(x)
        assert torch.allclose(module(x), expected, atol=1e-6)
    embeds = clip.image_embeds(model, x)
    assert embeds.shape == (4, OUTPUT)
    assert torch.allclose(embeds, expected, atol=2e-5, rtol=0)
    assert torch.allclose(clip.image_embeds(model, x, batch_size=3), embeds, atol=1e-6)


def test_round_trip_restores_every_image_tower_key(tiny):
    from transformers import CLIPVisionModelWithProjection

    module, _, _, folder = tiny
    model = CLIPVisionModelWithProjection.from_pretrained(folder / "hf-ViT-tiny-plain")
    back = clip.hf_to_openai(model.state_dict(), LAYERS)
    original = {k: v for k, v in module.state_dict().items() if k.startswith("visual.")}
    assert set(back) == set(original)
    for key, value in original.items():
        assert torch.equal(back[key], value), key


def test_published_converter_refuses_another_architecture(tiny, tmp_path):
    _, plain, _, _ = tiny
    with pytest.raises(InputError) as err:
        clip.convert_openai(plain, tmp_path / "out")
    assert "width 64 (expected 768)" in str(err.value) and str(plain) in str(err.value)


def _saved(tmp_path, state) -> str:
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda s: s.pop("visual.transformer.resblocks.1.ln_2.bias"), ["missing", "resblocks.1.ln_2.bias"]),
        (lambda s: s.__setitem__("visual.attnpool.k_proj.weight", torch.zeros(2, 2)), ["unexpected", "attnpool"]),
        (lambda s: s.__setitem__("visual.proj", torch.zeros(OUTPUT, WIDTH)), ["wrong shapes", "proj"]),
        (lambda s: s.pop("visual.proj"), ["no 'visual.proj'"]),
    ],
)
def test_wrong_layouts_are_refused_naming_keys_and_file(tiny, tmp_path, edit, words):
    state = dict(tiny[0].state_dict())
    edit(state)
    path = _saved(tmp_path, state)
    with pytest.raises(InputError) as err:
        clip.convert_openai_checkpoint(path, tmp_path / "out")
    assert all(word in str(err.value) for word in words) and str(path) in str(err.value)


def test_resnet_clip_and_foreign_state_dicts_are_refused(tmp_path):
    resnet = {"visual.layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1), "visual.attnpool.c_proj.bias": torch.ones(2)}
    with pytest.raises(InputError, match="ResNet"):
        clip.convert_openai(_saved(tmp_path, resnet), tmp_path / "out")
    with pytest.raises(InputError, match="no 'visual"):
        clip.convert_openai(_saved(tmp_path, {"cls_token": torch.zeros(1, 1, 8)}), tmp_path / "out")


def test_truncated_files_are_refused(tiny, tmp_path):
    _, plain, archive, _ = tiny
    for source in (plain, archive):
        cut = tmp_path / f"cut-{source.name}"
        cut.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 3])
        with pytest.raises(InputError) as err:
            clip.convert_openai(cut, tmp_path / "out")
        assert str(cut) in str(err.value)


def test_loading_a_missing_folder_names_it(tmp_path):
    with pytest.raises(MissingWeightsError, match="clip_vit_b32"):
        clip.load_clip(tmp_path / "absent")


def test_vit_b32_config_is_openais():
    config = clip.openai_vision_config(**clip.VIT_B32)
    assert (config.hidden_size, config.num_attention_heads, config.intermediate_size) == (768, 12, 3072)
    assert (config.patch_size, config.image_size, config.projection_dim) == (32, 224, 512)
