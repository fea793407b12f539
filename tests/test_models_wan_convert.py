"""Original Wan / AniSora checkpoints -> diffusers (anibench.models.wan_convert), with parity against AniSora.

The parity fixtures (tests/parity/fixtures/anisora_wan/, recipe.json) come from AniSora's own code
(bilibili/Index-anisora @ 171fe63: anisoraV3/wan/modules/model_infer.py and vae.py,
anisoraV3.2/wan/modules/model.py, and image2video_any.py's keyframe formula) run by
tests/parity/reference_anisora_wan.py on seeded tiny weights saved in the original layout. Here the
converters + diffusers (+ anibench.models.wan_anisora for the conditioning) reproduce them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from safetensors.torch import load_file, save_file

from anibench.models import wan_anisora
from anibench.models.wan_convert import (
    CONVERTER_VERSION,
    WanCheckpointError,
    convert_transformer,
    convert_vae,
    transformer_config,
)
from parity.tiny_wan import transformer_config as tiny_config
from parity.tiny_wan import write_tiny_wan_base
from parity.tiny_wan_original import (
    WEIGHTS,
    original_name,
    original_state_dict,
    tiny_transformer,
    write_tiny_anisora_dit,
)

FIXTURES = Path(__file__).parent / "parity" / "fixtures" / "anisora_wan"
RECIPE = json.loads((FIXTURES / "recipe.json").read_text())
TOL = RECIPE["tolerance"]


@pytest.fixture(scope="module")
def inputs() -> dict[str, torch.Tensor]:
    return load_file(FIXTURES / "inputs.safetensors")


@pytest.fixture(scope="module")
def outputs() -> dict[str, torch.Tensor]:
    return load_file(FIXTURES / "outputs.safetensors")


def guide_images(inputs: dict[str, torch.Tensor], name: str) -> list[np.ndarray]:
    return [inputs[f"image_{i}"].numpy() for i in range(len(RECIPE["frames"][name]))]


def padded_context(context: torch.Tensor) -> torch.Tensor:
    """AniSora pads the text states with zeros to text_len 512 inside WanModel; diffusers expects them padded."""
    out = torch.zeros(1, RECIPE["dit"]["text_len"], context.shape[1])
    out[0, : context.shape[0]] = context
    return out


def converted_vae(tmp_path: Path, *, as_pth: bool = False) -> AutoencoderKLWan:
    """The fixture VAE converted; ``as_pth`` first rewrites it as the published ``Wan2.1_VAE.pth`` format."""
    source = FIXTURES / "vae.safetensors"
    if as_pth:
        torch.save(load_file(source), tmp_path / "Wan2.1_VAE.pth")
        source = tmp_path / "Wan2.1_VAE.pth"
    convert_vae(source, tmp_path / "vae")
    return AutoencoderKLWan.from_pretrained(tmp_path / "vae").eval()


def test_converter_version() -> None:
    assert CONVERTER_VERSION == "1"


@pytest.mark.parametrize("name", ["dit_i2v", "dit_wan22"])
def test_dit_matches_anisora_wanmodel(tmp_path: Path, name: str, inputs, outputs) -> None:
    """AniSora's WanModel forward (x, t, context, clip_fea, y) == converted diffusers transformer."""
    convert_transformer(FIXTURES / name, tmp_path / name)
    model = WanTransformer3DModel.from_pretrained(tmp_path / name).eval()
    clip = name == "dit_i2v"
    assert model.config.num_attention_heads == 2 and model.config.attention_head_dim == 12
    assert model.config.image_dim == (4 if clip else None)
    hidden = torch.cat([inputs["noise"], outputs["three_y"]])[None]
    with torch.no_grad():
        out = model(hidden, inputs["timestep"], padded_context(inputs["context"]),
                    inputs["clip_fea"] if clip else None, return_dict=False)[0][0]
    assert (out - outputs[name]).abs().max().item() < TOL
    assert outputs[name].abs().max().item() > 0.5  # a real signal, not a zeroed head


