"""Reference fixtures from AniSora's own Wan code (bilibili/Index-anisora @ 171fe63), run outside anibench.

Run in the reference venv (scripts/parity/setup_anisora_env.sh), never under pytest:

    /work/parity-work/anisora-venv/bin/python tests/parity/reference_anisora_wan.py

It imports, by file path from the AniSora checkout ($ANISORA_SRC, default /work/parity-work/anisora-full):
``anisoraV3/wan/modules/model_infer.py`` (the Wan2.1 ``WanModel`` that ``anisoraV3/wan/image2video_any.py``
runs, V3/V3.1), ``anisoraV3.2/wan/modules/model.py`` (the Wan2.2 ``WanModel`` of V3.2's two experts: no CLIP,
per-token timesteps), their ``attention.py`` and ``anisoraV3/wan/modules/vae.py`` (``WanVAE_`` and the
``WanVAE.encode`` wrapper).
Nothing from anibench is imported. What is changed to run them on a CPU, and nothing else:

- ``flash_attention`` (flash-attn, CUDA, bf16 only) is replaced in each model module's namespace by
  ``torch.nn.functional.scaled_dot_product_attention`` in float32 (no key padding occurs: ``seq_len`` equals
  the token count and AniSora passes ``context_lens=None``).
- The I2V image projection ``img_emb`` is built as AniSora's own ``MLPProj`` with the tiny CLIP width 4
  instead of its hard-coded 1280 (dependencies.md §5.4 sizes).
- ``WanModel`` and ``WanVAE_`` get seeded random weights instead of ``init_weights`` (which zeroes the head).

Written to tests/parity/fixtures/anisora_wan/: ``dit_i2v/`` and ``dit_wan22/`` (original layout: one
safetensors + Wan's config.json), ``vae.safetensors`` (original Wan2.1_VAE key names), ``inputs.safetensors``
(guide images, DiT inputs), ``outputs.safetensors`` (DiT outputs, VAE latents, msk and y) and ``recipe.json``.

The keyframe conditioning (msk, y) is AniSora's image2video_any.py ``WanI2V_any.generate`` formula, written
out here because ``generate`` needs the full T5/CLIP stack: a guide at fraction ``p`` goes to pixel frame
``round(int((F - 1) * p) / 8) * 8``; the pixel mask is 1 on those frames, its first frame is repeated 4 times,
it is viewed as (F + 3) // 4 groups of 4 and transposed to (4, T_lat, h, w); each guide image in [-1, 1] is
bicubically resized to (h, w) and placed on its frame of a zero video, which ``WanVAE.encode`` encodes;
``y = concat(msk, latents)``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ANISORA_COMMIT = "171fe63"
ANISORA_SRC = Path(os.environ.get("ANISORA_SRC", "/work/parity-work/anisora-full"))
OUT = Path(__file__).resolve().parent / "fixtures" / "anisora_wan"

# Tiny sizes (dependencies.md §5.4): 2 heads x head dim 12, ffn 32, 2 layers, text dim 32, CLIP width 4.
DIT_KWARGS = dict(patch_size=(1, 2, 2), text_len=512, in_dim=36, dim=24, ffn_dim=32, freq_dim=256,
                  text_dim=32, out_dim=16, num_heads=2, num_layers=2, window_size=(-1, -1),
                  qk_norm=True, cross_attn_norm=True, eps=1e-6)
CLIP_DIM = 4
CLIP_TOKENS = 257  # AniSora's WanI2VCrossAttention splits the first 257 context tokens off as image tokens
VAE_KWARGS = dict(dim=2, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                  temperal_downsample=[False, True, True], dropout=0.0)
# Wan2.1 VAE latent statistics, as in anisoraV3/wan/modules/vae.py WanVAE.__init__.
VAE_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
            0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
VAE_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
           3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]
NUM_FRAMES = 17
IMAGE_HW = (36, 44)
MAX_AREA = 32 * 32  # -> lat (2, 4), pixels (16, 32) by image2video_any.py's rounding
KEYFRAME_SETS = {"three": (0.0, 0.5, 1.0), "two": (0.0, 1.0)}
TIMESTEP = 637.5
TEXT_TOKENS = 7
SEEDS = {"dit_i2v": 1, "dit_wan22": 2, "vae": 3, "inputs": 4}


def bare_package(name: str, folder: Path) -> str:
    """Register ``folder`` as package ``name`` without running its __init__ (which pulls T5/CLIP)."""
    package = types.ModuleType(name)
    package.__path__ = [str(folder)]
    sys.modules[name] = package
    return name


def load_anisora_modules() -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """V3's model_infer.py and vae.py, V3.2's model.py, each model with flash attention patched to SDPA."""
    v3 = bare_package("anisora_v3_modules", ANISORA_SRC / "anisoraV3" / "wan" / "modules")
    v32 = bare_package("anisora_v32_modules", ANISORA_SRC / "anisoraV3.2" / "wan" / "modules")
    model21 = importlib.import_module(f"{v3}.model_infer")
    model22 = importlib.import_module(f"{v32}.model")
    for module in (model21, model22):
        module.flash_attention = sdpa_attention
    return model21, model22, importlib.import_module(f"{v3}.vae")


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_lens=None, **_: object) -> torch.Tensor:
    """[B, L, N, C] attention in float32; stands in for flash-attn on CPU (no padded keys occur here)."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Seeded weights: norms 1 + 0.1 N(0,1), everything else 0.1 N(0,1) (name order)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(module.named_parameters()):
            noise = torch.randn(param.shape, generator=gen)
            is_norm = "norm" in name or name.endswith("gamma")
            param.copy_(1.0 + 0.1 * noise if is_norm else 0.1 * noise)


