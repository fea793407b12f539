"""Reference run of AniSora V1's own SAT DiT on the tiny SAT checkpoint (never imported by anibench or the tests).

Runs ``DiffusionTransformer`` of bilibili/Index-anisora @ 171fe63 (``anisoraV1_infer/fastercache/models/cogvideox/
dit_video_concat.py`` with the vendored ``anisoraV1_infer/sat``) at the tiny sizes of :mod:`parity.tiny_cogvideox`,
loads :func:`parity.tiny_cogvideox.write_tiny_sat_checkpoint` (seed 1, 2 layers) the way SAT's ``load_checkpoint``
does (prefix stripped, ``freqs_sin/cos`` deleted, ``strict=False``) and writes its output on seeded inputs to
``fixtures/anisora_v1/sat_dit_forward.safetensors`` (inputs, output, and the weights' checksum).

Environment (``/work/parity-work/cog-venv``): Python 3.11 venv whose ``.pth`` points at the project venv's packages
(torch 2.13.0+cpu) plus ``einops`` 0.8.2 and ``omegaconf`` 2.4.0. CPU-only patches, none touching the computation:
a stand-in for SAT's ``triton_rotary_embeddings`` module (imported at import time, needs Triton; the CogVideoX DiT
never builds it and rotates with its own ``Rotary3DPositionEmbeddingMixin``), sgm's package ``__init__`` files
skipped (they import the VAE engine and PyTorch Lightning; the DiT's own submodules are imported as they are) and
a one-process ``gloo`` group for SAT's model-parallel setup. Measured: max |diffusers - SAT| = 1.7e-5 (output
max 3.6), the test allows 1e-4.

    /work/parity-work/cog-venv/bin/python tests/parity/reference_anisora_v1.py /work/parity-work/anisora-full
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import types
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "anisora_v1" / "sat_dit_forward.safetensors"
INPUT_SEED, TIMESTEP = 7, 999.0


def stand_in_triton_rotary() -> None:
    """SAT's ``position_embedding/__init__.py`` imports its Triton rotary kernel (``FastRotaryEmbedding``), which
    needs ``triton``; the CogVideoX DiT never builds it (``use_rotary`` unset; its own Rotary3D mixin rotates).
    A module standing in for that file keeps the import chain working on CPU."""

    class FastRotaryEmbedding:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("the Triton rotary kernel is not available in this CPU reference run")

    module = types.ModuleType("sat.model.position_embedding.triton_rotary_embeddings")
    module.FastRotaryEmbedding = FastRotaryEmbedding  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module


def skip_package_inits(anisora: Path) -> None:
    """Register sgm's packages without running their ``__init__`` files (they import the VAE engine, PyTorch
    Lightning, conditioners); the DiT needs only a few of its submodules, imported normally."""
    base = anisora / "fastercache" / "models" / "cogvideox" / "sgm"
    packages = {
        "": base,
        ".modules": base / "modules",
        ".modules.diffusionmodules": base / "modules" / "diffusionmodules",
    }
    for name, folder in packages.items():
        module = types.ModuleType("fastercache.models.cogvideox.sgm" + name)
        module.__path__ = [str(folder)]  # type: ignore[attr-defined]
        sys.modules[module.__name__] = module


def one_process_group() -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29533", RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo", rank=0, world_size=1)


def build_sat_dit():
    """AniSora's DiffusionTransformer with the yaml's modules at tiny sizes (tiny_cogvideox constants)."""
    from fastercache.models.cogvideox.dit_video_concat import DiffusionTransformer
    from omegaconf import OmegaConf
    from parity import tiny_cogvideox as tiny

    root = "fastercache.models.cogvideox.dit_video_concat."
    modules = OmegaConf.create({
        "pos_embed_config": {"target": root + "Rotary3DPositionEmbeddingMixin",
                             "params": {"hidden_size_head": tiny.HEAD_DIM, "text_length": tiny.TEXT_LEN}},
        "patch_embed_config": {"target": root + "ImagePatchEmbeddingMixin",
                               "params": {"text_hidden_size": tiny.TEXT_DIM}},
        "adaln_layer_config": {"target": root + "AdaLNMixin", "params": {"qk_ln": True}},
        "final_layer_config": {"target": root + "FinalLayerMixin"},
    })
    transformer_args = argparse.Namespace(
        checkpoint_activations=False, vocab_size=1, max_sequence_length=64, layernorm_order="pre", skip_init=False,
        model_parallel_size=1, is_decoder=False,
    )
    return DiffusionTransformer(
        transformer_args=transformer_args, num_frames=tiny.SAMPLE["sample_frames"], time_compressed_rate=4,
        latent_width=tiny.SAMPLE["sample_width"], latent_height=tiny.SAMPLE["sample_height"], patch_size=tiny.PATCH,
        in_channels=tiny.IN_CHANNELS, out_channels=tiny.OUT_CHANNELS, hidden_size=tiny.HIDDEN, num_layers=2,
        num_attention_heads=tiny.HEADS, elementwise_affine=True, time_embed_dim=tiny.TIME_EMBED, modules=modules,
    )


def load_like_sat(model: torch.nn.Module, sat_file: Path) -> float:
    """SAT's load_checkpoint: strip ``model.diffusion_model.``, drop freqs_sin/cos, load non-strictly; checksum."""
    module = torch.load(sat_file, map_location="cpu", weights_only=True)["module"]
    prefix = "model.diffusion_model."
    state = {key[len(prefix):]: value for key, value in module.items()}
    for key in ("mixins.pos_embed.freqs_sin", "mixins.pos_embed.freqs_cos"):
        del state[key]
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.startswith("mixins.pos_embed.freqs_")]  # rebuilt at init, as SAT
    if missing or unexpected:
        raise SystemExit(f"the tiny checkpoint does not match SAT's DiT: missing {missing}, unexpected {unexpected}")
    return float(sum(value.double().sum() for value in module.values()))


def inputs() -> dict[str, torch.Tensor]:
    from parity import tiny_cogvideox as tiny

    generator = torch.Generator().manual_seed(INPUT_SEED)
    latent_frames = (tiny.SAMPLE["sample_frames"] - 1) // 4 + 1
    size = (tiny.SAMPLE["sample_height"], tiny.SAMPLE["sample_width"])
    return {
        "x": torch.randn(1, latent_frames, tiny.IN_CHANNELS, *size, generator=generator),  # (b, t, c, h, w)
        "context": torch.randn(1, tiny.TEXT_LEN, tiny.TEXT_DIM, generator=generator),
        "timestep": torch.tensor([TIMESTEP]),
    }


def main() -> None:
    anisora = Path(sys.argv[1]) / "anisoraV1_infer"
    sys.path[:0] = [str(anisora), str(HERE.parent)]
    stand_in_triton_rotary()
    skip_package_inits(anisora)
    one_process_group()
    from parity.tiny_cogvideox import write_tiny_sat_checkpoint
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = build_sat_dit().eval()
    with tempfile.TemporaryDirectory() as scratch:
        checksum = load_like_sat(model, write_tiny_sat_checkpoint(Path(scratch) / "mp_rank_00_model_states.pt"))
    tensors = inputs()
    with torch.no_grad():
        out = model(tensors["x"], timesteps=tensors["timestep"], context=tensors["context"])
    print("output", tuple(out.shape), float(out.abs().mean()))
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"weights_checksum": repr(checksum), "torch": torch.__version__,
                "anisora_commit": "171fe63409792bf7f0bd9d825f83c20fe8ec5477"}
    save_file({**tensors, "output": out.contiguous()}, str(FIXTURE), metadata=metadata)


if __name__ == "__main__":
    main()