def test_vae_latents_match_anisora(tmp_path: Path, inputs, outputs) -> None:
    """AniSora's WanVAE.encode of a keyframe video == converted AutoencoderKLWan (argmax, (mu - mean) / std)."""
    vae = converted_vae(tmp_path, as_pth=True)
    h, w = RECIPE["size_hw"]
    video = torch.zeros(3, RECIPE["num_frames"], h, w)
    for image, frame in zip(guide_images(inputs, "three"), RECIPE["frames"]["three"]):
        pixels = torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1.0
        video[:, frame] = F.interpolate(pixels[None], size=(h, w), mode="bicubic")[0]
    with torch.no_grad():
        mu = vae.encode(video[None]).latent_dist.mode()[0]
    mean = torch.tensor(vae.config.latents_mean).view(-1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(-1, 1, 1, 1)
    assert ((mu - mean) / std - outputs["three_latents"]).abs().max().item() < TOL


@pytest.mark.parametrize("name", ["three", "two"])
def test_keyframe_msk_and_y_match_anisora(tmp_path: Path, name: str, inputs, outputs) -> None:
    """image2video_any.py's msk and y (keyframes at 0, .5, 1 and 0, 1 of F=17) through anibench.models.wan_anisora."""
    h, w = RECIPE["size_hw"]
    assert wan_anisora.wan_output_size(*RECIPE["image_hw"], RECIPE["max_area"]) == (h, w)
    condition = wan_anisora.keyframe_condition(guide_images(inputs, name), RECIPE["frames"][name],
                                               RECIPE["num_frames"], h, w)
    assert torch.equal(wan_anisora.latent_mask(condition.known)[0], outputs[f"{name}_msk"])
    pipe = wan_anisora.AniSoraWanPipeline(tokenizer=None, text_encoder=None, vae=converted_vae(tmp_path),
                                          scheduler=None)
    with torch.no_grad():
        y = pipe.condition_latents(condition)[0]
    assert (y - outputs[f"{name}_y"]).abs().max().item() < TOL


def test_converted_dit_drives_the_anisora_pipeline(tmp_path: Path, inputs) -> None:
    """A converted AniSora DiT loads as the pipeline's transformer and generates (F, H, W, 3)."""
    base = write_tiny_wan_base(tmp_path / "base")
    convert_transformer(FIXTURES / "dit_i2v", tmp_path / "dit")
    pipe = wan_anisora.load_pipeline(base, transformer=tmp_path / "dit")
    condition = wan_anisora.keyframe_condition(guide_images(inputs, "two"), [0, 8], 9, 16, 16)
    frames = pipe(condition, prompt="a cat runs", num_inference_steps=2, output_type="np",
                  generator=torch.Generator().manual_seed(0)).frames[0]
    assert frames.shape == (9, 16, 16, 3) and np.isfinite(frames).all()


def test_tiny_original_layout_is_anisoras(tmp_path: Path) -> None:
    """write_tiny_anisora_dit's names and shapes == those AniSora's own WanModel saved (fixtures)."""
    for wan22, name in ((False, "dit_i2v"), (True, "dit_wan22")):
        ours = load_file(write_tiny_anisora_dit(tmp_path / name, wan22=wan22) / WEIGHTS)
        theirs = load_file(FIXTURES / name / WEIGHTS)
        assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("wan22", [False, True])
def test_round_trip_key_by_key(tmp_path: Path, wan22: bool) -> None:
    """Original layout -> convert_transformer -> every diffusers tensor equal to the model it came from."""
    convert_transformer(write_tiny_anisora_dit(tmp_path / "orig", wan22=wan22, seed=3), tmp_path / "out")
    converted = WanTransformer3DModel.from_pretrained(tmp_path / "out").eval()
    source = tiny_transformer(wan22=wan22, seed=3).state_dict()
    target = converted.state_dict()
    assert source.keys() == target.keys()
    assert all(torch.equal(source[k], target[k]) for k in source)
    expected = {k: v for k, v in tiny_config(wan22=wan22).items() if k != "rope_max_seq_len"}
    assert {k: converted.config[k] for k in expected} == {**expected, "patch_size": [1, 2, 2]}


def test_shards_prefix_and_wrappers(tmp_path: Path) -> None:
    """Index-json shards with the ComfyUI prefix, and a .pth {"state_dict": ...}, give the same model."""
    model = tiny_transformer(seed=4)
    state = original_state_dict(model)
    keys = sorted(state)
    shards = tmp_path / "shards"
    write_tiny_anisora_dit(shards, seed=4)
    (shards / WEIGHTS).unlink()
    weight_map = {}
    for i, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2:]), start=1):
        file = f"diffusion_pytorch_model-{i:05d}-of-00002.safetensors"
        save_file({f"model.diffusion_model.{k}": state[k] for k in part}, str(shards / file))
        weight_map.update({f"model.diffusion_model.{k}": file for k in part})
    (shards / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    pth = tmp_path / "pth"
    write_tiny_anisora_dit(pth, seed=4)
    (pth / WEIGHTS).unlink()
    torch.save({"state_dict": state}, pth / "anisora.pth")
    for source in (shards, pth / "anisora.pth"):
        target = tmp_path / f"out-{source.name}"
        convert_transformer(source, target)
        loaded = WanTransformer3DModel.from_pretrained(target).state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    assert len(list((tmp_path / "out-shards").glob("*.safetensors"))) == 2


def test_real_14b_layout_inferred_without_config() -> None:
    """Shapes of Wan2.1-I2V-14B (40 x 128, CLIP 1280) and a Wan2.2 expert (no CLIP) give the published configs."""
    from accelerate import init_empty_weights

    real = {"num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 36, "out_channels": 16,
            "text_dim": 4096, "freq_dim": 256, "ffn_dim": 13824, "num_layers": 40, "cross_attn_norm": True,
            "qk_norm": "rms_norm_across_heads", "eps": 1e-6}
    for clip in (True, False):
        extra = {"image_dim": 1280, "added_kv_proj_dim": 5120} if clip else {}
        with init_empty_weights():
            model = WanTransformer3DModel(**real, **extra)
        shapes = {original_name(k): tuple(v.shape) for k, v in model.state_dict().items()}
        config = transformer_config(shapes, None, Path("wan14b"))
        assert {k: config[k] for k in real} == real
        assert config["image_dim"] == extra.get("image_dim") and config["added_kv_proj_dim"] == extra.get(
            "added_kv_proj_dim")


def test_wrong_architecture_is_a_clear_error(tmp_path: Path) -> None:
    """A CogVideoX state dict, a truncated or padded DiT, a config that disagrees, a DiT given as a VAE."""
    cog = tmp_path / "cog.safetensors"
    save_file({"patch_embed.proj.weight": torch.zeros(4, 4), "transformer_blocks.0.attn1.to_q.weight":
               torch.zeros(4, 4)}, str(cog))
    with pytest.raises(WanCheckpointError, match="patch_embedding.weight"):
        convert_transformer(cog, tmp_path / "out")
    folder = write_tiny_anisora_dit(tmp_path / "dit")
    state = load_file(folder / WEIGHTS)
    del state["blocks.1.ffn.2.weight"]
    state["blocks.0.self_attn.extra.weight"] = torch.zeros(2)
    save_file(state, str(folder / WEIGHTS))
    with pytest.raises(WanCheckpointError, match=r"blocks\.1\.ffn\.net\.2\.weight.*blocks\.0\.self_attn\.extra"):
        convert_transformer(folder, tmp_path / "out")
    folder = write_tiny_anisora_dit(tmp_path / "dit2")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_layers": 3}))
    with pytest.raises(WanCheckpointError, match="num_layers"):
        convert_transformer(folder, tmp_path / "out")
    (folder / "config.json").unlink()
    with pytest.raises(WanCheckpointError, match="heads"):  # dim 24 is no multiple of Wan's head dim 128
        convert_transformer(folder, tmp_path / "out")
    with pytest.raises(WanCheckpointError, match="not an original Wan VAE"):
        convert_vae(folder / WEIGHTS, tmp_path / "vae")
    assert not (tmp_path / "out").exists() and not (tmp_path / "vae").exists()