def build_dit(model_mod: types.ModuleType, *, clip: bool, seed: int) -> torch.nn.Module:
    """AniSora WanModel 'i2v': V3's with a CLIP projection, or V3.2's (Wan2.2, no CLIP)."""
    net = model_mod.WanModel(model_type="i2v", **DIT_KWARGS)
    if clip:
        net.img_emb = model_mod.MLPProj(CLIP_DIM, DIT_KWARGS["dim"])
    randomize(net, seed)
    return net.eval()


def original_config() -> dict:
    """Wan's published config.json layout (Wan2.1-I2V-14B-480P/config.json), tiny values."""
    return {"_class_name": "WanModel", "_diffusers_version": "0.30.0", "model_type": "i2v",
            "dim": DIT_KWARGS["dim"], "eps": DIT_KWARGS["eps"], "ffn_dim": DIT_KWARGS["ffn_dim"],
            "freq_dim": DIT_KWARGS["freq_dim"], "in_dim": DIT_KWARGS["in_dim"],
            "num_heads": DIT_KWARGS["num_heads"], "num_layers": DIT_KWARGS["num_layers"],
            "out_dim": DIT_KWARGS["out_dim"], "text_len": DIT_KWARGS["text_len"]}


def save_dit(net: torch.nn.Module, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, folder / "diffusion_pytorch_model.safetensors")
    (folder / "config.json").write_text(json.dumps(original_config(), indent=2) + "\n")


def output_size(image_hw: tuple[int, int]) -> tuple[int, int]:
    """image2video_any.py: lat = round(sqrt(max_area * aspect) // 8 // 2 * 2), pixels = lat * 8."""
    aspect = image_hw[0] / image_hw[1]
    lat_h = round(np.sqrt(MAX_AREA * aspect) // 8 // 2 * 2)
    lat_w = round(np.sqrt(MAX_AREA / aspect) // 8 // 2 * 2)
    return lat_h * 8, lat_w * 8


def guide_frame(fraction: float) -> int:
    return round(int((NUM_FRAMES - 1) * fraction) / 8) * 8


def keyframe_msk(frames: list[int], lat_h: int, lat_w: int) -> torch.Tensor:
    """Pixel-rate mask, first frame repeated 4 times, grouped by 4 and transposed -> (4, T_lat, h, w)."""
    pixel = torch.zeros(1, NUM_FRAMES, lat_h, lat_w)
    for f in frames:
        pixel[:, f] = 1
    pixel = torch.cat([pixel[:, :1].repeat(1, 4, 1, 1), pixel[:, 1:]], dim=1)
    return pixel.view(1, pixel.shape[1] // 4, 4, lat_h, lat_w).transpose(1, 2)[0]


def keyframe_video(images: list[np.ndarray], frames: list[int], h: int, w: int) -> torch.Tensor:
    """Zero (3, F, h, w) video with each guide in [-1, 1], bicubically resized, on its frame."""
    video = torch.zeros(3, NUM_FRAMES, h, w)
    for image, f in zip(images, frames):
        pixels = torch.from_numpy(image).permute(2, 0, 1).float().div(255.0).sub(0.5).div(0.5)
        video[:, f] = F.interpolate(pixels[None], size=(h, w), mode="bicubic")[0]
    return video


def vae_encoder(vae_mod: types.ModuleType, seed: int) -> tuple[torch.nn.Module, SimpleNamespace]:
    """WanVAE_ with tiny dims, and a stand-in ``self`` for AniSora's WanVAE.encode wrapper."""
    net = vae_mod.WanVAE_(**VAE_KWARGS)
    randomize(net, seed)
    net.eval()
    mean, std = torch.tensor(VAE_MEAN), torch.tensor(VAE_STD)
    wrapper = SimpleNamespace(model=net, dtype=torch.float32, scale=[mean, 1.0 / std])
    return net, wrapper


def make_inputs(seed: int, lat_shape: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    inputs = {f"image_{i}": torch.from_numpy(rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8))
              for i in range(3)}
    inputs["noise"] = torch.from_numpy(rng.standard_normal((16, *lat_shape), dtype=np.float32))
    inputs["context"] = torch.from_numpy(rng.standard_normal((TEXT_TOKENS, DIT_KWARGS["text_dim"]),
                                                             dtype=np.float32))
    inputs["clip_fea"] = torch.from_numpy(rng.standard_normal((1, CLIP_TOKENS, CLIP_DIM), dtype=np.float32))
    inputs["timestep"] = torch.tensor([TIMESTEP])
    return inputs


def dit_forward(net: torch.nn.Module, inputs: dict, y: torch.Tensor, clip: bool) -> torch.Tensor:
    """One AniSora WanModel call as image2video_any.py (V3) / V3.2 make it (lists of per-sample tensors)."""
    seq_len = inputs["noise"].shape[1] * inputs["noise"].shape[2] * inputs["noise"].shape[3] // 4
    extra = {"clip_fea": inputs["clip_fea"]} if clip else {}
    with torch.no_grad():
        return net([inputs["noise"]], t=inputs["timestep"], context=[inputs["context"]], seq_len=seq_len,
                   y=[y], **extra)[0]


def main() -> None:
    model21, model22, vae_mod = load_anisora_modules()
    h, w = output_size(IMAGE_HW)
    lat_h, lat_w = h // 8, w // 8
    lat_shape = ((NUM_FRAMES - 1) // 4 + 1, lat_h, lat_w)
    inputs = make_inputs(SEEDS["inputs"], lat_shape)
    vae_net, vae_wrapper = vae_encoder(vae_mod, SEEDS["vae"])
    outputs: dict[str, torch.Tensor] = {}
    for name, fractions in KEYFRAME_SETS.items():
        frames = [guide_frame(p) for p in fractions]
        images = [inputs[f"image_{i}"].numpy() for i in range(len(frames))]
        video = keyframe_video(images, frames, h, w)
        with torch.no_grad():
            latents = vae_mod.WanVAE.encode(vae_wrapper, [video])[0]
        outputs[f"{name}_video"] = video
        outputs[f"{name}_latents"] = latents
        outputs[f"{name}_msk"] = keyframe_msk(frames, lat_h, lat_w)
        outputs[f"{name}_y"] = torch.cat([outputs[f"{name}_msk"], latents])
    OUT.mkdir(parents=True, exist_ok=True)
    for key, clip, model_mod in (("dit_i2v", True, model21), ("dit_wan22", False, model22)):
        net = build_dit(model_mod, clip=clip, seed=SEEDS[key])
        outputs[key] = dit_forward(net, inputs, outputs["three_y"], clip)
        save_dit(net, OUT / key)
    save_file({k: v.contiguous() for k, v in vae_net.state_dict().items()}, OUT / "vae.safetensors")
    del outputs["three_video"], outputs["two_video"]  # rebuilt by the test from the images
    save_file(inputs, OUT / "inputs.safetensors")
    save_file({k: v.contiguous() for k, v in outputs.items()}, OUT / "outputs.safetensors")
    write_recipe(h, w, {k: [guide_frame(p) for p in v] for k, v in KEYFRAME_SETS.items()})


def write_recipe(h: int, w: int, frames: dict[str, list[int]]) -> None:
    recipe = {
        "anisora": {"repo": "bilibili/Index-anisora", "commit": ANISORA_COMMIT,
                    "files": ["anisoraV3/wan/modules/model_infer.py", "anisoraV3/wan/modules/attention.py",
                              "anisoraV3.2/wan/modules/model.py", "anisoraV3.2/wan/modules/attention.py",
                              "anisoraV3/wan/modules/vae.py", "anisoraV3/wan/image2video_any.py (formula)"]},
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        "seeds": SEEDS, "dit": DIT_KWARGS, "clip_dim": CLIP_DIM, "vae": VAE_KWARGS,
        "num_frames": NUM_FRAMES, "image_hw": list(IMAGE_HW), "max_area": MAX_AREA, "size_hw": [h, w],
        "keyframes": {k: list(v) for k, v in KEYFRAME_SETS.items()}, "frames": frames,
        "timestep": TIMESTEP, "text_tokens": TEXT_TOKENS, "tolerance": 1e-4,
        "patches": ["flash_attention -> float32 scaled_dot_product_attention",
                    f"img_emb = MLPProj({CLIP_DIM}, dim) instead of MLPProj(1280, dim)",
                    "seeded random weights instead of init_weights"],
    }
    (OUT / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")


if __name__ == "__main__":
    main()
